//! Rollback-readiness insights the caller cannot clear by moving nodes or add-ons: stored
//! objects of an API version the rollback target does not serve (including ones written after
//! the upgrade brought the API), and cluster health issues. Only `force` gets past them.

use aws_sdk_eks::types::UpdateStatus;

use super::rollback::{error, insight, pass, resource_names, rollback_insights};
use super::{ADDONS_BACK, client, fast, finished, service_error, upgraded};
use crate::common::TestSandbox;

#[test]
fn api_usage_and_health_issues_block_a_rollback_until_forced() {
    let extra = r#"  resources:
    - { group: resource.k8s.io, version: v1, kind: ResourceClaim, plural: resourceclaims, servedSince: "1.33" }
  objects:
    - { apiVersion: resource.k8s.io/v1, kind: ResourceClaim, metadata: { name: gpu-claim, namespace: default }, spec: {} }"#;
    let cluster = ", lastUpgradeAge: 1d, healthIssues: [ { code: Ec2SubnetNotFound, message: subnet gone, resourceIds: [subnet-0abc] } ]";
    let sb = TestSandbox::start(Some(&upgraded(cluster, "1.32", ADDONS_BACK, extra)));
    sb.block_on(async {
        let c = client(&sb).await;
        let found = rollback_insights(&c).await;
        assert_eq!(found["Kubernetes API usage"], error("1.32"));
        assert_eq!(found["Cluster health issues"], error("1.32"));
        assert_eq!(found["Kubelet version skew"], pass("1.32"));
        let usage = insight(&c, "Kubernetes API usage").await;
        assert_eq!(
            resource_names(&usage),
            ["/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/gpu-claim"]
        );
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.32")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidStateException");
        assert!(
            message.contains("Cluster health issues, Kubernetes API usage"),
            "{message}"
        );
        let update = c
            .update_cluster_version()
            .name("demo")
            .version("1.32")
            .force(true)
            .send()
            .await
            .expect("forced")
            .update
            .unwrap();
        let done = finished(&c, update.id().unwrap(), None, None).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
    });
}

#[test]
fn objects_of_an_api_the_upgrade_brings_block_the_rollback() {
    let extra = r#"  resources:
    - { group: resource.k8s.io, version: v1, kind: ResourceClaim, plural: resourceclaims, servedSince: "1.34" }
  objects:
    - { apiVersion: resource.k8s.io/v1, kind: ResourceClaim, metadata: { name: gpu-claim, namespace: default }, spec: {} }"#;
    let sb = TestSandbox::start(Some(&fast("", extra)));
    let store = sb.sandbox.world.store.clone();
    let rt = store
        .resource("resource.k8s.io", "v1", "resourceclaims")
        .expect("type");
    let count = || store.count(&rt);
    assert_eq!(count(), 0, "1.33 does not serve resource.k8s.io/v1 yet");
    sb.block_on(async {
        let c = client(&sb).await;
        // Node groups stay at 1.33 and add-ons suit 1.33: only the API usage stands in the way.
        assert_eq!(
            super::upgrade(&c, "1.34").await.status(),
            Some(&UpdateStatus::Successful)
        );
        crate::common::poll_async(
            "the API-usage insight",
            crate::common::POLL_TIMEOUT,
            async || count() == 1,
        )
        .await;
        let found = rollback_insights(&c).await;
        assert_eq!(found["Kubernetes API usage"], error("1.33"));
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.33")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidStateException");
        assert!(message.contains("Kubernetes API usage"), "{message}");
        assert!(!message.contains("Kubelet"), "{message}");
    });
}
