//! Manifests that still name APIs removed before the cluster's version (Kubernetes's, and
//! cert-manager's and Istio's as Pluto lists them): deployed Helm releases (`API004`) and
//! `last-applied-configuration` annotations (`API005`) are warnings with the way out.

use serde_json::Value;

use crate::checks::{check, findings};
use crate::e2e::External;

fn field(f: &Value, key: &str) -> String {
    f[key].as_str().unwrap_or("").to_string()
}

#[test]
fn stale_helm_releases_and_applied_manifests_are_warnings_with_the_remedy() {
    let sb = External::from_example("stale-manifests.yaml");
    let (code, report, stderr) = check(&sb, "workflows/in-place.yaml", "1.34");
    assert_eq!(
        code,
        Some(0),
        "warnings do not stop `failOn: error`: {stderr}"
    );

    let helm = findings(&report, "API004");
    assert_eq!(helm.len(), 2, "{report}");
    let psp = helm
        .iter()
        .find(|f| f["source"] == "helm:shop/legacy@4")
        .unwrap_or_else(|| panic!("the PSP release: {helm:?}"));
    assert_eq!(psp["severity"], "warning");
    assert_eq!(psp["object"], "PodSecurityPolicy shop/legacy-restricted");
    let message = field(psp, "message");
    assert!(
        message.contains("`policy/v1beta1` PodSecurityPolicy")
            && message.contains("Kubernetes 1.25 removed")
            && message.contains("cannot upgrade or roll back"),
        "{message}"
    );
    assert!(
        field(psp, "remedy").contains("helm mapkubeapis legacy --namespace shop"),
        "{psp}"
    );
    let cert = helm
        .iter()
        .find(|f| f["source"] == "helm:shop/certs@2")
        .unwrap_or_else(|| panic!("the cert-manager release: {helm:?}"));
    assert!(
        field(cert, "message").contains("which cert-manager 1.6 removed"),
        "{cert}"
    );
    assert!(
        field(cert, "remedy").contains("`cert-manager.io/v1` Certificate"),
        "{cert}"
    );

    let applied = findings(&report, "API005");
    let mut objects: Vec<String> = applied.iter().map(|f| field(f, "object")).collect();
    objects.sort();
    assert_eq!(
        objects,
        ["Deployment shop/catalog", "FlowSchema batch-jobs"],
        "{report}"
    );
    for f in &applied {
        assert_eq!(f["severity"], "warning");
        assert!(
            field(f, "remedy").contains("kubectl apply set-last-applied"),
            "{f}"
        );
    }
    let flow = applied
        .iter()
        .find(|f| f["object"] == "FlowSchema batch-jobs")
        .expect("flowschema");
    assert!(
        field(flow, "message").contains(
            "`flowcontrol.apiserver.k8s.io/v1beta2` FlowSchema, which Kubernetes 1.29 removed"
        ),
        "{flow}"
    );
    // Nothing here is removed by the hop itself.
    for code in ["API001", "API002", "API003"] {
        assert!(findings(&report, code).is_empty(), "{code}: {report}");
    }
}
