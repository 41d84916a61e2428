//! Checks of the cluster as EKS and the API server see it.

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};

use super::{Facts, Finding, Severity};
use crate::cloud::eks::{self, UpdateOf};

pub async fn check(facts: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let conn = facts.conn;
    let cluster = conn.cluster.name.as_str();
    let object = format!("cluster {cluster}");

    if conn.cluster.status != "ACTIVE" {
        out.push(Finding::new(
            "EKS001",
            Severity::Error,
            &object,
            format!("the cluster is {}, not ACTIVE", conn.cluster.status),
            "wait until `aws eks describe-cluster` reports ACTIVE",
        ));
    }
    match eks::in_progress_updates(&conn.eks, cluster, UpdateOf::Cluster).await {
        Ok(updates) => {
            for u in updates {
                out.push(Finding::new(
                    "EKS002",
                    Severity::Error,
                    &object,
                    format!("update {} ({}) is in progress", u.id, u.kind),
                    "wait for it to finish; EKS runs one cluster update at a time",
                ));
            }
        }
        Err(e) => out.push(Finding::new(
            "EKS002",
            Severity::Error,
            &object,
            format!("cannot list updates: {e}"),
            "check the credentials' `eks:ListUpdates` permission",
        )),
    }
    for issue in &conn.cluster.health_issues {
        out.push(Finding::new(
            "EKS011",
            Severity::Error,
            &object,
            format!("the control plane reports a health issue: {issue}"),
            "fix it first (subnets, security groups, KMS key): EKS may fail or refuse the upgrade while it lasts",
        ));
    }
    let last_hop = facts.hops.iter().copied().max();
    for ng in &facts.nodegroups {
        let Some(ami) = ng.ami_type.as_deref().filter(|a| a.starts_with("AL2_")) else {
            continue;
        };
        let Some(last) = last_hop.filter(|h| *h >= crate::types::Version::new(1, 32)) else {
            continue;
        };
        let gone = last >= crate::types::Version::new(1, 33);
        out.push(
            Finding::new(
                "EKS012",
                if gone { Severity::Error } else { Severity::Warning },
                format!("Nodegroup {}", ng.name),
                if gone {
                    format!("uses the `{ami}` AMI type; EKS publishes no Amazon Linux 2 AMIs for Kubernetes 1.33 and later, so the node group cannot follow the run to {last}")
                } else {
                    format!("uses the `{ami}` AMI type; Kubernetes 1.32 is the last version with Amazon Linux 2 AMIs")
                },
                "move the node group to an AL2023 or Bottlerocket AMI type (a new node group, then drain the old one)",
            )
            .at(None, &ng.name),
        );
    }
    match facts.offered_versions().await {
        Ok(offered) => {
            for hop in facts.hops {
                if !offered.iter().any(|o| o.version == *hop) {
                    out.push(Finding::new(
                        "EKS006",
                        Severity::Error,
                        &object,
                        format!(
                            "EKS does not offer Kubernetes {hop}, a version this run passes through"
                        ),
                        "choose a target EKS lists: `aws eks describe-cluster-versions`",
                    ));
                }
            }
        }
        Err(e) => out.push(Finding::new(
            "EKS006",
            Severity::Warning,
            &object,
            format!("cannot list the versions EKS offers: {e}"),
            "grant `eks:DescribeClusterVersions`",
        )),
    }
    for ng in &facts.nodegroups {
        match ng.version {
            Some(v) if v != facts.current => out.push(
                Finding::new(
                    "EKS003",
                    Severity::Error,
                    format!("Nodegroup {}", ng.name),
                    format!("the node group runs {v}, the control plane {}; EKS refuses the upgrade until they match", facts.current),
                    format!("upgrade it first: `aws eks update-nodegroup-version --cluster-name {cluster} --nodegroup-name {}`", ng.name),
                )
                .at(None, &ng.name),
            ),
            _ => {}
        }
        if ng.status != "ACTIVE" {
            out.push(
                Finding::new(
                    "EKS004",
                    Severity::Error,
                    format!("Nodegroup {}", ng.name),
                    format!(
                        "the node group is {}{}",
                        ng.status,
                        if ng.health_issues.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", ng.health_issues.join("; "))
                        }
                    ),
                    "resolve its health issues in the EKS console before upgrading",
                )
                .at(None, &ng.name),
            );
        }
    }
    for a in &facts.addons {
        if a.status != "ACTIVE" {
            out.push(
                Finding::new(
                    "EKS005",
                    Severity::Error,
                    format!("Addon {}", a.name),
                    format!(
                        "the add-on is {}{}",
                        a.status,
                        if a.health_issues.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", a.health_issues.join("; "))
                        }
                    ),
                    "fix the add-on before upgrading: `aws eks describe-addon`",
                )
                .at(None, &a.name),
            );
        }
    }

    match Api::<PodDisruptionBudget>::all(conn.kube.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => {
            for pdb in list.items {
                let allowed = pdb
                    .status
                    .as_ref()
                    .map(|s| s.disruptions_allowed)
                    .unwrap_or(1);
                let expected = pdb.status.as_ref().map(|s| s.expected_pods).unwrap_or(0);
                if allowed == 0 && expected > 0 {
                    let ns = pdb.metadata.namespace.clone().unwrap_or_default();
                    let name = pdb.metadata.name.clone().unwrap_or_default();
                    out.push(
                        Finding::new(
                            "K8S001",
                            Severity::Warning,
                            format!("PodDisruptionBudget {ns}/{name}"),
                            "allows zero disruptions: node drains during the node-group upgrade will fail with PodEvictionFailure",
                            "scale the workload up or relax `minAvailable`/`maxUnavailable` for the upgrade",
                        )
                        .at(Some(&ns), &name),
                    );
                }
            }
        }
        Err(e) => out.push(Finding::new(
            "K8S001",
            Severity::Warning,
            &object,
            format!(
                "cannot list PodDisruptionBudgets: {}",
                crate::errors::kube(&e)
            ),
            "grant `list` on poddisruptionbudgets",
        )),
    }
    out
}
