//! Checks that Velero can take and restore the backup the upgrade depends on.

use super::{Facts, Finding, Severity};
use crate::velero::{location, server};

pub async fn check(facts: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let ns = facts.velero_namespace;
    let kube = facts.conn.kube.clone();
    match server::replicas(kube.clone(), ns).await {
        Ok(Some(r)) => {
            let (have, want) = (r.available, r.wanted);
            if !r.ready() {
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
