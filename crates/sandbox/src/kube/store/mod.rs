//! The object store behind the emulated Kubernetes API: typed by resource, versioned by one
//! global `resourceVersion` counter, with a bounded change history for watches.
//!
//! Everything that changes cluster state — the HTTP API, the Velero controller, the workload
//! simulator and the EKS emulator's node-group rollouts — goes through this store, so a watch
//! sees every change in order, exactly as clients of a real API server do.

#[cfg(test)]
mod tests;
mod types;
mod write;

pub use types::{
    Change, ChangeKind, ListPage, PrinterColumn, ResourceType, StoreError, Subresource,
};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value};
use tokio::sync::broadcast;

use super::selector::Selector;
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
