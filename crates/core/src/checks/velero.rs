//! Checks that Velero can take and restore the backup the upgrade depends on.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;

use super::{Facts, Finding, Severity};
use crate::velero::location;

pub async fn check(facts: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let ns = facts.velero_namespace;
    let kube = facts.conn.kube.clone();
    match Api::<Deployment>::namespaced(kube.clone(), ns)
        .get_opt("velero")
        .await
    {
        Ok(Some(d)) => {
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let have = d
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
            if have < want.max(1) {
                out.push(
                    Finding::new(
                        "VEL001",
                        Severity::Error,
                        format!("Deployment {ns}/velero"),
                        format!("the Velero server is not available ({have}/{want} replicas)"),
                        "check `kubectl -n velero get pods` and the server's logs",
                    )
                    .at(Some(ns), "velero"),
                );
            }
        }
        Ok(None) => out.push(Finding::new(
            "VEL001",
            Severity::Error,
            format!("namespace {ns}"),
            "no Velero server Deployment `velero` found",
            "install Velero, or set `spec.velero.namespace` to where it runs",
        )),
        Err(e) => out.push(Finding::new(
            "VEL001",
            Severity::Error,
            format!("namespace {ns}"),
            format!(
                "cannot read the Velero Deployment: {}",
                crate::errors::kube(&e)
            ),
            "grant `get` on deployments in the Velero namespace",
        )),
    }
    match location::get(kube, ns, facts.storage_location).await {
        Ok(l) if l.phase.as_deref() == Some("Available") => {}
        Ok(l) => out.push(
            Finding::new(
                "VEL002",
                Severity::Error,
                format!("BackupStorageLocation {ns}/{}", l.name),
                format!(
                    "the location is {}",
                    l.phase.as_deref().unwrap_or("not validated yet")
                ),
                "check the bucket, its credentials and `velero backup-location get`",
            )
            .at(Some(ns), &l.name),
        ),
        Err(e) => out.push(Finding::new(
            "VEL002",
            Severity::Error,
            format!("BackupStorageLocation {ns}/{}", facts.storage_location),
            e.to_string(),
            "create the location, or set `spec.velero.storageLocation`",
        )),
    }
    out
}
