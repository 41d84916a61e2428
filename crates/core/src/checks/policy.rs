//! What a workflow says about the catalog's findings: the severity that stops the run, the
//! checks to skip, and per-object exceptions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Finding, Severity};

/// Severity at or above which a pre-flight finding stops the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FailOn {
    /// Stop on errors only (default).
    Error,
    /// Stop on warnings too.
    Warning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OverrideSeverity {
    /// Count matching findings as errors.
    Error,
    /// Count matching findings as warnings.
    Warning,
    /// Drop the finding.
    Ignore,
}

/// A per-object exception: findings of `check` on matching objects count differently.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckOverride {
    pub check: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub severity: OverrideSeverity,
    pub reason: Option<String>,
}

/// The workflow's policy for findings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub fail_on: FailOn,
    pub ignore: Vec<String>,
    pub overrides: Vec<CheckOverride>,
}

impl Default for Policy {
    /// The whole catalog, stopping on errors: what `check` uses for a workflow without a
    /// `preflight` step.
    fn default() -> Self {
        Policy {
            fail_on: FailOn::Error,
            ignore: Vec::new(),
            overrides: Vec::new(),
        }
    }
}

/// Applies the workflow's ignores and per-object overrides.
pub fn apply_policy(findings: Vec<Finding>, policy: &Policy) -> Vec<Finding> {
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
