//! Several clusters in one account: every request names its cluster; clusters, node groups and
//! add-ons come and go with EKS's lifecycles (CreateCluster/DeleteCluster, CreateNodegroup/
//! DeleteNodegroup, CreateAddon/DeleteAddon), each cluster with its own Kubernetes API,
//! endpoint and CA.

use std::process::Command;

use aws_sdk_eks::Client;
use aws_sdk_eks::types::{
    AddonStatus, AmiTypes, ClusterIssueCode, ClusterStatus, NodegroupIssueCode,
    NodegroupScalingConfig, NodegroupStatus, VpcConfigRequest,
};
use base64::Engine;
use eks_upgrade_sandbox::sim::nodes;

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

fn vpc(subnets: &[String]) -> VpcConfigRequest {
    VpcConfigRequest::builder()
        .set_subnet_ids(Some(subnets.to_vec()))
        .build()
}

const ROLE: &str = "arn:aws:iam::111122223333:role/green-cluster-role";

/// Polls DescribeCluster until the cluster has `status`.
async fn reaches(c: &Client, name: &str, status: ClusterStatus) -> aws_sdk_eks::types::Cluster {
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
async fn gone(c: &Client, name: &str) {
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
    // A failed cluster is deleted like any other.
    sb.block_on(c.delete_cluster().name("green").send())
        .expect("DeleteCluster");
    sb.block_on(gone(&c, "green"));
}

/// Creates cluster `green` (1.34, the account's subnets) and waits until it is ACTIVE.
pub(super) fn green(sb: &TestSandbox, c: &Client) {
    sb.block_on(
        c.create_cluster()
            .name("green")
            .version("1.34")
            .role_arn(ROLE)
            .resources_vpc_config(vpc(&subnets(sb)))
            .send(),
    )
    .expect("CreateCluster");
    sb.block_on(reaches(c, "green", ClusterStatus::Active));
}

pub(super) const NODE_ROLE: &str = "arn:aws:iam::111122223333:role/green-node-role";

/// The names of the Ready nodes of a node group in a cluster's Kubernetes API.
fn ready_nodes(sb: &TestSandbox, cluster: &str, nodegroup: &str) -> Vec<String> {
    let runtime = sb.sandbox.account.cluster(cluster).expect("cluster runs");
    let store = &runtime.world.store;
    let rt = store.resource("", "v1", "nodes").expect("nodes");
    nodes::nodegroup_nodes(store, nodegroup)
        .into_iter()
        .filter(|n| {
            store.get(&rt, None, n).is_ok_and(|node| {
                node.pointer("/status/conditions")
                    .and_then(|c| c.as_array())
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
            })
        })
        .collect()
}

#[test]
fn nodegroups_and_addons_are_created_and_deleted_with_their_lifecycles() {
    let sb = account("");
    let c = sb.block_on(client(&sb));
    green(&sb, &c);
    let create_group = |name: &str, ami: AmiTypes| {
        sb.block_on(
            c.create_nodegroup()
                .cluster_name("green")
                .nodegroup_name(name)
                .set_subnets(Some(subnets(&sb)))
                .node_role(NODE_ROLE)
                .scaling_config(
                    NodegroupScalingConfig::builder()
                        .min_size(1)
                        .desired_size(3)
                        .max_size(4)
                        .build(),
                )
                .instance_types("m6i.large")
                .ami_type(ami)
                .send(),
        )
    };
    let created = create_group("general", AmiTypes::Al2023X8664Standard)
        .expect("CreateNodegroup")
        .nodegroup
        .expect("nodegroup");
    assert_eq!(created.status(), Some(&NodegroupStatus::Creating));
    assert_eq!(created.version(), Some("1.34"));
    let describe = |name: &str| {
        sb.block_on(
            c.describe_nodegroup()
                .cluster_name("green")
                .nodegroup_name(name)
                .send(),
        )
    };
    sb.block_on(poll_async(
        "node group `general` to be ACTIVE",
        POLL_TIMEOUT,
        async || {
            let ng = c
                .describe_nodegroup()
                .cluster_name("green")
                .nodegroup_name("general")
                .send()
                .await
                .expect("DescribeNodegroup")
                .nodegroup
                .expect("nodegroup");
            (ng.status() == Some(&NodegroupStatus::Active)).then_some(())
        },
    ));
    assert_eq!(ready_nodes(&sb, "green", "general").len(), 3);
    assert_eq!(
        ready_nodes(&sb, "demo", "general").len(),
        2,
        "blue's nodes are blue's"
    );

    let e = create_group("general", AmiTypes::Al2023X8664Standard).expect_err("duplicate");
    assert_eq!(
        service_error(&e, 409, "ResourceInUseException"),
        "NodeGroup already exists with name general and cluster name green"
    );
    let e = create_group("legacy", AmiTypes::Al2X8664).expect_err("AL2 on 1.34");
    assert_eq!(
        service_error(&e, 400, "InvalidParameterException"),
        "Requested AMI type AL2_x86_64 is not supported for Kubernetes version 1.34"
    );
    assert!(e.into_service_error().is_invalid_parameter_exception());

    // An add-on without a version gets the catalogue's default for the cluster's version.
    let catalog = sb.sandbox.world.scenario.addon_catalog();
    let v134 = "1.34".parse().expect("version");
    let expected = catalog
        .iter()
        .filter(|e| e.name == "coredns")
        .flat_map(|e| &e.versions)
        .find(|v| v.default_for.contains(&v134))
        .map(|v| v.version.clone())
        .expect("a default coredns for 1.34");
    let addon = sb
        .block_on(
            c.create_addon()
                .cluster_name("green")
                .addon_name("coredns")
                .send(),
        )
        .expect("CreateAddon")
        .addon
        .expect("addon");
    assert_eq!(addon.status(), Some(&AddonStatus::Creating));
    assert_eq!(addon.addon_version(), Some(expected.as_str()));
    sb.block_on(poll_async(
        "add-on `coredns` to be ACTIVE",
        POLL_TIMEOUT,
        async || {
            let a = c
                .describe_addon()
                .cluster_name("green")
                .addon_name("coredns")
                .send()
                .await
                .expect("DescribeAddon")
                .addon
                .expect("addon");
            (a.status() == Some(&AddonStatus::Active)).then_some(())
        },
    ));
    let runtime = sb.sandbox.account.cluster("green").expect("green runs");
    let store = &runtime.world.store;
    let deployments = store
        .resource("apps", "v1", "deployments")
        .expect("deployments");
    let coredns = store
        .get(&deployments, Some("kube-system"), "coredns")
        .expect("coredns runs on green");
    let image = coredns
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(|i| i.as_str())
        .expect("image");
    assert!(image.ends_with(&format!(":{expected}")), "{image}");
    let e = sb
        .block_on(
            c.create_addon()
                .cluster_name("green")
                .addon_name("kube-proxy")
                .addon_version("v1.29.0-eksbuild.1")
                .send(),
        )
        .expect_err("an incompatible version");
    assert_eq!(
        service_error(&e, 400, "InvalidParameterException"),
        "Addon version specified is not supported"
    );

    // DeleteCluster is refused while the group is attached.
    let e = sb
        .block_on(c.delete_cluster().name("green").send())
        .expect_err("node groups attached");
    assert_eq!(
        service_error(&e, 409, "ResourceInUseException"),
        "Cluster has nodegroups attached"
    );

    // Deleting the group: DELETING, then its nodes and the group are gone.
    let deleting = sb
        .block_on(
            c.delete_nodegroup()
                .cluster_name("green")
                .nodegroup_name("general")
                .send(),
        )
        .expect("DeleteNodegroup")
        .nodegroup
        .expect("nodegroup");
    assert_eq!(deleting.status(), Some(&NodegroupStatus::Deleting));
    sb.block_on(poll_async(
        "node group `general` to be gone",
        POLL_TIMEOUT,
        async || {
            c.describe_nodegroup()
                .cluster_name("green")
                .nodegroup_name("general")
                .send()
                .await
                .err()
                .map(|e| assert!(e.into_service_error().is_resource_not_found_exception()))
        },
    ));
    assert!(describe("general").is_err());
    assert!(ready_nodes(&sb, "green", "general").is_empty());
    assert_eq!(ready_nodes(&sb, "demo", "general").len(), 2);

    sb.block_on(
        c.delete_addon()
            .cluster_name("green")
            .addon_name("coredns")
            .send(),
    )
    .expect("DeleteAddon");
    sb.block_on(poll_async(
        "add-on `coredns` to be gone",
        POLL_TIMEOUT,
        async || {
            c.describe_addon()
                .cluster_name("green")
                .addon_name("coredns")
                .send()
                .await
                .err()
                .map(|_| ())
        },
    ));
    assert!(
        store
            .get(&deployments, Some("kube-system"), "coredns")
            .is_err()
    );

    // Now the cluster goes: DELETING, then gone, as the `aws` CLI's waiter sees it.
    sb.block_on(c.delete_cluster().name("green").send())
        .expect("DeleteCluster");
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
}

#[test]
fn a_failing_nodegroup_creation_ends_create_failed_with_a_health_issue() {
    let sb = account(
        "  newClusters: { nodegroupCreateFails: [ { nodegroup: general, code: AsgInstanceLaunchFailures, message: \"no capacity\" } ] }",
    );
    let c = sb.block_on(client(&sb));
    green(&sb, &c);
    sb.block_on(
        c.create_nodegroup()
            .cluster_name("green")
            .nodegroup_name("general")
            .set_subnets(Some(subnets(&sb)))
            .node_role(NODE_ROLE)
            .send(),
    )
    .expect("CreateNodegroup");
    let failed = sb.block_on(poll_async(
        "node group `general` to fail",
        POLL_TIMEOUT,
        async || {
            let ng = c
                .describe_nodegroup()
                .cluster_name("green")
                .nodegroup_name("general")
                .send()
                .await
                .expect("DescribeNodegroup")
                .nodegroup
                .expect("nodegroup");
            (ng.status() == Some(&NodegroupStatus::CreateFailed)).then_some(ng)
        },
    ));
    let issues = failed.health().map(|h| h.issues()).unwrap_or_default();
    assert_eq!(issues.len(), 1);
    assert_eq!(
        issues[0].code(),
        Some(&NodegroupIssueCode::AsgInstanceLaunchFailures)
    );
    assert_eq!(issues[0].message(), Some("no capacity"));
    assert!(ready_nodes(&sb, "green", "general").is_empty());
}
