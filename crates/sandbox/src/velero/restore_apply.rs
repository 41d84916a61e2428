//! How a restore applies the tarball's objects: Velero's restore order and filters, then for
//! each object create, or under `existingResourcePolicy` skip, warn or merge-patch it back to the
//! backed-up state (`pkg/restore/restore.go`).

use std::sync::Arc;

use serde_json::{Value, json};

use super::Ctx;
use super::diff::merge_diff;
use super::filters::{IncludesExcludes, Selectors, resolve_resource, strings};
use super::layout;
use super::runlog::{Messages, RunLog};
use super::tarball::{self, Contents};
use crate::kube::store::{ResourceType, StoreError, Subresource};

const RESTORER: &str = "pkg/restore/restore.go";
const BACKUP_NAME_LABEL: &str = "velero.io/backup-name";
const RESTORE_NAME_LABEL: &str = "velero.io/restore-name";

/// The server's default restore order; everything else follows alphabetically.
const HIGH_PRIORITIES: [&str; 18] = [
    "customresourcedefinitions",
    "namespaces",
    "storageclasses",
    "volumesnapshotclass.snapshot.storage.k8s.io",
    "volumesnapshotcontents.snapshot.storage.k8s.io",
    "volumesnapshots.snapshot.storage.k8s.io",
    "datauploads.velero.io",
    "persistentvolumes",
    "persistentvolumeclaims",
    "serviceaccounts",
    "secrets",
    "configmaps",
    "limitranges",
    "priorityclasses",
    "pods",
    "replicasets.apps",
    "endpoints",
    "services",
];

/// The objects to restore, in restore order, after the Restore's filters.
pub fn plan(ctx: &Ctx, restore: &Value, contents: &Contents) -> Vec<(Arc<ResourceType>, Value)> {
    let types = ctx.store().types();
    let spec = restore.get("spec").cloned().unwrap_or_else(|| json!({}));
    let resolve = |list: Vec<String>| -> Vec<String> {
        list.iter()
            .map(|r| resolve_resource(&types, r).unwrap_or_else(|| r.clone()))
            .collect()
    };
    let resources = IncludesExcludes::new(
        resolve(strings(&spec, "includedResources")),
        resolve(strings(&spec, "excludedResources")),
    );
    let namespaces = IncludesExcludes::new(
        strings(&spec, "includedNamespaces"),
        strings(&spec, "excludedNamespaces"),
    );
    let include_cluster = spec.get("includeClusterResources").and_then(Value::as_bool);
    let selectors = Selectors::from_spec(&spec);
    // `namespaceMapping`: filters see the backed-up namespace, the object lands in the mapped
    // one (and a Namespace object is renamed).
    let mapping: std::collections::BTreeMap<String, String> = spec
        .get("namespaceMapping")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();

    let mut order: Vec<String> = HIGH_PRIORITIES
        .iter()
        .map(|p| resolve_resource(&types, p).unwrap_or_else(|| p.to_string()))
        .collect();
    for gr in contents.resources.keys() {
        if !order.contains(gr) {
            order.push(gr.clone());
        }
    }
    let mut out = Vec::new();
    for gr in order {
        let Some(dir) = contents.resources.get(&gr) else {
            continue;
        };
        if !resources.should_include(&gr) {
            continue;
        }
        let Some(rt) = types.iter().find(|t| t.group_resource() == gr).cloned() else {
            continue;
        };
        let is_namespaces = gr == "namespaces";
        if !rt.namespaced && !is_namespaces {
            match include_cluster {
                Some(false) => continue,
                None if !namespaces.include_everything() => continue,
                _ => {}
            }
        }
        let mut items: Vec<&tarball::TarItem> = dir.restorable().iter().collect();
        items.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        for item in items {
            let in_scope = match (&item.namespace, is_namespaces) {
                (Some(ns), _) => namespaces.should_include(ns),
                (None, true) => namespaces.should_include(&item.name),
                (None, false) => true,
            };
            let Ok(mut object) = serde_json::from_slice::<Value>(&item.bytes) else {
                continue;
            };
            if in_scope && selectors.matches(&object) {
                let field = if is_namespaces { "name" } else { "namespace" };
                let current = object
                    .pointer(&format!("/metadata/{field}"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                if let (Some(to), Some(meta)) = (
                    current.and_then(|c| mapping.get(&c)),
                    object.get_mut("metadata").and_then(Value::as_object_mut),
                ) {
                    meta.insert(field.into(), json!(to));
                }
                out.push((rt.clone(), object));
            }
        }
    }
    out
}

/// Applies one backed-up object to the cluster under the restore's policy.
pub struct Applier<'a> {
    pub ctx: &'a Ctx,
    pub restore_name: &'a str,
    pub backup_name: &'a str,
    pub policy: &'a str,
    pub warnings: Messages,
    pub errors: Messages,
    /// Namespaces created because an item needed them (recorded as created, as Velero does).
    pub created_namespaces: Vec<String>,
}

impl Applier<'_> {
    /// `resetMetadataAndStatus` plus the restore labels: what Velero creates or compares.
    fn prepared(&self, mut obj: Value, rt: &ResourceType) -> Value {
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in [
                "generateName",
                "selfLink",
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "ownerReferences",
                "managedFields",
            ] {
                m.remove(f);
            }
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert(
                    BACKUP_NAME_LABEL.into(),
                    json!(layout::valid_label(self.backup_name)),
                );
                l.insert(
                    RESTORE_NAME_LABEL.into(),
                    json!(layout::valid_label(self.restore_name)),
                );
            }
        }
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
            // The Service restore action: cluster IPs are the new cluster's to assign.
            if rt.kind == "Service"
                && let Some(s) = o.get_mut("spec").and_then(Value::as_object_mut)
                && s.get("clusterIP").and_then(Value::as_str) != Some("None")
            {
                s.remove("clusterIP");
                s.remove("clusterIPs");
            }
        }
        obj
    }

    /// Returns the resource-list key, the entry and the outcome.
    pub fn apply(
        &mut self,
        rt: &Arc<ResourceType>,
        backed_up: Value,
        log: &mut RunLog,
    ) -> (String, String, &'static str) {
        let store = self.ctx.store();
        let name = backed_up
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let namespace = if rt.namespaced {
            backed_up
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string)
        } else {
            None
        };
        let ns = namespace.clone().unwrap_or_default();
        let key = format!("{}/{}", rt.api_version(), rt.kind);
        let entry = if ns.is_empty() {
            name.clone()
        } else {
            format!("{ns}/{name}")
        };
        // Objects a controller owns (pods of a Deployment...) are left to that controller: a
        // restored copy would only be garbage-collected or replaced.
        let owned = backed_up
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| {
                refs.iter()
                    .any(|r| r.get("controller") == Some(&json!(true)))
            });
        if owned {
            log.info(
                RESTORER,
                &format!("Skipping {} {entry}: it is owned by a controller", rt.kind),
            );
            return (key, entry, "skipped");
        }
        if !ns.is_empty()
            && self
                .ctx
                .world
                .scenario
                .spec
                .faults
                .restore_errors
                .contains(&ns)
        {
            self.errors.add(
                &ns,
                format!(
                    "error restoring {}/{entry}: injected by the sandbox scenario (faults.restoreErrors)",
                    rt.group_resource()
                ),
            );
            return (key, entry, "failed");
        }
        let desired = self.prepared(backed_up, rt);
        log.info(
            RESTORER,
            &format!("Attempting to restore {}: {name}.", rt.kind),
        );
        if let Some(ns) = namespace.as_deref()
            && let Err(e) = self.ensure_namespace(ns)
        {
            self.errors.add(
                ns,
                format!("error restoring {}/{entry}: {e}", rt.group_resource()),
            );
            return (key, entry, "failed");
        }
        let live = match store.get(rt, namespace.as_deref(), &name) {
            Ok(live) => live,
            Err(StoreError::NotFound { .. }) => {
                return match store.create(rt, namespace.as_deref(), desired) {
                    Ok(_) => {
                        if rt.group.is_empty() && rt.plural == "namespaces" {
                            self.activate_namespace(&name);
                        }
                        (key, entry, "created")
                    }
                    Err(e) => {
                        self.errors.add(
                            &ns,
                            format!("error restoring {}/{entry}: {e}", rt.group_resource()),
                        );
                        (key, entry, "failed")
                    }
                };
            }
            Err(e) => {
                self.errors.add(
                    &ns,
                    format!("error restoring {}/{entry}: {e}", rt.group_resource()),
                );
                return (key, entry, "failed");
            }
        };
        let from_cluster = self.prepared(live.clone(), rt);
        let Some(patch) = merge_diff(&from_cluster, &desired) else {
            if self.policy == "update" {
                self.patch_labels(rt, namespace.as_deref(), &name, &live);
            }
            return (key, entry, "skipped");
        };
        match self.policy {
            "update" => {
                match store.patch(rt, namespace.as_deref(), &name, &patch, Subresource::Main) {
                    Ok(_) => (key, entry, "updated"),
                    Err(e) => {
                        self.warnings.add(&ns, e.to_string());
                        self.patch_labels(rt, namespace.as_deref(), &name, &live);
                        (key, entry, "failed")
                    }
                }
            }
            "none" => {
                self.warnings.add(&ns, format!("could not restore, {} \"{name}\" already exists. Warning: the in-cluster version is different than the backed-up version", rt.kind));
                (key, entry, "failed")
            }
            _ => {
                self.warnings.add(&ns, format!("could not restore, {}:{name} already exists. Warning: the in-cluster version is different than the backed-up version", rt.kind));
                (key, entry, "failed")
            }
        }
    }

    /// Under `update`, an object left as it is still gets the backup and restore labels.
    fn patch_labels(
        &mut self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        name: &str,
        live: &Value,
    ) {
        let labels = json!({ BACKUP_NAME_LABEL: layout::valid_label(self.backup_name), RESTORE_NAME_LABEL: layout::valid_label(self.restore_name) });
        let current = live
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or(Value::Null);
        let mut wanted = current.as_object().cloned().unwrap_or_default();
        wanted.extend(labels.as_object().cloned().unwrap_or_default());
        if current != Value::Object(wanted) {
            let patch = json!({ "metadata": { "labels": labels } });
            if let Err(e) = self
                .ctx
                .store()
                .patch(rt, namespace, name, &patch, Subresource::Main)
            {
                self.errors
                    .add(namespace.unwrap_or_default(), e.to_string());
            }
        }
    }

    /// A namespaced item's namespace is created when missing (its own backed-up copy comes
    /// first in restore order when the backup has it).
    fn ensure_namespace(&mut self, ns: &str) -> Result<(), StoreError> {
        let store = self.ctx.store();
        let Some(rt) = store.resource("", "v1", "namespaces") else {
            return Ok(());
        };
        if store.get(&rt, None, ns).is_ok() {
            return Ok(());
        }
        store.create(
            &rt,
            None,
            json!({ "metadata": { "name": ns, "labels": { "kubernetes.io/metadata.name": ns } }, "spec": { "finalizers": ["kubernetes"] } }),
        )?;
        self.activate_namespace(ns);
        self.created_namespaces.push(ns.to_string());
        Ok(())
    }

    /// A namespace the API server creates is `Active`; the store does not default it.
    fn activate_namespace(&self, ns: &str) {
        let store = self.ctx.store();
        if let Some(rt) = store.resource("", "v1", "namespaces") {
            let _ = store.patch(
                &rt,
                None,
                ns,
                &json!({ "status": { "phase": "Active" } }),
                Subresource::Status,
            );
        }
    }
}
