//! Several clusters in one account: every request names its cluster, and clusters come and go
//! with EKS's lifecycles (CreateCluster/DeleteCluster), each with its own Kubernetes API,
//! endpoint and CA. Node groups and add-ons on them: `lifecycle_compute`.

use std::process::Command;

use aws_sdk_eks::Client;
use aws_sdk_eks::types::{ClusterIssueCode, ClusterStatus, VpcConfigRequest};
use base64::Engine;

use super::{client, fast, scenario, service_error};
use crate::common::{Output, POLL_TIMEOUT, TestSandbox, Timed, poll_async};

/// Fast timings (speed 600) including the creations and deletions.
const TIMINGS: &str = "  timings: { controlPlaneUpdate: 60s, nodegroupUpdatePerNode: 12s, addonUpdate: 12s, statusLag: 6s, clusterCreate: 60s, clusterDelete: 60s, nodegroupCreate: 60s, nodegroupDelete: 60s, addonCreate: 30s }";

/// The 1.33 cluster `demo` (two node groups, four add-ons) with fast lifecycles; `extra` is
/// appended to `spec`.
pub(super) fn account(extra: &str) -> TestSandbox {
    TestSandbox::start(Some(&scenario("", &format!("{TIMINGS}\n{extra}"))))
}

/// The account's subnets (the first cluster's, in zones a, b and c).
pub(super) fn subnets(sb: &TestSandbox) -> Vec<String> {
    sb.sandbox.world.scenario.cluster_subnet_ids()
}

pub(super) fn vpc(subnets: &[String]) -> VpcConfigRequest {
    VpcConfigRequest::builder()
        .set_subnet_ids(Some(subnets.to_vec()))
        .build()
}

pub(super) const ROLE: &str = "arn:aws:iam::111122223333:role/green-cluster-role";

/// Polls DescribeCluster until the cluster has `status`.
pub(super) async fn reaches(
    c: &Client,
    name: &str,
    status: ClusterStatus,
) -> aws_sdk_eks::types::Cluster {
    poll_async(
        &format!("cluster `{name}` to be {status:?}"),
        POLL_TIMEOUT,
        async || {
            let cluster = c
                .describe_cluster()
                .name(name)
                .send()
                .await
                .expect("DescribeCluster")
                .cluster
                .expect("cluster");
            (cluster.status() == Some(&status)).then_some(cluster)
        },
    )
    .await
}

/// Polls DescribeCluster until EKS no longer knows the cluster.
pub(super) async fn gone(c: &Client, name: &str) {
    poll_async(
        &format!("cluster `{name}` to be gone"),
        POLL_TIMEOUT,
        async || match c.describe_cluster().name(name).send().await {
            Ok(_) => None,
            Err(e) => {
                let e = e.into_service_error();
                assert!(e.is_resource_not_found_exception(), "{e:?}");
                Some(())
            }
        },
    )
    .await
}

/// Runs a real CLI (`aws` or `kubectl`) with the sandbox's environment and `extra` variables.
pub(super) fn cli(
    sb: &TestSandbox,
    program: &str,
    args: &[&str],
    extra: &[(&str, &str)],
) -> Output {
    Command::new(program)
        .args(args)
        .envs(sb.env())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .envs(extra.iter().copied())
        .output_timed()
        .unwrap_or_else(|e| panic!("`{program}` must be installed for these tests: {e}"))
}

#[track_caller]
pub(super) fn ok(out: Output, what: &str) -> String {
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

#[test]
fn create_cluster_goes_creating_then_active_with_its_own_endpoint_and_ca() {
    let sb = account("");
    let subnets = subnets(&sb).join(",");
    let created: serde_json::Value = serde_json::from_str(&ok(
        cli(
            &sb,
            "aws",
            &[
                "eks",
                "create-cluster",
                "--name",
                "green",
                "--kubernetes-version",
                "1.34",
                "--role-arn",
                ROLE,
                "--resources-vpc-config",
                &format!("subnetIds={subnets}"),
                "--output",
                "json",
            ],
            &[],
        ),
        "aws eks create-cluster",
    ))
    .expect("aws prints JSON");
    assert_eq!(created["cluster"]["status"], "CREATING");
    assert_eq!(created["cluster"]["version"], "1.34");
    assert!(created["cluster"].get("endpoint").is_none(), "{created}");

    let c = sb.block_on(client(&sb));
    let green = sb.block_on(reaches(&c, "green", ClusterStatus::Active));
    ok(
        cli(
            &sb,
            "aws",
            &["eks", "wait", "cluster-active", "--name", "green"],
            &[],
        ),
        "aws eks wait cluster-active",
    );
    let blue = sb.block_on(reaches(&c, "demo", ClusterStatus::Active));
    let endpoint = green.endpoint().expect("green has an endpoint").to_string();
    assert_ne!(Some(endpoint.as_str()), blue.endpoint());
    let ca = green
        .certificate_authority()
        .and_then(|a| a.data())
        .expect("green has a CA")
        .to_string();
    assert_ne!(
        Some(ca.as_str()),
        blue.certificate_authority().and_then(|a| a.data())
    );
    assert_eq!(
        green.resources_vpc_config().and_then(|v| v.vpc_id()),
        blue.resources_vpc_config().and_then(|v| v.vpc_id())
    );
    assert_eq!(green.role_arn(), Some(ROLE));
    let listed = sb.block_on(c.list_clusters().send()).expect("ListClusters");
    assert_eq!(listed.clusters(), ["demo", "green"]);

    // `aws eks update-kubeconfig` and kubectl reach green's own API server.
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("green.yaml").display().to_string();
    let cache = format!("--cache-dir={}", dir.path().join("cache").display());
    ok(
        cli(
            &sb,
            "aws",
            &[
                "eks",
                "update-kubeconfig",
                "--name",
                "green",
                "--kubeconfig",
                &kubeconfig,
            ],
            &[],
        ),
        "aws eks update-kubeconfig",
    );
    let namespaces = ok(
        cli(
            &sb,
            "kubectl",
            &[
                &cache,
                "--kubeconfig",
                &kubeconfig,
                "get",
                "ns",
                "-o",
                "name",
            ],
            &[],
        ),
        "kubectl get ns on green",
    );
    assert!(namespaces.contains("namespace/kube-system"), "{namespaces}");
    // Velero is installed (the platform stack's), without a location: the tool attaches one.
    assert!(namespaces.contains("namespace/velero"), "{namespaces}");
    let locations = ok(
        cli(
            &sb,
            "kubectl",
            &[
                &cache,
                "--kubeconfig",
                &kubeconfig,
                "get",
                "backupstoragelocations",
                "-A",
                "-o",
                "name",
            ],
            &[],
        ),
        "kubectl get backupstoragelocations on green",
    );
    assert_eq!(locations.trim(), "", "no location on green");
    assert!(
        !namespaces.contains("namespace/shop"),
        "blue's workloads are not on green: {namespaces}"
    );

    // A token for blue is refused by green; green's own token is accepted.
    let ca_file = dir.path().join("green-ca.pem");
    std::fs::write(
        &ca_file,
        base64::engine::general_purpose::STANDARD
            .decode(&ca)
            .expect("base64 CA"),
    )
    .expect("write CA");
    let token = |cluster: &str| -> String {
        let out = ok(
            cli(
                &sb,
                "aws",
                &[
                    "eks",
                    "get-token",
                    "--cluster-name",
                    cluster,
                    "--output",
                    "json",
                ],
                &[],
            ),
            "aws eks get-token",
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("token JSON");
        v["status"]["token"].as_str().expect("token").to_string()
    };
    let with_token = |token: &str| {
        cli(
            &sb,
            "kubectl",
            &[
                &cache,
                "--kubeconfig",
                "/dev/null",
                "--server",
                &endpoint,
                "--certificate-authority",
                &ca_file.display().to_string(),
                "--token",
                token,
                "get",
                "ns",
                "-o",
                "name",
            ],
            &[],
        )
    };
    let refused = with_token(&token("demo"));
    assert_ne!(refused.code, Some(0), "{}", refused.stdout);
    assert!(
        refused.stderr.contains("Unauthorized"),
        "{}",
        refused.stderr
    );
    ok(with_token(&token("green")), "kubectl with green's token");

    // Green's Kubernetes requests are recorded as green's.
    let records = sb.sandbox.world.requests.snapshot();
    assert!(
        records
            .iter()
            .any(|r| r.service == "kubernetes" && r.cluster.as_deref() == Some("green"))
    );
    assert!(
        records
            .iter()
            .any(|r| r.operation == "CreateCluster" && r.cluster.as_deref() == Some("green"))
    );

    // Deleting: DELETING (still described), then gone; its API server stops; blue stays.
    let deleting: serde_json::Value = serde_json::from_str(&ok(
        cli(
            &sb,
            "aws",
            &[
                "eks",
                "delete-cluster",
                "--name",
                "green",
                "--output",
                "json",
            ],
            &[],
        ),
        "aws eks delete-cluster",
    ))
    .expect("aws prints JSON");
    assert_eq!(deleting["cluster"]["status"], "DELETING");
    sb.block_on(gone(&c, "green"));
    ok(
        cli(
            &sb,
            "aws",
            &["eks", "wait", "cluster-deleted", "--name", "green"],
            &[],
        ),
        "aws eks wait cluster-deleted",
    );
    let stopped = cli(
        &sb,
        "kubectl",
        &[
            &cache,
            "--kubeconfig",
            &kubeconfig,
            "get",
            "ns",
            "--request-timeout=5s",
        ],
        &[],
    );
    assert_ne!(stopped.code, Some(0), "green's API server is gone");
    let listed = sb.block_on(c.list_clusters().send()).expect("ListClusters");
    assert_eq!(listed.clusters(), ["demo"]);
    ok(
        cli(
            &sb,
            "kubectl",
            &[
                &cache,
                "--kubeconfig",
                &sb.sandbox.kubeconfig_path().display().to_string(),
                "get",
                "ns",
            ],
            &[],
        ),
        "kubectl get ns on blue",
    );
}

#[test]
fn create_cluster_refuses_what_eks_refuses() {
    let sb = account("");
    let c = sb.block_on(client(&sb));
    let subnets = subnets(&sb);
    let create = |name: &str, subnets: &[String], version: &str| {
        sb.block_on(
            c.create_cluster()
                .name(name)
                .role_arn(ROLE)
                .version(version)
                .resources_vpc_config(vpc(subnets))
                .send(),
        )
        .expect_err("refused")
    };

    let e = create("demo", &subnets, "1.34");
    assert_eq!(
        service_error(&e, 409, "ResourceInUseException"),
        "Cluster already exists with name: demo"
    );
    assert!(e.into_service_error().is_resource_in_use_exception());

    let e = create("green", &subnets[..1], "1.34");
    assert_eq!(
        service_error(&e, 400, "InvalidParameterException"),
        "Subnets specified must be in at least two different AZs"
    );
    assert!(e.into_service_error().is_invalid_parameter_exception());

    let unknown = vec![subnets[0].clone(), "subnet-0123456789abcdef0".to_string()];
    let e = create("green", &unknown, "1.34");
    assert_eq!(
        service_error(&e, 400, "InvalidParameterException"),
        "The subnet ID 'subnet-0123456789abcdef0' does not exist"
    );

    let e = create("green", &subnets, "1.20");
    assert_eq!(
        service_error(&e, 400, "InvalidParameterException"),
        "unsupported Kubernetes version 1.20"
    );

    // A cluster with node groups cannot be deleted.
    let e = sb
        .block_on(c.delete_cluster().name("demo").send())
        .expect_err("refused");
    assert_eq!(
        service_error(&e, 409, "ResourceInUseException"),
        "Cluster has nodegroups attached"
    );
    assert!(e.into_service_error().is_resource_in_use_exception());
    let e = sb
        .block_on(c.delete_cluster().name("nope").send())
        .expect_err("refused");
    assert!(e.into_service_error().is_resource_not_found_exception());

    // Nothing was created or deleted.
    let listed = sb.block_on(c.list_clusters().send()).expect("ListClusters");
    assert_eq!(listed.clusters(), ["demo"]);
    assert_eq!(
        sb.block_on(reaches(&c, "demo", ClusterStatus::Active))
            .name(),
        Some("demo")
    );
}

#[test]
fn a_retried_create_cluster_returns_the_same_cluster() {
    let sb = account("");
    let c = sb.block_on(client(&sb));
    let subnets = subnets(&sb);
    let create = |token: &str| {
        sb.block_on(
            c.create_cluster()
                .name("green")
                .role_arn(ROLE)
                .resources_vpc_config(vpc(&subnets))
                .client_request_token(token)
                .send(),
        )
        .map_err(Box::new)
    };
    let first = create("retry-1")
        .expect("created")
        .cluster
        .expect("cluster");
    let again = create("retry-1")
        .expect("the retry succeeds")
        .cluster
        .expect("cluster");
    assert_eq!(first.arn(), again.arn());
    assert_eq!(first.created_at(), again.created_at());
    let e = create("retry-2").expect_err("another token is another request");
    assert_eq!(
        service_error(&e, 409, "ResourceInUseException"),
        "Cluster already exists with name: green"
    );
    // Without a version, EKS picks the catalogue's default.
    let green = sb.block_on(reaches(&c, "green", ClusterStatus::Active));
    assert!(green.version().is_some());
    let listed = sb.block_on(c.list_clusters().send()).expect("ListClusters");
    assert_eq!(listed.clusters(), ["demo", "green"]);
}

#[test]
fn green_creation_fault_ends_failed_with_a_health_issue() {
    let sb = account(
        "  newClusters: { createFails: { code: Ec2SubnetNotFound, message: \"subnet-0aaa was deleted\" } }",
    );
    let c = sb.block_on(client(&sb));
    sb.block_on(
        c.create_cluster()
            .name("green")
            .role_arn(ROLE)
            .resources_vpc_config(vpc(&subnets(&sb)))
            .send(),
    )
    .expect("CreateCluster");
    let failed = sb.block_on(reaches(&c, "green", ClusterStatus::Failed));
    let issues = failed.health().map(|h| h.issues()).unwrap_or_default();
    assert_eq!(issues.len(), 1, "{failed:?}");
    assert_eq!(issues[0].code(), Some(&ClusterIssueCode::Ec2SubnetNotFound));
    assert_eq!(issues[0].message(), Some("subnet-0aaa was deleted"));
    assert_eq!(failed.endpoint(), None);
    let e = sb
        .block_on(
            c.update_cluster_version()
                .name("green")
                .version("1.35")
                .send(),
        )
        .expect_err("a failed cluster is not upgraded");
    assert_eq!(
        service_error(&e, 400, "InvalidRequestException"),
        "Cluster green is FAILED and cannot be updated"
    );
    // A failed cluster is deleted like any other.
    sb.block_on(c.delete_cluster().name("green").send())
        .expect("DeleteCluster");
    sb.block_on(gone(&c, "green"));
}
