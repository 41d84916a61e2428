//! Velero's selection rules: include/exclude lists with globs (`collections.IncludesExcludes`),
//! resource names resolved through discovery, the old and the scoped resource filters, and
//! `metav1.LabelSelector`s.

use std::sync::Arc;

pub use eks_upgrade_core::types::glob::matches as glob_match;
use serde_json::Value;

use crate::kube::store::ResourceType;

/// An include list and an exclude list. An empty include list or `*` includes everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncludesExcludes {
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
}

impl IncludesExcludes {
    pub fn new(includes: Vec<String>, excludes: Vec<String>) -> Self {
        IncludesExcludes { includes, excludes }
    }

    fn excluded(&self, s: &str) -> bool {
        self.excludes.iter().any(|p| glob_match(p, s))
    }

    fn included(&self, s: &str) -> bool {
        self.includes.is_empty() || self.includes.iter().any(|p| p == "*" || glob_match(p, s))
    }

    pub fn should_include(&self, s: &str) -> bool {
        !self.excluded(s) && self.included(s)
    }

    pub fn include_everything(&self) -> bool {
        self.excludes.is_empty()
            && (self.includes.is_empty() || (self.includes.len() == 1 && self.includes[0] == "*"))
    }
}

/// `ValidateIncludesExcludes`.
pub fn validate_lists(includes: &[String], excludes: &[String]) -> Vec<String> {
    let mut errs = Vec::new();
    let mut inc: Vec<&String> = includes.iter().collect();
    inc.sort();
    inc.dedup();
    let mut exc: Vec<&String> = excludes.iter().collect();
    exc.sort();
    exc.dedup();
    if inc.len() > 1 && inc.iter().any(|i| *i == "*") {
        errs.push(
            "includes list must either contain '*' only, or a non-empty list of items".to_string(),
        );
    }
    if exc.iter().any(|e| *e == "*") {
        errs.push("excludes list cannot contain '*'".to_string());
    }
    for e in exc {
        if inc.contains(&e) {
            errs.push(format!(
                "excludes list cannot contain an item in the includes list: {e}"
            ));
        }
    }
    errs
}

/// `ValidateScopedIncludesExcludes`, for the cluster- and namespace-scoped resource lists.
pub fn validate_scoped_lists(includes: &[String], excludes: &[String]) -> Vec<String> {
    let mut errs = Vec::new();
    let star = |l: &[String]| l.iter().any(|i| i == "*");
    let distinct = |l: &[String]| {
        let mut v: Vec<&String> = l.iter().collect();
        v.sort();
        v.dedup();
        v.len()
    };
    if distinct(includes) > 1 && star(includes) {
        errs.push(
            "includes list must either contain '*' only, or a non-empty list of items".to_string(),
        );
    }
    if distinct(excludes) > 1 && star(excludes) {
        errs.push(
            "excludes list must either contain '*' only, or a non-empty list of items".to_string(),
        );
    }
    if !includes.is_empty() && star(excludes) {
        errs.push("when exclude is '*', include cannot have value".to_string());
    }
    for e in excludes {
        if includes.contains(e) {
            errs.push(format!(
                "excludes list cannot contain an item in the includes list: {e}"
            ));
        }
    }
    errs
}

/// `validateNamespaceName` after Velero swaps `*` for a letter: an RFC 1123 label.
pub fn validate_namespace_name(ns: &str) -> Option<String> {
    if ns.is_empty() {
        return None;
    }
    let candidate = ns.replace(['*', '?'], "x");
    let ok = candidate.len() <= 63
        && candidate
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && candidate.starts_with(|c: char| c.is_ascii_alphanumeric())
        && candidate.ends_with(|c: char| c.is_ascii_alphanumeric());
    (!ok).then(|| {
        format!(
            "invalid namespace \"{ns}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    })
}

/// The resource types that can be backed up, one per group-resource (the first registered
/// version is the preferred one).
pub fn backup_types(types: &[Arc<ResourceType>]) -> Vec<Arc<ResourceType>> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for t in types {
        let gr = t.group_resource();
        if !seen.contains(&gr) {
            seen.push(gr);
            out.push(t.clone());
        }
    }
    out
}

/// Resolves a user's resource name (`deployments`, `deploy`, `Deployment`,
/// `deployments.apps`) to the fully qualified group-resource, as discovery does. Patterns with
/// wildcards and names discovery does not know are kept only if they are `*`; Velero drops
/// unresolvable entries.
pub fn resolve_resource(types: &[Arc<ResourceType>], entry: &str) -> Option<String> {
    if entry == "*" {
        return Some(entry.to_string());
    }
    let lower = entry.to_ascii_lowercase();
    let (name, group) = match lower.split_once('.') {
        Some((n, g)) => (n.to_string(), Some(g.to_string())),
        None => (lower.clone(), None),
    };
    types
        .iter()
        .find(|t| t.group_resource() == lower)
        .or_else(|| {
            types.iter().find(|t| {
                let names_match = t.plural == name
                    || t.singular == name
                    || t.kind.to_ascii_lowercase() == name
                    || t.short_names.contains(&name);
                names_match && group.as_ref().is_none_or(|g| t.group == *g)
            })
        })
        .map(|t| t.group_resource())
}

pub fn resolve_all(types: &[Arc<ResourceType>], entries: &[String]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| resolve_resource(types, e))
        .collect()
}

/// A `metav1.LabelSelector`; `None` selects everything.
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
            .map(|exprs| {
                exprs
                    .iter()
                    .map(|e| {
                        let s = |k: &str| {
                            e.get(k)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string()
                        };
                        let values = e
                            .get("values")
                            .and_then(Value::as_array)
                            .map(|vs| {
                                vs.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default();
                        (s("key"), s("operator"), values)
                    })
                    .collect()
            })
            .unwrap_or_default();
        LabelSelector {
            match_labels,
            expressions,
        }
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.match_labels
            .iter()
            .all(|(k, v)| get(k) == Some(v.as_str()))
            && self
                .expressions
                .iter()
                .all(|(k, op, values)| match op.as_str() {
                    "In" => get(k).is_some_and(|x| values.iter().any(|v| v == x)),
                    "NotIn" => get(k).is_none_or(|x| !values.iter().any(|v| v == x)),
                    "Exists" => get(k).is_some(),
                    "DoesNotExist" => get(k).is_none(),
                    // An operator Kubernetes would have rejected selects nothing.
                    _ => false,
                })
    }
}

/// `labelSelector` or any of `orLabelSelectors`; neither selects everything.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    pub single: Option<LabelSelector>,
    pub any_of: Vec<LabelSelector>,
}

impl Selectors {
    pub fn from_spec(spec: &Value) -> Selectors {
        Selectors {
            single: spec
                .get("labelSelector")
                .filter(|v| v.is_object())
                .map(LabelSelector::from_value),
            any_of: spec
                .get("orLabelSelectors")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(LabelSelector::from_value).collect())
                .unwrap_or_default(),
        }
    }

    pub fn is_set(&self) -> bool {
        self.single.is_some() || !self.any_of.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        match &self.single {
            Some(s) => s.matches(obj),
            None => self.any_of.is_empty() || self.any_of.iter().any(|s| s.matches(obj)),
        }
    }
}

/// A string list field of a spec.
pub fn strings(spec: &Value, field: &str) -> Vec<String> {
    spec.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn include_exclude_lists() {
        // The glob itself is tested where it lives, `eks_upgrade_core::types::glob`.
        let ie = IncludesExcludes::new(vec![], vec!["kube-*".into()]);
        assert!(ie.should_include("shop"));
        assert!(!ie.should_include("kube-system"));
        assert!(!ie.include_everything());
        assert!(IncludesExcludes::new(vec!["*".into()], vec![]).include_everything());
        assert_eq!(
            validate_lists(&["a".into()], &["a".into(), "*".into()]).len(),
            2
        );
        assert!(validate_namespace_name("Bad_NS").is_some());
        assert!(validate_namespace_name("team-*").is_none());
    }

    #[test]
    fn selectors() {
        let obj = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let sel = |v: Value| LabelSelector::from_value(&v).matches(&obj);
        assert!(sel(json!({"matchLabels": {"app": "web"}})));
        assert!(!sel(json!({"matchLabels": {"app": "api"}})));
        assert!(sel(
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]})
        ));
        assert!(sel(
            json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]})
        ));
        let or = Selectors::from_spec(
            &json!({"orLabelSelectors": [{"matchLabels": {"app": "api"}}, {"matchLabels": {"tier": "front"}}]}),
        );
        assert!(or.matches(&obj));
    }
}
