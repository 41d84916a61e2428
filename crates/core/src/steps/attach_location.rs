//! `attachBackupLocation`: gives green read access to blue's backups. Blue's
//! BackupStorageLocation (provider, bucket and prefix, plugin config; the credential reference
//! only when green has that Secret) is copied to green as a `ReadOnly` location, so green's
//! Velero can read every backup there and can never write or delete one. Then the step waits
//! until green's Velero has validated the location and its backup sync has made the Backup
//! object of the verified backup on green: what `restoreToGreen` restores from. Blue is only
//! read.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ObjectMeta};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::{Context, StepCtx, StepError, StepResult, backup};
use crate::cloud::eks::EksError;
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::{DurationText, StepRef};
use crate::journal::Fact;
use crate::types::{HumanDuration, Phase};
use crate::velero::objects::{
    self, AdoptError, LABEL_CLUSTER, LABEL_MANAGED_BY, LABEL_RUN, MANAGED_BY,
};

/// The location made (or found) on green.
pub const LOCATION: Fact<AttachedLocation> = Fact::new("location");
/// The verified backup's Backup object as Velero's sync made it on green.
pub const SYNCED: Fact<Synced> = Fact::new("synced");

/// The location's name on green unless the step says.
pub const DEFAULT_NAME: &str = "eks-upgrade-blue";
/// How long to wait for the location and the sync unless the step says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How often green is looked at while waiting (divided by the time scale).
const POLL: Duration = Duration::from_secs(5);

/// Options for attaching blue's backups to green.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAttachBackupLocation {
    /// The id of the `veleroBackup` step whose backup green must see.
    pub backup: Spanned<StepRef>,
    /// The BackupStorageLocation's name on green. Default: `eks-upgrade-blue`.
    pub name: Option<Spanned<String>>,
    /// How long to wait until green's Velero shows the backup. Default: `30m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// A validated `attachBackupLocation` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachBackupLocation {
    /// The id of the `veleroBackup` step.
    pub backup: String,
    pub name: String,
    pub timeout: HumanDuration,
    pub poll: HumanDuration,
}

/// The location on green.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachedLocation {
    pub name: String,
    /// Blue's location it copies.
    pub from: String,
    pub bucket: String,
    pub prefix: Option<String>,
    /// The Secret green's Velero reads credentials from; `None`: its default credentials.
    pub credential: Option<String>,
    /// Whether this run made it, rather than finding an equal one there.
    pub created: bool,
}

/// The synced Backup object on green.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Synced {
    pub name: String,
    pub uid: Option<String>,
}

pub struct AttachBackupLocationKind;

impl Kind for AttachBackupLocationKind {
    type Raw = RawAttachBackupLocation;
    type Model = AttachBackupLocation;

    const DOC: &'static str = "Gives green read-only access to blue's backups, and waits until green's Velero shows the backup.";
    const TITLE: &'static str = "Attach blue's backups to green";
    const PLACEMENT: Placement = Placement {
        sections: &[Phase::Upgrade],
        why: "green is built and filled in `upgrade`, after green exists",
    };
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::AttachesBackups];
    const EXAMPLE: &'static str = "{ backup: backup }";

    fn build(
        raw: &Spanned<RawAttachBackupLocation>,
        v: &mut Validator<'_>,
        _: &BuildCx<'_>,
    ) -> Option<AttachBackupLocation> {
        let r = &raw.value;
        let name = match &r.name {
            Some(n) => {
                v.dns_label("location name", n);
                n.value.clone()
            }
            None => DEFAULT_NAME.to_string(),
        };
        Some(AttachBackupLocation {
            backup: r.backup.value.0.clone(),
            name,
            timeout: v.positive("timeout", r.timeout.as_ref(), DEFAULT_TIMEOUT),
            poll: HumanDuration(POLL),
        })
    }

    fn backup_ref(raw: &RawAttachBackupLocation) -> Option<&Spanned<StepRef>> {
        Some(&raw.backup)
    }

    fn backup(step: &AttachBackupLocation) -> Option<&str> {
        Some(&step.backup)
    }

    async fn plan(
        step: &AttachBackupLocation,
        cx: &mut PlanCx<'_>,
    ) -> Result<Vec<String>, EksError> {
        Ok(vec![
            format!(
                "green: creates BackupStorageLocation `{}` (ReadOnly) on the bucket of blue's `{}`; blue is only read",
                step.name, cx.velero.storage_location
            ),
            format!(
                "green: waits until Velero there shows the backup of `{}` (within {})",
                step.backup, step.timeout
            ),
        ])
    }

    async fn run(step: &AttachBackupLocation, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut AttachBackupLocation, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
        scale.apply(&mut step.poll, 100);
    }

    fn typical_minutes(_: &AttachBackupLocation) -> u64 {
        2
    }
}

async fn run(step: &AttachBackupLocation, ctx: &StepCtx<'_>) -> StepResult {
    let backup: String = ctx
        .fact_of(&step.backup, &backup::BACKUP)
        .await
        .ok_or_else(|| {
            StepError::Failed(format!(
                "step `{}` has not created a backup in this run; green has nothing to read",
                step.backup
            ))
        })?;
    let namespace = ctx.velero.namespace.as_str();
    let green_cluster = ctx.green_cluster().await?;
    let green = ctx.green().await?;

    // Blue: the location its backup went to, read and never written.
    let blue_backup = objects::backups(ctx.conn.kube.clone(), namespace)
        .get_opt(&backup)
        .await
        .context(|| format!("cannot read Backup `{backup}` on blue"))?
        .ok_or_else(|| StepError::Failed(format!("Backup `{backup}` no longer exists on blue")))?;
    let from = blue_backup
        .data
        .pointer("/spec/storageLocation")
        .and_then(Value::as_str)
        .unwrap_or(&ctx.velero.storage_location)
        .to_string();
    let blue_location = objects::storage_locations(ctx.conn.kube.clone(), namespace)
        .get_opt(&from)
        .await
        .context(|| format!("cannot read BackupStorageLocation `{from}` on blue"))?
        .ok_or_else(|| {
            StepError::Failed(format!(
                "BackupStorageLocation `{from}` of Backup `{backup}` is not on blue any more"
            ))
        })?;

    let secret = credential_of(&blue_location);
    let credential = match &secret {
        Some(name) => Api::<Secret>::namespaced(green.kube.clone(), namespace)
            .get_opt(name)
            .await
            .context(|| format!("cannot read Secret `{name}` on green"))?
            .map(|_| name.clone()),
        None => None,
    };
    if let (Some(name), None) = (&secret, &credential) {
        ctx.log(&format!(
            "green has no Secret `{name}` in `{namespace}`: its Velero reads the bucket with its own default credentials"
        ));
    }
    let object = green_location(
        &blue_location,
        &step.name,
        ctx.run_id,
        &green_cluster.name,
        credential.is_some(),
    )
    .map_err(StepError::Failed)?;

    let api = objects::storage_locations(green.kube.clone(), namespace);
    let created = match objects::create_or_adopt(&api, &object, ctx.run_id).await {
        // Made now, or by an earlier attempt of this run.
        Ok(_) => true,
        Err(AdoptError::Taken { .. }) => {
            // A location of that name made by someone else: usable only when it is the same
            // bucket and prefix, read-only.
            let existing = api
                .get_opt(&step.name)
                .await
                .context(|| format!("cannot read BackupStorageLocation `{}` on green", step.name))?
                .ok_or_else(|| {
                    StepError::Failed(format!(
                        "BackupStorageLocation `{}` on green disappeared while the step read it",
                        step.name
                    ))
                })?;
            if !same_storage(&existing, &object) {
                return Err(StepError::Failed(format!(
                    "green already has a BackupStorageLocation `{}` that is not a read-only copy of blue's `{from}`; set `name:` on this step to another name, or delete it on green",
                    step.name
                )));
            }
            ctx.log(&format!(
                "BackupStorageLocation `{}` on green already reads blue's bucket read-only; using it",
                step.name
            ));
            false
        }
        Err(AdoptError::Api(e)) => {
            return Err(StepError::Call {
                context: format!(
                    "cannot create BackupStorageLocation `{}` on green `{}`",
                    step.name, green_cluster.name
                ),
                source: Box::new(e),
            });
        }
    };
    let text = |ptr: &str| {
        object
            .data
            .pointer(ptr)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    ctx.record(
        &LOCATION,
        &AttachedLocation {
            name: step.name.clone(),
            from: from.clone(),
            bucket: text("/spec/objectStorage/bucket").unwrap_or_default(),
            prefix: text("/spec/objectStorage/prefix"),
            credential: credential.clone(),
            created,
        },
    )
    .await?;

    let started = Instant::now();
    let left = || step.timeout.0.saturating_sub(started.elapsed());
    wait_available(step, ctx, &api, left).await?;
    let synced = wait_synced(step, ctx, green.kube.clone(), &backup, left).await?;
    ctx.record(&SYNCED, &synced).await?;
    Ok(format!(
        "green `{}` reads blue's backups through `{}` (ReadOnly); Backup `{backup}` synced there",
        green_cluster.name, step.name
    ))
}

/// The Secret name of a location's `spec.credential`.
fn credential_of(location: &DynamicObject) -> Option<String> {
    location
        .data
        .pointer("/spec/credential/name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Green's copy of blue's location: the same provider, object storage and config, read-only,
/// labelled with the run. The credential reference is kept only when green has that Secret
/// (`with_credential`); without it green's Velero uses its own default credentials.
fn green_location(
    blue: &DynamicObject,
    name: &str,
    run_id: &str,
    green: &str,
    with_credential: bool,
) -> Result<DynamicObject, String> {
    let blue_name = blue.metadata.name.as_deref().unwrap_or_default();
    let part = |key: &str| blue.data.pointer(&format!("/spec/{key}")).cloned();
    let provider = part("provider")
        .filter(|p| p.as_str().is_some_and(|s| !s.is_empty()))
        .ok_or_else(|| format!("BackupStorageLocation `{blue_name}` on blue has no provider"))?;
    let storage = part("objectStorage")
        .filter(|s| s.get("bucket").and_then(Value::as_str).is_some())
        .ok_or_else(|| format!("BackupStorageLocation `{blue_name}` on blue has no bucket"))?;
    let mut spec = json!({
        "provider": provider,
        "objectStorage": storage,
        "accessMode": "ReadOnly",
        "default": false,
    });
    if let Some(config) = part("config") {
        spec["config"] = config;
    }
    if with_credential && let Some(credential) = part("credential") {
        spec["credential"] = credential;
    }
    let labels = [
        (LABEL_RUN, run_id.to_string()),
        (LABEL_CLUSTER, crate::velero::backup::label_value(green)),
        (LABEL_MANAGED_BY, MANAGED_BY.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut obj = DynamicObject::new(
        name,
        &objects::resource("BackupStorageLocation", "backupstoragelocations"),
    );
    obj.metadata = ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(labels),
        ..ObjectMeta::default()
    };
    obj.data = json!({ "spec": spec });
    Ok(obj)
}

/// Whether `existing` reads the same bucket and prefix as `wanted`, read-only.
fn same_storage(existing: &DynamicObject, wanted: &DynamicObject) -> bool {
    let at = |o: &DynamicObject, ptr: &str| o.data.pointer(ptr).cloned();
    let prefix = |o: &DynamicObject| {
        at(o, "/spec/objectStorage/prefix")
            .and_then(|p| p.as_str().map(|s| s.trim_matches('/').to_string()))
            .unwrap_or_default()
    };
    at(existing, "/spec/objectStorage/bucket") == at(wanted, "/spec/objectStorage/bucket")
        && prefix(existing) == prefix(wanted)
        && at(existing, "/spec/accessMode") == Some(json!("ReadOnly"))
}

/// Until green's Velero says the location is `Available`; its last message when it never does.
async fn wait_available(
    step: &AttachBackupLocation,
    ctx: &StepCtx<'_>,
    api: &Api<DynamicObject>,
    left: impl Fn() -> Duration,
) -> Result<(), StepError> {
    loop {
        let current = api
            .get_opt(&step.name)
            .await
            .context(|| format!("cannot read BackupStorageLocation `{}` on green", step.name))?
            .ok_or_else(|| {
                StepError::Failed(format!(
                    "BackupStorageLocation `{}` was deleted on green while the step waited for it",
                    step.name
                ))
            })?;
        let status = |key: &str| {
            current
                .data
                .pointer(&format!("/status/{key}"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let phase = status("phase");
        if phase.as_deref() == Some("Available") {
            return Ok(());
        }
        if left().is_zero() {
            return Err(StepError::Failed(format!(
                "BackupStorageLocation `{}` on green is not Available after {} ({}){}",
                step.name,
                step.timeout,
                phase.as_deref().unwrap_or("not validated yet"),
                status("message")
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )));
        }
        ctx.progress(
            &format!(
                "BackupStorageLocation `{}` on green: {}",
                step.name,
                phase.as_deref().unwrap_or("waiting for Velero")
            ),
            None,
            None,
        );
        tokio::time::sleep(step.poll.0.min(left())).await;
    }
}

/// Until Velero's sync has made the Backup object on green, `Completed`.
async fn wait_synced(
    step: &AttachBackupLocation,
    ctx: &StepCtx<'_>,
    green: kube::Client,
    backup: &str,
    left: impl Fn() -> Duration,
) -> Result<Synced, StepError> {
    let namespace = ctx.velero.namespace.as_str();
    let api = objects::backups(green, namespace);
    loop {
        let found = api
            .get_opt(backup)
            .await
            .context(|| format!("cannot read Backup `{backup}` on green"))?;
        if let Some(obj) = &found {
            let status = objects::Status::of(obj);
            match status.phase.as_deref() {
                Some("Completed") => {
                    return Ok(Synced {
                        name: backup.to_string(),
                        uid: status.uid,
                    });
                }
                Some(phase) if status.is_terminal() => {
                    return Err(StepError::Failed(format!(
                        "Backup `{backup}` shows on green as {phase}, not Completed; green would restore an incomplete backup"
                    )));
                }
                _ => {}
            }
        }
        if left().is_zero() {
            return Err(StepError::Failed(format!(
                "green's Velero has not synced Backup `{backup}` from BackupStorageLocation `{}` within {}",
                step.name, step.timeout
            )));
        }
        ctx.progress(
            &format!("waiting for Velero's sync to show Backup `{backup}` on green"),
            None,
            None,
        );
        tokio::time::sleep(step.poll.0.min(left())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blue() -> DynamicObject {
        let mut obj = DynamicObject::new(
            "default",
            &objects::resource("BackupStorageLocation", "backupstoragelocations"),
        );
        obj.metadata.uid = Some("u1".into());
        obj.data = json!({
            "spec": {
                "provider": "aws",
                "default": true,
                "accessMode": "ReadWrite",
                "objectStorage": { "bucket": "velero-backups", "prefix": "demo" },
                "config": { "region": "us-east-1", "s3ForcePathStyle": "true" },
                "credential": { "name": "cloud-credentials", "key": "cloud" },
                "validationFrequency": "1m",
            },
            "status": { "phase": "Available" },
        });
        obj
    }

    #[test]
    fn green_gets_a_read_only_copy_of_blues_storage_and_nothing_else() {
        let obj =
            green_location(&blue(), "eks-upgrade-blue", "r1", "demo-1-35", true).expect("a copy");
        assert_eq!(obj.metadata.name.as_deref(), Some("eks-upgrade-blue"));
        assert_eq!(obj.metadata.uid, None);
        let labels = obj.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels[LABEL_RUN], "r1");
        let spec = &obj.data["spec"];
        assert_eq!(spec["accessMode"], "ReadOnly");
        // Green keeps its own default location, if it has one.
        assert_eq!(spec["default"], false);
        assert_eq!(spec["objectStorage"]["prefix"], "demo");
        assert_eq!(spec["config"]["region"], "us-east-1");
        assert_eq!(spec["credential"]["name"], "cloud-credentials");
        assert!(spec.get("validationFrequency").is_none());
        assert!(obj.data.get("status").is_none());

        let without =
            green_location(&blue(), "eks-upgrade-blue", "r1", "demo-1-35", false).expect("a copy");
        assert!(without.data["spec"].get("credential").is_none());
        assert_eq!(credential_of(&blue()).as_deref(), Some("cloud-credentials"));
    }

    #[test]
    fn a_location_without_a_bucket_is_not_copied() {
        let mut b = blue();
        b.data["spec"]["objectStorage"] = json!({});
        let err = green_location(&b, "x", "r1", "g", true).expect_err("no bucket");
        assert!(err.contains("no bucket"), "{err}");
    }

    #[test]
    fn an_existing_location_is_used_only_when_it_reads_the_same_place_read_only() {
        let wanted = green_location(&blue(), "x", "r1", "g", true).expect("a copy");
        let mut theirs = wanted.clone();
        theirs.data["spec"]["objectStorage"]["prefix"] = json!("/demo/");
        assert!(same_storage(&theirs, &wanted));
        theirs.data["spec"]["accessMode"] = json!("ReadWrite");
        assert!(!same_storage(&theirs, &wanted));
        let mut other = wanted.clone();
        other.data["spec"]["objectStorage"]["bucket"] = json!("elsewhere");
        assert!(!same_storage(&other, &wanted));
    }
}
