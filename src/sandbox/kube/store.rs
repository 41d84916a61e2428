//! The object store behind the emulated Kubernetes API: typed by resource, versioned by one
//! global `resourceVersion` counter, with a bounded change history for watches.
//!
//! Everything that changes cluster state — the HTTP API, the Velero controller, the workload
//! simulator and the EKS emulator's node-group rollouts — goes through this store, so a watch
//! sees every change in order, exactly as clients of a real API server do.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::selector::Selector;

/// A resource type the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Whether `/status` is a separate subresource (writes to the main resource keep `status`).
    pub status_subresource: bool,
}

impl ResourceType {
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        ResourceType {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: kind.to_ascii_lowercase(),
            namespaced,
            short_names: Vec::new(),
            status_subresource: false,
        }
    }

    pub fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural` or `plural.group`, as Velero and RBAC name resources.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// Why a store operation failed; maps onto Kubernetes `Status` reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: String, name: String },
    #[error("{kind} \"{name}\" already exists")]
    AlreadyExists { kind: String, name: String },
    #[error(
        "Operation cannot be fulfilled on {kind} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict { kind: String, name: String },
    #[error("{0}")]
    Invalid(String),
    #[error("too old resource version: {requested} ({oldest})")]
    Gone { requested: u64, oldest: u64 },
}

impl StoreError {
    /// The HTTP status and `reason` of the Kubernetes `Status` object.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            StoreError::NotFound { .. } => (404, "NotFound"),
            StoreError::AlreadyExists { .. } => (409, "AlreadyExists"),
            StoreError::Conflict { .. } => (409, "Conflict"),
            StoreError::Invalid(_) => (422, "Invalid"),
            StoreError::Gone { .. } => (410, "Expired"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn watch_type(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// One change to one object, in global order.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub kind: ChangeKind,
    pub resource: Arc<ResourceType>,
    pub object: Value,
}

impl Change {
    pub fn namespace(&self) -> Option<&str> {
        self.object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }
    pub fn name(&self) -> &str {
        self.object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// One page of a paginated list.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub items: Vec<Value>,
    /// The store's resource version when the page was read.
    pub resource_version: u64,
    /// `(namespace, name)` of the last item, when more objects follow.
    pub continue_after: Option<(String, String)>,
    /// How many objects follow (only for unfiltered lists).
    pub remaining: Option<usize>,
}

/// What a watch starts from: the retained changes it missed, and a receiver for the rest.
pub type WatchStart = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);

/// How many changes a watch can be resumed across; older resource versions get `410 Gone`.
const HISTORY: usize = 20_000;

type Key = (String, String);

struct State {
    rv: u64,
    uid_seq: u64,
    types: Vec<Arc<ResourceType>>,
    objects: HashMap<usize, BTreeMap<Key, Value>>,
    history: VecDeque<Arc<Change>>,
    /// The resource version just before the oldest retained change.
    compacted: u64,
}

pub struct Store {
    state: Mutex<State>,
    changes: broadcast::Sender<Arc<Change>>,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn meta(obj: &Value, field: &str) -> Option<String> {
    obj.get("metadata")?
        .get(field)?
        .as_str()
        .map(str::to_string)
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

impl Store {
    pub fn new() -> Self {
        let (changes, _) = broadcast::channel(65_536);
        Store {
            state: Mutex::new(State {
                rv: 1,
                uid_seq: 0,
                types: Vec::new(),
                objects: HashMap::new(),
                history: VecDeque::new(),
                compacted: 1,
            }),
            changes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a sandbox bug; keep serving rather than cascading.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a resource type; re-registering the same group/version/plural replaces it.
    pub fn register(&self, rt: ResourceType) -> Arc<ResourceType> {
        let mut s = self.lock();
        let rt = Arc::new(rt);
        if let Some(i) = s
            .types
            .iter()
            .position(|t| t.group == rt.group && t.version == rt.version && t.plural == rt.plural)
        {
            s.types[i] = rt.clone();
        } else {
            s.types.push(rt.clone());
        }
        rt
    }

    pub fn types(&self) -> Vec<Arc<ResourceType>> {
        self.lock().types.clone()
    }

    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.lock()
            .types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// The type of `apiVersion` + `kind`, as found in an object.
    pub fn resource_for_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.lock()
            .types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
            .cloned()
    }

    /// The current resource version.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Subscribes to every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    fn type_index(s: &State, rt: &ResourceType) -> usize {
        s.types
            .iter()
            .position(|t| t.group == rt.group && t.plural == rt.plural)
            .unwrap_or(usize::MAX)
    }

    fn key(rt: &ResourceType, namespace: Option<&str>, name: &str) -> Key {
        let ns = if rt.namespaced {
            namespace.unwrap_or("")
        } else {
            ""
        };
        (ns.to_string(), name.to_string())
    }

    fn record(&self, s: &mut State, kind: ChangeKind, rt: &Arc<ResourceType>, object: Value) {
        let change = Arc::new(Change {
            rv: s.rv,
            kind,
            resource: rt.clone(),
            object,
        });
        s.history.push_back(change.clone());
        while s.history.len() > HISTORY {
            if let Some(old) = s.history.pop_front() {
                s.compacted = old.rv;
            }
        }
        // Nobody listening is fine: controllers subscribe when they start.
        let _ = self.changes.send(change);
    }

    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, StoreError> {
        let s = self.lock();
        let idx = Self::type_index(&s, rt);
        s.objects
            .get(&idx)
            .and_then(|m| m.get(&Self::key(rt, namespace, name)))
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                kind: rt.group_resource(),
                name: name.to_string(),
            })
    }

    /// Objects of a type, in namespace/name order, filtered; with the resource version of the
    /// snapshot.
    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        selector: &Selector,
    ) -> (Vec<Value>, u64) {
        let s = self.lock();
        let idx = Self::type_index(&s, rt);
        let items = s
            .objects
            .get(&idx)
            .map(|m| match namespace.filter(|_| rt.namespaced) {
                // Keys sort by namespace first, so one namespace is one contiguous range.
                Some(ns) => m
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((k, _), _)| k == ns)
                    .filter(|(_, obj)| selector.matches(obj))
                    .map(|(_, obj)| obj.clone())
                    .collect(),
                None => m
                    .values()
                    .filter(|obj| selector.matches(obj))
                    .cloned()
                    .collect(),
            })
            .unwrap_or_default();
        (items, s.rv)
    }

    /// One page of a list: the objects after `after` (a `(namespace, name)` key, exclusive) that
    /// match `selector`, at most `limit` of them. Each page costs O(limit + skipped), whatever
    /// the position, so paging through n objects is O(n) in total.
    pub fn list_page(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        selector: &Selector,
        after: Option<(&str, &str)>,
        limit: Option<usize>,
    ) -> ListPage {
        let s = self.lock();
        let idx = Self::type_index(&s, rt);
        let mut page = ListPage {
            items: Vec::new(),
            resource_version: s.rv,
            continue_after: None,
            remaining: None,
        };
        let Some(m) = s.objects.get(&idx) else {
            return page;
        };
        let ns = namespace.filter(|_| rt.namespaced);
        let ns_start = ns.map(|ns| (ns.to_string(), String::new()));
        let start = match (after, ns_start) {
            (Some((a_ns, a_name)), Some(first)) if (a_ns, a_name) < (first.0.as_str(), "") => {
                Bound::Included(first)
            }
            (Some((a_ns, a_name)), _) => Bound::Excluded((a_ns.to_string(), a_name.to_string())),
            (None, Some(first)) => Bound::Included(first),
            (None, None) => Bound::Unbounded,
        };
        let mut range = m
            .range::<Key, _>((start, Bound::Unbounded))
            .take_while(|((k, _), _)| ns.is_none_or(|ns| k == ns));
        let mut last: Option<&Key> = None;
        let limit = limit.filter(|l| *l > 0);
        for (key, obj) in range.by_ref() {
            if selector.matches(obj) {
                page.items.push(obj.clone());
                last = Some(key);
                if limit.is_some_and(|l| page.items.len() >= l) {
                    break;
                }
            }
        }
        if limit.is_some_and(|l| page.items.len() >= l) {
            // Counting keys is cheap (no copies); a filtered list cannot know how many of them
            // match, so it reports no count, as Kubernetes does.
            let rest = range.count();
            if rest > 0 {
                page.continue_after = last.cloned();
                if *selector == Selector::default() {
                    page.remaining = Some(rest);
                }
            }
        }
        page
    }

    /// The oldest resource version a watch can still start from; older ones are `Gone`.
    pub fn compacted_resource_version(&self) -> u64 {
        self.lock().compacted
    }

    /// Number of objects of a type, without copying them.
    pub fn count(&self, rt: &ResourceType) -> usize {
        let s = self.lock();
        let idx = Self::type_index(&s, rt);
        s.objects.get(&idx).map_or(0, BTreeMap::len)
    }

    pub fn create(
        &self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        obj: Value,
    ) -> Result<Value, StoreError> {
        self.create_inner(rt, namespace, obj, true)
    }

    /// What `create` would store, with every check it makes, without storing anything (the API's
    /// `dryRun=All`). The result has a uid but no `resourceVersion`, as a real dry run.
    pub fn preview_create(
        &self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        obj: Value,
    ) -> Result<Value, StoreError> {
        self.create_inner(rt, namespace, obj, false)
    }

    fn create_inner(
        &self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        mut obj: Value,
        commit: bool,
    ) -> Result<Value, StoreError> {
        if !obj.is_object() {
            return Err(StoreError::Invalid(
                "the object must be a JSON object".into(),
            ));
        }
        let mut s = self.lock();
        let mut name = meta(&obj, "name").unwrap_or_default();
        if name.is_empty() {
            match meta(&obj, "generateName") {
                Some(prefix) => {
                    s.uid_seq += 1;
                    name = format!("{prefix}{:05x}", (s.uid_seq * 7919) % 0xfffff);
                }
                None => {
                    return Err(StoreError::Invalid(format!(
                        "{}: metadata.name: Required value: name or generateName is required",
                        rt.kind
                    )));
                }
            }
        }
        let ns = if rt.namespaced {
            let ns = namespace
                .map(str::to_string)
                .or_else(|| meta(&obj, "namespace"))
                .unwrap_or_else(|| "default".to_string());
            if let Some(in_body) = meta(&obj, "namespace")
                && in_body != ns
            {
                return Err(StoreError::Invalid(format!(
                    "the namespace of the provided object does not match the namespace sent on the request ({in_body} vs {ns})"
                )));
            }
            let ns_idx = s
                .types
                .iter()
                .position(|t| t.group.is_empty() && t.plural == "namespaces");
            let ns_exists = ns_idx
                .and_then(|i| s.objects.get(&i))
                .is_some_and(|m| m.contains_key(&(String::new(), ns.clone())));
            if !ns_exists {
                return Err(StoreError::NotFound {
                    kind: "namespaces".into(),
                    name: ns,
                });
            }
            Some(ns)
        } else {
            None
        };
        let idx = Self::type_index(&s, rt);
        let key = Self::key(rt, ns.as_deref(), &name);
        if s.objects.get(&idx).is_some_and(|m| m.contains_key(&key)) {
            return Err(StoreError::AlreadyExists {
                kind: rt.group_resource(),
                name,
            });
        }
        if commit {
            s.rv += 1;
            s.uid_seq += 1;
        }
        let uid = uuid::Uuid::new_v4().to_string();
        let rv = s.rv;
        let m = obj
            .as_object_mut()
            .and_then(|o| {
                o.insert("apiVersion".into(), json!(rt.api_version()));
                o.insert("kind".into(), json!(rt.kind));
                o.entry("metadata").or_insert_with(|| json!({}));
                o.get_mut("metadata")?.as_object_mut()
            })
            .ok_or_else(|| StoreError::Invalid("metadata must be an object".into()))?;
        m.insert("name".into(), json!(name));
        if let Some(ns) = &ns {
            m.insert("namespace".into(), json!(ns));
        }
        m.insert("uid".into(), json!(uid));
        if commit {
            m.insert("resourceVersion".into(), json!(rv.to_string()));
        } else {
            m.remove("resourceVersion");
        }
        m.insert("generation".into(), json!(1));
        m.entry("creationTimestamp")
            .or_insert_with(|| json!(now_rfc3339()));
        if !commit {
            return Ok(obj);
        }
        s.objects.entry(idx).or_default().insert(key, obj.clone());
        self.record(&mut s, ChangeKind::Added, rt, obj.clone());
        Ok(obj)
    }

    /// Replaces an object (PUT). A stale `metadata.resourceVersion` is a conflict.
    pub fn replace(
        &self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        name: &str,
        obj: Value,
        sub: Subresource,
    ) -> Result<Value, StoreError> {
        let expected_rv = meta(&obj, "resourceVersion");
        self.update(
            rt,
            namespace,
            name,
            expected_rv.as_deref(),
            sub,
            |current| {
                *current = obj;
                Ok(())
            },
        )
    }

    /// Applies a JSON merge patch.
    pub fn patch(
        &self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        sub: Subresource,
    ) -> Result<Value, StoreError> {
        let expected_rv = patch
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        self.update(
            rt,
            namespace,
            name,
            expected_rv.as_deref(),
            sub,
            |current| {
                merge_patch(current, patch);
                Ok(())
            },
        )
    }

    /// Changes an object with `f`, keeping identity fields and the status-subresource rules.
    /// Used by the HTTP layer and by in-process controllers.
    pub fn update(
        &self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        name: &str,
        expected_rv: Option<&str>,
        sub: Subresource,
        f: impl FnOnce(&mut Value) -> Result<(), StoreError>,
    ) -> Result<Value, StoreError> {
        self.update_inner(rt, namespace, name, expected_rv, sub, f, true)
    }

    /// What `update` would store, with every check it makes, without storing anything (the
    /// API's `dryRun=All`). The result keeps the current `resourceVersion`.
    pub fn preview_update(
        &self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        name: &str,
        expected_rv: Option<&str>,
        sub: Subresource,
        f: impl FnOnce(&mut Value) -> Result<(), StoreError>,
    ) -> Result<Value, StoreError> {
        self.update_inner(rt, namespace, name, expected_rv, sub, f, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn update_inner(
        &self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        name: &str,
        expected_rv: Option<&str>,
        sub: Subresource,
        f: impl FnOnce(&mut Value) -> Result<(), StoreError>,
        commit: bool,
    ) -> Result<Value, StoreError> {
        let mut s = self.lock();
        let idx = Self::type_index(&s, rt);
        let key = Self::key(rt, namespace, name);
        let not_found = || StoreError::NotFound {
            kind: rt.group_resource(),
            name: name.to_string(),
        };
        let old = s
            .objects
            .get(&idx)
            .and_then(|m| m.get(&key))
            .cloned()
            .ok_or_else(not_found)?;
        if let Some(expected) = expected_rv.filter(|e| !e.is_empty())
            && meta(&old, "resourceVersion").as_deref() != Some(expected)
        {
            return Err(StoreError::Conflict {
                kind: rt.group_resource(),
                name: name.to_string(),
            });
        }
        let mut new = old.clone();
        f(&mut new)?;
        if !new.is_object() {
            return Err(StoreError::Invalid(
                "the object must be a JSON object".into(),
            ));
        }
        // Identity and server-owned fields come from the stored object.
        for field in ["name", "namespace", "uid", "creationTimestamp"] {
            match old.pointer(&format!("/metadata/{field}")) {
                Some(v) => {
                    if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.insert(field.to_string(), v.clone());
                    } else if let Some(o) = new.as_object_mut() {
                        o.insert("metadata".into(), json!({ field: v }));
                    }
                }
                None => {
                    if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove(field);
                    }
                }
            }
        }
        if let Some(o) = new.as_object_mut() {
            o.insert("apiVersion".into(), json!(rt.api_version()));
            o.insert("kind".into(), json!(rt.kind));
        }
        if rt.status_subresource {
            match sub {
                Subresource::Main => set_field(&mut new, "status", old.get("status").cloned()),
                Subresource::Status => {
                    let status = new.get("status").cloned();
                    new = old.clone();
                    set_field(&mut new, "status", status);
                }
            }
        }
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let spec_changed = old.get("spec") != new.get("spec");
        if new == old {
            return Ok(old);
        }
        if !commit {
            if spec_changed && let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut)
            {
                m.insert("generation".into(), json!(generation + 1));
            }
            return Ok(new);
        }
        s.rv += 1;
        let rv = s.rv;
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), json!(rv.to_string()));
            m.insert(
                "generation".into(),
                json!(if spec_changed {
                    generation + 1
                } else {
                    generation
                }),
            );
        }
        s.objects.entry(idx).or_default().insert(key, new.clone());
        self.record(&mut s, ChangeKind::Modified, rt, new.clone());
        Ok(new)
    }

    pub fn delete(
        &self,
        rt: &Arc<ResourceType>,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, StoreError> {
        let mut s = self.lock();
        let idx = Self::type_index(&s, rt);
        let key = Self::key(rt, namespace, name);
        let Some(mut obj) = s.objects.get_mut(&idx).and_then(|m| m.remove(&key)) else {
            return Err(StoreError::NotFound {
                kind: rt.group_resource(),
                name: name.to_string(),
            });
        };
        s.rv += 1;
        let rv = s.rv;
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        self.record(&mut s, ChangeKind::Deleted, rt, obj.clone());
        // Deleting a namespace deletes what is in it.
        if rt.group.is_empty() && rt.plural == "namespaces" {
            let types = s.types.clone();
            for t in types.iter().filter(|t| t.namespaced) {
                let ti = Self::type_index(&s, t);
                let doomed: Vec<Key> = s
                    .objects
                    .get(&ti)
                    .map(|m| m.keys().filter(|(ns, _)| ns == name).cloned().collect())
                    .unwrap_or_default();
                for k in doomed {
                    if let Some(mut o) = s.objects.get_mut(&ti).and_then(|m| m.remove(&k)) {
                        s.rv += 1;
                        let rv = s.rv;
                        if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                            m.insert("resourceVersion".into(), json!(rv.to_string()));
                        }
                        self.record(&mut s, ChangeKind::Deleted, t, o);
                    }
                }
            }
        }
        Ok(obj)
    }

    /// Changes after `from_rv` that are still retained, and a receiver for later ones. The
    /// receiver is subscribed under the lock, so nothing falls between the two.
    pub fn watch_from(&self, from_rv: u64) -> Result<WatchStart, StoreError> {
        let s = self.lock();
        if from_rv < s.compacted {
            return Err(StoreError::Gone {
                requested: from_rv,
                oldest: s.compacted,
            });
        }
        // History is in resource-version order: find the first newer change by bisection
        // rather than scanning every retained change for each watch.
        let first = s.history.partition_point(|c| c.rv <= from_rv);
        let backlog = s.history.range(first..).cloned().collect();
        Ok((backlog, self.changes.subscribe()))
    }
}

fn set_field(obj: &mut Value, field: &str, value: Option<Value>) {
    if let Some(o) = obj.as_object_mut() {
        match value {
            Some(v) => {
                o.insert(field.to_string(), v);
            }
            None => {
                o.remove(field);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (Store, Arc<ResourceType>, Arc<ResourceType>) {
        let s = Store::new();
        let ns = s.register(ResourceType::new(
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
        ));
        let cm = s.register(ResourceType::new("", "v1", "ConfigMap", "configmaps", true));
        s.create(&ns, None, json!({"metadata": {"name": "a"}}))
            .unwrap();
        (s, ns, cm)
    }

    #[test]
    fn create_get_update_delete_with_versions() {
        let (s, _, cm) = store();
        let created = s
            .create(
                &cm,
                Some("a"),
                json!({"metadata": {"name": "x"}, "data": {"k": "v"}}),
            )
            .unwrap();
        assert_eq!(created["metadata"]["namespace"], "a");
        let rv1 = created["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(matches!(
            s.create(&cm, Some("a"), json!({"metadata": {"name": "x"}})),
            Err(StoreError::AlreadyExists { .. })
        ));
        assert!(matches!(
            s.create(&cm, Some("nope"), json!({"metadata": {"name": "x"}})),
            Err(StoreError::NotFound { .. })
        ));
        let patched = s
            .patch(
                &cm,
                Some("a"),
                "x",
                &json!({"data": {"k": null, "n": "1"}}),
                Subresource::Main,
            )
            .unwrap();
        assert_eq!(patched["data"], json!({"n": "1"}));
        let stale = json!({"metadata": {"name": "x", "resourceVersion": rv1}, "data": {}});
        assert!(matches!(
            s.replace(&cm, Some("a"), "x", stale, Subresource::Main),
            Err(StoreError::Conflict { .. })
        ));
        s.delete(&cm, Some("a"), "x").unwrap();
        assert!(s.get(&cm, Some("a"), "x").is_err());
    }

    #[test]
    fn status_subresource_separates_writes() {
        let s = Store::new();
        let b = s.register(
            ResourceType::new("velero.io", "v1", "Backup", "backups", false).with_status(),
        );
        s.create(
            &b,
            None,
            json!({"metadata": {"name": "b"}, "spec": {"ttl": "1h"}}),
        )
        .unwrap();
        let o = s
            .patch(
                &b,
                None,
                "b",
                &json!({"spec": {"ttl": "2h"}, "status": {"phase": "X"}}),
                Subresource::Main,
            )
            .unwrap();
        assert_eq!(o["spec"]["ttl"], "2h");
        assert!(o.get("status").is_none());
        assert_eq!(o["metadata"]["generation"], 2);
        let o = s
            .patch(
                &b,
                None,
                "b",
                &json!({"spec": {"ttl": "3h"}, "status": {"phase": "Done"}}),
                Subresource::Status,
            )
            .unwrap();
        assert_eq!(o["spec"]["ttl"], "2h");
        assert_eq!(o["status"]["phase"], "Done");
    }

    #[test]
    fn watch_replays_and_expires() {
        let (s, _, cm) = store();
        let start = s.resource_version();
        s.create(&cm, Some("a"), json!({"metadata": {"name": "x"}}))
            .unwrap();
        let (backlog, _rx) = s.watch_from(start).unwrap();
        assert_eq!(backlog.len(), 1);
        assert_eq!(backlog[0].kind, ChangeKind::Added);
        for i in 0..HISTORY + 5 {
            s.patch(
                &cm,
                Some("a"),
                "x",
                &json!({"data": {"i": i.to_string()}}),
                Subresource::Main,
            )
            .unwrap();
        }
        assert!(matches!(s.watch_from(start), Err(StoreError::Gone { .. })));
    }
}
