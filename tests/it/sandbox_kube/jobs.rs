//! Jobs through the real `kubectl`: a Job's pods run and succeed (or fail and are retried up to
//! `backoffLimit`), `kubectl wait` sees the Job's conditions, and `kubectl logs` reads the pods'
//! `log` subresource.

use serde_json::Value;

use super::kubectl::Kubectl;
use super::sandbox;
use crate::common::TestSandbox;

const FAILING: &str = r#"
apiVersion: eks-upgrade/v1
kind: Scenario
metadata: { name: failing-jobs }
spec:
  cluster: { name: demo, region: us-east-1, version: "1.33" }
  nodegroups: [ { name: general, nodes: 2 } ]
  workloads:
    - { kind: Deployment, namespace: shop, name: web, replicas: 1 }
  faults: { jobsFail: true }
"#;

fn json(k: &Kubectl, args: &[&str]) -> Value {
    serde_json::from_str(&k.ok(args)).expect("kubectl prints JSON")
}

fn conditions(job: &Value) -> Vec<(String, String)> {
    job["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .map(|c| {
            assert_eq!(c["status"], "True", "{c}");
            (
                c["type"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn job_pods(k: &Kubectl, job: &str) -> Vec<Value> {
    json(
        k,
        &[
            "get",
            "pods",
            "-n",
            "shop",
            "-l",
            &format!("job-name={job}"),
            "-o",
            "json",
        ],
    )["items"]
        .as_array()
        .expect("items")
        .clone()
}

#[test]
fn a_job_completes_and_kubectl_logs_shows_its_pod_log() {
    let sb = sandbox();
    let k = Kubectl::new(&sb);
    k.ok(&[
        "create",
        "job",
        "check",
        "-n",
        "shop",
        "--image=public.ecr.aws/docker/library/busybox:1.36",
        "--",
        "sh",
        "-c",
        "echo ok",
    ]);
    let waited = k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/check",
        "-n",
        "shop",
        "--timeout=120s",
    ]);
    assert!(waited.contains("job.batch/check condition met"), "{waited}");

    let job = json(&k, &["get", "job", "check", "-n", "shop", "-o", "json"]);
    let uid = job["metadata"]["uid"].as_str().expect("uid");
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    assert_eq!(job["spec"]["backoffLimit"], 6);
    assert_eq!(job["status"]["succeeded"], 1);
    assert!(job["status"]["active"].is_null(), "{job}");
    assert!(job["status"]["startTime"].is_string());
    assert!(job["status"]["completionTime"].is_string());
    assert_eq!(
        conditions(&job),
        [
            ("SuccessCriteriaMet".into(), "CompletionsReached".into()),
            ("Complete".into(), "CompletionsReached".into())
        ]
    );

    let pods = job_pods(&k, "check");
    assert_eq!(pods.len(), 1, "{pods:?}");
    let pod = &pods[0];
    let pod_name = pod["metadata"]["name"].as_str().expect("pod name");
    assert!(pod_name.starts_with("check-"), "{pod_name}");
    assert_eq!(pod["status"]["phase"], "Succeeded");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Job");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], uid);
    assert_eq!(
        pod["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        "check"
    );
    assert!(pod["spec"]["nodeName"].is_string());
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
        0
    );

    // kubectl finds the pod through the Job's selector.
    let log = k.ok(&["logs", "job/check", "-n", "shop"]);
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("image: public.ecr.aws/docker/library/busybox:1.36")),
        "{log}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with("command: sh -c echo ok")),
        "{log}"
    );
    assert_eq!(
        lines.last().copied(),
        Some("[sandbox] exited with code 0 (Completed)"),
        "{log}"
    );
    assert_eq!(
        k.ok(&["logs", pod_name, "-n", "shop", "--tail=1"]),
        "[sandbox] exited with code 0 (Completed)\n"
    );
    assert_eq!(
        k.ok(&["logs", pod_name, "-n", "shop", "--limit-bytes=9"]),
        "[sandbox]"
    );
    assert_eq!(
        k.ok(&["logs", pod_name, "-n", "shop"]),
        log,
        "the same pod always logs the same lines"
    );

    let discovery = json(&k, &["get", "--raw", "/api/v1"]);
    assert!(
        discovery["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .any(|r| r["name"] == "pods/log" && r["verbs"] == serde_json::json!(["get"])),
        "{discovery}"
    );

    // The API server, not kubectl, refuses an unnamed container of a pod with two.
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(
        file.path(),
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"two","namespace":"shop"},
           "spec":{"containers":[{"name":"a","image":"busybox"},{"name":"b","image":"busybox"}]}}"#,
    )
    .expect("write");
    k.ok(&["create", "-f", &file.path().display().to_string()]);
    let refused = k.run(&["get", "--raw", "/api/v1/namespaces/shop/pods/two/log"]);
    assert_ne!(refused.code, Some(0));
    assert!(
        refused
            .stderr
            .contains("a container name must be specified for pod two, choose one of: [a b]"),
        "{}",
        refused.stderr
    );
    // Named, it is served: empty, as the pod is on no node.
    assert_eq!(
        k.ok(&[
            "get",
            "--raw",
            "/api/v1/namespaces/shop/pods/two/log?container=b"
        ]),
        ""
    );
    let invalid = k.run(&[
        "get",
        "--raw",
        "/api/v1/namespaces/shop/pods/two/log?container=b&tailLines=-1",
    ]);
    assert!(
        invalid.stderr.contains("tailLines: Invalid value: -1"),
        "{}",
        invalid.stderr
    );
}

#[test]
fn a_failing_job_ends_backoff_limit_exceeded() {
    let sb = TestSandbox::start(Some(FAILING));
    let k = Kubectl::new(&sb);
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(
        file.path(),
        r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"fails","namespace":"shop"},
           "spec":{"backoffLimit":2,"template":{"spec":{"restartPolicy":"Never",
             "containers":[{"name":"main","image":"busybox:1.36","command":["false"]}]}}}}"#,
    )
    .expect("write");
    k.ok(&["create", "-f", &file.path().display().to_string()]);
    let waited = k.ok(&[
        "wait",
        "--for=condition=failed",
        "job/fails",
        "-n",
        "shop",
        "--timeout=120s",
    ]);
    assert!(waited.contains("condition met"), "{waited}");

    let job = json(&k, &["get", "job", "fails", "-n", "shop", "-o", "json"]);
    assert_eq!(job["status"]["failed"], 3, "{job}");
    assert!(job["status"]["succeeded"].is_null(), "{job}");
    assert!(job["status"]["active"].is_null(), "{job}");
    assert!(job["status"]["completionTime"].is_null(), "{job}");
    assert_eq!(
        conditions(&job),
        [
            ("FailureTarget".into(), "BackoffLimitExceeded".into()),
            ("Failed".into(), "BackoffLimitExceeded".into())
        ]
    );

    let pods = job_pods(&k, "fails");
    assert_eq!(pods.len(), 3, "backoffLimit + 1 pods: {pods:?}");
    for pod in &pods {
        assert_eq!(pod["status"]["phase"], "Failed", "{pod}");
        assert_eq!(
            pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            1
        );
    }
    let log = k.ok(&["logs", "job/fails", "-n", "shop"]);
    assert!(log.contains("command: false"), "{log}");
    assert!(
        log.ends_with("[sandbox] exited with code 1 (Error)\n"),
        "{log}"
    );

    // Deleting the Job takes its pods with it.
    k.ok(&["delete", "job", "fails", "-n", "shop"]);
    crate::common::poll("the Job's pods to go", crate::common::POLL_TIMEOUT, || {
        let left = job_pods(&k, "fails").len();
        if left == 0 {
            Ok(())
        } else {
            Err(format!("{left} pods left"))
        }
    });
}
