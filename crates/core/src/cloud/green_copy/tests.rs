//! Green's requests from blue descriptions built with the SDK's own types, as DescribeCluster,
//! DescribeNodegroup and the access-entry calls return them.

use std::collections::HashMap;

use aws_sdk_eks::types::{
    AccessConfigResponse, AccessEntry, AccessScope, AccessScopeType, AmiTypes,
    AssociatedAccessPolicy, AuthenticationMode, CapacityTypes, Cluster, ComputeConfigResponse,
    EncryptionConfig, IpFamily, KubernetesNetworkConfigResponse, LaunchTemplateSpecification,
    LogSetup, LogType, Logging, Nodegroup, NodegroupScalingConfig, NodegroupUpdateConfig, Provider,
    RemoteAccessConfig, SupportType, Taint, TaintEffect, UpgradePolicyResponse, VpcConfigResponse,
};

use super::*;

const V135: Version = Version::new(1, 35);

fn blue() -> Cluster {
    Cluster::builder()
        .name("demo")
        .version("1.33")
        .role_arn("arn:aws:iam::111122223333:role/eks-cluster")
        .resources_vpc_config(
            VpcConfigResponse::builder()
                .subnet_ids("subnet-a")
                .subnet_ids("subnet-b")
                .security_group_ids("sg-extra")
                .cluster_security_group_id("sg-eks-made")
                .vpc_id("vpc-1")
                .endpoint_public_access(true)
                .endpoint_private_access(true)
                .public_access_cidrs("203.0.113.0/24")
                .build(),
        )
        .kubernetes_network_config(
            KubernetesNetworkConfigResponse::builder()
                .service_ipv4_cidr("10.100.0.0/16")
                .ip_family(IpFamily::Ipv4)
                .build(),
        )
        .logging(
            Logging::builder()
                .cluster_logging(
                    LogSetup::builder()
                        .types(LogType::Api)
                        .types(LogType::Audit)
                        .enabled(true)
                        .build(),
                )
                .cluster_logging(
                    LogSetup::builder()
                        .types(LogType::Scheduler)
                        .enabled(false)
                        .build(),
                )
                .build(),
        )
        .access_config(
            AccessConfigResponse::builder()
                .authentication_mode(AuthenticationMode::ApiAndConfigMap)
                .build(),
        )
        .upgrade_policy(
            UpgradePolicyResponse::builder()
                .support_type(SupportType::Standard)
                .build(),
        )
        .encryption_config(
            EncryptionConfig::builder()
                .provider(
                    Provider::builder()
                        .key_arn("arn:aws:kms:eu-west-1:1:key/k")
                        .build(),
                )
                .build(),
        )
        .tags("team", "shop")
        .tags("aws:cloudformation:stack-name", "infra")
        .build()
}

#[test]
fn green_gets_blues_role_network_access_logging_auth_and_tags() {
    let r = cluster_request(&blue(), "demo-1-35", V135, "run-1", "tok-1").unwrap();
    assert_eq!(r.name, "demo-1-35");
    assert_eq!(r.version, V135);
    assert_eq!(r.role_arn, "arn:aws:iam::111122223333:role/eks-cluster");
    assert_eq!(r.subnet_ids, ["subnet-a", "subnet-b"]);
    // The cluster security group is EKS's own per cluster; only the extra ones are copied.
    assert_eq!(r.security_group_ids, ["sg-extra"]);
    assert!(r.endpoint_public_access && r.endpoint_private_access);
    assert_eq!(r.public_access_cidrs, ["203.0.113.0/24"]);
    assert_eq!(r.service_ipv4_cidr.as_deref(), Some("10.100.0.0/16"));
    assert_eq!(r.ip_family.as_deref(), Some("ipv4"));
    assert_eq!(r.enabled_log_types, ["api", "audit"]);
    assert_eq!(r.authentication_mode.as_deref(), Some("API_AND_CONFIG_MAP"));
    assert_eq!(r.support_type.as_deref(), Some("STANDARD"));
    assert_eq!(
        r.encryption_key_arn.as_deref(),
        Some("arn:aws:kms:eu-west-1:1:key/k")
    );
    assert_eq!(r.auto_mode, None);
    assert_eq!(r.client_request_token, "tok-1");
    // Blue's tags minus AWS's reserved ones, plus the run's.
    let tags: Vec<(&str, &str)> = r
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        tags,
        [
            ("eks-upgrade/blue", "demo"),
            ("eks-upgrade/run-id", "run-1"),
            ("team", "shop")
        ]
    );
}

#[test]
fn a_private_endpoint_sends_no_public_cidrs_and_auto_mode_is_kept() {
    let mut b = blue();
    b.resources_vpc_config = Some(
        VpcConfigResponse::builder()
            .subnet_ids("subnet-a")
            .endpoint_public_access(false)
            .endpoint_private_access(true)
            .public_access_cidrs("0.0.0.0/0")
            .build(),
    );
    b.compute_config = Some(
        ComputeConfigResponse::builder()
            .enabled(true)
            .node_pools("general-purpose")
            .node_role_arn("arn:aws:iam::1:role/auto-nodes")
            .build(),
    );
    let r = cluster_request(&b, "g", V135, "run", "tok").unwrap();
    assert!(!r.endpoint_public_access);
    assert!(r.public_access_cidrs.is_empty());
    assert_eq!(
        r.auto_mode,
        Some(AutoMode {
            node_pools: vec!["general-purpose".into()],
            node_role_arn: Some("arn:aws:iam::1:role/auto-nodes".into()),
        })
    );
}

#[test]
fn a_description_without_role_or_network_is_refused() {
    let mut b = blue();
    b.role_arn = None;
    assert_eq!(
        cluster_request(&b, "g", V135, "r", "t"),
        Err(CopyError::Missing { field: "roleArn" })
    );
    let mut b = blue();
    b.resources_vpc_config = None;
    assert_eq!(
        cluster_request(&b, "g", V135, "r", "t"),
        Err(CopyError::Missing {
            field: "resourcesVpcConfig"
        })
    );
}

#[test]
fn too_many_tags_with_the_runs_are_refused() {
    let mut b = blue();
    let many: HashMap<String, String> = (0..49).map(|i| (format!("k{i}"), "v".into())).collect();
    b.tags = Some(many);
    let err = cluster_request(&b, "g", V135, "r", "t").unwrap_err();
    assert_eq!(
        err,
        CopyError::TooManyTags {
            what: "g".into(),
            count: 51
        }
    );
    assert!(err.hint().is_some());
}

fn group(ami: AmiTypes) -> Nodegroup {
    Nodegroup::builder()
        .nodegroup_name("general")
        .node_role("arn:aws:iam::1:role/nodes")
        .subnets("subnet-a")
        .instance_types("m6i.large")
        .ami_type(ami)
        .capacity_type(CapacityTypes::OnDemand)
        .scaling_config(
            NodegroupScalingConfig::builder()
                .min_size(1)
                .max_size(5)
                .desired_size(3)
                .build(),
        )
        .disk_size(50)
        .labels("tier", "web")
        .taints(
            Taint::builder()
                .key("dedicated")
                .value("web")
                .effect(TaintEffect::NoSchedule)
                .build(),
        )
        .update_config(NodegroupUpdateConfig::builder().max_unavailable(1).build())
        .remote_access(
            RemoteAccessConfig::builder()
                .ec2_ssh_key("ops-key")
                .source_security_groups("sg-ssh")
                .build(),
        )
        .tags("team", "shop")
        .build()
}

#[test]
fn a_node_group_is_copied_at_greens_version() {
    let r = nodegroup_request(
        &group(AmiTypes::Al2023X8664Standard),
        V135,
        "run-1",
        "demo",
        "tok",
    )
    .unwrap();
    assert_eq!(r.name, "general");
    assert_eq!(r.version, Some(V135));
    assert_eq!(r.node_role, "arn:aws:iam::1:role/nodes");
    assert_eq!(r.subnets, ["subnet-a"]);
    assert_eq!(r.instance_types, ["m6i.large"]);
    assert_eq!(r.ami_type.as_deref(), Some("AL2023_x86_64_STANDARD"));
    assert_eq!(r.capacity_type.as_deref(), Some("ON_DEMAND"));
    assert_eq!(
        (r.min_size, r.max_size, r.desired_size),
        (Some(1), Some(5), Some(3))
    );
    assert_eq!(r.disk_size, Some(50));
    assert_eq!(r.labels.get("tier").map(String::as_str), Some("web"));
    assert_eq!(
        r.taints,
        [TaintSpec {
            key: "dedicated".into(),
            value: Some("web".into()),
            effect: "NO_SCHEDULE".into()
        }]
    );
    assert_eq!(r.max_unavailable, Some(1));
    assert_eq!(r.ssh_key.as_deref(), Some("ops-key"));
    assert_eq!(r.remote_access_security_groups, ["sg-ssh"]);
    assert_eq!(r.tags.get(RUN_TAG).map(String::as_str), Some("run-1"));
    assert_eq!(r.tags.get(BLUE_TAG).map(String::as_str), Some("demo"));
    assert_eq!(r.tags.get("team").map(String::as_str), Some("shop"));
}

#[test]
fn amazon_linux_2_is_refused_from_1_33_with_its_replacement() {
    let err = nodegroup_request(&group(AmiTypes::Al2X8664), V135, "r", "demo", "t").unwrap_err();
    assert_eq!(
        err,
        CopyError::Al2Ami {
            nodegroup: "general".into(),
            ami_type: "AL2_x86_64".into(),
            version: V135,
            instead: "AL2023_x86_64_STANDARD",
        }
    );
    assert_eq!(
        err.to_string(),
        "node group `general` uses AMI type `AL2_x86_64`, which EKS does not offer for Kubernetes 1.35"
    );
    assert!(err.hint().unwrap().contains("AL2023_x86_64_STANDARD"));
    let gpu = nodegroup_request(
        &group(AmiTypes::Al2X8664Gpu),
        Version::new(1, 33),
        "r",
        "d",
        "t",
    );
    assert!(matches!(
        gpu,
        Err(CopyError::Al2Ami {
            instead: "AL2023_x86_64_NVIDIA",
            ..
        })
    ));
    // Up to 1.32 EKS still offers them.
    assert!(
        nodegroup_request(
            &group(AmiTypes::Al2Arm64),
            Version::new(1, 32),
            "r",
            "d",
            "t"
        )
        .is_ok()
    );
}

#[test]
fn a_launch_template_group_sends_no_disk_or_ssh_and_a_custom_ami_no_version() {
    let mut g = group(AmiTypes::Custom);
    g.launch_template = Some(
        LaunchTemplateSpecification::builder()
            .id("lt-1")
            .version("3")
            .build(),
    );
    let r = nodegroup_request(&g, V135, "r", "demo", "t").unwrap();
    assert_eq!(r.disk_size, None);
    assert!(r.remote_access_security_groups.is_empty());
    assert_eq!(r.ssh_key, None);
    assert_eq!(r.version, None);
    assert_eq!(r.ami_type, None);
    assert_eq!(
        r.launch_template,
        Some(LaunchTemplateRef {
            id: Some("lt-1".into()),
            name: None,
            version: Some("3".into())
        })
    );
}

#[test]
fn an_addon_keeps_its_configuration_and_role_at_greens_default_version() {
    let blue = crate::cloud::eks::AddonInfo {
        name: "vpc-cni".into(),
        version: "v1.19.0-eksbuild.1".into(),
        status: "ACTIVE".into(),
        configuration_values: Some(r#"{"env":{"ENABLE_PREFIX_DELEGATION":"true"}}"#.into()),
        service_account_role_arn: Some("arn:aws:iam::1:role/cni".into()),
        health_issues: vec![],
    };
    let r = addon_request(&blue, Some("v1.20.1-eksbuild.1"));
    assert_eq!(r.name, "vpc-cni");
    assert_eq!(r.version.as_deref(), Some("v1.20.1-eksbuild.1"));
    assert_eq!(r.configuration_values, blue.configuration_values);
    assert_eq!(
        r.service_account_role_arn.as_deref(),
        Some("arn:aws:iam::1:role/cni")
    );
}

fn entry(kind: &str, principal: &str) -> AccessEntry {
    AccessEntry::builder()
        .r#type(kind)
        .principal_arn(principal)
        .kubernetes_groups("viewers")
        .username("ops")
        .build()
}

#[test]
fn standard_entries_are_copied_without_node_entries_or_the_callers() {
    let admin = AssociatedAccessPolicy::builder()
        .policy_arn("arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy")
        .access_scope(
            AccessScope::builder()
                .r#type(AccessScopeType::Cluster)
                .build(),
        )
        .build();
    let ns = AssociatedAccessPolicy::builder()
        .policy_arn("arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy")
        .access_scope(
            AccessScope::builder()
                .r#type(AccessScopeType::Namespace)
                .namespaces("shop")
                .build(),
        )
        .build();
    let blue = vec![
        (
            entry("STANDARD", "arn:aws:iam::1:role/ops"),
            vec![admin, ns],
        ),
        (entry("EC2_LINUX", "arn:aws:iam::1:role/nodes"), vec![]),
        (
            entry("STANDARD", "arn:aws:iam::1:role/path/deployer"),
            vec![],
        ),
    ];
    let caller = "arn:aws:sts::1:assumed-role/deployer/ci-session";
    let out = access_entry_requests(&blue, Some(caller));
    assert_eq!(out.len(), 1, "{out:?}");
    let ops = &out[0];
    assert_eq!(ops.principal_arn, "arn:aws:iam::1:role/ops");
    assert_eq!(ops.kubernetes_groups, ["viewers"]);
    assert_eq!(ops.username.as_deref(), Some("ops"));
    assert_eq!(
        ops.policies,
        [
            PolicyAssociation {
                policy_arn: "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
                    .into(),
                scope: "cluster".into(),
                namespaces: vec![],
            },
            PolicyAssociation {
                policy_arn: "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy".into(),
                scope: "namespace".into(),
                namespaces: vec!["shop".into()],
            },
        ]
    );
    // Without knowing the caller, every STANDARD entry is copied.
    assert_eq!(access_entry_requests(&blue, None).len(), 2);
}

#[test]
fn the_caller_matches_its_roles_entry_across_paths_and_accounts_do_not_mix() {
    assert!(is_caller(
        "arn:aws:iam::1:role/a/b/deployer",
        "arn:aws:sts::1:assumed-role/deployer/s"
    ));
    assert!(is_caller(
        "arn:aws:iam::1:user/alice",
        "arn:aws:iam::1:user/alice"
    ));
    assert!(!is_caller(
        "arn:aws:iam::2:role/deployer",
        "arn:aws:sts::1:assumed-role/deployer/s"
    ));
    assert!(!is_caller(
        "arn:aws:iam::1:role/other",
        "arn:aws:sts::1:assumed-role/deployer/s"
    ));
    assert!(!is_caller(
        "arn:aws:iam::1:user/alice",
        "arn:aws:iam::1:user/bob"
    ));
}
