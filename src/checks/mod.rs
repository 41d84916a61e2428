//! The pre-flight check catalog: what would stop or endanger an upgrade, found before anything
//! changes. Each check has a stable code, a severity, the objects it concerns and the fix.

pub mod cluster;
pub mod velero;

use serde::{Deserialize, Serialize};

use crate::cloud::connect::Connection;
use crate::cloud::eks::{AddonInfo, NodegroupInfo};
use crate::types::Version;
use crate::workflow::model::{CheckOverride, FailOn, OverrideSeverity, Preflight};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem found by a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable code, such as `EKS003`.
    pub code: String,
    pub severity: Severity,
    /// The object concerned: `Nodegroup general`, `Deployment shop/web`, `cluster demo`.
    pub object: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub message: String,
    pub remedy: String,
    /// Set when a workflow override changed the severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden: Option<String>,
}

impl Finding {
    pub fn new(
        code: &str,
        severity: Severity,
        object: impl Into<String>,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Finding {
            code: code.into(),
            severity,
            object: object.into(),
            namespace: None,
            name: None,
            message: message.into(),
            remedy: remedy.into(),
            overridden: None,
        }
    }

    pub fn at(mut self, namespace: Option<&str>, name: &str) -> Self {
        self.namespace = namespace.map(str::to_string);
        self.name = Some(name.to_string());
        self
    }
}

/// What the checks look at, gathered once.
pub struct Facts<'a> {
    pub conn: &'a Connection,
    pub current: Version,
    pub hops: &'a [Version],
    pub nodegroups: Vec<NodegroupInfo>,
    pub addons: Vec<AddonInfo>,
    pub velero_namespace: &'a str,
    pub storage_location: &'a str,
}

/// Applies the workflow's ignores and per-object overrides.
pub fn apply_policy(findings: Vec<Finding>, policy: &Preflight) -> Vec<Finding> {
    findings
        .into_iter()
        .filter(|f| !policy.ignore.iter().any(|c| c == &f.code))
        .filter_map(|mut f| {
            let rule: Option<&CheckOverride> = policy.overrides.iter().find(|o| {
                o.check == f.code
                    && o.namespace
                        .as_ref()
                        .is_none_or(|ns| f.namespace.as_ref() == Some(ns))
                    && o.name.as_ref().is_none_or(|n| f.name.as_ref() == Some(n))
            });
            match rule.map(|r| (r.severity, r.reason.clone())) {
                Some((OverrideSeverity::Ignore, _)) => None,
                Some((sev, reason)) => {
                    f.severity = if sev == OverrideSeverity::Error {
                        Severity::Error
                    } else {
                        Severity::Warning
                    };
                    f.overridden = Some(reason.unwrap_or_else(|| "workflow override".into()));
                    Some(f)
                }
                None => Some(f),
            }
        })
        .collect()
}

/// Whether findings reach the workflow's `failOn`.
pub fn blocking(findings: &[Finding], fail_on: FailOn) -> Vec<&Finding> {
    let threshold = match fail_on {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
    };
    findings
        .iter()
        .filter(|f| f.severity >= threshold)
        .collect()
}

/// Runs the whole catalog.
pub async fn run_all(facts: &Facts<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(cluster::check(facts).await);
    findings.extend(velero::check(facts).await);
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.code.cmp(&b.code))
            .then(a.object.cmp(&b.object))
    });
    findings
}
