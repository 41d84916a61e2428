//! `testGreen`: the workflow's compatibility test, run on green before any traffic moves. The
//! test is a `batch/v1` Job the workflow gives (in a file next to it, or written inline), checked
//! when the workflow loads. The run creates it on green under a name of its own, waits until it
//! completes or fails, and keeps the end of each pod's log for the report. A failed Job fails
//! the step with its reason and the end of its log: green does not get traffic.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::{Context, StepCtx, StepError, StepResult, object_name};
use crate::cloud::eks::EksError;
use crate::cloud::jobs;
use crate::format::Validator;
use crate::format::node::{self, LineIndex};
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::format::{parse_options, source, yaml_problem};
use crate::journal::Fact;
use crate::types::{HumanDuration, Phase};
use crate::velero::objects::{LABEL_MANAGED_BY, LABEL_RUN, MANAGED_BY};

/// The Job, journaled before it is created.
pub const JOB: Fact<JobRef> = Fact::new("job");
/// How the Job ended, with the end of each pod's log.
pub const JOB_RESULT: Fact<JobResult> = Fact::new("jobResult");

/// How long the Job may run unless the step says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// How many lines of each pod's log are kept unless the step says.
pub const DEFAULT_LOG_LINES: u32 = 200;
/// The most lines a step may ask for.
pub const MAX_LOG_LINES: u32 = 5000;
/// The most bytes of each pod's log kept, whatever the lines: the journal is no log store.
pub const LOG_BYTES: i64 = 64 * 1024;
/// The label naming the step that made the Job.
pub const LABEL_STEP: &str = "eks-upgrade.io/step";
/// How many lines of the log a failure message carries.
const FAILURE_LINES: usize = 5;

/// Options for the compatibility test.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTestGreen {
    /// A file holding the `batch/v1` Job, relative to the workflow file. Give this or
    /// `manifest`.
    pub file: Option<Spanned<String>>,
    /// The `batch/v1` Job, written here. Give this or `file`.
    pub manifest: Option<Spanned<BTreeMap<String, Value>>>,
    /// How long the Job may run. Default: `15m`.
    pub timeout: Option<Spanned<DurationText>>,
    /// How many lines of each pod's log to keep for the report (at most 64 KiB of each).
    /// Default: `200`.
    pub log_lines: Option<Spanned<u32>>,
}

/// A validated `testGreen` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestGreen {
    /// Where the Job came from: the file as written, or `inline`.
    pub source: String,
    /// The Job without a name: the run gives it one. Boxed: a Job is large, and every step
    /// kind's model shares one enum.
    pub job: Box<Job>,
    pub timeout: HumanDuration,
    pub log_lines: u32,
}

/// The Job on green.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRef {
    pub name: String,
    pub namespace: String,
}

/// How the Job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobResult {
    pub name: String,
    pub namespace: String,
    pub succeeded: bool,
    /// The terminal condition's reason (`BackoffLimitExceeded`, …).
    pub reason: Option<String>,
    pub message: Option<String>,
    pub pods: Vec<PodTail>,
}

/// One pod of the Job and the end of its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTail {
    pub name: String,
    pub phase: Option<String>,
    /// The last lines of its log; `None` when it could not be read (`error` says why).
    pub logs: Option<String>,
    pub error: Option<String>,
}

pub struct TestGreenKind;

impl Kind for TestGreenKind {
    type Raw = RawTestGreen;
    type Model = TestGreen;

    const DOC: &'static str =
        "Runs the workflow's compatibility test, a Job, on green before traffic moves.";
    const TITLE: &'static str = "Test green";
    const PLACEMENT: Placement = Placement {
        sections: &[Phase::Upgrade],
        why: "green is tested in `upgrade`, before traffic moves to it",
    };
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::TestsGreen];
    const EXAMPLE: &'static str = "{ manifest: { apiVersion: batch/v1, kind: Job, spec: { backoffLimit: 0, template: { spec: { restartPolicy: Never, containers: [ { name: compat, image: \"public.ecr.aws/docker/library/busybox:1.36\", command: [sh, -c, \"echo ok\"] } ] } } } } }";

    fn build(
        raw: &Spanned<RawTestGreen>,
        v: &mut Validator<'_>,
        cx: &BuildCx<'_>,
    ) -> Option<TestGreen> {
        let r = &raw.value;
        let log_lines = match &r.log_lines {
            Some(n) if n.value == 0 || n.value > MAX_LOG_LINES => {
                v.problem(
                    n.loc,
                    format!("`logLines` must be between 1 and {MAX_LOG_LINES}"),
                    "out of range",
                    format!("keep the default of {DEFAULT_LOG_LINES}, or ask for fewer lines"),
                );
                DEFAULT_LOG_LINES
            }
            Some(n) => n.value,
            None => DEFAULT_LOG_LINES,
        };
        let timeout = v.positive("timeout", r.timeout.as_ref(), DEFAULT_TIMEOUT);
        let (source, job) = match (&r.file, &r.manifest) {
            (Some(file), None) => {
                let path = cx.dir.join(&file.value);
                match job_from_file(&path, &file.value) {
                    Ok(job) => (file.value.clone(), job),
                    Err(e) => {
                        v.problem(file.loc, e.message, e.label, e.help);
                        return None;
                    }
                }
            }
            (None, Some(manifest)) => {
                let value = Value::Object(manifest.value.clone().into_iter().collect());
                match check_job(&value) {
                    Ok(job) => ("inline".to_string(), job),
                    Err(p) => {
                        v.problem(
                            manifest.loc,
                            format!("`manifest`: {}", p.message),
                            "not a Job the run can create",
                            p.help,
                        );
                        return None;
                    }
                }
            }
            (Some(file), Some(_)) => {
                v.problem(
                    file.loc,
                    "`testGreen` has both `file` and `manifest`",
                    "two Jobs",
                    "give the Job once: in a file (`file:`) or here (`manifest:`)",
                );
                return None;
            }
            (None, None) => {
                v.problem(
                    raw.loc,
                    "`testGreen` needs the Job to run",
                    "no Job",
                    "add `file: tests/compat-job.yaml` (relative to the workflow file) or write the Job under `manifest:`",
                );
                return None;
            }
        };
        Some(TestGreen {
            source,
            job: Box::new(job),
            timeout,
            log_lines,
        })
    }

    async fn plan(step: &TestGreen, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let from = if step.source == "inline" {
            "written in the workflow".to_string()
        } else {
            format!("from `{}`", step.source)
        };
        Ok(vec![format!(
            "green: runs the compatibility Job {from} in namespace `{}` (within {}), keeps the last {} lines of each pod's log; a failed Job stops the run before traffic moves",
            namespace_of(&step.job),
            step.timeout,
            step.log_lines
        )])
    }

    async fn run(step: &TestGreen, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut TestGreen, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
    }

    fn typical_minutes(_: &TestGreen) -> u64 {
        5
    }
}

/// The namespace the Job runs in: its own, or `default`.
fn namespace_of(job: &Job) -> String {
    job.metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// What is wrong with a Job as written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JobProblem {
    /// The keys leading to the value at fault (`["metadata", "name"]`), for the location.
    at: Vec<&'static str>,
    message: String,
    help: String,
}

impl JobProblem {
    fn new(at: &[&'static str], message: impl Into<String>, help: impl Into<String>) -> Self {
        JobProblem {
            at: at.to_vec(),
            message: message.into(),
            help: help.into(),
        }
    }
}

/// A problem with the Job file, said at the workflow's `file:` value.
struct FileProblem {
    message: String,
    label: &'static str,
    help: String,
}

/// Reads and checks the Job in `path` (`written` as the workflow says it); problems name the
/// place in that file as `file:line:column`.
fn job_from_file(path: &Path, written: &str) -> Result<Job, FileProblem> {
    let text = source::read(path).map_err(|e| FileProblem {
        message: format!("cannot read the Job file: {e}"),
        label: "no Job here",
        help: format!(
            "the path is relative to the workflow file's directory: `{}`",
            path.display()
        ),
    })?;
    let at = |offset: usize| {
        let (line, column) = LineIndex::new(&text).line_col(offset);
        format!("{written}:{line}:{column}")
    };
    let yaml_error = |e: serde_saphyr::Error| {
        let p = yaml_problem(&e, &text);
        FileProblem {
            message: format!("`{}`: {}", at(p.span.map_or(0, |s| s.offset)), p.message),
            label: "invalid Job file",
            help: p
                .help
                .unwrap_or_else(|| "the file holds one `batch/v1` Job in YAML".into()),
        }
    };
    let tree = node::parse(&text, parse_options()).map_err(yaml_error)?;
    let value: Value =
        serde_saphyr::from_str_with_options(&text, parse_options()).map_err(yaml_error)?;
    check_job(&value).map_err(|p| {
        let offset = locate(&tree, &p.at).offset;
        FileProblem {
            message: format!("`{}`: {}", at(offset), p.message),
            label: "not a Job the run can create",
            help: p.help,
        }
    })
}

/// The node at `keys`, or the deepest one on the way there.
fn locate(tree: &node::Node, keys: &[&str]) -> node::Span {
    let mut here = tree;
    for key in keys {
        match here.get(key) {
            Some(next) => here = next,
            None => break,
        }
    }
    here.span
}

/// Checks that `value` is a `batch/v1` Job the run can create under its own name.
fn check_job(value: &Value) -> Result<Job, JobProblem> {
    let Some(top) = value.as_object() else {
        return Err(JobProblem::new(
            &[],
            "the Job must be a mapping",
            "write a `batch/v1` Job: `apiVersion`, `kind` and `spec`",
        ));
    };
    let text = |key: &str| top.get(key).and_then(Value::as_str).unwrap_or_default();
    if text("apiVersion") != "batch/v1" {
        return Err(JobProblem::new(
            &["apiVersion"],
            format!("`apiVersion` is `{}`, not `batch/v1`", text("apiVersion")),
            "write `apiVersion: batch/v1`",
        ));
    }
    if text("kind") != "Job" {
        return Err(JobProblem::new(
            &["kind"],
            format!("`kind` is `{}`, not `Job`", text("kind")),
            "write `kind: Job`; the test is one Job",
        ));
    }
    if value.pointer("/metadata/name").is_some()
        || value.pointer("/metadata/generateName").is_some()
    {
        return Err(JobProblem::new(
            &["metadata", "name"],
            "the Job has a name, and the run names it",
            "remove `metadata.name`: each run creates its own Job, named after the run and the step",
        ));
    }
    let containers = value
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array);
    if containers.is_none_or(|c| c.is_empty()) {
        return Err(JobProblem::new(
            &["spec", "template", "spec", "containers"],
            "the Job has no containers (`spec.template.spec.containers`)",
            "give the pod template at least one container with its `image` and `command`",
        ));
    }
    match value
        .pointer("/spec/template/spec/restartPolicy")
        .and_then(Value::as_str)
    {
        Some("Never" | "OnFailure") => {}
        other => {
            return Err(JobProblem::new(
                &["spec", "template", "spec", "restartPolicy"],
                format!(
                    "a Job's pods need `restartPolicy` `Never` or `OnFailure`{}",
                    other.map(|p| format!(", not `{p}`")).unwrap_or_default()
                ),
                "add `restartPolicy: Never` to `spec.template.spec`",
            ));
        }
    }
    serde_json::from_value::<Job>(value.clone()).map_err(|e| {
        JobProblem::new(
            &["spec"],
            format!("not a valid `batch/v1` Job: {e}"),
            "see `kubectl explain job.spec` for the fields and their types",
        )
    })
}

/// The Job as created on green: the workflow's, named for the run and labelled with it (on the
/// Job and its pods, so both can be found again).
fn job_object(step: &TestGreen, name: &str, run_id: &str, step_id: &str) -> Job {
    let mut job = (*step.job).clone();
    let namespace = namespace_of(&job);
    let step_label = crate::velero::backup::label_value(step_id);
    let labels: BTreeMap<String, String> = [
        (LABEL_RUN, run_id),
        (LABEL_STEP, step_label.as_str()),
        (LABEL_MANAGED_BY, MANAGED_BY),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    job.metadata.name = Some(name.to_string());
    job.metadata.namespace = Some(namespace);
    job.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .extend(labels.clone());
    if let Some(spec) = job.spec.as_mut() {
        spec.template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .extend(labels);
    }
    job
}

async fn run(step: &TestGreen, ctx: &StepCtx<'_>) -> StepResult {
    let green_cluster = ctx.green_cluster().await?;
    let green = ctx.green().await?;
    let job_ref = match ctx.fact(&JOB).await {
        Some(j) => j,
        None => {
            let j = JobRef {
                name: object_name(ctx.run_id, &ctx.key.id),
                namespace: namespace_of(&step.job),
            };
            ctx.record(&JOB, &j).await?;
            j
        }
    };
    let object = job_object(step, &job_ref.name, ctx.run_id, &ctx.key.id);
    let (_, created) = jobs::create_or_adopt(&green.kube, &object)
        .await
        .context(|| format!("cannot start the test on green `{}`", green_cluster.name))?;
    ctx.log(&format!(
        "{} Job `{}` in `{}` on green `{}`",
        if created { "created" } else { "re-attached to" },
        job_ref.name,
        job_ref.namespace,
        green_cluster.name
    ));
    ctx.progress(
        &format!("waiting for Job `{}` on green", job_ref.name),
        None,
        None,
    );
    let outcome = jobs::wait(
        &green.kube,
        &job_ref.namespace,
        &job_ref.name,
        step.timeout.0,
    )
    .await
    .cause()?;
    let pods = jobs::pod_logs(
        &green.kube,
        &job_ref.namespace,
        &job_ref.name,
        i64::from(step.log_lines),
        LOG_BYTES,
    )
    .await
    .cause()?;
    let result = JobResult {
        name: job_ref.name.clone(),
        namespace: job_ref.namespace.clone(),
        succeeded: outcome.succeeded,
        reason: outcome.reason.clone(),
        message: outcome.message.clone(),
        pods: pods
            .into_iter()
            .map(|p| {
                let (logs, error) = match p.log {
                    Ok(l) => (Some(l), None),
                    Err(e) => (None, Some(e)),
                };
                PodTail {
                    name: p.name,
                    phase: p.phase,
                    logs,
                    error,
                }
            })
            .collect(),
    };
    ctx.record(&JOB_RESULT, &result).await?;
    for pod in &result.pods {
        if let Some(logs) = &pod.logs {
            for line in logs.lines() {
                ctx.log(&format!("{}: {line}", pod.name));
            }
        }
    }
    if outcome.succeeded {
        return Ok(format!(
            "Job `{}` passed on green `{}` ({} pods succeeded)",
            job_ref.name, green_cluster.name, outcome.succeeded_pods
        ));
    }
    Err(StepError::Failed(failure(&result, &green_cluster.name)))
}

/// `Job `x` failed on green `g` (BackoffLimitExceeded: …); end of pod `p`'s log: a | b`.
fn failure(result: &JobResult, green: &str) -> String {
    let why = match (&result.reason, &result.message) {
        (Some(r), Some(m)) => format!(" ({r}: {m})"),
        (Some(r), None) => format!(" ({r})"),
        (None, Some(m)) => format!(" ({m})"),
        (None, None) => String::new(),
    };
    let tail = result
        .pods
        .iter()
        .rev()
        .find_map(|p| p.logs.as_ref().map(|l| (p, l)))
        .map(|(p, l)| {
            let lines: Vec<&str> = l.lines().filter(|x| !x.trim().is_empty()).collect();
            let last = &lines[lines.len().saturating_sub(FAILURE_LINES)..];
            format!("; end of pod `{}`'s log: {}", p.name, last.join(" | "))
        })
        .unwrap_or_default();
    format!(
        "Job `{}` failed on green `{green}`{why}{tail}; green gets no traffic",
        result.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job() -> Value {
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": { "namespace": "shop", "labels": { "app": "compat" } },
            "spec": {
                "backoffLimit": 1,
                "template": { "spec": {
                    "restartPolicy": "Never",
                    "containers": [ { "name": "t", "image": "busybox", "command": ["true"] } ],
                } },
            },
        })
    }

    #[test]
    fn only_an_unnamed_batch_v1_job_with_containers_passes() {
        assert!(check_job(&job()).is_ok());
        let with = |ptr: &str, v: Value| {
            let mut j = job();
            *j.pointer_mut(ptr).expect("pointer") = v;
            j
        };
        let err = check_job(&with("/kind", json!("Pod"))).expect_err("a Pod");
        assert_eq!(err.at, ["kind"]);
        assert!(err.message.contains("`Pod`"), "{}", err.message);
        let err = check_job(&with("/apiVersion", json!("batch/v1beta1"))).expect_err("old");
        assert_eq!(err.at, ["apiVersion"]);
        let err = check_job(&with("/metadata", json!({ "name": "x" }))).expect_err("named");
        assert_eq!(err.at, ["metadata", "name"]);
        let err = check_job(&with("/spec/template/spec/containers", json!([]))).expect_err("empty");
        assert!(err.message.contains("no containers"));
        let err = check_job(&with("/spec/template/spec/restartPolicy", json!("Always")))
            .expect_err("always");
        assert!(err.message.contains("not `Always`"), "{}", err.message);
        let err = check_job(&with("/spec/backoffLimit", json!("many"))).expect_err("types");
        assert!(
            err.message.starts_with("not a valid `batch/v1` Job"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_problem_in_a_job_file_names_its_line_and_column() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("job.yaml");
        std::fs::write(
            &path,
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: mine\nspec: {}\n",
        )
        .expect("write");
        let err = job_from_file(&path, "tests/job.yaml").expect_err("named");
        assert!(
            err.message
                .starts_with("`tests/job.yaml:4:9`: the Job has a name"),
            "{}",
            err.message
        );
        std::fs::write(&path, "apiVersion: batch/v1\nkind: [\n").expect("write");
        let err = job_from_file(&path, "tests/job.yaml").expect_err("bad YAML");
        assert!(
            err.message.starts_with("`tests/job.yaml:"),
            "{}",
            err.message
        );
        let err = job_from_file(&dir.path().join("none.yaml"), "none.yaml").expect_err("missing");
        assert!(err.message.contains("does not exist"), "{}", err.message);
    }

    #[test]
    fn the_created_job_carries_the_run_on_itself_and_its_pods() {
        let step = TestGreen {
            source: "inline".into(),
            job: Box::new(check_job(&job()).expect("a job")),
            timeout: HumanDuration(DEFAULT_TIMEOUT),
            log_lines: 200,
        };
        let j = job_object(&step, "eks-upgrade-r1-compat", "r1", "compat");
        assert_eq!(j.metadata.name.as_deref(), Some("eks-upgrade-r1-compat"));
        assert_eq!(j.metadata.namespace.as_deref(), Some("shop"));
        let labels = j.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels[LABEL_RUN], "r1");
        assert_eq!(labels["app"], "compat");
        let pod_labels = j
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.as_ref())
            .expect("pod labels");
        assert_eq!(pod_labels[LABEL_STEP], "compat");
    }

    #[test]
    fn a_failure_names_the_reason_and_the_end_of_the_log() {
        let result = JobResult {
            name: "j".into(),
            namespace: "default".into(),
            succeeded: false,
            reason: Some("BackoffLimitExceeded".into()),
            message: Some("Job has reached the specified backoff limit".into()),
            pods: vec![
                PodTail {
                    name: "j-1".into(),
                    phase: Some("Failed".into()),
                    logs: Some((1..=8).map(|i| format!("line {i}\n")).collect()),
                    error: None,
                },
                PodTail {
                    name: "j-2".into(),
                    phase: Some("Failed".into()),
                    logs: None,
                    error: Some("gone".into()),
                },
            ],
        };
        let m = failure(&result, "demo-1-35");
        assert_eq!(
            m,
            "Job `j` failed on green `demo-1-35` (BackoffLimitExceeded: Job has reached the specified backoff limit); end of pod `j-1`'s log: line 4 | line 5 | line 6 | line 7 | line 8; green gets no traffic"
        );
    }
}
