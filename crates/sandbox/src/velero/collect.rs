//! Which objects a Backup takes, by Velero 1.17's item collector: the namespace filter, the old
//! (`includedResources`, `includeClusterResources`) or the scoped resource filters, label
//! selectors, the namespace tracker, the `velero.io/exclude-from-backup` label, and the CRDs of
//! backed-up custom resources.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use super::filters::{IncludesExcludes, Selectors, backup_types, glob_match, resolve_all, strings};
use crate::kube::selector::Selector;
use crate::kube::store::{ResourceType, Store};

pub const EXCLUDE_LABEL: &str = "velero.io/exclude-from-backup";
const CRD_RESOURCE: &str = "customresourcedefinitions.apiextensions.k8s.io";

/// One object to back up, with its type.
#[derive(Debug, Clone)]
pub struct Item {
    pub rt: Arc<ResourceType>,
    pub object: Value,
}

impl Item {
    pub fn namespace(&self) -> Option<&str> {
        if !self.rt.namespaced {
            return None;
        }
        self.object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }

    pub fn name(&self) -> &str {
        self.object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The resource list's key: `GroupVersion.String()/Kind`.
    pub fn list_key(&self) -> String {
        format!("{}/{}", self.rt.api_version(), self.rt.kind)
    }

    /// The resource list's entry: `ns/name` or `name`.
    pub fn list_entry(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{ns}/{}", self.name()),
            None => self.name().to_string(),
        }
    }
}

/// What collection found, and the included namespaces that do not exist (an error each).
#[derive(Debug, Default)]
pub struct Collected {
    pub items: Vec<Item>,
    pub missing_namespaces: Vec<String>,
    /// CRDs added because a custom resource of theirs was backed up.
    pub added_crds: Vec<String>,
}

/// `collections.UseOldResourceFilters`: the old filters are used unless only scoped ones are set
/// (no filter at all counts as scoped).
pub fn uses_old_filters(spec: &Value) -> bool {
    !spec
        .get("includeClusterResources")
        .unwrap_or(&Value::Null)
        .is_null()
        || !strings(spec, "includedResources").is_empty()
        || !strings(spec, "excludedResources").is_empty()
}

/// The resource-type decision of a backup spec.
pub struct TypeFilter {
    namespaces: IncludesExcludes,
    old: bool,
    resources: IncludesExcludes,
    include_cluster: Option<bool>,
    cluster_scoped: IncludesExcludes,
    namespace_scoped: IncludesExcludes,
}

impl TypeFilter {
    pub fn new(spec: &Value, types: &[Arc<ResourceType>]) -> TypeFilter {
        let list = |f: &str| resolve_all(types, &strings(spec, f));
        TypeFilter {
            namespaces: IncludesExcludes::new(
                strings(spec, "includedNamespaces"),
                strings(spec, "excludedNamespaces"),
            ),
            old: uses_old_filters(spec),
            resources: IncludesExcludes::new(list("includedResources"), list("excludedResources")),
            include_cluster: spec.get("includeClusterResources").and_then(Value::as_bool),
            cluster_scoped: IncludesExcludes::new(
                list("includedClusterScopedResources"),
                list("excludedClusterScopedResources"),
            ),
            namespace_scoped: IncludesExcludes::new(
                list("includedNamespaceScopedResources"),
                list("excludedNamespaceScopedResources"),
            ),
        }
    }

    pub fn namespaces(&self) -> &IncludesExcludes {
        &self.namespaces
    }

    /// `GlobalIncludesExcludes.ShouldInclude` / `ScopeIncludesExcludes.ShouldInclude`.
    pub fn includes_type(&self, rt: &ResourceType) -> bool {
        let gr = rt.group_resource();
        let is_namespaces = gr == "namespaces";
        if self.old {
            if !rt.namespaced && self.include_cluster == Some(false) {
                return false;
            }
            // Auto mode backs up cluster-scoped objects only in whole-cluster backups.
            if !is_namespaces
                && !rt.namespaced
                && self.include_cluster.is_none()
                && !self.namespaces.include_everything()
            {
                return false;
            }
            return self.resources.should_include(&gr);
        }
        if rt.namespaced {
            return self.namespace_scoped.should_include(&gr);
        }
        let f = &self.cluster_scoped;
        let matched = |l: &[String]| l.iter().any(|p| glob_match(p, &gr));
        if matched(&f.excludes) {
            return false;
        }
        // With no cluster-scoped lists, a whole-cluster backup takes every cluster-scoped type.
        if f.includes.is_empty()
            && f.excludes.is_empty()
            && self.namespaces.include_everything()
            && self.namespace_scoped.include_everything()
        {
            return true;
        }
        matched(&f.includes) || is_namespaces
    }

    /// Whether CRDs are explicitly kept out (then custom resources do not pull theirs in).
    fn crds_excluded(&self) -> bool {
        let matched = |l: &[String]| l.iter().any(|p| glob_match(p, CRD_RESOURCE));
        if self.old {
            self.include_cluster == Some(false) || matched(&self.resources.excludes)
        } else {
            matched(&self.cluster_scoped.excludes)
        }
    }
}

fn excluded_by_label(obj: &Value) -> bool {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(EXCLUDE_LABEL))
        .and_then(Value::as_str)
        == Some("true")
}

/// Collects the objects a Backup with `spec` (defaults already applied) takes.
pub fn collect(store: &Store, spec: &Value) -> Collected {
    let types = backup_types(&store.types());
    let filter = TypeFilter::new(spec, &types);
    let selectors = Selectors::from_spec(spec);
    let ns_filter = filter.namespaces().clone();
    let mut out = Collected::default();
    let mut tracked: BTreeSet<String> = BTreeSet::new();
    let mut namespaces_rt = None;

    for rt in &types {
        if rt.group.is_empty() && rt.plural == "namespaces" {
            namespaces_rt = Some(rt.clone());
            continue;
        }
        if !filter.includes_type(rt) {
            continue;
        }
        for obj in store.list(rt, None, &Selector::default()).0 {
            let item = Item {
                rt: rt.clone(),
                object: obj,
            };
            if let Some(ns) = item.namespace()
                && !ns_filter.should_include(ns)
            {
                continue;
            }
            if !selectors.matches(&item.object) || excluded_by_label(&item.object) {
                continue;
            }
            if let Some(ns) = item.namespace() {
                tracked.insert(ns.to_string());
            }
            out.items.push(item);
        }
    }

    let mut namespace_items = Vec::new();
    if let Some(rt) = namespaces_rt {
        let all = store.list(&rt, None, &Selector::default()).0;
        for included in strings(spec, "includedNamespaces") {
            let exists = all
                .iter()
                .any(|n| n.pointer("/metadata/name").and_then(Value::as_str) == Some(&included));
            if included != "*" && !exists {
                out.missing_namespaces.push(included);
            }
        }
        if filter.includes_type(&rt) {
            for ns in all {
                let name = ns
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                // Velero skips namespaces that are not Active; one without a phase has not been
                // through a real API server's defaulting, so it counts as Active here.
                let phase = ns.pointer("/status/phase").and_then(Value::as_str);
                if phase.is_some_and(|p| p != "Active") || excluded_by_label(&ns) {
                    continue;
                }
                let by_selector = selectors.is_set() && selectors.matches(&ns);
                let by_name = !(ns_filter.include_everything() && selectors.is_set())
                    && ns_filter.should_include(&name);
                if by_selector || by_name || tracked.contains(&name) {
                    namespace_items.push(Item {
                        rt: rt.clone(),
                        object: ns,
                    });
                }
            }
        }
    }

    // The CRD of every custom resource backed up comes along, unless CRDs are excluded.
    if !filter.crds_excluded()
        && let Some(crd_rt) = types.iter().find(|t| t.group_resource() == CRD_RESOURCE)
    {
        let mut have: BTreeSet<String> = out
            .items
            .iter()
            .filter(|i| i.rt.group_resource() == CRD_RESOURCE)
            .map(|i| i.name().to_string())
            .collect();
        let wanted: BTreeSet<String> = out
            .items
            .iter()
            .filter(|i| !i.rt.group.is_empty())
            .map(|i| i.rt.group_resource())
            .collect();
        for name in wanted {
            if have.contains(&name) {
                continue;
            }
            if let Ok(crd) = store.get(crd_rt, None, &name) {
                have.insert(name.clone());
                out.added_crds.push(name);
                out.items.push(Item {
                    rt: crd_rt.clone(),
                    object: crd,
                });
            }
        }
    }

    namespace_items.append(&mut out.items);
    out.items = namespace_items;
    out
}
