//! A `batch/v1` Job run on a cluster and read back: create it (or adopt the one a crashed run
//! created under the same name and labels), wait by watch until it completes or fails, and read
//! the end of each of its pods' logs. A blue/green run uses it for the compatibility test on
//! green.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, LogParams, PostParams};
use serde::Serialize;

use crate::types::HumanDuration;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(
        "cannot {what} Job `{name}` in namespace `{namespace}`: {}",
        crate::errors::chain(source)
    )]
    Kube {
        what: &'static str,
        name: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "a Job named `{name}` already exists in namespace `{namespace}` and was not made by this run"
    )]
    NotOurs { name: String, namespace: String },
    #[error("Job `{name}` did not finish within {waited}")]
    Timeout { name: String, waited: HumanDuration },
    #[error("Job `{name}` was deleted while the tool waited for it")]
    Gone { name: String },
    #[error("cannot watch Job `{name}`: {}", crate::errors::chain(source))]
    Watch {
        name: String,
        #[source]
        source: kube::runtime::wait::Error,
    },
}

/// Creates `job` (which carries its name, namespace and labels), or adopts the Job of that
/// name when it has every one of `job`'s labels: a resumed run re-attaches instead of running
/// the test twice. `true` when this call created it.
pub async fn create_or_adopt(client: &kube::Client, job: &Job) -> Result<(Job, bool), JobError> {
    let name = job.metadata.name.clone().unwrap_or_default();
    let namespace = job
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let api: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let err = |what, source| JobError::Kube {
        what,
        name: name.clone(),
        namespace: namespace.clone(),
        source,
    };
    match api.create(&PostParams::default(), job).await {
        Ok(created) => Ok((created, true)),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api.get(&name).await.map_err(|e| err("read", e))?;
            if carries(&existing, job.metadata.labels.as_ref()) {
                Ok((existing, false))
            } else {
                Err(JobError::NotOurs { name, namespace })
            }
        }
        Err(e) => Err(err("create", e)),
    }
}

/// Whether `job` has every label of `wanted`.
fn carries(job: &Job, wanted: Option<&BTreeMap<String, String>>) -> bool {
    let have = job.metadata.labels.as_ref();
    wanted
        .into_iter()
        .flatten()
        .all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
}

/// How a Job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobOutcome {
    pub succeeded: bool,
    /// The terminal condition's reason (`BackoffLimitExceeded`, `DeadlineExceeded`, …).
    pub reason: Option<String>,
    pub message: Option<String>,
    pub succeeded_pods: i32,
    pub failed_pods: i32,
}

/// The Job's outcome once a terminal condition (`Complete` or `Failed`) is true; `None` while
/// it runs. (`SuccessCriteriaMet` and `FailureTarget` come first on newer clusters, while
/// pods are still terminating; the tool waits for the terminal one.)
pub fn outcome(job: &Job) -> Option<JobOutcome> {
    let status = job.status.as_ref()?;
    let terminal = status
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?;
    Some(JobOutcome {
        succeeded: terminal.type_ == "Complete",
        reason: terminal.reason.clone(),
        message: terminal.message.clone(),
        succeeded_pods: status.succeeded.unwrap_or(0),
        failed_pods: status.failed.unwrap_or(0),
    })
}

/// Waits by watch until the Job ends, for at most `timeout`.
pub async fn wait(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<JobOutcome, JobError> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let done = kube::runtime::wait::await_condition(api, name, |job: Option<&Job>| {
        job.is_none_or(|j| outcome(j).is_some())
    });
    let found = tokio::time::timeout(timeout, done)
        .await
        .map_err(|_| JobError::Timeout {
            name: name.to_string(),
            waited: HumanDuration(timeout),
        })?
        .map_err(|source| JobError::Watch {
            name: name.to_string(),
            source,
        })?;
    found
        .as_ref()
        .and_then(outcome)
        .ok_or_else(|| JobError::Gone {
            name: name.to_string(),
        })
}

/// One pod of a Job, with the end of its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodLog {
    pub name: String,
    pub phase: Option<String>,
    /// The last lines of its log, or why they could not be read (a pod whose node is gone has
    /// none; that is part of the report, not a failure of the step).
    pub log: Result<String, String>,
}

/// The labels a Job's pods carry, newest first: `batch.kubernetes.io/job-name` since
/// Kubernetes 1.27, `job-name` before (and still, alongside it).
const JOB_NAME_LABELS: &[&str] = &["batch.kubernetes.io/job-name", "job-name"];

/// The Job's pods, oldest first, each with its last `tail_lines` lines, at most `limit_bytes`.
pub async fn pod_logs(
    client: &kube::Client,
    namespace: &str,
    job: &str,
    tail_lines: i64,
    limit_bytes: i64,
) -> Result<Vec<PodLog>, JobError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut found = Vec::new();
    for label in JOB_NAME_LABELS {
        let list = pods
            .list(&ListParams::default().labels(&format!("{label}={job}")))
            .await
            .map_err(|source| JobError::Kube {
                what: "list the pods of",
                name: job.to_string(),
                namespace: namespace.to_string(),
                source,
            })?;
        if !list.items.is_empty() {
            found = list.items;
            break;
        }
    }
    found.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .cmp(&b.metadata.creation_timestamp)
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    let params = LogParams {
        tail_lines: Some(tail_lines),
        limit_bytes: Some(limit_bytes),
        ..LogParams::default()
    };
    let mut out = Vec::new();
    for pod in found {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let log = pods
            .logs(&name, &params)
            .await
            .map_err(|e| crate::errors::chain(&e));
        out.push(PodLog {
            phase: pod.status.and_then(|s| s.phase),
            name,
            log,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use kube::api::ObjectMeta;

    use super::*;

    fn job(conditions: &[(&str, &str, Option<&str>)], labels: &[(&str, &str)]) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("compat".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            status: Some(JobStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s, r)| JobCondition {
                            type_: t.to_string(),
                            status: s.to_string(),
                            reason: r.map(str::to_string),
                            ..JobCondition::default()
                        })
                        .collect(),
                ),
                succeeded: Some(1),
                failed: Some(2),
                ..JobStatus::default()
            }),
            ..Job::default()
        }
    }

    #[test]
    fn only_a_true_complete_or_failed_condition_ends_a_job() {
        assert_eq!(outcome(&job(&[], &[])), None);
        // Newer clusters say `SuccessCriteriaMet` while pods still terminate.
        assert_eq!(
            outcome(&job(&[("SuccessCriteriaMet", "True", None)], &[])),
            None
        );
        assert_eq!(outcome(&job(&[("Complete", "False", None)], &[])), None);
        let done = outcome(&job(
            &[
                ("SuccessCriteriaMet", "True", None),
                ("Complete", "True", None),
            ],
            &[],
        ))
        .unwrap();
        assert!(done.succeeded);
        assert_eq!((done.succeeded_pods, done.failed_pods), (1, 2));
        let failed = outcome(&job(
            &[("Failed", "True", Some("BackoffLimitExceeded"))],
            &[],
        ))
        .unwrap();
        assert!(!failed.succeeded);
        assert_eq!(failed.reason.as_deref(), Some("BackoffLimitExceeded"));
    }

    #[test]
    fn a_job_is_adopted_only_with_every_label_of_the_run() {
        let wanted: BTreeMap<String, String> = [("eks-upgrade/run", "r1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ours = job(&[], &[("eks-upgrade/run", "r1"), ("app", "compat")]);
        let theirs = job(&[], &[("eks-upgrade/run", "r0")]);
        let bare = job(&[], &[]);
        assert!(carries(&ours, Some(&wanted)));
        assert!(!carries(&theirs, Some(&wanted)));
        assert!(!carries(&bare, Some(&wanted)));
    }
}
