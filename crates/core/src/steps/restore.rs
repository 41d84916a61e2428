//! `veleroRestore`: restores the backup a `veleroBackup` step made — only if this run verified
//! it in S3, because Velero itself restores whatever it is given — and only after the backup's
//! files still match the manifest written at verification. By default it first previews what
//! the restore will change, and records that preview for the report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::verify::{MANIFEST, VERIFIED, Verified};
use super::{Context, StepCtx, StepError, StepResult, backup, object_name};
use crate::cloud::connect::Connection;
use crate::cloud::eks::EksError;
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::{DurationText, StepRef};
use crate::journal::Fact;
use crate::types::{HumanDuration, Phase};
use crate::velero::layout::BackupLocation;
use crate::velero::manifest::ManifestRecord;
use crate::velero::manifest::check::Trust;
use crate::velero::preview::{Action, Listing, Preview};
use crate::velero::restore::{ExistingResourcePolicy, RestoreOutcome, RestoreSpec};
use crate::velero::{gate, location, objects, restore};

/// The name of the Restore, journaled before it is created.
pub const RESTORE: Fact<String> = Fact::new("restore");
/// How the Restore ended.
pub const OUTCOME: Fact<RestoreOutcome> = Fact::new("outcome");
/// The errors and warnings Velero listed for a restore that did not complete.
pub const RESULTS: Fact<restore::RestoreResults> = Fact::new("results");
/// What the restore was about to change, worked out just before it was created.
pub const PREVIEW: Fact<Preview> = Fact::new("preview");
/// Why there is no preview, when it was asked for and could not be made.
pub const PREVIEW_ERROR: Fact<String> = Fact::new("previewError");

/// How long to wait for the restore unless the step says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Where recovery steps may appear.
pub const RECOVERY: Placement = Placement {
    sections: &[Phase::OnFailure],
    why: "recovery runs only when an upgrade step failed",
};

/// Options for the restore.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawVeleroRestore {
    /// The id of the `veleroBackup` step whose backup to restore. It must be verified.
    pub backup: Spanned<StepRef>,
    /// `update` (default) or `none`.
    pub existing_resource_policy: Option<ExistingResourcePolicy>,
    /// Namespaces to restore. Default: all in the backup.
    pub included_namespaces: Option<Vec<String>>,
    /// Namespaces not to restore.
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    /// Restore the objects of a backed-up namespace into another: `{ shop: shop-restored }`.
    #[serde(default)]
    pub namespace_mapping: BTreeMap<String, String>,
    /// Work out what the restore will create, update, leave unchanged or skip before creating
    /// it, and record that in the run's report (default `true`). It reads the tarball once,
    /// which the check against the backup's manifest needs anyway, and lists the kinds the
    /// backup holds, a page at a time; a preview that cannot read the cluster does not stop the
    /// restore.
    pub preview: Option<bool>,
    /// How long to wait for the restore. Default: `1h`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// A validated `veleroRestore` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VeleroRestore {
    /// The id of the `veleroBackup` step.
    pub backup: String,
    #[serde(flatten)]
    pub spec: RestoreSpec,
    pub preview: bool,
    pub timeout: HumanDuration,
}

pub struct VeleroRestoreKind;

impl Kind for VeleroRestoreKind {
    type Raw = RawVeleroRestore;
    type Model = VeleroRestore;

    const DOC: &'static str = "Restores a verified backup.";
    const TITLE: &'static str = "Velero restore";
    const PLACEMENT: Placement = RECOVERY;
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::RestoresBackup];
    const EXAMPLE: &'static str = "{ backup: backup }";

    fn build(
        raw: &Spanned<RawVeleroRestore>,
        v: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<VeleroRestore> {
        let r = &raw.value;
        Some(VeleroRestore {
            backup: r.backup.value.0.clone(),
            spec: RestoreSpec {
                existing_resource_policy: r
                    .existing_resource_policy
                    .unwrap_or(ExistingResourcePolicy::Update),
                included_namespaces: r.included_namespaces.clone(),
                excluded_namespaces: r.excluded_namespaces.clone(),
                namespace_mapping: r.namespace_mapping.clone(),
            },
            preview: r.preview.unwrap_or(true),
            timeout: v.positive("timeout", r.timeout.as_ref(), DEFAULT_TIMEOUT),
        })
    }

    fn backup_ref(raw: &RawVeleroRestore) -> Option<&Spanned<StepRef>> {
        Some(&raw.backup)
    }

    fn backup(step: &VeleroRestore) -> Option<&str> {
        Some(&step.backup)
    }

    async fn plan(step: &VeleroRestore, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        Ok(vec![format!(
            "if an upgrade step fails: restores the verified backup of `{}` (existing objects: {}){}",
            step.backup,
            if step.spec.existing_resource_policy == ExistingResourcePolicy::Update {
                "update"
            } else {
                "keep"
            },
            if step.preview {
                ", after checking its files against the manifest and previewing the changes"
            } else {
                ", after checking its files against the manifest"
            }
        )])
    }

    async fn run(step: &VeleroRestore, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut VeleroRestore, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
    }
}

async fn run(step: &VeleroRestore, ctx: &StepCtx<'_>) -> StepResult {
    restore_into(step, ctx, RestoreInto::Blue).await
}

/// The cluster a restore goes into.
#[derive(Clone, Copy)]
pub(super) enum RestoreInto<'a> {
    /// The cluster the run upgrades, which made the backup: its Backup object must be the one
    /// verified (same uid).
    Blue,
    /// Green, through its connection. The Backup object there was made by Velero's sync from
    /// the bucket and has a uid of its own, so it is matched by name; the files in S3, checked
    /// against the manifest, are what prove it is the backup this run verified.
    Green { conn: &'a Connection, name: &'a str },
}

impl RestoreInto<'_> {
    /// ` into green `demo-1-35``, for messages; nothing for blue.
    fn label(&self) -> String {
        match self {
            RestoreInto::Blue => String::new(),
            RestoreInto::Green { name, .. } => format!(" into green `{name}`"),
        }
    }
}

/// Restores the verified backup of `step.backup` into `into`: the proof of verification, the
/// files against the manifest, the preview, then the Restore, created once and waited for.
pub(super) async fn restore_into(
    step: &VeleroRestore,
    ctx: &StepCtx<'_>,
    into: RestoreInto<'_>,
) -> StepResult {
    let conn = match into {
        RestoreInto::Blue => ctx.conn,
        RestoreInto::Green { conn, .. } => conn,
    };
    let backup: String = ctx
        .fact_of(&step.backup, &backup::BACKUP)
        .await
        .ok_or_else(|| {
            StepError::Failed(format!(
                "step `{}` has not created a backup in this run; there is nothing to restore",
                step.backup
            ))
        })?;
    let namespace = ctx.velero.namespace.as_str();

    let verified: Vec<Verified> = ctx
        .journal
        .read(|j| j.steps.iter().filter_map(|s| s.get(&VERIFIED)).collect())
        .await;
    let Some(proof) = verified.iter().find(|v| v.backup == backup) else {
        return Err(StepError::Failed(format!(
            "refusing to restore `{backup}`: this run did not verify it in S3"
        )));
    };
    let api = objects::backups(conn.kube.clone(), namespace);
    let current = api
        .get_opt(&backup)
        .await
        .context(|| format!("cannot read Backup `{backup}`{}", into.label()))?
        .ok_or_else(|| {
            StepError::Failed(format!(
                "Backup `{backup}` no longer exists{}",
                match into {
                    RestoreInto::Blue => String::new(),
                    RestoreInto::Green { name, .. } => format!(" on green `{name}`"),
                }
            ))
        })?;
    if matches!(into, RestoreInto::Blue) && proof.uid.is_some() && current.metadata.uid != proof.uid
    {
        return Err(StepError::Failed(format!(
            "refusing to restore `{backup}`: it was replaced after verification (uid changed)"
        )));
    }
    let storage = current
        .data
        .pointer("/spec/storageLocation")
        .and_then(|v| v.as_str())
        .unwrap_or(&ctx.velero.storage_location)
        .to_string();

    let name = match ctx.fact(&RESTORE).await {
        // Created in an earlier attempt: Velero has been reading the backup since; re-attach.
        Some(n) => n,
        None => {
            let n = object_name(ctx.run_id, &ctx.key.id);
            let object =
                restore::restore_object(&n, &backup, ctx.run_id, &conn.cluster.name, &step.spec);
            let manifest: Option<ManifestRecord> = ctx
                .journal
                .read(|j| {
                    j.steps
                        .iter()
                        .find(|s| s.get(&VERIFIED).is_some_and(|v| v.backup == backup))
                        .and_then(|s| s.get(&MANIFEST))
                })
                .await;
            check_before_restore(step, ctx, conn, &backup, &storage, manifest, &object.data)
                .await?;
            ctx.record(&RESTORE, &n).await?;
            n
        }
    };
    let object =
        restore::restore_object(&name, &backup, ctx.run_id, &conn.cluster.name, &step.spec);
    restore::create_or_adopt(conn.kube.clone(), namespace, &object, ctx.run_id)
        .await
        .cause()?;
    let outcome = restore::wait(
        conn.kube.clone(),
        namespace,
        &name,
        &backup,
        step.timeout.0,
        |status| {
            let phase = status.phase.as_deref().unwrap_or("New");
            ctx.progress(
                &format!("Restore `{name}`: {phase}"),
                status.items_done,
                status.total_items,
            );
        },
    )
    .await
    .cause()?;
    ctx.record(&OUTCOME, &outcome).await?;
    let s = &outcome.status;
    let items = s.items_done.unwrap_or(0);
    let previewed = ctx
        .fact(&PREVIEW)
        .await
        .map(|p| format!("; previewed: {}", p.summary()))
        .unwrap_or_default();
    match s.phase.as_deref() {
        Some("Completed") => Ok(format!(
            "restored {items} items from `{backup}`{} ({} warnings){previewed}",
            into.label(),
            s.warnings
        )),
        Some(phase) => {
            let errors = if s.errors > 0 {
                failed_items(ctx, conn, &storage, &name).await
            } else {
                String::new()
            };
            Err(StepError::Failed(format!(
                "Restore `{name}` from `{backup}`{} ended {phase}: {items} items restored, {} errors, {} warnings{}{errors}; see `velero restore describe {name} -n {namespace}`",
                into.label(),
                s.errors,
                s.warnings,
                if s.validation_errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", s.validation_errors.join("; "))
                }
            )))
        }
        None => Err(StepError::Failed(format!(
            "Restore `{name}` ended without a phase"
        ))),
    }
}

/// How many places (Velero, cluster-scoped, each namespace) a failure message names.
const ERROR_PLACES: usize = 5;

/// `: namespace `shop`: 6 errors (first: …)` from the results Velero uploaded, recorded for
/// the report; nothing when they cannot be read (the message still says where to look).
async fn failed_items(ctx: &StepCtx<'_>, conn: &Connection, storage: &str, name: &str) -> String {
    let namespace = ctx.velero.namespace.as_str();
    let read = async {
        let location = location::get(conn.kube.clone(), namespace, storage)
            .await
            .map_err(|e| e.to_string())?;
        let s3 = location.s3_client(&conn.sdk);
        restore::results(&s3, &location.bucket, location.prefix.as_deref(), name)
            .await
            .map_err(|e| crate::errors::chain(&e))
    };
    match read.await {
        Ok(results) => {
            if ctx.record(&RESULTS, &results).await.is_err() {
                ctx.warn(&format!("{}: cannot record the restore's results", ctx.key));
            }
            let parts = results.errors.summary(ERROR_PLACES);
            if parts.is_empty() {
                String::new()
            } else {
                format!(": {}", parts.join("; "))
            }
        }
        Err(e) => {
            ctx.warn(&format!(
                "{}: cannot read the errors of Restore `{name}`: {e}",
                ctx.key
            ));
            String::new()
        }
    }
}

/// How many changed objects the step's log names.
const LOGGED: usize = 10;

/// The files against the manifest this run recorded, then the preview: refuses the restore,
/// naming the file, when the bucket no longer holds what was verified.
async fn check_before_restore(
    step: &VeleroRestore,
    ctx: &StepCtx<'_>,
    conn: &Connection,
    backup: &str,
    storage: &str,
    manifest: Option<ManifestRecord>,
    object: &serde_json::Value,
) -> Result<(), StepError> {
    if manifest.is_none() && !step.preview {
        return Ok(());
    }
    let namespace = ctx.velero.namespace.as_str();
    let storage = location::get(conn.kube.clone(), namespace, storage)
        .await
        .cause()?;
    let s3 = storage.s3_client(&conn.sdk);
    let kms = manifest
        .as_ref()
        .and_then(|m| m.signed_by.as_ref())
        .map(|_| aws_sdk_kms::Client::new(&conn.sdk));
    let target = BackupLocation {
        bucket: storage.bucket.clone(),
        prefix: storage.prefix.clone(),
        name: backup.to_string(),
    };
    let trust = Trust {
        sha256: manifest.as_ref().map(|m| m.sha256.clone()),
        kms_key: manifest.as_ref().and_then(|m| m.signed_by.clone()),
    };
    let spec = object.get("spec").cloned().unwrap_or_default();
    let last = std::sync::Mutex::new(Instant::now());
    let progress = |read: u64, total: u64| {
        let Ok(mut last) = last.lock() else { return };
        if last.elapsed() >= Duration::from_secs(2) || read == total {
            *last = Instant::now();
            ctx.progress(
                "previewing the restore",
                Some(read / (1024 * 1024)),
                Some(total.div_ceil(1024 * 1024)),
            );
        }
    };
    let checked = gate::check(
        &s3,
        kms.as_ref(),
        &conn.kube,
        &target,
        &trust,
        &spec,
        // The journal keeps what the restore changes; unchanged objects are only counted.
        step.preview.then_some(Listing::Changes),
        Some(&progress),
    )
    .await
    .context(|| format!("refusing to restore `{backup}`"))?;
    if let Some(m) = &checked.manifest {
        ctx.log(&format!(
            "the backup's {} files match its manifest{}",
            m.manifest.files.len(),
            m.signed_by
                .as_ref()
                .map(|k| format!(", signed by `{k}`"))
                .unwrap_or_default()
        ));
    }
    match checked.preview {
        Some(Ok(p)) => {
            ctx.log(&format!("restore preview: {}", p.summary()));
            for item in p
                .items
                .iter()
                .filter(|i| matches!(i.action, Action::Create | Action::Update))
                .take(LOGGED)
            {
                let changes = if item.changes.is_empty() {
                    String::new()
                } else {
                    format!(": {}", item.changes.join("; "))
                };
                ctx.log(&format!(
                    "  would {} {}{changes}",
                    item.action.word(),
                    item.object()
                ));
            }
            ctx.record(&PREVIEW, &p).await?;
        }
        Some(Err(e)) => {
            ctx.warn(&format!(
                "{}: no restore preview ({e}); restoring anyway",
                ctx.key
            ));
            ctx.record(&PREVIEW_ERROR, &e.to_string()).await?;
        }
        None => {}
    }
    Ok(())
}
