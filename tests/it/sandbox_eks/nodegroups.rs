//! Managed node groups: version skew before an upgrade, rolling nodes to the new kubelet, and
//! PodDisruptionBudgets blocking eviction.

use aws_sdk_eks::types::{ErrorCode, UpdateParamType, UpdateStatus, UpdateType};
use eks_upgrade_core::types::Version;

use super::{client, fast, finished, kubelets, param, recorded, service_error, upgrade};
use crate::common::TestSandbox;

#[test]
fn node_groups_must_match_the_cluster_version_before_an_upgrade() {
    let text = fast("", "").replace(
        "{ name: general, nodes: 2 }",
        "{ name: general, nodes: 2, version: \"1.32\" }",
    );
    let sb = TestSandbox::start(Some(&text));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidParameterException");
        assert_eq!(
            message,
            "Nodegroups general must be updated to match cluster version 1.33 before updating cluster version"
        );
    });
}

#[test]
fn nodegroup_update_rolls_nodes_to_the_new_kubelet() {
    let text = fast("", "").replace(
        "{ name: general, nodes: 2 }",
        "{ name: general, nodes: 2, version: \"1.32\" }",
    );
    let sb = TestSandbox::start(Some(&text));
    let before = kubelets(&sb, "general");
    assert!(before.iter().all(|(_, v)| *v == Some(Version::new(1, 32))));
    sb.block_on(async {
        let c = client(&sb).await;
        // Newer than the control plane: refused with EKS's message.
        let err = c
            .update_nodegroup_version()
            .cluster_name("demo")
            .nodegroup_name("general")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidParameterException");
        assert_eq!(
            message,
            "Nodegroup Kubernetes version should be equal to Cluster kubernetes version 1.33 or NodeGroup kubernetes version 1.32"
        );

        let update = c
            .update_nodegroup_version()
            .cluster_name("demo")
            .nodegroup_name("general")
            .version("1.33")
            .send()
            .await
            .expect("UpdateNodegroupVersion")
            .update
            .unwrap();
        assert_eq!(update.r#type(), Some(&UpdateType::VersionUpdate));
        assert_eq!(param(&update, UpdateParamType::Version).as_deref(), Some("1.33"));
        let release = param(&update, UpdateParamType::ReleaseVersion).unwrap();
        assert!(release.starts_with("1.33.5-2025"), "{release}");
        let ng = c
            .describe_nodegroup()
            .cluster_name("demo")
            .nodegroup_name("general")
            .send()
            .await
            .unwrap()
            .nodegroup
            .unwrap();
        assert_eq!(ng.status().map(|s| s.as_str()), Some("UPDATING"));
        let id = update.id().unwrap();

        // A node-group update is not visible as a cluster update.
        let err = c
            .describe_update()
            .name("demo")
            .update_id(id)
            .send()
            .await
            .unwrap_err();
        assert!(err.into_service_error().is_resource_not_found_exception());

        let done = finished(&c, id, Some("general"), None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful), "{done:?}");
        let ng = c
            .describe_nodegroup()
            .cluster_name("demo")
            .nodegroup_name("general")
            .send()
            .await
            .unwrap()
            .nodegroup
            .unwrap();
        assert_eq!(ng.version(), Some("1.33"));
        assert_eq!(ng.release_version(), Some(release.as_str()));
        assert_eq!(ng.status().map(|s| s.as_str()), Some("ACTIVE"));
        let listed = c
            .list_updates()
            .name("demo")
            .nodegroup_name("general")
            .send()
            .await
            .unwrap();
        assert_eq!(listed.update_ids(), [id.to_string()]);
        // Every group matches now, so the control plane may move on.
        assert_eq!(upgrade(&c, "1.34").await.status(), Some(&UpdateStatus::Successful));
    });
    let after = kubelets(&sb, "general");
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().all(|(_, v)| *v == Some(Version::new(1, 33))),
        "{after:?}"
    );
    assert!(
        after
            .iter()
            .all(|(n, _)| !before.iter().any(|(b, _)| b == n))
    );
    assert_eq!(
        recorded(&sb, "UpdateNodegroupVersion")[1],
        (
            200,
            "cluster=demo nodegroup=general version=1.33".to_string()
        )
    );
}

#[test]
fn pod_eviction_failure_names_the_blocked_pods_unless_forced() {
    let text = fast(
        "",
        "  workloads:\n    - { kind: Deployment, namespace: shop, name: web, replicas: 2, pdbMinAvailable: 2 }",
    )
    .replace(
        "{ name: general, nodes: 2 }",
        "{ name: general, nodes: 2, version: \"1.32\" }",
    );
    let sb = TestSandbox::start(Some(&text));
    sb.block_on(async {
        let c = client(&sb).await;
        let update = c
            .update_nodegroup_version()
            .cluster_name("demo")
            .nodegroup_name("general")
            .version("1.33")
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        let done = finished(&c, update.id().unwrap(), Some("general"), None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Failed));
        let error = &done.errors()[0];
        assert_eq!(error.error_code(), Some(&ErrorCode::PodEvictionFailure));
        assert!(
            error
                .resource_ids()
                .iter()
                .any(|p| p.starts_with("shop/web-")),
            "{error:?}"
        );
        let ng = c
            .describe_nodegroup()
            .cluster_name("demo")
            .nodegroup_name("general")
            .send()
            .await
            .unwrap()
            .nodegroup
            .unwrap();
        assert_eq!(ng.version(), Some("1.32"));
        assert_eq!(ng.status().map(|s| s.as_str()), Some("ACTIVE"));

        let forced = c
            .update_nodegroup_version()
            .cluster_name("demo")
            .nodegroup_name("general")
            .version("1.33")
            .force(true)
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        let done = finished(&c, forced.id().unwrap(), Some("general"), None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful), "{done:?}");
    });
    assert!(
        kubelets(&sb, "general")
            .iter()
            .all(|(_, v)| *v == Some(Version::new(1, 33)))
    );
    assert!(
        recorded(&sb, "UpdateNodegroupVersion")[1]
            .1
            .ends_with("force=true")
    );
}
