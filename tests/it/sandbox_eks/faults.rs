//! Injected faults: updates that end `Failed`, and API errors as each operation models them.

use aws_sdk_eks::config::retry::RetryConfig;
use aws_sdk_eks::types::{ErrorCode, UpdateParamType, UpdateStatus};
use eks_upgrade_core::types::Version;

use super::{
    client, client_with, container_image, fast, finished, kubelets, param, recorded, service_error,
    upgrade,
};
use crate::common::TestSandbox;

#[test]
fn a_failed_update_fault_leaves_the_version_unchanged() {
    let sb = TestSandbox::start(Some(&fast(
        "",
        "  faults:\n    failedUpdates:\n      - { target: controlPlane, version: \"1.34\", errorCode: Unknown, message: \"health checks failed\", resourceIds: [demo] }",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let done = upgrade(&c, "1.34").await;
        assert_eq!(done.status(), Some(&UpdateStatus::Failed));
        let error = &done.errors()[0];
        assert_eq!(error.error_code().map(|c| c.as_str()), Some("Unknown"));
        assert_eq!(error.error_message(), Some("health checks failed"));
        assert_eq!(error.resource_ids(), ["demo"]);
        let cluster = c
            .describe_cluster()
            .name("demo")
            .send()
            .await
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(cluster.version(), Some("1.33"));
        assert_eq!(cluster.status().map(|s| s.as_str()), Some("ACTIVE"));
    });
    assert_eq!(
        sb.sandbox.world.control_plane_version(),
        Version::new(1, 33)
    );
}

#[test]
fn failed_update_faults_for_nodegroups_and_addons() {
    let text = fast(
        "",
        "  faults:\n    failedUpdates:\n      - { target: nodegroup/general, errorCode: NodeCreationFailure, message: \"instances failed to join\", resourceIds: [i-0abc] }\n      - { target: addon/coredns, errorCode: ConfigurationConflict, message: \"conflicts with the deployed configuration\" }",
    )
    .replace(
        "{ name: general, nodes: 2 }",
        "{ name: general, nodes: 2, version: \"1.32\" }",
    );
    let sb = TestSandbox::start(Some(&text));
    let before = kubelets(&sb, "general");
    sb.block_on(async {
        let c = client(&sb).await;
        let update = c
            .update_nodegroup_version()
            .cluster_name("demo")
            .nodegroup_name("general")
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        // Without a version the group stays on its own minor (a newer AMI of it).
        assert_eq!(
            param(&update, UpdateParamType::Version).as_deref(),
            Some("1.32")
        );
        let done = finished(&c, update.id().unwrap(), Some("general"), None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Failed));
        assert_eq!(
            done.errors()[0].error_code(),
            Some(&ErrorCode::NodeCreationFailure)
        );
        assert_eq!(done.errors()[0].resource_ids(), ["i-0abc"]);

        let update = c
            .update_addon()
            .cluster_name("demo")
            .addon_name("coredns")
            .addon_version("v1.12.4-eksbuild.1")
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        let done = finished(&c, update.id().unwrap(), None, Some("coredns")).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Failed));
        assert_eq!(
            done.errors()[0].error_code(),
            Some(&ErrorCode::ConfigurationConflict)
        );
        let addon = c
            .describe_addon()
            .cluster_name("demo")
            .addon_name("coredns")
            .send()
            .await
            .unwrap()
            .addon
            .unwrap();
        assert_eq!(addon.addon_version(), Some("v1.11.4-eksbuild.2"));
        assert_eq!(addon.status().map(|s| s.as_str()), Some("ACTIVE"));
    });
    assert_eq!(kubelets(&sb, "general"), before, "no node was replaced");
    assert!(container_image(&sb, "deployments", "coredns").ends_with(":v1.11.4-eksbuild.2"));
}

#[test]
fn injected_faults_use_the_operations_modelled_errors() {
    let sb = TestSandbox::start(Some(&fast(
        "",
        "  faults:\n    api:\n      - { service: eks, operation: UpdateClusterVersion, fault: throttle }\n      - { service: eks, operation: DescribeCluster, fault: throttle, count: 2 }\n      - { service: eks, operation: DescribeUpdate, fault: unavailable }",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            service_error(&err, 429, "ThrottlingException"),
            "Rate exceeded"
        );
        assert!(err.into_service_error().is_throttling_exception());
        // DescribeCluster models no throttling: the fault arrives as ServiceUnavailable.
        let err = c.describe_cluster().name("demo").send().await.unwrap_err();
        service_error(&err, 503, "ServiceUnavailableException");
        assert!(err.into_service_error().is_service_unavailable_exception());
        // The SDK's standard retries ride over the second one.
        let retrying = client_with(&sb, RetryConfig::standard()).await;
        retrying
            .describe_cluster()
            .name("demo")
            .send()
            .await
            .expect("retried");
        // The next attempt works: the fault was for one request.
        let update = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .expect("UpdateClusterVersion after the fault")
            .update
            .unwrap();
        let id = update.id().unwrap();
        // DescribeUpdate models neither throttling nor unavailability: ServerException.
        let err = c
            .describe_update()
            .name("demo")
            .update_id(id)
            .send()
            .await
            .unwrap_err();
        service_error(&err, 500, "ServerException");
        let done = finished(&c, id, None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
    });
    let statuses: Vec<u16> = recorded(&sb, "UpdateClusterVersion")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(statuses, vec![429, 200]);
    let describe: Vec<u16> = recorded(&sb, "DescribeCluster")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(describe, vec![503, 503, 200]);
    assert!(
        recorded(&sb, "DescribeCluster")[0]
            .1
            .contains("injected=ServiceUnavailableException")
    );
}
