//! The Kubernetes version catalogue as EKS serves it: DescribeClusterVersions, support status
//! computed from the scenario's dates, platform versions and node AMI release versions.

use chrono::{NaiveDate, Utc};
use serde_json::{Value, json};

use super::errors::EksError;
use super::request::{Query, page};
use crate::scenario::{Scenario, VersionSpec};
use eks_upgrade_core::types::Version;

/// `versionStatus` of a catalogue version on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Standard,
    Extended,
    Unsupported,
}

impl Support {
    /// The `VersionStatus` enum value.
    pub fn version_status(self) -> &'static str {
        match self {
            Support::Standard => "STANDARD_SUPPORT",
            Support::Extended => "EXTENDED_SUPPORT",
            Support::Unsupported => "UNSUPPORTED",
        }
    }

    /// The deprecated lower-case `ClusterVersionStatus` value.
    pub fn status(self) -> &'static str {
        match self {
            Support::Standard => "standard-support",
            Support::Extended => "extended-support",
            Support::Unsupported => "unsupported",
        }
    }
}

fn date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

/// Epoch seconds of a `YYYY-MM-DD` date at midnight UTC.
fn epoch(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .unwrap_or_default()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Whether EKS has released the version yet. An unreadable date counts as released: the
/// scenario's author listed the version to be used.
pub fn released(spec: &VersionSpec) -> bool {
    date(&spec.release_date).is_none_or(|d| d <= today())
}

/// The support status of a version today. Unreadable end dates count as "not yet ended".
pub fn support(spec: &VersionSpec) -> Support {
    let now = today();
    let ended = |text: &str| date(text).is_some_and(|d| d <= now);
    if ended(&spec.end_of_extended_support) {
        Support::Unsupported
    } else if ended(&spec.end_of_standard_support) {
        Support::Extended
    } else {
        Support::Standard
    }
}

/// The catalogue entry for a version, if EKS offers it at all.
pub fn find(scenario: &Scenario, version: Version) -> Option<VersionSpec> {
    scenario
        .versions()
        .into_iter()
        .find(|v| v.version == version)
}

/// The default (latest) platform version of a Kubernetes version, `eks.N`.
pub fn platform_version(scenario: &Scenario, version: Version) -> String {
    find(scenario, version)
        .and_then(|v| v.platform_version)
        .unwrap_or_else(|| "eks.1".to_string())
}

/// The patch release EKS runs for a minor; matches the kubelet version the simulated nodes show.
pub fn patch_version(version: Version) -> String {
    format!("{}.{}.5", version.major, version.minor)
}

/// The newest EKS-optimized AMI release for a minor, `1.34.5-20251120`: built 45 days after EKS
/// released the minor, so it is stable per scenario.
pub fn release_version(scenario: &Scenario, version: Version) -> String {
    let built = find(scenario, version)
        .and_then(|v| date(&v.release_date))
        .and_then(|d| d.checked_add_days(chrono::Days::new(45)))
        .unwrap_or_else(|| NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default());
    format!("{}-{}", patch_version(version), built.format("%Y%m%d"))
}

/// Whether UpdateClusterVersion may target the version: listed, released and still supported.
pub fn offered(scenario: &Scenario, version: Version) -> bool {
    find(scenario, version).is_some_and(|v| released(&v) && support(&v) != Support::Unsupported)
}

fn parse_bool(query: &Query, key: &str) -> Result<Option<bool>, EksError> {
    match query.one(key) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(EksError::invalid_parameter(format!(
            "{key} must be true or false, not {other}"
        ))),
    }
}

/// DescribeClusterVersions: the catalogue, newest first, with its filters and pagination.
pub fn describe_cluster_versions(scenario: &Scenario, query: &Query) -> Result<Value, EksError> {
    let default_only = parse_bool(query, "defaultOnly")?.unwrap_or(false);
    let include_all = parse_bool(query, "includeAll")?.unwrap_or(false);
    let wanted: Vec<&str> = query.all("clusterVersions");
    let version_status = query.one("versionStatus");
    if let Some(s) = version_status
        && !matches!(s, "STANDARD_SUPPORT" | "EXTENDED_SUPPORT" | "UNSUPPORTED")
    {
        return Err(EksError::invalid_parameter(format!(
            "Invalid versionStatus: {s}. Valid values are STANDARD_SUPPORT, EXTENDED_SUPPORT, UNSUPPORTED"
        )));
    }
    let status = query.one("status");
    if let Some(s) = status
        && !matches!(s, "standard-support" | "extended-support" | "unsupported")
    {
        return Err(EksError::invalid_parameter(format!(
            "Invalid status: {s}. Valid values are standard-support, extended-support, unsupported"
        )));
    }
    // Only standard EKS clusters exist in the sandbox (no EKS Anywhere, no Outposts).
    let cluster_type_ok = query.one("clusterType").is_none_or(|t| t == "eks");
    // Asking for unsupported versions by status is asking to see them.
    let show_unsupported =
        include_all || version_status == Some("UNSUPPORTED") || status == Some("unsupported");

    let mut versions: Vec<VersionSpec> = scenario
        .versions()
        .into_iter()
        .filter(|v| cluster_type_ok && released(v))
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    let items: Vec<Value> = versions
        .iter()
        .filter_map(|v| {
            let s = support(v);
            let keep = (show_unsupported || s != Support::Unsupported)
                && (!default_only || v.default)
                && (wanted.is_empty() || wanted.contains(&v.version.to_string().as_str()))
                && version_status.is_none_or(|f| f == s.version_status())
                && status.is_none_or(|f| f == s.status());
            keep.then(|| {
                let dated = |text: &str| date(text).map(epoch);
                json!({
                    "clusterVersion": v.version.to_string(),
                    "clusterType": "eks",
                    "defaultPlatformVersion": v.platform_version.clone().unwrap_or_else(|| "eks.1".into()),
                    "defaultVersion": v.default,
                    "releaseDate": dated(&v.release_date),
                    "endOfStandardSupportDate": dated(&v.end_of_standard_support),
                    "endOfExtendedSupportDate": dated(&v.end_of_extended_support),
                    "status": s.status(),
                    "versionStatus": s.version_status(),
                    "kubernetesPatchVersion": patch_version(v.version),
                })
            })
        })
        .collect();
    let (items, next) = page(items, query.max_results()?, query.next_token())?;
    Ok(json!({ "clusterVersions": items, "nextToken": next }))
}
