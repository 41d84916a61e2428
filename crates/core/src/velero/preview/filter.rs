//! Which backed-up items a Restore would touch, by Velero's rules (`pkg/restore/restore.go`):
//! the resource and namespace lists with their globs, the resources Velero never restores, the
//! cluster-scoped rule, label selectors, namespace mapping, and the items Velero skips on its own
//! (completed pods and jobs, mirror pods). The filter reads the Restore's own `spec`, so the
//! preview and the restore cannot disagree about what was asked.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::types::glob::matches as glob;

/// Velero's `nonRestorableResources`: never restored, whatever the Restore says.
pub const NON_RESTORABLE: [&str; 9] = [
    "nodes",
    "events",
    "events.events.k8s.io",
    "backups.velero.io",
    "restores.velero.io",
    "resticrepositories.velero.io",
    "csinodes.storage.k8s.io",
    "volumeattachments.storage.k8s.io",
    "backuprepositories.velero.io",
];

/// An include list and an exclude list (`collections.IncludesExcludes`).
#[derive(Debug, Clone, Default)]
pub struct IncludesExcludes {
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
}

impl IncludesExcludes {
    fn matches(pattern: &str, s: &str, resource: bool) -> bool {
        // A resource named without its group (`deployments`) matches the group-resource
        // (`deployments.apps`), as discovery would resolve it.
        glob(pattern, s)
            || (resource && !pattern.contains('.') && s.split('.').next() == Some(pattern))
    }

    pub fn should_include(&self, s: &str, resource: bool) -> bool {
        let excluded = self.excludes.iter().any(|p| Self::matches(p, s, resource));
        let included = self.includes.is_empty()
            || self
                .includes
                .iter()
                .any(|p| p == "*" || Self::matches(p, s, resource));
        !excluded && included
    }

    pub fn include_everything(&self) -> bool {
        self.excludes.is_empty()
            && (self.includes.is_empty() || self.includes.iter().all(|i| i == "*"))
    }
}

/// A `metav1.LabelSelector`.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector {
    match_labels: Vec<(String, String)>,
    /// `(key, operator, values)`.
    expressions: Vec<(String, String, Vec<String>)>,
}

impl LabelSelector {
    pub fn from_value(v: &Value) -> LabelSelector {
        let match_labels = v
            .get("matchLabels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let expressions = v
            .get("matchExpressions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|e| {
                        let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
                        (
                            text("key").to_string(),
                            text("operator").to_string(),
                            strings(e, "values"),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        LabelSelector {
            match_labels,
            expressions,
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|(key, op, values)| {
                let value = labels.get(key);
                match op.as_str() {
                    "In" => value.is_some_and(|v| values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// A list of strings in a JSON object, empty when absent.
pub fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A Restore's selection, read from its `spec`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub resources: IncludesExcludes,
    pub namespaces: IncludesExcludes,
    pub include_cluster_resources: Option<bool>,
    /// `labelSelector`, or any of `orLabelSelectors`.
    pub selectors: Vec<LabelSelector>,
    pub namespace_mapping: BTreeMap<String, String>,
    /// `update` or `none` (empty means Velero's default, which behaves as `none`).
    pub existing_resource_policy: String,
}

/// Why an item is left out.
pub type Skip = String;

impl Filter {
    pub fn from_spec(spec: &Value) -> Filter {
        let mut selectors = Vec::new();
        if let Some(s) = spec.get("labelSelector").filter(|v| !v.is_null()) {
            selectors.push(LabelSelector::from_value(s));
        }
        if let Some(list) = spec.get("orLabelSelectors").and_then(Value::as_array) {
            selectors.extend(list.iter().map(LabelSelector::from_value));
        }
        Filter {
            resources: IncludesExcludes {
                includes: strings(spec, "includedResources"),
                excludes: strings(spec, "excludedResources"),
            },
            namespaces: IncludesExcludes {
                includes: strings(spec, "includedNamespaces"),
                excludes: strings(spec, "excludedNamespaces"),
            },
            include_cluster_resources: spec.get("includeClusterResources").and_then(Value::as_bool),
            selectors,
            namespace_mapping: spec
                .get("namespaceMapping")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
            existing_resource_policy: spec
                .get("existingResourcePolicy")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        }
    }

    /// Where an item of namespace `ns` goes.
    pub fn target_namespace<'a>(&'a self, ns: &'a str) -> &'a str {
        self.namespace_mapping
            .get(ns)
            .map(String::as_str)
            .unwrap_or(ns)
    }

    /// The checks that need only the item's place: its group-resource and namespace (for a
    /// Namespace object, its name). `None` when it is in scope.
    pub fn by_place(&self, gr: &str, namespace: Option<&str>, name: &str) -> Option<Skip> {
        if NON_RESTORABLE.contains(&gr) {
            return Some(format!("Velero never restores `{gr}`"));
        }
        if !self.resources.should_include(gr, true) {
            return Some(format!("`{gr}` is excluded from the restore"));
        }
        let is_namespace = gr == "namespaces";
        match (namespace, is_namespace) {
            (Some(_), _) | (None, true) => {
                let ns = namespace.unwrap_or(name);
                if !self.namespaces.should_include(ns, false) {
                    return Some(format!("namespace `{ns}` is excluded from the restore"));
                }
            }
            (None, false) => match self.include_cluster_resources {
                Some(false) => {
                    return Some("cluster-scoped, and the restore leaves those out".into());
                }
                None if !self.namespaces.include_everything() => {
                    return Some(
                        "cluster-scoped, and the restore includes only some namespaces".into(),
                    );
                }
                _ => {}
            },
        }
        None
    }

    /// The checks that need the item itself: labels, and what Velero skips on its own.
    pub fn by_content(&self, gr: &str, item: &Value) -> Option<Skip> {
        if !self.selectors.is_empty() {
            let labels: BTreeMap<String, String> = item
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            if !self.selectors.iter().any(|s| s.matches(&labels)) {
                return Some("its labels do not match the restore's label selector".into());
            }
        }
        let text = |ptr: &str| {
            item.pointer(ptr)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        match gr {
            "pods" if matches!(text("/status/phase"), "Succeeded" | "Failed") => {
                Some("a completed pod: Velero does not restore it".into())
            }
            "pods"
                if item
                    .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
                    .is_some() =>
            {
                Some("a mirror pod: the kubelet makes it, Velero does not restore it".into())
            }
            "jobs.batch" if !text("/status/completionTime").is_empty() => {
                Some("a completed job: Velero does not restore it".into())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn velero_selection_rules() {
        let f = Filter::from_spec(&json!({
            "includedNamespaces": ["shop", "team-*"],
            "excludedResources": ["secrets", "nodes"],
            "namespaceMapping": { "shop": "shop-copy" },
            "labelSelector": { "matchLabels": { "app": "web" } },
        }));
        assert_eq!(f.by_place("configmaps", Some("shop"), "c"), None);
        assert_eq!(f.by_place("deployments.apps", Some("team-a"), "d"), None);
        assert!(f.by_place("configmaps", Some("other"), "c").is_some());
        assert!(f.by_place("secrets", Some("shop"), "s").is_some());
        assert!(f.by_place("events", Some("shop"), "e").is_some());
        assert_eq!(f.by_place("namespaces", None, "shop"), None);
        assert!(f.by_place("namespaces", None, "other").is_some());
        assert!(
            f.by_place("clusterroles.rbac.authorization.k8s.io", None, "x")
                .is_some_and(|why| why.contains("only some namespaces"))
        );
        assert_eq!(f.target_namespace("shop"), "shop-copy");
        assert_eq!(f.target_namespace("team-a"), "team-a");
        let web = json!({ "metadata": { "labels": { "app": "web" } } });
        let api = json!({ "metadata": { "labels": { "app": "api" } } });
        assert_eq!(f.by_content("configmaps", &web), None);
        assert!(f.by_content("configmaps", &api).is_some());
        let all = Filter::from_spec(&json!({ "includedResources": ["deployments"] }));
        assert_eq!(all.by_place("deployments.apps", Some("x"), "d"), None);
        assert!(all.by_place("configmaps", Some("x"), "d").is_some());
        let done = json!({ "status": { "phase": "Succeeded" } });
        assert!(Filter::default().by_content("pods", &done).is_some());
    }
}
