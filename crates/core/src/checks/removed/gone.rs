//! Manifests that still name an API the cluster's current version (or, for a third-party
//! component, its newer releases) no longer serves. EKS does not care, but Helm cannot upgrade
//! or roll back a release whose stored manifest holds one, and `kubectl apply` of such a
//! manifest fails — which matters to a tool that restores and rolls back. Warnings, each with
//! the way out (`helm mapkubeapis`, `kubectl apply set-last-applied`).

use super::{RemovedApi, Source};
use crate::checks::{Finding, Severity};

/// A finding for a manifest naming an API the current version already no longer serves: it
/// does not block EKS, but Helm cannot upgrade or roll back such a release, and `kubectl apply`
/// of such a manifest fails. A warning, with the way out.
pub fn gone_finding(
    api: &RemovedApi,
    source: Source,
    namespace: Option<&str>,
    name: &str,
) -> Finding {
    let object = match namespace {
        Some(ns) => format!("{} {ns}/{name}", api.kind),
        None => format!("{} {name}", api.kind),
    };
    let target = match api.target() {
        Some(t) => t,
        None => format!("a served API (`{}` has no replacement)", api.api_version),
    };
    let note = api
        .note
        .as_deref()
        .map(|n| format!("; {n}"))
        .unwrap_or_default();
    // Kubernetes's removals are certain at this version; a component's depend on the release
    // installed, which the tool does not know.
    let consequence = match api.component {
        None => "",
        Some(_) => " once that release is installed",
    };
    let (code, message, remedy) = match &source {
        Source::Helm { release, revision } => {
            let (release_ns, release_name) = release.split_once('/').unwrap_or(("", release));
            (
                "API004",
                format!(
                    "Helm release `{release}` revision {revision} still holds `{}` {}, which {} removed: Helm cannot upgrade or roll back this release{consequence} until its stored manifest is mapped",
                    api.api_version,
                    api.kind,
                    api.removed_by()
                ),
                format!(
                    "run `helm mapkubeapis {release_name} --namespace {release_ns}` (the helm-mapkubeapis plugin rewrites the stored manifest{}), then move the chart to {target}{note}",
                    if api.component.is_some() {
                        "; pass `--mapfile` with a mapping for this API"
                    } else {
                        ""
                    }
                ),
            )
        }
        _ => (
            "API005",
            format!(
                "its `kubectl.kubernetes.io/last-applied-configuration` annotation names `{}` {}, which {} removed: applying that manifest again fails{consequence}",
                api.api_version,
                api.kind,
                api.removed_by()
            ),
            format!(
                "move the manifest to {target}{note} and apply it again, or rewrite the annotation with `kubectl apply set-last-applied -f FILE`"
            ),
        ),
    };
    Finding::new(code, Severity::Warning, object, message, remedy)
        .at(namespace, name)
        .with_source(match &source {
            Source::Helm { release, revision } => format!("helm:{release}@{revision}"),
            _ => "annotation".to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::super::{Removals, table};
    use super::*;
    use crate::types::Version;

    #[test]
    fn third_party_rows_only_ever_warn_and_name_their_component() {
        let rows = table().expect("table");
        let r = Removals::between(rows, Version::new(1, 33), &[Version::new(1, 34)]);
        assert!(r.rows.iter().all(|x| x.component.is_none()));
        let cert = r
            .gone_by_kind("cert-manager.io/v1alpha2", "Certificate")
            .expect("cert-manager rows are always checked");
        assert_eq!(cert.removed_by(), "cert-manager 1.6");
        let f = gone_finding(cert, Source::Annotation, Some("shop"), "tls");
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.message.contains("which cert-manager 1.6 removed"),
            "{}",
            f.message
        );
        assert!(
            f.remedy.contains("`cert-manager.io/v1` Certificate"),
            "{}",
            f.remedy
        );
        let istio = r
            .gone_by_kind("rbac.istio.io/v1alpha1", "ServiceRole")
            .expect("istio row");
        assert!(
            gone_finding(istio, Source::Annotation, None, "x")
                .remedy
                .contains("`security.istio.io/v1beta1` AuthorizationPolicy")
        );
        // DRA v1beta1 is still served up to 1.37.
        let dra = Removals::between(rows, Version::new(1, 35), &[Version::new(1, 36)]);
        assert!(
            dra.by_kind("resource.k8s.io/v1beta1", "ResourceClaim")
                .is_none()
        );
        assert!(
            dra.gone_by_kind("resource.k8s.io/v1beta1", "ResourceClaim")
                .is_none()
        );
        let later = Removals::between(rows, Version::new(1, 37), &[Version::new(1, 38)]);
        assert!(
            later
                .by_kind("resource.k8s.io/v1beta1", "DeviceClass")
                .is_some()
        );
    }

    #[test]
    fn an_api_gone_before_the_current_version_is_a_warning_with_the_way_out() {
        let rows = table().expect("table");
        let r = Removals::between(rows, Version::new(1, 33), &[Version::new(1, 34)]);
        let psp = r
            .gone_by_kind("policy/v1beta1", "PodSecurityPolicy")
            .expect("PSP is gone at 1.33");
        let helm = gone_finding(
            psp,
            Source::Helm {
                release: "shop/legacy".into(),
                revision: 4,
            },
            None,
            "restricted",
        );
        assert_eq!(helm.code, "API004");
        assert_eq!(helm.severity, Severity::Warning);
        assert!(
            helm.message.contains("Kubernetes 1.25 removed"),
            "{}",
            helm.message
        );
        assert!(
            helm.remedy
                .contains("helm mapkubeapis legacy --namespace shop"),
            "{}",
            helm.remedy
        );
        let applied = gone_finding(psp, Source::Annotation, None, "restricted");
        assert_eq!(applied.code, "API005");
        assert!(applied.remedy.contains("set-last-applied"));
    }
}
