//! Control-plane updates: one minor version at a time, the update lifecycle, one update at a
//! time, and rollback.

use aws_sdk_eks::types::{RollbackConfig, UpdateParamType, UpdateStatus, UpdateType};
use eks_upgrade_core::types::Version;

use super::{
    ADDONS_BACK, client, cluster_version, fast, finished, param, recorded, scenario, service_error,
    upgrade, upgraded,
};
use crate::common::{POLL_TIMEOUT, TestSandbox, poll_async};

#[test]
fn control_plane_moves_one_minor_version_at_a_time() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        for (target, expected) in [
            ("1.35", "from 1.33 to 1.35"),
            ("1.32", "from 1.33 to 1.32"),
            ("1.33", "from 1.33 to 1.33"),
        ] {
            let err = c
                .update_cluster_version()
                .name("demo")
                .version(target)
                .send()
                .await
                .unwrap_err();
            let message = service_error(&err, 400, "InvalidParameterException");
            assert_eq!(
                message,
                format!("Unsupported Kubernetes minor version update {expected}")
            );
            assert!(err.into_service_error().is_invalid_parameter_exception());
        }
        assert_eq!(cluster_version(&c).await, "1.33");
    });
    let records = recorded(&sb, "UpdateClusterVersion");
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|(status, _)| *status == 400));
    assert_eq!(records[0].1, "cluster=demo version=1.35");
    assert_eq!(
        sb.sandbox.world.control_plane_version(),
        Version::new(1, 33)
    );
}

#[test]
fn control_plane_update_lifecycle() {
    // Ten emulated minutes: one real second, long enough to see the cluster UPDATING.
    let sb = TestSandbox::start(Some(&scenario(
        "",
        "  timings: { controlPlaneUpdate: 10m, controlPlaneRollback: 60s, nodegroupUpdatePerNode: 12s, addonUpdate: 12s, backupPerItem: 1s, restorePerItem: 1s, statusLag: 6s }",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let update = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .expect("UpdateClusterVersion")
            .update
            .expect("update");
        assert_eq!(update.status(), Some(&UpdateStatus::InProgress));
        assert_eq!(update.r#type(), Some(&UpdateType::VersionUpdate));
        assert_eq!(
            param(&update, UpdateParamType::Version).as_deref(),
            Some("1.34")
        );
        assert_eq!(
            param(&update, UpdateParamType::PlatformVersion).as_deref(),
            Some("eks.27")
        );
        assert!(update.errors().is_empty());
        let id = update.id().expect("id").to_string();

        // Eventually UPDATING, still reporting the old version while it is.
        let cluster = poll_async("the cluster to report UPDATING", POLL_TIMEOUT, async || {
            let cluster = c
                .describe_cluster()
                .name("demo")
                .send()
                .await
                .unwrap()
                .cluster
                .unwrap();
            (cluster.status().map(|s| s.as_str()) == Some("UPDATING")).then_some(cluster)
        })
        .await;
        assert_eq!(cluster.version(), Some("1.33"));

        let ids = c.list_updates().name("demo").send().await.unwrap();
        assert_eq!(ids.update_ids(), std::slice::from_ref(&id));

        let done = finished(&c, &id, None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
        let cluster = c
            .describe_cluster()
            .name("demo")
            .send()
            .await
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(cluster.version(), Some("1.34"));
        assert_eq!(cluster.platform_version(), Some("eks.27"));
        assert_eq!(cluster.status().map(|s| s.as_str()), Some("ACTIVE"));
    });
    assert_eq!(
        sb.sandbox.world.control_plane_version(),
        Version::new(1, 34)
    );
    assert_eq!(
        recorded(&sb, "UpdateClusterVersion"),
        vec![(200, "cluster=demo version=1.34".to_string())]
    );
}

#[test]
fn a_second_update_while_one_is_in_flight_is_refused_with_409() {
    // One emulated hour: the update stays in flight for the whole test.
    let sb = TestSandbox::start(Some(&scenario(
        "",
        "  timings: { controlPlaneUpdate: 1h, controlPlaneRollback: 60s, nodegroupUpdatePerNode: 12s, addonUpdate: 12s, backupPerItem: 1s, restorePerItem: 1s, statusLag: 6s }",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let first = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .client_request_token("token-1")
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        let id = first.id().unwrap();
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 409, "ResourceInUseException");
        assert_eq!(
            message,
            format!(
                "Cannot VersionUpdate because cluster demo currently has update {id} in progress"
            )
        );
        assert!(err.into_service_error().is_resource_in_use_exception());

        // A retry with the same token is the same update, not a conflict.
        let again = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .client_request_token("token-1")
            .send()
            .await
            .expect("idempotent retry")
            .update
            .unwrap();
        assert_eq!(again.id(), Some(id));
        let ids = c.list_updates().name("demo").send().await.unwrap();
        assert_eq!(ids.update_ids().len(), 1);
    });
    let statuses: Vec<u16> = recorded(&sb, "UpdateClusterVersion")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(statuses, vec![200, 409, 200]);
}

#[test]
fn rollback_within_seven_days_of_an_upgrade() {
    // Node groups and add-ons already at versions 1.32 supports: nothing blocks the rollback.
    let sb = TestSandbox::start(Some(&upgraded(
        ", lastUpgradeAge: 2d",
        "1.32",
        ADDONS_BACK,
        "",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.32")
            .rollback_config(RollbackConfig::builder().timeout_minutes(60).build())
            .send()
            .await
            .unwrap_err();
        service_error(&err, 400, "InvalidParameterException");

        let update = c
            .update_cluster_version()
            .name("demo")
            .version("1.32")
            .rollback_config(RollbackConfig::builder().timeout_minutes(240).build())
            .send()
            .await
            .expect("rollback")
            .update
            .unwrap();
        assert_eq!(update.r#type(), Some(&UpdateType::VersionRollback));
        let done = finished(&c, update.id().unwrap(), None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
        assert_eq!(cluster_version(&c).await, "1.32");

        // A rollback cannot itself be rolled back further.
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.31")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidParameterException");
        assert_eq!(
            message,
            "Unsupported Kubernetes minor version update from 1.32 to 1.31"
        );
    });
    assert_eq!(
        sb.sandbox.world.control_plane_version(),
        Version::new(1, 32)
    );
}

#[test]
fn an_upgrade_made_in_the_sandbox_can_be_rolled_back() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        assert_eq!(
            upgrade(&c, "1.34").await.status(),
            Some(&UpdateStatus::Successful)
        );
        assert_eq!(
            sb.sandbox.world.control_plane_version(),
            Version::new(1, 34)
        );
        let done = upgrade(&c, "1.33").await;
        assert_eq!(done.r#type(), Some(&UpdateType::VersionRollback));
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
        assert_eq!(cluster_version(&c).await, "1.33");
    });
    assert_eq!(
        sb.sandbox.world.control_plane_version(),
        Version::new(1, 33)
    );
}

#[test]
fn rollback_is_refused_outside_the_window_after_an_auto_upgrade_or_without_an_upgrade() {
    let cases = [
        (
            ", lastUpgradeAge: 8d",
            400,
            "InvalidRequestException",
            "7 days",
        ),
        (
            ", lastUpgradeAge: 1d, lastUpgradeAutomatic: true",
            400,
            "InvalidRequestException",
            "automatic upgrade",
        ),
        (
            "",
            400,
            "InvalidParameterException",
            "Unsupported Kubernetes minor version update from 1.33 to 1.32",
        ),
    ];
    for (cluster, status, code, needle) in cases {
        let sb = TestSandbox::start(Some(&fast(cluster, "")));
        sb.block_on(async {
            let c = client(&sb).await;
            let err = c
                .update_cluster_version()
                .name("demo")
                .version("1.32")
                .send()
                .await
                .unwrap_err();
            let message = service_error(&err, status, code);
            assert!(message.contains(needle), "{cluster}: {message}");
            assert_eq!(cluster_version(&c).await, "1.33");
        });
    }
}
