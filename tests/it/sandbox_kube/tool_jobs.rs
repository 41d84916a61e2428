//! The tool's Job calls (`cloud::jobs`, used to run a workflow's compatibility tests on green)
//! against the sandbox's API server over the real kube client: a Job is created, a second call
//! adopts it rather than running the tests twice, a Job that is not the run's is refused, the
//! wait ends with the terminal condition, and each pod's log is read with its tail.

use std::collections::BTreeMap;
use std::time::Duration;

use eks_upgrade_core::cloud::jobs;
use k8s_openapi::api::batch::v1::Job;

use super::client;
use crate::common::TestSandbox;

fn job(name: &str, labels: &[(&str, &str)]) -> Job {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        },
        "spec": {
            "backoffLimit": 1,
            "template": { "spec": {
                "restartPolicy": "Never",
                "containers": [ { "name": "compat", "image": "public.ecr.aws/docker/library/busybox:1.37", "command": ["sh", "-c", "echo ok"] } ],
            } },
        },
    }))
    .expect("a Job")
}

#[test]
fn a_compatibility_job_runs_once_is_waited_for_and_its_log_is_kept() {
    let sb = TestSandbox::start(None);
    let c = client(&sb);
    let run = [
        ("eks-upgrade/run-id", "run-1"),
        ("eks-upgrade/step", "compat"),
    ];
    sb.block_on(async {
        let (_, created) = jobs::create_or_adopt(&c, &job("compat-run-1", &run))
            .await
            .expect("created");
        assert!(created);
        // A resumed step finds its Job and does not start the tests again.
        let (_, created) = jobs::create_or_adopt(&c, &job("compat-run-1", &run))
            .await
            .expect("adopted");
        assert!(!created);
        // A Job of that name without the run's labels is someone else's.
        let other =
            jobs::create_or_adopt(&c, &job("compat-run-1", &[("eks-upgrade/run-id", "run-2")]))
                .await;
        assert!(
            matches!(other, Err(jobs::JobError::NotOurs { .. })),
            "{other:?}"
        );

        let outcome = jobs::wait(&c, "default", "compat-run-1", Duration::from_secs(120))
            .await
            .expect("the Job ends");
        assert!(outcome.succeeded, "{outcome:?}");
        assert_eq!((outcome.succeeded_pods, outcome.failed_pods), (1, 0));
        let logs = jobs::pod_logs(&c, "default", "compat-run-1", 1, 64 * 1024)
            .await
            .expect("the pods' logs");
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert_eq!(logs[0].phase.as_deref(), Some("Succeeded"));
        let log = logs[0].log.as_ref().expect("a log");
        // The last line only: the exit line the sandbox's kubelet writes.
        assert_eq!(log.trim_end().lines().count(), 1, "{log}");
        assert!(log.contains("exited with code 0"), "{log}");
    });
}
