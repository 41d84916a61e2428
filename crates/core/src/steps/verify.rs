//! `verifyBackup`: proves in S3, without the Velero server, that the backup a `veleroBackup`
//! step made is complete and readable.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{StepCtx, StepError, StepResult};
use crate::velero::layout::BackupLocation;
use crate::velero::{location, objects, verify};
use crate::workflow::model::VerifyBackup;

/// What `veleroRestore` looks for before it restores anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    pub backup: String,
    pub uid: Option<String>,
    pub depth: String,
}

pub async fn run(step: &VerifyBackup, ctx: &StepCtx<'_>) -> StepResult {
    let name: String = ctx.fact_of(&step.backup, "backup").await.ok_or_else(|| {
        StepError::Failed(format!(
            "step `{}` has not created a backup in this run",
            step.backup
        ))
    })?;
    let recorded_uid: Option<String> = ctx.fact_of(&step.backup, "backupUid").await;
    let namespace = ctx.workflow.velero.namespace.as_str();

    let api = objects::backups(ctx.conn.kube.clone(), namespace);
    let backup = api
        .get_opt(&name)
        .await
        .map_err(|e| StepError::Failed(format!("cannot read Backup `{name}`: {e}")))?
        .ok_or_else(|| {
            StepError::Failed(format!("Backup `{name}` no longer exists in `{namespace}`"))
        })?;
    let status = objects::Status::of(&backup);
    if recorded_uid.is_some() && status.uid != recorded_uid {
        return Err(StepError::Failed(format!(
            "Backup `{name}` was replaced since this run created it (its uid changed)"
        )));
    }
    let location_name = backup
        .data
        .pointer("/spec/storageLocation")
        .and_then(|v| v.as_str())
        .unwrap_or(&ctx.workflow.velero.storage_location)
        .to_string();
    let storage = location::get(ctx.conn.kube.clone(), namespace, &location_name)
        .await
        .map_err(|e| StepError::Failed(e.to_string()))?;
    let s3 = storage.s3_client(&ctx.conn.sdk);
    let target = BackupLocation {
        bucket: storage.bucket.clone(),
        prefix: storage.prefix.clone(),
        name: name.clone(),
    };

    // Streaming reports per chunk; people and logs need a line every couple of seconds.
    let last = Mutex::new(Instant::now() - Duration::from_secs(10));
    let progress = |read: u64, total: u64| {
        let Ok(mut last) = last.lock() else { return };
        if last.elapsed() >= Duration::from_secs(2) || read == total {
            *last = Instant::now();
            ctx.progress(
                &format!("streaming {}", target.url(&target.tarball_key())),
                Some(read / (1024 * 1024)),
                Some(total.div_ceil(1024 * 1024)),
            );
        }
    };
    let verification = tokio::time::timeout(
        step.timeout.0,
        verify::verify(
            &s3,
            &target,
            status.uid.as_deref(),
            step.depth,
            Some(&progress),
        ),
    )
    .await
    .map_err(|_| {
        StepError::Failed(format!(
            "verification did not finish within {}",
            step.timeout
        ))
    })?
    .map_err(|e| StepError::Failed(format!("verification could not be carried out: {e}")))?;
    ctx.record("verification", &verification).await?;

    if !verification.sound {
        let shown: Vec<String> = verification
            .findings
            .iter()
            .filter(|f| f.severity == verify::Severity::Error)
            .take(5)
            .map(|f| format!("{}: {}", f.key, f.message))
            .collect();
        let more = verification.findings.len().saturating_sub(shown.len())
            + verification.suppressed_findings;
        return Err(StepError::Failed(format!(
            "Backup `{name}` failed verification in S3: {}{}",
            shown.join("; "),
            if more > 0 {
                format!(" (and {more} more findings)")
            } else {
                String::new()
            }
        )));
    }
    let depth = match step.depth {
        crate::workflow::model::VerifyDepth::Full => "full",
        crate::workflow::model::VerifyDepth::Metadata => "metadata",
    };
    ctx.record(
        "verified",
        &Verified {
            backup: name.clone(),
            uid: status.uid.clone(),
            depth: depth.into(),
        },
    )
    .await?;
    let items = verification
        .items_in_tarball
        .or(verification.items_in_resource_list)
        .unwrap_or(0);
    let mib = verification.tarball_bytes.unwrap_or(0) as f64 / (1024.0 * 1024.0);
    Ok(format!(
        "Backup `{name}` verified in S3 ({depth}): {items} items, {mib:.1} MiB, {} warnings",
        verification.findings.len()
    ))
}
