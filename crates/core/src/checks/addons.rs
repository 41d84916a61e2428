//! EKS add-on compatibility: every installed add-on needs a version EKS supports on each hop's
//! Kubernetes version, or the add-on step has nothing to move to. An add-on that is already
//! unsupported on the current version is a warning; one that nothing will upgrade (no
//! `upgradeAddons` step) must already be compatible with every hop.

use super::{Facts, Finding, Severity};
use crate::cloud::eks;

pub async fn check(facts: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut versions = vec![facts.current];
    versions.extend_from_slice(facts.hops);
    for addon in &facts.addons {
        let object = format!("Addon {}", addon.name);
        for (i, &k8s) in versions.iter().enumerate() {
            let offered = match eks::addon_versions(&facts.conn.eks, &addon.name, k8s).await {
                Ok(v) => v,
                Err(e) => {
                    out.push(
                        Finding::new(
                            "EKS009",
                            Severity::Warning,
                            &object,
                            format!("cannot list its versions for {k8s}: {e}"),
                            "grant `eks:DescribeAddonVersions`",
                        )
                        .at(None, &addon.name),
                    );
                    break;
                }
            };
            let installed_ok = offered.iter().any(|v| v.version == addon.version);
            if i == 0 {
                if !installed_ok {
                    out.push(
                        Finding::new(
                            "EKS009",
                            Severity::Warning,
                            &object,
                            format!(
                                "{} is not listed as compatible with the cluster's current version {k8s}",
                                addon.version
                            ),
                            format!(
                                "update it before the upgrade: `aws eks describe-addon-versions --addon-name {} --kubernetes-version {k8s}`",
                                addon.name
                            ),
                        )
                        .at(None, &addon.name),
                    );
                }
                continue;
            }
            if offered.is_empty() {
                out.push(
                    Finding::new(
                        "EKS009",
                        Severity::Error,
                        &object,
                        format!("EKS offers no version of this add-on for Kubernetes {k8s}"),
                        format!(
                            "remove the add-on or replace it with a self-managed installation before upgrading to {k8s}"
                        ),
                    )
                    .at(None, &addon.name),
                );
            } else if !installed_ok && !facts.coverage.addons {
                out.push(
                    Finding::new(
                        "EKS009",
                        Severity::Error,
                        &object,
                        format!(
                            "{} does not support Kubernetes {k8s} and the workflow has no `upgradeAddons` step to move it",
                            addon.version
                        ),
                        format!(
                            "add an `upgradeAddons` step to the workflow's upgrade section, or update the add-on to a version listed for {k8s}"
                        ),
                    )
                    .at(None, &addon.name),
                );
            }
        }
    }
    out
}
