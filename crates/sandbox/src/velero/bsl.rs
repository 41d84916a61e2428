//! The BackupStorageLocation controller: validates each location as Velero does (the AWS plugin
//! initialises with the location's config, then the bucket's top-level folders are listed) and
//! writes `phase`, `message` and `lastValidationTime`; again every `validationFrequency`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::layout::{self, Layout, VALID_TOP_LEVEL};
use super::objstore::Bucket;
use super::{Ctx, VeleroError};

/// Config keys the AWS object-store plugin accepts; any other makes `Init` fail.
const AWS_CONFIG_KEYS: [&str; 18] = [
    "region",
    "s3Url",
    "publicUrl",
    "kmsKeyId",
    "customerKeyEncryptionFile",
    "customerKeyEncryptionSecret",
    "s3ForcePathStyle",
    "signatureVersion",
    "credentialsFile",
    "profile",
    "serverSideEncryption",
    "insecureSkipTLSVerify",
    "enableSharedConfig",
    "tagging",
    "checksumAlgorithm",
    "bucket",
    "prefix",
    "caCert",
];

/// Where a location keeps its backups, as the controllers need it.
#[derive(Clone)]
pub struct Location {
    pub bucket: Bucket,
    pub layout: Layout,
}

impl Location {
    /// Builds the backup store for a BSL object, or says why the plugin would refuse it.
    pub fn from_object(ctx: &Ctx, bsl: &Value) -> Result<Location, String> {
        let provider = bsl
            .pointer("/spec/provider")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let provider = if provider.contains('/') {
            provider.to_string()
        } else {
            format!("velero.io/{provider}")
        };
        if provider != "velero.io/aws" {
            return Err(format!(
                "unable to locate ObjectStore plugin named {provider}"
            ));
        }
        if let Some(config) = bsl.pointer("/spec/config").and_then(Value::as_object) {
            let mut invalid: Vec<&str> = config
                .keys()
                .map(String::as_str)
                .filter(|k| !AWS_CONFIG_KEYS.contains(k))
                .collect();
            if !invalid.is_empty() {
                invalid.sort_unstable();
                let mut valid = AWS_CONFIG_KEYS.to_vec();
                valid.sort_unstable();
                return Err(format!(
                    "rpc error: code = Unknown desc = config has invalid keys [{}]; valid keys are [{}]",
                    invalid.join(" "),
                    valid.join(" ")
                ));
            }
        }
        let bucket = bsl
            .pointer("/spec/objectStorage/bucket")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim_matches('/');
        if bucket.is_empty() {
            return Err("rpc error: code = Unknown desc = a bucket name is required".to_string());
        }
        if bucket.contains('/') {
            return Err(format!(
                "rpc error: code = Unknown desc = bucket {bucket:?} is invalid: it must not contain '/'"
            ));
        }
        let prefix = bsl
            .pointer("/spec/objectStorage/prefix")
            .and_then(Value::as_str);
        Ok(Location {
            bucket: Bucket::new(ctx.s3.clone(), bucket),
            layout: Layout::new(prefix),
        })
    }

    /// `objectBackupStore.IsValid`.
    async fn is_valid(&self) -> Result<(), String> {
        let dirs = self
            .bucket
            .common_prefixes(self.layout.root())
            .await
            .map_err(|e| e.to_string())?;
        let invalid: Vec<String> = dirs
            .iter()
            .map(|d| {
                d.trim_start_matches(self.layout.root())
                    .trim_end_matches('/')
                    .to_string()
            })
            .filter(|d| !VALID_TOP_LEVEL.contains(&d.as_str()))
            .collect();
        match invalid.len() {
            0 => Ok(()),
            n if n > 3 => Err(format!(
                "Backup store contains {n} invalid top-level directories: [{} ...]",
                invalid[..3].join(" ")
            )),
            _ => Err(format!(
                "Backup store contains invalid top-level directories: [{}]",
                invalid.join(" ")
            )),
        }
    }
}

/// Whether a location is `Available` (backups and restores need it).
pub fn is_available(bsl: &Value) -> bool {
    bsl.pointer("/status/phase").and_then(Value::as_str) == Some("Available")
}

pub struct Validator {
    ctx: Arc<Ctx>,
    /// The spec each location was last validated with: a change of spec revalidates at once,
    /// while the controller's own status patches do not.
    validated: HashMap<String, Value>,
    /// When each location was last validated, for the periodic revalidation.
    last: HashMap<String, tokio::time::Instant>,
}

impl Validator {
    pub fn new(ctx: Arc<Ctx>) -> Validator {
        Validator {
            ctx,
            validated: HashMap::new(),
            last: HashMap::new(),
        }
    }

    pub async fn validate_all(&mut self) {
        for bsl in self.ctx.list("backupstoragelocations") {
            let name = bsl
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let _ = self.validate(&name).await;
        }
    }

    /// Validates a location and patches its status.
    async fn validate(&mut self, name: &str) -> Result<(), VeleroError> {
        let bsl = self.ctx.get("backupstoragelocations", name)?;
        self.validated.insert(
            name.to_string(),
            bsl.get("spec").cloned().unwrap_or(Value::Null),
        );
        self.last
            .insert(name.to_string(), tokio::time::Instant::now());
        let outcome = if self.ctx.world.scenario.spec.velero.unavailable {
            // The scenario's broken location: what a bucket the credentials cannot read gives.
            Err("rpc error: code = Unknown desc = operation error S3: ListObjectsV2, https response error StatusCode: 403, api error AccessDenied: Access Denied".to_string())
        } else {
            match Location::from_object(&self.ctx, &bsl) {
                Ok(location) => location.is_valid().await,
                Err(e) => Err(e),
            }
        };
        let patch = match outcome {
            Ok(()) => json!({ "status": {
                "phase": "Available", "message": null, "lastValidationTime": layout::now(),
            }}),
            Err(e) => json!({ "status": {
                "phase": "Unavailable",
                "message": format!("BackupStorageLocation \"{name}\" is unavailable: {e}"),
                "lastValidationTime": layout::now(),
            }}),
        };
        self.ctx.patch("backupstoragelocations", name, &patch)?;
        Ok(())
    }

    fn period(&self, name: Option<&str>) -> Option<Duration> {
        let spec = name.and_then(|n| self.validated.get(n));
        let frequency = spec
            .and_then(|s| s.get("validationFrequency"))
            .and_then(Value::as_str)
            .and_then(layout::parse_go_duration)
            .unwrap_or(Duration::from_secs(60));
        // Zero turns periodic validation off. Otherwise scaled, but at most once a real second,
        // as `lastValidationTime` only has second precision anyway.
        (!frequency.is_zero()).then(|| self.ctx.world.real(frequency).max(Duration::from_secs(1)))
    }

    /// Revalidates on spec changes (names arrive from the change feed) and periodically.
    pub async fn run(mut self, mut changed: mpsc::UnboundedReceiver<String>) {
        let tick_every = self.period(None).unwrap_or(Duration::from_secs(1));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                name = changed.recv() => {
                    let Some(name) = name else { break };
                    let current = self.ctx.get("backupstoragelocations", &name).ok();
                    let spec = current.as_ref().map(|b| b.get("spec").cloned().unwrap_or(Value::Null));
                    if spec.is_some() && self.validated.get(&name) != spec.as_ref() {
                        let _ = self.validate(&name).await;
                    }
                }
                _ = tick.tick() => {
                    for bsl in self.ctx.list("backupstoragelocations") {
                        let name = bsl.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
                        let due = match (self.period(Some(&name)), self.last.get(&name)) {
                            (None, Some(_)) => false,
                            (Some(p), Some(at)) => at.elapsed() >= p,
                            (_, None) => true,
                        };
                        if due {
                            let _ = self.validate(&name).await;
                        }
                    }
                }
            }
        }
    }
}
