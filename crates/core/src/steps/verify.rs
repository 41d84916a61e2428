//! `verifyBackup`: proves in S3, without the Velero server, that the backup a `veleroBackup`
//! step made is complete and readable.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::{Context, StepCtx, StepError, StepResult, backup};
use crate::cloud::eks::EksError;
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::{DurationText, StepRef};
use crate::journal::Fact;
use crate::types::HumanDuration;
use crate::velero::layout::BackupLocation;
use crate::velero::manifest::sign::{Signing, SigningAlgorithm};
use crate::velero::manifest::{ManifestError, ManifestRecord, write};
use crate::velero::verify::{Verification, VerifyDepth};
use crate::velero::{location, objects, verify};

/// What verification found, sound or not.
pub const VERIFICATION: Fact<Verification> = Fact::new("verification");
/// The proof a restore asks for: recorded only when the backup verified.
pub const VERIFIED: Fact<Verified> = Fact::new("verified");
/// The manifest written (or found) beside the backup, with its own SHA-256: what a later use
/// checks the bucket's files against.
pub const MANIFEST: Fact<ManifestRecord> = Fact::new("manifest");

/// How long verification may take unless the step says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What `veleroRestore` looks for before it restores anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    pub backup: String,
    pub uid: Option<String>,
    pub depth: String,
}

/// Options for backup verification.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawVerifyBackup {
    /// The id of the `veleroBackup` step whose backup to verify.
    pub backup: Spanned<StepRef>,
    /// `metadata` or `full` (default).
    pub depth: Option<VerifyDepth>,
    /// How long verification may take. Default: `30m`.
    pub timeout: Option<Spanned<DurationText>>,
    /// Write a tamper-evident manifest beside the backup (`backups/NAME/eks-upgrade-manifest.json`):
    /// the SHA-256 of every file, checked again before any restore. Default: `true`. Needs
    /// `s3:PutObject` on that key.
    pub manifest: Option<bool>,
    /// Sign the manifest with an asymmetric KMS key, so that someone with write access to the
    /// bucket cannot rewrite it unnoticed. Needs `kms:Sign` (and `kms:Verify` to restore).
    pub sign: Option<Spanned<RawSign>>,
}

/// Signing the manifest.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSign {
    /// The KMS key (`KeyUsage: SIGN_VERIFY`): key id, key ARN, `alias/NAME` or alias ARN.
    pub kms_key: String,
    /// `ECDSA_SHA_256` (default; `ECC_NIST_P256` keys) or `RSASSA_PSS_SHA_256` (RSA keys).
    pub algorithm: Option<SigningAlgorithm>,
}

/// A validated `verifyBackup` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyBackup {
    /// The id of the `veleroBackup` step.
    pub backup: String,
    pub depth: VerifyDepth,
    pub timeout: HumanDuration,
    pub manifest: bool,
    pub sign: Option<Signing>,
}

pub struct VerifyBackupKind;

impl Kind for VerifyBackupKind {
    type Raw = RawVerifyBackup;
    type Model = VerifyBackup;

    const DOC: &'static str = "Checks a backup's files directly in S3.";
    const TITLE: &'static str = "Verify backup in S3";
    const PLACEMENT: Placement = backup::VeleroBackupKind::PLACEMENT;
    const MUTATES: bool = false;
    const ROLES: &'static [Role] = &[Role::VerifiesBackup];
    const EXAMPLE: &'static str = "{ backup: backup }";

    fn build(
        raw: &Spanned<RawVerifyBackup>,
        v: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<VerifyBackup> {
        let b = &raw.value;
        let manifest = b.manifest.unwrap_or(true);
        if let Some(sign) = &b.sign {
            if !manifest {
                v.problem(
                    sign.loc,
                    "`sign` needs the manifest, and `manifest` is `false`",
                    "nothing to sign",
                    "remove `manifest: false`, or remove `sign`",
                );
            }
            if sign.value.kms_key.trim().is_empty() {
                v.problem(
                    sign.loc,
                    "`sign.kmsKey` is empty",
                    "no key",
                    "name the KMS key: a key id, key ARN, `alias/NAME` or alias ARN",
                );
            }
        }
        Some(VerifyBackup {
            backup: b.backup.value.0.clone(),
            depth: b.depth.unwrap_or(VerifyDepth::Full),
            timeout: v.positive("timeout", b.timeout.as_ref(), DEFAULT_TIMEOUT),
            manifest,
            sign: b.sign.as_ref().map(|s| Signing {
                kms_key: s.value.kms_key.clone(),
                algorithm: s.value.algorithm.unwrap_or_default(),
            }),
        })
    }

    fn backup_ref(raw: &RawVerifyBackup) -> Option<&Spanned<StepRef>> {
        Some(&raw.backup)
    }

    fn backup(step: &VerifyBackup) -> Option<&str> {
        Some(&step.backup)
    }

    async fn plan(step: &VerifyBackup, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let mut lines = vec![format!(
            "reads the files of the backup of `{}` in S3 ({}); changes nothing in the cluster",
            step.backup,
            if step.depth == VerifyDepth::Full {
                "every item of the tarball"
            } else {
                "metadata and sibling files"
            }
        )];
        if step.manifest {
            lines.push(match &step.sign {
                Some(s) => format!(
                    "writes a manifest of the backup's files beside it, signed with KMS key `{}`",
                    s.kms_key
                ),
                None => "writes a manifest of the backup's files beside it".into(),
            });
        }
        Ok(lines)
    }

    async fn run(step: &VerifyBackup, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut VerifyBackup, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
    }
}

async fn run(step: &VerifyBackup, ctx: &StepCtx<'_>) -> StepResult {
    let name: String = ctx
        .fact_of(&step.backup, &backup::BACKUP)
        .await
        .ok_or_else(|| {
            StepError::Failed(format!(
                "step `{}` has not created a backup in this run",
                step.backup
            ))
        })?;
    let recorded_uid: Option<String> = ctx
        .fact_of(&step.backup, &backup::BACKUP_UID)
        .await
        .flatten();
    let namespace = ctx.velero.namespace.as_str();

    let api = objects::backups(ctx.conn.kube.clone(), namespace);
    let backup = api
        .get_opt(&name)
        .await
        .context(|| format!("cannot read Backup `{name}`"))?
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
        .unwrap_or(&ctx.velero.storage_location)
        .to_string();
    let storage = location::get(ctx.conn.kube.clone(), namespace, &location_name)
        .await
        .cause()?;
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
    .context(|| "verification could not be carried out".into())?;
    ctx.record(&VERIFICATION, &verification).await?;

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
        VerifyDepth::Full => "full",
        VerifyDepth::Metadata => "metadata",
    };
    let mut manifest_note = String::new();
    if step.manifest {
        let kms = step
            .sign
            .as_ref()
            .map(|_| aws_sdk_kms::Client::new(&ctx.conn.sdk));
        let recorded = write::record(
            &s3,
            kms.as_ref(),
            &target,
            &verification,
            step.sign.as_ref(),
        )
        .await
        .map_err(|e| manifest_failure(&name, e))?;
        ctx.record(&MANIFEST, &recorded.record).await?;
        manifest_note = format!(
            "; manifest {} (SHA-256 {}…){}",
            if recorded.created {
                "written"
            } else {
                "unchanged"
            },
            &recorded.record.sha256[..12],
            recorded
                .record
                .signed_by
                .as_ref()
                .map(|k| format!(", signed by `{k}`"))
                .unwrap_or_default()
        );
    }
    ctx.record(
        &VERIFIED,
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
        "Backup `{name}` verified in S3 ({depth}): {items} items, {mib:.1} MiB, {} warnings{manifest_note}",
        verification.findings.len()
    ))
}

/// A manifest that cannot be written is a failed step (the promise of a tamper-evident backup
/// cannot be kept); files that no longer match the manifest of an earlier verification mean the
/// backup changed in the bucket.
fn manifest_failure(name: &str, e: ManifestError) -> StepError {
    let context = match &e {
        ManifestError::Write { .. } | ManifestError::Sign { .. } | ManifestError::S3 { .. } => {
            format!(
                "cannot write the manifest of Backup `{name}` (set `manifest: false` to go without)"
            )
        }
        _ => format!(
            "Backup `{name}` no longer matches the manifest written when it was first verified"
        ),
    };
    StepError::Call {
        context,
        source: Box::new(e),
    }
}
