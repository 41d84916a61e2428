//! Upgrade insights: errors that block an upgrade unless forced, and deprecated-API insights
//! that follow the current version.

use aws_sdk_eks::types::{InsightStatusValue, InsightsFilter, UpdateStatus};

use super::{
    DEPRECATED_1_34, client, cluster_version, fast, finished, recorded, service_error, upgrade,
};
use crate::common::TestSandbox;

#[test]
fn insight_errors_block_the_upgrade_unless_forced() {
    let sb = TestSandbox::start(Some(&fast(
        "",
        &format!("{DEPRECATED_1_34}\n  faults: {{ enforceInsights: true }}"),
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let errors = c
            .list_insights()
            .cluster_name("demo")
            .filter(
                InsightsFilter::builder()
                    .statuses(InsightStatusValue::Error)
                    .build(),
            )
            .send()
            .await
            .expect("ListInsights");
        assert_eq!(errors.insights().len(), 1);
        let summary = &errors.insights()[0];
        assert_eq!(
            summary.name(),
            Some("Deprecated APIs removed in Kubernetes v1.34")
        );
        assert_eq!(summary.kubernetes_version(), Some("1.34"));
        let insight = c
            .describe_insight()
            .cluster_name("demo")
            .id(summary.id().unwrap())
            .send()
            .await
            .expect("DescribeInsight")
            .insight
            .unwrap();
        let details = insight
            .category_specific_summary()
            .unwrap()
            .deprecation_details();
        assert_eq!(
            details[0].usage(),
            Some("/apis/resource.k8s.io/v1beta1/resourceclaims")
        );
        assert_eq!(
            details[0].replaced_with(),
            Some("/apis/resource.k8s.io/v1/resourceclaims")
        );
        assert_eq!(details[0].stop_serving_version(), Some("1.34"));

        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidStateException");
        assert!(
            message.starts_with("Upgrade readiness issues detected."),
            "{message}"
        );
        assert!(err.into_service_error().is_invalid_state_exception());
        assert_eq!(cluster_version(&c).await, "1.33");

        let forced = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .force(true)
            .send()
            .await
            .expect("forced upgrade")
            .update
            .unwrap();
        let done = finished(&c, forced.id().unwrap(), None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
    });
    assert_eq!(
        recorded(&sb, "UpdateClusterVersion"),
        vec![
            (400, "cluster=demo version=1.34".to_string()),
            (200, "cluster=demo version=1.34 force=true".to_string()),
        ]
    );
}

#[test]
fn deprecated_api_insights_follow_the_current_version() {
    let sb = TestSandbox::start(Some(&fast(
        "",
        "  deprecatedApiRequests:\n    - { group: storagemigration.k8s.io, version: v1alpha1, resource: storageversionmigrations, removedRelease: \"1.35\" }",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let status_for = |version: &'static str| {
            let c = c.clone();
            async move {
                c.list_insights()
                    .cluster_name("demo")
                    .filter(
                        InsightsFilter::builder()
                            .kubernetes_versions(version)
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap()
                    .insights()
                    .iter()
                    .map(|i| i.insight_status().and_then(|s| s.status()).cloned())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            status_for("1.35").await,
            vec![Some(InsightStatusValue::Warning)]
        );
        assert_eq!(
            status_for("1.34").await,
            vec![Some(InsightStatusValue::Passing)]
        );
        upgrade(&c, "1.34").await;
        assert_eq!(
            status_for("1.35").await,
            vec![Some(InsightStatusValue::Error)]
        );
    });
}
