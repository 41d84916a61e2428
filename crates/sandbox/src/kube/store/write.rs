//! Writes: create, replace, patch, update and delete, each recorded as one change.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{
    ChangeKind, Key, ResourceType, Store, StoreError, Subresource, merge_patch, meta, now_rfc3339,
};

impl Store {
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
