//! `batch/v1` Jobs, as the API server's defaulting and the Job controller leave them: a Job gets
//! its selector and pod labels on create, then its pods (owned by it, labelled with its name and
//! uid), one after another up to `parallelism`. Each pod runs for `timings.jobRun` (emulated)
//! and then succeeds, or fails with `faults.jobsFail`; failed pods are replaced after the
//! controller's back-off (10 s doubling, at most 6 min) until more than `backoffLimit` have
//! failed. The Job ends with `SuccessCriteriaMet` + `Complete`, or `FailureTarget` + `Failed`
//! (`BackoffLimitExceeded`), the first of each pair only from Kubernetes 1.31 on, as there.
//!
//! Not emulated: indexed completion, success and pod failure policies, `activeDeadlineSeconds`,
//! `ttlSecondsAfterFinished`, `restartPolicy: OnFailure` restarts in place (every failure is a
//! new pod, as with `Never`), and the tracking finalizer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::names;
use crate::kube::selector::Selector;
use crate::kube::store::{Change, ChangeKind, ResourceType, Store, StoreError, Subresource};
use crate::world::World;
use pods::{escape, finished_status, pick_node, pod_object};

mod pods;

pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// The labels' older names, which the API server still adds.
const LEGACY_JOB_NAME: &str = "job-name";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const DEFAULT_BACKOFF_LIMIT: u64 = 6;
const BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(360);

fn jobs_type(store: &Store) -> Option<Arc<ResourceType>> {
    store.resource("batch", "v1", "jobs")
}

fn pods_type(store: &Store) -> Option<Arc<ResourceType>> {
    store.resource("", "v1", "pods")
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What the API server's defaulting adds to a new Job, as a merge patch (`None`: nothing to
/// add): the selector on the Job's uid and the labels its pods carry (`generateSelector`), and
/// the spec's defaults.
pub fn defaults(job: &Value) -> Option<Value> {
    let uid = str_at(job, "/metadata/uid");
    let name = str_at(job, "/metadata/name");
    let spec = job.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut patch = Map::new();
    let manual = spec.get("manualSelector") == Some(&json!(true));
    if !manual && spec.get("selector").is_none_or(Value::is_null) && !uid.is_empty() {
        patch.insert(
            "selector".into(),
            json!({ "matchLabels": { CONTROLLER_UID_LABEL: uid } }),
        );
        patch.insert(
            "template".into(),
            json!({ "metadata": { "labels": {
                CONTROLLER_UID_LABEL: uid, JOB_NAME_LABEL: name,
                LEGACY_CONTROLLER_UID: uid, LEGACY_JOB_NAME: name,
            } } }),
        );
    }
    let unset = |f: &str| spec.get(f).is_none_or(Value::is_null);
    if unset("completions") && unset("parallelism") {
        patch.insert("completions".into(), json!(1));
    }
    for (field, value) in [
        ("parallelism", json!(1)),
        ("backoffLimit", json!(DEFAULT_BACKOFF_LIMIT)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
    ] {
        if unset(field) {
            patch.insert(field.into(), value);
        }
    }
    (!patch.is_empty()).then(|| json!({ "spec": Value::Object(patch) }))
}

/// Applies [`defaults`] to a stored Job and returns it as stored.
pub fn apply_defaults(store: &Store, namespace: &str, job: Value) -> Result<Value, StoreError> {
    let (Some(rt), Some(patch)) = (jobs_type(store), defaults(&job)) else {
        return Ok(job);
    };
    let name = str_at(&job, "/metadata/name").to_string();
    store.patch(&rt, Some(namespace), &name, &patch, Subresource::Main)
}

fn is_finished(job: &Value) -> bool {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                matches!(str_at(c, "/type"), "Complete" | "Failed")
                    && str_at(c, "/status") == "True"
            })
        })
}

enum Timer {
    /// A job pod's run ends.
    PodDone { namespace: String, pod: String },
    /// A Job's back-off has passed: it may start its next pod.
    Wake { namespace: String, job: String },
}

/// The Job controller's state: the pods running and the Jobs backing off.
pub struct Jobs {
    world: Arc<World>,
    timers: Vec<(Instant, Timer)>,
    /// When each Job's last pod failed, for the back-off.
    last_failure: HashMap<(String, String), Instant>,
}

impl Jobs {
    pub fn new(world: Arc<World>) -> Jobs {
        Jobs {
            world,
            timers: Vec::new(),
            last_failure: HashMap::new(),
        }
    }

    /// When the next timer is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.timers.iter().map(|(at, _)| *at).min()
    }

    /// Handles every timer that is due.
    pub fn fire(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timers)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.timers = later;
        for (_, timer) in due {
            match timer {
                Timer::PodDone { namespace, pod } => self.pod_done(&namespace, &pod),
                Timer::Wake { namespace, job } => self.reconcile(&namespace, &job),
            }
        }
    }

    /// Reacts to store changes: Jobs created or changed, deleted Jobs' pods, job pods that
    /// changed or went away.
    pub fn observe(&mut self, changes: &[Arc<Change>]) {
        let mut targets: Vec<(String, String)> = Vec::new();
        for c in changes {
            let ns = c.namespace().unwrap_or("").to_string();
            match (c.resource.group.as_str(), c.resource.kind.as_str()) {
                ("batch", "Job") if c.kind == ChangeKind::Deleted => {
                    self.delete_pods(&ns, str_at(&c.object, "/metadata/uid"));
                }
                ("batch", "Job") => targets.push((ns, c.name().to_string())),
                ("", "Pod") => {
                    let job = str_at(
                        &c.object,
                        &format!("/metadata/labels/{}", escape(JOB_NAME_LABEL)),
                    );
                    if !job.is_empty() {
                        targets.push((ns, job.to_string()));
                    }
                }
                _ => {}
            }
        }
        targets.sort();
        targets.dedup();
        for (ns, job) in targets {
            self.reconcile(&ns, &job);
        }
    }

    /// Reconciles every Job, after missed changes.
    pub fn reconcile_all(&mut self) {
        let Some(rt) = jobs_type(&self.world.store) else {
            return;
        };
        for job in self.world.store.list(&rt, None, &Selector::default()).0 {
            let ns = str_at(&job, "/metadata/namespace").to_string();
            self.reconcile(&ns, str_at(&job, "/metadata/name"));
        }
    }

    /// The garbage collector's part: a deleted Job's pods go with it.
    fn delete_pods(&self, namespace: &str, uid: &str) {
        let store = &self.world.store;
        let Some(prt) = pods_type(store) else {
            return;
        };
        let Ok(selector) = Selector::labels(&format!("{CONTROLLER_UID_LABEL}={uid}")) else {
            return;
        };
        for pod in store.list(&prt, Some(namespace), &selector).0 {
            let _ = store.delete(&prt, Some(namespace), str_at(&pod, "/metadata/name"));
        }
    }

    /// A pod's run is over: it succeeds, or fails with `faults.jobsFail`.
    fn pod_done(&mut self, namespace: &str, name: &str) {
        let store = &self.world.store;
        let Some(prt) = pods_type(store) else {
            return;
        };
        let Ok(pod) = store.get(&prt, Some(namespace), name) else {
            return;
        };
        if str_at(&pod, "/status/phase") != "Running" {
            return;
        }
        let fails = self.world.scenario.spec.faults.jobs_fail;
        let status = finished_status(&pod, i64::from(fails));
        if store
            .patch(
                &prt,
                Some(namespace),
                name,
                &json!({ "status": status }),
                Subresource::Status,
            )
            .is_err()
        {
            return;
        }
        let job = str_at(
            &pod,
            &format!("/metadata/labels/{}", escape(JOB_NAME_LABEL)),
        )
        .to_string();
        if fails {
            self.last_failure
                .insert((namespace.to_string(), job.clone()), Instant::now());
        }
        self.reconcile(namespace, &job);
    }

    /// `syncJob`: the Job's pods and status brought in line with its spec.
    fn reconcile(&mut self, namespace: &str, name: &str) {
        let _ = self.try_reconcile(namespace, name);
    }

    fn try_reconcile(&mut self, namespace: &str, name: &str) -> Result<(), StoreError> {
        let store = self.world.store.clone();
        let (Some(jrt), Some(prt)) = (jobs_type(&store), pods_type(&store)) else {
            return Ok(());
        };
        let job = match store.get(&jrt, Some(namespace), name) {
            Ok(j) => j,
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        // Created straight in the store (seeded objects): defaulted here instead of by the API.
        let job = apply_defaults(&store, namespace, job)?;
        if is_finished(&job) || job.pointer("/spec/suspend") == Some(&json!(true)) {
            return Ok(());
        }
        let selector = job
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let Ok(selector) = Selector::labels(&selector) else {
            return Ok(());
        };
        let pods = store.list(&prt, Some(namespace), &selector).0;
        let count = |phases: &[&str]| {
            pods.iter()
                .filter(|p| phases.contains(&str_at(p, "/status/phase")))
                .count() as u64
        };
        let (mut active, running) = (count(&["Pending", "Running"]), count(&["Running"]));
        let (succeeded, failed) = (count(&["Succeeded"]), count(&["Failed"]));
        let spec = job.get("spec").cloned().unwrap_or_else(|| json!({}));
        let number = |f: &str, default: u64| spec.get(f).and_then(Value::as_u64).unwrap_or(default);
        let completions = number("completions", 1);
        let parallelism = number("parallelism", 1);
        let backoff_limit = number("backoffLimit", DEFAULT_BACKOFF_LIMIT);
        let since_131 = self.world.control_plane_version().minor >= 31
            || self.world.control_plane_version().major > 1;

        let mut status = job
            .get("status")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        status.entry("startTime").or_insert_with(|| json!(now()));
        status.insert("uncountedTerminatedPods".into(), json!({}));
        let condition = |kind: &str, reason: &str, message: &str| {
            json!({ "type": kind, "status": "True", "reason": reason, "message": message,
                    "lastProbeTime": now(), "lastTransitionTime": now() })
        };
        if failed > backoff_limit {
            for pod in pods
                .iter()
                .filter(|p| matches!(str_at(p, "/status/phase"), "Pending" | "Running"))
            {
                let _ = store.delete(&prt, Some(namespace), str_at(pod, "/metadata/name"));
            }
            active = 0;
            let (reason, message) = (
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
            let mut conditions = Vec::new();
            if since_131 {
                conditions.push(condition("FailureTarget", reason, message));
            }
            conditions.push(condition("Failed", reason, message));
            status.insert("conditions".into(), json!(conditions));
        } else if succeeded >= completions {
            let (reason, message) = (
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            );
            let mut conditions = Vec::new();
            if since_131 {
                conditions.push(condition("SuccessCriteriaMet", reason, message));
            }
            conditions.push(condition("Complete", reason, message));
            status.insert("conditions".into(), json!(conditions));
            status.insert("completionTime".into(), json!(now()));
        } else {
            let wanted = parallelism
                .min(completions - succeeded)
                .saturating_sub(active);
            if wanted > 0 {
                let key = (namespace.to_string(), name.to_string());
                let ready_at = (failed > 0)
                    .then(|| self.last_failure.get(&key).copied())
                    .flatten()
                    .map(|at| at + self.world.real(backoff(failed)));
                match ready_at {
                    Some(at) if at > Instant::now() => {
                        let waiting = self.timers.iter().any(|(_, t)| {
                            matches!(t, Timer::Wake { namespace: n, job: j } if n == namespace && j == name)
                        });
                        if !waiting {
                            self.timers.push((
                                at,
                                Timer::Wake {
                                    namespace: namespace.to_string(),
                                    job: name.to_string(),
                                },
                            ));
                        }
                    }
                    _ => {
                        let mut seq = pods.len() as u64;
                        for _ in 0..wanted {
                            seq = self.start_pod(&store, &prt, &job, seq)?;
                            active += 1;
                        }
                    }
                }
            }
        }
        let mut set = |field: &str, n: u64| {
            if n > 0 {
                status.insert(field.into(), json!(n));
            } else {
                status.remove(field);
            }
        };
        set("active", active);
        set("succeeded", succeeded);
        set("failed", failed);
        status.insert("ready".into(), json!(running.min(active)));
        status.insert("terminating".into(), json!(0));
        if job.get("status").and_then(Value::as_object) != Some(&status) {
            // A merge patch leaves out what it does not name: counts gone to zero are nulled.
            let mut patch = status;
            for key in job
                .get("status")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|old| old.keys())
            {
                patch.entry(key.clone()).or_insert(Value::Null);
            }
            store.patch(
                &jrt,
                Some(namespace),
                name,
                &json!({ "status": patch }),
                Subresource::Status,
            )?;
        }
        Ok(())
    }

    /// Creates the next pod of a Job (its name the first free one from `seq`), running on a
    /// node when one is schedulable; returns the next sequence number.
    fn start_pod(
        &mut self,
        store: &Store,
        prt: &Arc<ResourceType>,
        job: &Value,
        mut seq: u64,
    ) -> Result<u64, StoreError> {
        let namespace = str_at(job, "/metadata/namespace").to_string();
        let name = str_at(job, "/metadata/name");
        let uid = str_at(job, "/metadata/uid");
        loop {
            let pod_name = format!("{name}-{}", names::suffix(&format!("{name}{uid}{seq}"), 5));
            seq += 1;
            let node = pick_node(store, &pod_name);
            let pod = pod_object(job, &pod_name, node.as_deref());
            match store.create(prt, Some(&namespace), pod) {
                Ok(_) => {
                    if node.is_some() {
                        let at = Instant::now()
                            + self.world.real(self.world.scenario.spec.timings.job_run.0);
                        self.timers.push((
                            at,
                            Timer::PodDone {
                                namespace: namespace.clone(),
                                pod: pod_name,
                            },
                        ));
                    }
                    return Ok(seq);
                }
                Err(StoreError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// The controller's back-off before the next pod after `failed` failures.
fn backoff(failed: u64) -> Duration {
    let exp = u32::try_from(failed.saturating_sub(1).min(16)).unwrap_or(16);
    BACKOFF
        .saturating_mul(2u32.saturating_pow(exp))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_select_the_jobs_own_pods() {
        let job = json!({ "metadata": { "name": "check", "uid": "u-1" },
                          "spec": { "template": { "spec": { "containers": [] } } } });
        let patch = defaults(&job).expect("defaults");
        assert_eq!(
            patch["spec"]["selector"],
            json!({ "matchLabels": { CONTROLLER_UID_LABEL: "u-1" } })
        );
        assert_eq!(
            patch["spec"]["template"]["metadata"]["labels"][JOB_NAME_LABEL],
            "check"
        );
        assert_eq!(
            patch["spec"]["template"]["metadata"]["labels"]["job-name"],
            "check"
        );
        assert_eq!(patch["spec"]["backoffLimit"], 6);
        assert_eq!(patch["spec"]["completions"], 1);
        let mut done = job.clone();
        crate::kube::store::merge_patch(&mut done, &patch);
        assert_eq!(defaults(&done), None, "defaulting twice changes nothing");
        let manual = json!({ "metadata": { "name": "m", "uid": "u" },
                             "spec": { "manualSelector": true, "parallelism": 2, "backoffLimit": 1,
                                       "completionMode": "NonIndexed", "suspend": false,
                                       "podReplacementPolicy": "Failed" } });
        assert_eq!(
            defaults(&manual),
            None,
            "a work queue keeps `completions` unset"
        );
    }

    #[test]
    fn back_off_doubles_up_to_six_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(4), Duration::from_secs(80));
        assert_eq!(backoff(7), Duration::from_secs(360));
        assert_eq!(backoff(100), Duration::from_secs(360));
    }
}
