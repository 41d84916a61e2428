//! Access entries per cluster: the scenario's cluster starts with its creator's admin entry and
//! its node groups' role entries, entries and policy associations are created per cluster, and
//! the real `aws` CLI reads them (its principal ARNs travel percent-encoded in the path).

use aws_sdk_eks::types::{AccessScope, AccessScopeType};

use super::lifecycle::{account, cli, ok, subnets};
use super::lifecycle_compute::{NODE_ROLE, green};
use super::{client, service_error};
use crate::common::{POLL_TIMEOUT, poll_async};

const CREATOR: &str = "arn:aws:iam::111122223333:role/sandbox-admin";
const DEPLOYER: &str = "arn:aws:iam::111122223333:role/ci-deployer";
const ADMIN_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";
const EDIT_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy";

#[test]
fn access_entries_are_listed_created_and_associated() {
    let sb = account("");
    let c = sb.block_on(client(&sb));
    let list = |cluster: &str, policy: Option<&str>| {
        let mut entries = sb
            .block_on(
                c.list_access_entries()
                    .cluster_name(cluster)
                    .set_associated_policy_arn(policy.map(str::to_string))
                    .send(),
            )
            .expect("ListAccessEntries")
            .access_entries
            .unwrap_or_default();
        entries.sort();
        entries
    };
    // The scenario's cluster: its creator's admin entry and its node groups' role.
    let node_role = "arn:aws:iam::111122223333:role/demo-node-role";
    assert_eq!(list("demo", None), [node_role, CREATOR]);
    let entry = sb
        .block_on(
            c.describe_access_entry()
                .cluster_name("demo")
                .principal_arn(node_role)
                .send(),
        )
        .expect("DescribeAccessEntry")
        .access_entry
        .expect("entry");
    assert_eq!(entry.r#type(), Some("EC2_LINUX"));
    assert_eq!(entry.kubernetes_groups(), ["system:nodes"]);
    let policies = sb
        .block_on(
            c.list_associated_access_policies()
                .cluster_name("demo")
                .principal_arn(CREATOR)
                .send(),
        )
        .expect("ListAssociatedAccessPolicies");
    let admin = &policies.associated_access_policies()[0];
    assert_eq!(admin.policy_arn(), Some(ADMIN_POLICY));
    assert_eq!(
        admin.access_scope().and_then(|s| s.r#type()),
        Some(&AccessScopeType::Cluster)
    );

    // A new entry, and a namespace-scoped policy on it.
    let created = sb
        .block_on(
            c.create_access_entry()
                .cluster_name("demo")
                .principal_arn(DEPLOYER)
                .kubernetes_groups("deployers")
                .send(),
        )
        .expect("CreateAccessEntry")
        .access_entry
        .expect("entry");
    assert_eq!(created.r#type(), Some("STANDARD"));
    let e = sb
        .block_on(
            c.create_access_entry()
                .cluster_name("demo")
                .principal_arn(DEPLOYER)
                .send(),
        )
        .expect_err("duplicate");
    service_error(&e, 409, "ResourceInUseException");
    let scope = AccessScope::builder()
        .r#type(AccessScopeType::Namespace)
        .namespaces("shop")
        .build();
    let associated = sb
        .block_on(
            c.associate_access_policy()
                .cluster_name("demo")
                .principal_arn(DEPLOYER)
                .policy_arn(EDIT_POLICY)
                .access_scope(scope.clone())
                .send(),
        )
        .expect("AssociateAccessPolicy");
    assert_eq!(
        associated
            .associated_access_policy()
            .and_then(|a| a.access_scope())
            .map(|s| s.namespaces().to_vec()),
        Some(vec!["shop".to_string()])
    );
    assert_eq!(list("demo", Some(EDIT_POLICY)), [DEPLOYER]);
    let e = sb
        .block_on(
            c.associate_access_policy()
                .cluster_name("demo")
                .principal_arn(DEPLOYER)
                .policy_arn("arn:aws:eks::aws:cluster-access-policy/NoSuchPolicy")
                .access_scope(scope)
                .send(),
        )
        .expect_err("unknown policy");
    assert!(e.into_service_error().is_resource_not_found_exception());
    let e = sb
        .block_on(
            c.describe_access_entry()
                .cluster_name("demo")
                .principal_arn("arn:aws:iam::111122223333:role/nobody")
                .send(),
        )
        .expect_err("no such entry");
    assert!(e.into_service_error().is_resource_not_found_exception());

    // The AWS CLI sends the principal percent-encoded in the path.
    let out = ok(
        cli(
            &sb,
            "aws",
            &[
                "eks",
                "describe-access-entry",
                "--cluster-name",
                "demo",
                "--principal-arn",
                DEPLOYER,
                "--output",
                "json",
            ],
            &[],
        ),
        "aws eks describe-access-entry",
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        v["accessEntry"]["kubernetesGroups"],
        serde_json::json!(["deployers"])
    );

    // A created cluster has its own entries: its creator's, then its node group's role.
    green(&sb, &c);
    assert_eq!(list("green", None), [CREATOR]);
    sb.block_on(
        c.create_nodegroup()
            .cluster_name("green")
            .nodegroup_name("general")
            .set_subnets(Some(subnets(&sb)))
            .node_role(NODE_ROLE)
            .send(),
    )
    .expect("CreateNodegroup");
    assert_eq!(list("green", None), [NODE_ROLE, CREATOR]);
    assert!(!list("demo", None).contains(&NODE_ROLE.to_string()));
    sb.block_on(poll_async("green's node group", POLL_TIMEOUT, async || {
        c.describe_nodegroup()
            .cluster_name("green")
            .nodegroup_name("general")
            .send()
            .await
            .ok()
            .and_then(|o| o.nodegroup)
            .filter(|n| n.status() == Some(&aws_sdk_eks::types::NodegroupStatus::Active))
    }));
}
