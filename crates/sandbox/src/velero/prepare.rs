//! What Velero 1.17's `prepareBackupRequest` does to a new Backup before running it: spec
//! defaults, the storage-location label, the source-cluster annotations, `status.version`,
//! `formatVersion` and `expiration`, and every validation that ends in `FailedValidation`.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::Ctx;
use super::bsl::{self, Location};
use super::collect;
use super::filters::{self, strings};
use super::layout::{self, FORMAT_VERSION};

const STORAGE_LOCATION_LABEL: &str = "velero.io/storage-location";
const DEFAULT_TTL: &str = "720h0m0s";
/// Velero's auto-excluded intermediate CSI objects.
const AUTO_EXCLUDE_NAMESPACED: &str = "volumesnapshots.snapshot.storage.k8s.io";
const AUTO_EXCLUDE_CLUSTER: &str = "volumesnapshotcontents.snapshot.storage.k8s.io";

pub fn map_of(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

pub fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `prepareBackupRequest`: spec defaults, label, annotations, status basics and validation.
/// Returns the object to patch to, and the location when the backup may run.
pub fn prepare(ctx: &Ctx, original: &Value) -> (Value, Option<Location>) {
    let mut top = map_of(Some(original));
    let mut meta = map_of(top.get("metadata"));
    let mut spec = map_of(top.get("spec"));
    let mut status = map_of(top.get("status"));
    let mut errors: Vec<String> = Vec::new();
    let now = chrono::Utc::now();

    status.insert("version".into(), json!(1));
    status.insert("formatVersion".into(), json!(FORMAT_VERSION));
    let ttl = match spec.get("ttl").and_then(Value::as_str) {
        None | Some("") => None,
        Some(text) => match layout::parse_go_duration(text) {
            Some(d) => Some(d),
            None => {
                errors.push(format!(
                    "spec.ttl: Invalid value: \"{text}\": time: invalid duration \"{text}\""
                ));
                None
            }
        },
    };
    let ttl = match ttl.filter(|d| !d.is_zero()) {
        Some(d) => d,
        None => {
            spec.insert("ttl".into(), json!(DEFAULT_TTL));
            Duration::from_secs(720 * 3600)
        }
    };
    if str_of(&spec, "volumeGroupSnapshotLabelKey").is_empty() {
        spec.insert(
            "volumeGroupSnapshotLabelKey".into(),
            json!("velero.io/volume-group"),
        );
    }
    for (field, default) in [
        ("csiSnapshotTimeout", "10m0s"),
        ("itemOperationTimeout", "4h0m0s"),
    ] {
        let unset = layout::parse_go_duration(str_of(&spec, field)).is_none_or(|d| d.is_zero());
        if unset {
            spec.insert(field.into(), json!(default));
        }
    }
    let expiration = chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(now);
    status.insert("expiration".into(), json!(layout::timestamp(expiration)));
    if spec.get("defaultVolumesToRestic") == Some(&json!(true)) {
        spec.insert("defaultVolumesToFsBackup".into(), json!(true));
    }
    for field in ["defaultVolumesToFsBackup", "snapshotMoveData"] {
        if !spec.get(field).is_some_and(Value::is_boolean) {
            spec.insert(field.into(), json!(false));
        }
    }

    // The storage location: as named, else the one marked default, else the server's default.
    let mut server_specified = false;
    if str_of(&spec, "storageLocation").is_empty() {
        let default = ctx
            .list("backupstoragelocations")
            .into_iter()
            .find(|l| l.pointer("/spec/default") == Some(&json!(true)))
            .and_then(|l| {
                l.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "default".to_string());
        spec.insert("storageLocation".into(), json!(default));
        server_specified = true;
    }
    let location_name = str_of(&spec, "storageLocation").to_string();
    let mut location = None;
    match ctx.get("backupstoragelocations", &location_name) {
        Ok(bsl) => {
            if bsl.pointer("/spec/accessMode").and_then(Value::as_str) == Some("ReadOnly") {
                errors.push(format!(
                    "backup can't be created because backup storage location {location_name} is currently in read-only mode"
                ));
            }
            if !bsl::is_available(&bsl) {
                errors.push(format!(
                    "backup can't be created because BackupStorageLocation {location_name} is in Unavailable status."
                ));
            }
            // A location the plugin refuses is already Unavailable, unless its spec changed
            // since it was validated.
            match Location::from_object(ctx, &bsl) {
                Ok(l) => location = Some(l),
                Err(e) if bsl::is_available(&bsl) => {
                    errors.push(format!("error getting backup storage location: {e}"))
                }
                Err(_) => {}
            }
        }
        Err(e) => {
            let which = if server_specified {
                "server default"
            } else {
                "default"
            };
            let verb = if server_specified {
                "does not exist"
            } else {
                "was not found"
            };
            errors.push(format!(
                "an existing backup storage location was not specified at backup creation time and the {which} {location_name} {verb}. Please address this issue (see `velero backup-location -h` for options) and create a new backup. Error: {e}"
            ));
        }
    }
    let mut labels = map_of(meta.get("labels"));
    labels.insert(
        STORAGE_LOCATION_LABEL.into(),
        json!(layout::valid_label(&location_name)),
    );
    meta.insert("labels".into(), Value::Object(labels));

    for vsl in strings(&Value::Object(spec.clone()), "volumeSnapshotLocations") {
        if ctx.get("volumesnapshotlocations", &vsl).is_err() {
            errors.push(format!(
                "a VolumeSnapshotLocation CRD for the location {vsl} with the name specified in the backup spec needs to be created before this snapshot can be executed. Error: volumesnapshotlocations.velero.io \"{vsl}\" not found"
            ));
        }
    }

    let version = ctx.world.control_plane_version();
    let mut annotations = map_of(meta.get("annotations"));
    for (k, v) in [
        (
            "velero.io/source-cluster-k8s-gitversion",
            format!("v{}.{}.0-eks-sandbox", version.major, version.minor),
        ),
        (
            "velero.io/source-cluster-k8s-major-version",
            version.major.to_string(),
        ),
        (
            "velero.io/source-cluster-k8s-minor-version",
            version.minor.to_string(),
        ),
        ("velero.io/resource-timeout", "10m0s".to_string()),
    ] {
        annotations.insert(k.into(), json!(v));
    }
    meta.insert("annotations".into(), Value::Object(annotations));

    // Namespaces labelled velero.io/exclude-from-backup=true join the excluded namespaces.
    if let Some(ns_rt) = ctx.store().resource("", "v1", "namespaces")
        && let Ok(sel) =
            crate::kube::selector::Selector::labels(&format!("{}=true", collect::EXCLUDE_LABEL))
    {
        let mut excluded = strings(&Value::Object(spec.clone()), "excludedNamespaces");
        for ns in ctx.store().list(&ns_rt, None, &sel).0 {
            if let Some(n) = ns.pointer("/metadata/name").and_then(Value::as_str) {
                excluded.push(n.to_string());
            }
        }
        if !excluded.is_empty() {
            spec.insert("excludedNamespaces".into(), json!(excluded));
        }
    }

    validate_filters(&mut spec, &mut errors);

    if ctx.world.scenario.spec.faults.backup_phase.as_deref() == Some("FailedValidation") {
        errors.push(
            "injected by the sandbox scenario (faults.backupPhase: FailedValidation)".to_string(),
        );
    }
    if errors.is_empty() {
        status.insert("phase".into(), json!("InProgress"));
        status.insert("startTimestamp".into(), json!(layout::timestamp(now)));
    } else {
        status.insert("phase".into(), json!("FailedValidation"));
        status.insert("validationErrors".into(), json!(errors));
        location = None;
    }
    top.insert("metadata".into(), Value::Object(meta));
    top.insert("spec".into(), Value::Object(spec));
    top.insert("status".into(), Value::Object(status));
    (Value::Object(top), location)
}

/// The filter checks of `prepareBackupRequest`, and the auto-excluded CSI types.
fn validate_filters(spec: &mut Map<String, Value>, errors: &mut Vec<String>) {
    let view = Value::Object(spec.clone());
    let list = |f: &str| strings(&view, f);
    let old = ["includedResources", "excludedResources"]
        .iter()
        .any(|f| !list(f).is_empty())
        || !spec
            .get("includeClusterResources")
            .unwrap_or(&Value::Null)
            .is_null();
    let new = [
        "includedClusterScopedResources",
        "excludedClusterScopedResources",
        "includedNamespaceScopedResources",
        "excludedNamespaceScopedResources",
    ]
    .iter()
    .any(|f| !list(f).is_empty());
    if old && new {
        errors.push("include-resources, exclude-resources and include-cluster-resources are old filter parameters.\ninclude-cluster-scoped-resources, exclude-cluster-scoped-resources, include-namespace-scoped-resources and exclude-namespace-scoped-resources are new filter parameters.\nThey cannot be used together".to_string());
    }
    // `modifyResourceIncludeExclude`: add the auto-excludes, and drop them from the includes.
    let mut add_excludes = |inc: &str, exc: &str, extra: &[&str]| {
        let mut includes = list(inc);
        let mut excludes = list(exc);
        for e in extra {
            if !excludes.iter().any(|x| x == e) {
                excludes.push(e.to_string());
            }
        }
        includes.retain(|i| !excludes.contains(i));
        if !includes.is_empty() || spec.contains_key(inc) {
            spec.insert(inc.into(), json!(includes));
        }
        spec.insert(exc.into(), json!(excludes));
    };
    if collect::uses_old_filters(&view) {
        let errs = filters::validate_lists(&list("includedResources"), &list("excludedResources"));
        if errs.is_empty() {
            add_excludes(
                "includedResources",
                "excludedResources",
                &[AUTO_EXCLUDE_NAMESPACED, AUTO_EXCLUDE_CLUSTER],
            );
        }
        errors.extend(
            errs.into_iter()
                .map(|e| format!("Invalid included/excluded resource lists: {e}")),
        );
    } else {
        for (scope, inc, exc, extra) in [
            (
                "cluster",
                "includedClusterScopedResources",
                "excludedClusterScopedResources",
                AUTO_EXCLUDE_CLUSTER,
            ),
            (
                "namespace",
                "includedNamespaceScopedResources",
                "excludedNamespaceScopedResources",
                AUTO_EXCLUDE_NAMESPACED,
            ),
        ] {
            let errs = filters::validate_scoped_lists(&list(inc), &list(exc));
            if errs.is_empty() {
                add_excludes(inc, exc, &[extra]);
            }
            errors.extend(
                errs.into_iter().map(|e| {
                    format!("Invalid {scope}-scoped included/excluded resource lists: {e}")
                }),
            );
        }
    }
    let (inc, exc) = (list("includedNamespaces"), list("excludedNamespaces"));
    let mut ns_errors = filters::validate_lists(&inc, &exc);
    ns_errors.extend(
        inc.iter()
            .chain(exc.iter())
            .filter_map(|n| filters::validate_namespace_name(n)),
    );
    errors.extend(
        ns_errors
            .into_iter()
            .map(|e| format!("Invalid included/excluded namespace lists: {e}")),
    );
    if !spec.get("labelSelector").unwrap_or(&Value::Null).is_null()
        && !spec
            .get("orLabelSelectors")
            .unwrap_or(&Value::Null)
            .is_null()
    {
        errors.push(
            "encountered labelSelector as well as orLabelSelectors in backup spec, only one can be specified".to_string(),
        );
    }
}
