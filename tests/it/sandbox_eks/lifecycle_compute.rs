//! Node groups and add-ons on a created cluster: CreateNodegroup/DeleteNodegroup and
//! CreateAddon/DeleteAddon with their lifecycles, their nodes and workloads in that cluster's
//! Kubernetes API only, and the refusals on the way (duplicates, AL2 on 1.33+, incompatible
//! add-on versions, DeleteCluster while groups are attached).

use aws_sdk_eks::Client;
use aws_sdk_eks::types::{
    AddonStatus, AmiTypes, ClusterStatus, NodegroupIssueCode, NodegroupScalingConfig,
    NodegroupStatus,
};
use eks_upgrade_sandbox::sim::nodes;

use super::lifecycle::{ROLE, account, cli, gone, ok, reaches, subnets, vpc};
use super::{client, service_error};
use crate::common::{POLL_TIMEOUT, TestSandbox, poll_async};

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
        .map_err(Box::new)
    };
    let created = create_group("general", AmiTypes::Al2023X8664Standard)
        .expect("CreateNodegroup")
        .nodegroup
        .expect("nodegroup");
    assert_eq!(created.status(), Some(&NodegroupStatus::Creating));
    assert_eq!(created.version(), Some("1.34"));
    let exists = |name: &str| {
        sb.block_on(
            c.describe_nodegroup()
                .cluster_name("green")
                .nodegroup_name(name)
                .send(),
        )
        .is_ok()
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
    assert!(!exists("general"));
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
