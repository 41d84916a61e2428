//! Checks of `velero-backup.json`: that the file in the bucket belongs to the Backup object we
//! know, finished, and recorded no errors.

use serde_json::Value;

use super::finding::{Finding, Findings};
use crate::velero::layout::FORMAT_VERSION;

/// What the metadata file says, for the later checks.
#[derive(Debug, Clone, Default)]
pub struct BackupFacts {
    pub uid: Option<String>,
    pub phase: Option<String>,
    pub items_backed_up: Option<u64>,
    pub format_version: Option<String>,
}

pub fn check(
    key: &str,
    bytes: &[u8],
    name: &str,
    expected_uid: Option<&str>,
    findings: &mut Findings,
) -> BackupFacts {
    let doc: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            findings.push(Finding::error(key, format!("not valid JSON: {e}")));
            return BackupFacts::default();
        }
    };
    let text = |ptr: &str| doc.pointer(ptr).and_then(Value::as_str).map(str::to_string);
    let facts = BackupFacts {
        uid: text("/metadata/uid"),
        phase: text("/status/phase"),
        items_backed_up: doc
            .pointer("/status/progress/itemsBackedUp")
            .and_then(Value::as_u64),
        format_version: text("/status/formatVersion"),
    };
    if text("/kind").as_deref() != Some("Backup") {
        findings.push(Finding::error(
            key,
            format!(
                "`kind` is {:?}, not `Backup`",
                text("/kind").unwrap_or_default()
            ),
        ));
    }
    if text("/metadata/name").as_deref() != Some(name) {
        findings.push(Finding::error(
            key,
            format!(
                "`metadata.name` is {:?}, not `{name}`",
                text("/metadata/name").unwrap_or_default()
            ),
        ));
    }
    match (expected_uid, facts.uid.as_deref()) {
        (Some(want), Some(got)) if want != got => findings.push(Finding::error(
            key,
            format!("`metadata.uid` is `{got}`, but the Backup object's uid is `{want}`: the files belong to another backup of the same name"),
        )),
        (Some(_), None) => findings.push(Finding::error(key, "`metadata.uid` is missing")),
        _ => {}
    }
    match facts.phase.as_deref() {
        Some("Completed") => {}
        Some(phase) => findings.push(Finding::error(
            key,
            format!("the backup's phase in S3 is `{phase}`, not `Completed`"),
        )),
        None => findings.push(Finding::error(key, "`status.phase` is missing")),
    }
    match facts.format_version.as_deref() {
        Some(FORMAT_VERSION) => {}
        Some(other) => findings.push(Finding::error(
            key,
            format!(
                "format version `{other}` is not one this tool understands (`{FORMAT_VERSION}`)"
            ),
        )),
        None => findings.push(Finding::error(key, "`status.formatVersion` is missing")),
    }
    let errors = doc
        .pointer("/status/errors")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if errors > 0 {
        findings.push(Finding::error(
            key,
            format!("Velero recorded {errors} errors for this backup"),
        ));
    }
    let warnings = doc
        .pointer("/status/warnings")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if warnings > 0 {
        findings.push(Finding::warning(
            key,
            format!("Velero recorded {warnings} warnings for this backup"),
        ));
    }
    if facts.items_backed_up.is_none() {
        findings.push(Finding::error(
            key,
            "`status.progress.itemsBackedUp` is missing",
        ));
    }
    facts
}
