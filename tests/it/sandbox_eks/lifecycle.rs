//! Several clusters in one account: every request names its cluster, and (with CreateCluster
//! and DeleteCluster) clusters come and go with EKS's lifecycles, each with its own Kubernetes
//! API, endpoint and CA.

use std::process::Command;

use super::{client, fast};
use crate::common::{Output, TestSandbox, Timed};

/// Runs a real CLI (`aws` or `kubectl`) with the sandbox's environment and `extra` variables.
fn cli(sb: &TestSandbox, program: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
    Command::new(program)
        .args(args)
        .envs(sb.env())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .envs(extra.iter().copied())
        .output_timed()
        .unwrap_or_else(|e| panic!("`{program}` must be installed for these tests: {e}"))
}

#[track_caller]
fn ok(out: Output, what: &str) -> String {
    assert_eq!(
        out.code,
        Some(0),
        "{what} failed\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}

#[test]
fn every_request_names_its_cluster() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    let c = sb.block_on(client(&sb));
    sb.block_on(async {
        c.list_clusters().send().await.expect("ListClusters");
        c.describe_cluster()
            .name("demo")
            .send()
            .await
            .expect("DescribeCluster");
        c.list_nodegroups()
            .cluster_name("demo")
            .send()
            .await
            .expect("ListNodegroups");
        c.describe_addon_versions()
            .kubernetes_version("1.33")
            .send()
            .await
            .expect("DescribeAddonVersions");
        let missing = c.describe_cluster().name("nope").send().await;
        assert!(missing.is_err(), "{missing:?}");
    });
    let kubeconfig = sb.sandbox.kubeconfig_path();
    ok(
        cli(
            &sb,
            "kubectl",
            &[
                "--kubeconfig",
                &kubeconfig.display().to_string(),
                "get",
                "ns",
            ],
            &[],
        ),
        "kubectl get ns",
    );

    let records = sb.sandbox.world.requests.snapshot();
    let of = |service: &str, operation: &str| {
        records
            .iter()
            .filter(|r| r.service == service && r.operation == operation)
            .map(|r| r.cluster.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of("eks", "DescribeCluster"),
        [Some("demo".into()), Some("nope".into())]
    );
    assert_eq!(of("eks", "ListNodegroups"), [Some("demo".to_string())]);
    // Account-wide operations name no cluster.
    assert_eq!(of("eks", "ListClusters"), [None]);
    assert_eq!(of("eks", "DescribeAddonVersions"), [None]);
    let kube: Vec<_> = records
        .iter()
        .filter(|r| r.service == "kubernetes")
        .collect();
    assert!(!kube.is_empty(), "kubectl's requests are recorded");
    assert!(
        kube.iter().all(|r| r.cluster.as_deref() == Some("demo")),
        "{kube:?}"
    );
    // The JSON form carries the cluster only when there is one.
    let json = serde_json::to_value(&records).expect("records serialize");
    assert!(
        json.as_array()
            .expect("list")
            .iter()
            .filter(|r| r["operation"] == "ListClusters")
            .all(|r| r.get("cluster").is_none())
    );
}
