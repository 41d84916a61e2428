//! What a version rollback needs first, as EKS enforces it: the rollback-readiness insights
//! derived from the cluster (node groups, add-ons), node groups moved back with
//! UpdateNodegroupVersion and add-ons with UpdateAddon, and `force`, which skips insights but
//! never the prerequisites. API usage and cluster health: `api_usage`.

use std::collections::BTreeMap;

use aws_sdk_eks::Client;
use aws_sdk_eks::types::{Category, Insight, InsightsFilter, UpdateStatus, UpdateType};
use eks_upgrade_core::types::Version;

use super::{
    ADDONS_AT_N, client, cluster_version, fast, finished, kubelets, recorded, service_error,
    upgraded,
};
use crate::common::TestSandbox;

/// The rollback-readiness insights: name → (status, kubernetesVersion).
pub(super) async fn rollback_insights(c: &Client) -> BTreeMap<String, (String, String)> {
    c.list_insights()
        .cluster_name("demo")
        .filter(
            InsightsFilter::builder()
                .categories(Category::from("ROLLBACK_READINESS"))
                .build(),
        )
        .send()
        .await
        .expect("ListInsights")
        .insights()
        .iter()
        .map(|i| {
            assert_eq!(i.category().map(|c| c.as_str()), Some("ROLLBACK_READINESS"));
            (
                i.name().unwrap_or_default().to_string(),
                (
                    i.insight_status()
                        .and_then(|s| s.status())
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    i.kubernetes_version().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

/// The full rollback-readiness insight with this name.
pub(super) async fn insight(c: &Client, name: &str) -> Insight {
    let list = c
        .list_insights()
        .cluster_name("demo")
        .filter(
            InsightsFilter::builder()
                .categories(Category::from("ROLLBACK_READINESS"))
                .build(),
        )
        .send()
        .await
        .expect("ListInsights");
    let id = list
        .insights()
        .iter()
        .find(|i| i.name() == Some(name))
        .and_then(|i| i.id())
        .unwrap_or_else(|| panic!("no insight {name}"))
        .to_string();
    c.describe_insight()
        .cluster_name("demo")
        .id(id)
        .send()
        .await
        .expect("DescribeInsight")
        .insight
        .expect("insight")
}

pub(super) fn resource_names(i: &Insight) -> Vec<String> {
    i.resources()
        .iter()
        .map(|r| {
            r.arn()
                .or(r.kubernetes_resource_uri())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

async fn nodegroup_to(c: &Client, ng: &str, version: &str) -> aws_sdk_eks::types::Update {
    let update = c
        .update_nodegroup_version()
        .cluster_name("demo")
        .nodegroup_name(ng)
        .version(version)
        .send()
        .await
        .expect("UpdateNodegroupVersion")
        .update
        .expect("update");
    finished(c, update.id().expect("id"), Some(ng), None).await
}

async fn addon_to(c: &Client, addon: &str, version: &str) -> aws_sdk_eks::types::Update {
    let update = c
        .update_addon()
        .cluster_name("demo")
        .addon_name(addon)
        .addon_version(version)
        .send()
        .await
        .expect("UpdateAddon")
        .update
        .expect("update");
    finished(c, update.id().expect("id"), None, Some(addon)).await
}

pub(super) fn pass(version: &str) -> (String, String) {
    ("PASSING".to_string(), version.to_string())
}

pub(super) fn error(version: &str) -> (String, String) {
    ("ERROR".to_string(), version.to_string())
}

#[test]
fn a_rollback_waits_for_node_groups_and_add_ons_to_go_back() {
    let sb = TestSandbox::start(Some(&upgraded(
        ", lastUpgradeAge: 2d",
        "1.33",
        ADDONS_AT_N,
        "",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let found = rollback_insights(&c).await;
        let expected: BTreeMap<String, (String, String)> = [
            ("Cluster health issues", pass("1.32")),
            ("EKS add-on version compatibility", error("1.32")),
            ("Kube-proxy version skew", error("1.32")),
            ("Kubelet version skew", error("1.32")),
            ("Kubernetes API usage", pass("1.32")),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
        assert_eq!(found, expected);
        // The upgrade insights are still there beside them.
        let all = c.list_insights().cluster_name("demo").send().await.unwrap();
        assert!(
            all.insights()
                .iter()
                .any(|i| i.name() == Some("Deprecated APIs removed in Kubernetes v1.34"))
        );

        let kubelet = insight(&c, "Kubelet version skew").await;
        let names = resource_names(&kubelet);
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names[0].contains(":nodegroup/demo/general/"), "{names:?}");
        assert!(names[1].contains(":nodegroup/demo/system/"), "{names:?}");
        assert!(!kubelet.recommendation().unwrap_or_default().is_empty());
        let addons = insight(&c, "EKS add-on version compatibility").await;
        let details = addons
            .category_specific_summary()
            .expect("summary")
            .addon_compatibility_details();
        let coredns = details
            .iter()
            .find(|d| d.name() == Some("coredns"))
            .expect("coredns");
        assert_eq!(
            coredns.compatible_versions(),
            ["v1.11.4-eksbuild.2", "v1.11.1-eksbuild.9"]
        );
        assert!(details.iter().any(|d| d.name() == Some("kube-proxy")));
        assert!(!details.iter().any(|d| d.name() == Some("vpc-cni")));

        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.32")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidStateException");
        assert!(
            message.starts_with("Rollback readiness issues detected: EKS add-on version compatibility, Kube-proxy version skew, Kubelet version skew."),
            "{message}"
        );
        assert!(err.into_service_error().is_invalid_state_exception());

        // The caller's part: node groups and add-ons back first.
        for ng in ["general", "system"] {
            let done = nodegroup_to(&c, ng, "1.32").await;
            assert_eq!(done.status(), Some(&UpdateStatus::Successful), "{ng}");
        }
        for (addon, version) in [
            ("kube-proxy", "v1.32.3-eksbuild.2"),
            ("coredns", "v1.11.4-eksbuild.2"),
        ] {
            let done = addon_to(&c, addon, version).await;
            assert_eq!(done.status(), Some(&UpdateStatus::Successful), "{addon}");
        }
        let coredns = c
            .describe_addon()
            .cluster_name("demo")
            .addon_name("coredns")
            .send()
            .await
            .unwrap()
            .addon
            .unwrap();
        assert_eq!(coredns.addon_version(), Some("v1.11.4-eksbuild.2"));
        assert_eq!(coredns.configuration_values(), Some(r#"{"replicaCount":3}"#));

        // Insights show what the last refresh found until the next one.
        let stale = rollback_insights(&c).await;
        assert_eq!(stale["Kubelet version skew"], error("1.32"));
        c.start_insights_refresh()
            .cluster_name("demo")
            .send()
            .await
            .expect("StartInsightsRefresh");
        let fresh = rollback_insights(&c).await;
        assert!(
            fresh.values().all(|(s, _)| s == "PASSING"),
            "{fresh:?}"
        );

        let done = super::upgrade(&c, "1.32").await;
        assert_eq!(done.r#type(), Some(&UpdateType::VersionRollback));
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
        assert_eq!(cluster_version(&c).await, "1.32");
        // No rollback is possible any more, so no rollback-readiness insights.
        assert!(rollback_insights(&c).await.is_empty());
    });
    for ng in ["general", "system"] {
        for (node, version) in kubelets(&sb, ng) {
            assert_eq!(version, Some(Version::new(1, 32)), "{node}");
        }
    }
    assert_eq!(
        recorded(&sb, "UpdateClusterVersion"),
        vec![
            (400, "cluster=demo version=1.32".to_string()),
            (200, "cluster=demo version=1.32".to_string()),
        ]
    );
}

#[test]
fn force_skips_rollback_insights_but_never_the_prerequisites() {
    // (cluster, error, message, whether a rollback is still in reach: insights listed)
    let refused = [
        (
            ", lastUpgradeAge: 8d",
            "InvalidRequestException",
            "7 days",
            false,
        ),
        (
            ", lastUpgradeAge: 1d, lastUpgradeAutomatic: true",
            "InvalidRequestException",
            "automatic upgrade",
            false,
        ),
        (
            ", lastUpgradeAge: 1d, supportType: STANDARD",
            "InvalidRequestException",
            "extended support",
            // Switching the upgrade policy to EXTENDED would allow it.
            true,
        ),
        (
            "",
            "InvalidParameterException",
            "Unsupported Kubernetes minor version update from 1.33 to 1.32",
            false,
        ),
    ];
    for (cluster, code, needle, in_reach) in refused {
        let sb = TestSandbox::start(Some(&upgraded(cluster, "1.33", ADDONS_AT_N, "")));
        sb.block_on(async {
            let c = client(&sb).await;
            let err = c
                .update_cluster_version()
                .name("demo")
                .version("1.32")
                .force(true)
                .send()
                .await
                .unwrap_err();
            let message = service_error(&err, 400, code);
            assert!(message.contains(needle), "{cluster}: {message}");
            assert_eq!(cluster_version(&c).await, "1.33");
            // Outside the window there are no rollback-readiness insights at all.
            assert_eq!(
                rollback_insights(&c).await.is_empty(),
                !in_reach,
                "{cluster}"
            );
        });
    }

    // Within the window, force takes the control plane back with node groups still at 1.33;
    // they can then follow it down to the cluster's version.
    let sb = TestSandbox::start(Some(&upgraded(
        ", lastUpgradeAge: 1d",
        "1.33",
        ADDONS_AT_N,
        "",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let update = c
            .update_cluster_version()
            .name("demo")
            .version("1.32")
            .force(true)
            .send()
            .await
            .expect("forced rollback")
            .update
            .unwrap();
        let done = finished(&c, update.id().unwrap(), None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
        assert_eq!(cluster_version(&c).await, "1.32");
        let done = nodegroup_to(&c, "general", "1.32").await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
    });
}

#[test]
fn node_groups_go_back_one_minor_only_while_a_rollback_is_possible() {
    // No earlier upgrade: a node group cannot go below its version.
    let sb = TestSandbox::start(Some(&fast("", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c
            .update_nodegroup_version()
            .cluster_name("demo")
            .nodegroup_name("general")
            .version("1.32")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidParameterException");
        assert_eq!(
            message,
            "Nodegroup Kubernetes version should be equal to Cluster kubernetes version 1.33 or NodeGroup kubernetes version 1.33"
        );
    });

    let extra = r#"  workloads:
    - { kind: Deployment, namespace: shop, name: web, replicas: 2, pdbMinAvailable: 2 }"#;
    let mut text = upgraded(", lastUpgradeAge: 1d", "1.33", ADDONS_AT_N, extra);
    text = text.replace(
        "{ name: system, nodes: 1, version: \"1.33\" }",
        "{ name: system, nodes: 2, version: \"1.33\", maxUnavailable: 2 }",
    );
    let sb = TestSandbox::start(Some(&text));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c
            .update_nodegroup_version()
            .cluster_name("demo")
            .nodegroup_name("general")
            .version("1.31")
            .send()
            .await
            .unwrap_err();
        service_error(&err, 400, "InvalidParameterException");

        let system = c
            .describe_nodegroup()
            .cluster_name("demo")
            .nodegroup_name("system")
            .send()
            .await
            .unwrap()
            .nodegroup
            .unwrap();
        assert_eq!(
            system.update_config().and_then(|u| u.max_unavailable()),
            Some(2)
        );

        // Going back drains like going forward: a budget that allows no eviction stops it.
        let mut failed = None;
        for ng in ["general", "system"] {
            let done = nodegroup_to(&c, ng, "1.32").await;
            if done.status() == Some(&UpdateStatus::Failed) {
                failed = Some(done);
                break;
            }
        }
        let failed = failed.expect("the budget of shop/web stops one rollout");
        let error = &failed.errors()[0];
        assert_eq!(
            error.error_code().map(|c| c.as_str()),
            Some("PodEvictionFailure")
        );
        assert!(
            error.resource_ids()[0].starts_with("shop/web-"),
            "{error:?}"
        );
        assert_eq!(
            super::param(&failed, aws_sdk_eks::types::UpdateParamType::Version).as_deref(),
            Some("1.32")
        );
    });
}

#[test]
fn add_ons_go_back_only_to_versions_listed_for_the_rollback_target() {
    let sb = TestSandbox::start(Some(&upgraded(
        ", lastUpgradeAge: 1d",
        "1.32",
        ADDONS_AT_N,
        "",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c
            .update_addon()
            .cluster_name("demo")
            .addon_name("kube-proxy")
            .addon_version("v1.31.3-eksbuild.2")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            service_error(&err, 400, "InvalidParameterException"),
            "Addon version specified is not supported"
        );
        let done = addon_to(&c, "kube-proxy", "v1.32.3-eksbuild.2").await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
    });
    // Without a rollback in reach, only versions for the cluster's own version.
    let sb = TestSandbox::start(Some(&fast("", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c
            .update_addon()
            .cluster_name("demo")
            .addon_name("kube-proxy")
            .addon_version("v1.32.3-eksbuild.2")
            .send()
            .await
            .unwrap_err();
        service_error(&err, 400, "InvalidParameterException");
    });
}
