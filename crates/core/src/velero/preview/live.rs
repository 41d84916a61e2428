//! The live side of the preview: for every kind in the backup's resource list, the API the
//! cluster serves it under (discovery, one request per group-version), and the fingerprints of
//! the live objects the backup would restore onto, read a page at a time. Only fingerprints of
//! wanted objects are kept, so memory grows with the backup's item count, never with the
//! cluster's size; a changed object is read again, alone, when its differences are described.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::discovery::{ApiCapabilities, Scope};
use serde_json::Value;

use super::compare::{self, Fingerprint};
use super::filter::Filter;

/// Objects per page.
pub const PAGE: u32 = 500;
/// Up to this many namespaces, a kind is listed namespace by namespace rather than across the
/// cluster.
const PER_NAMESPACE_MAX: usize = 16;

/// How a kind of the backup stands in the cluster.
#[derive(Debug, Clone)]
pub struct TypeInfo {
    pub resource: Option<ApiResource>,
    pub namespaced: bool,
    /// Why its live objects are unknown (cannot list them).
    pub unreadable: Option<String>,
}

/// What the live pass found.
#[derive(Debug, Default)]
pub struct Live {
    /// `apiVersion/Kind` → how the cluster serves it.
    pub types: BTreeMap<String, TypeInfo>,
    /// [`key`] → fingerprint of the normalized live object.
    pub fingerprints: HashMap<Fingerprint, Fingerprint>,
    pub namespaces: BTreeSet<String>,
    pub objects_read: u64,
    pub pages: u64,
    /// The most live objects held at once: one page.
    pub max_held: usize,
}

/// The key of an object for the fingerprint map: a hash of kind, namespace and name, so that an
/// entry costs 32 bytes whatever the names.
pub fn key(type_key: &str, namespace: Option<&str>, name: &str) -> Fingerprint {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in [type_key, namespace.unwrap_or(""), name] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize()[..16]);
    out
}

/// `apps/v1/Deployment` → (`apps`, `v1`, `Deployment`); `v1/ConfigMap` → (``, `v1`, …).
pub fn split_type(type_key: &str) -> Option<(&str, &str, &str)> {
    let (gv, kind) = type_key.rsplit_once('/')?;
    let (group, version) = gv.rsplit_once('/').unwrap_or(("", gv));
    Some((group, version, kind))
}

/// The group-resource Velero names a kind by (`deployments.apps`, `configmaps`).
pub fn group_resource(ar: &ApiResource) -> String {
    if ar.group.is_empty() {
        ar.plural.clone()
    } else {
        format!("{}.{}", ar.plural, ar.group)
    }
}

async fn discover(
    client: &kube::Client,
    cache: &mut HashMap<String, Vec<(ApiResource, ApiCapabilities)>>,
    group: &str,
    version: &str,
    kind: &str,
) -> Option<(ApiResource, ApiCapabilities)> {
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    if !cache.contains_key(&gv) {
        let found = match kube::discovery::pinned_group(
            client,
            &kube::core::GroupVersion::gv(group, version),
        )
        .await
        {
            Ok(g) => g.versioned_resources(version),
            Err(_) => Vec::new(),
        };
        cache.insert(gv.clone(), found);
    }
    cache
        .get(&gv)?
        .iter()
        .find(|(ar, _)| ar.kind == kind)
        .cloned()
}

/// The objects of one kind that would be restored: target namespace → names.
type Wanted = BTreeMap<Option<String>, BTreeSet<String>>;

fn wanted(filter: &Filter, gr: &str, namespaced: bool, entries: &[String]) -> Wanted {
    let mut out: Wanted = BTreeMap::new();
    for entry in entries {
        let (ns, name) = match entry.split_once('/') {
            Some((ns, name)) if namespaced => (Some(ns), name),
            _ => (None, entry.as_str()),
        };
        if filter.by_place(gr, ns, name).is_some() {
            continue;
        }
        let target = match (ns, gr == "namespaces") {
            (Some(ns), _) => Some(filter.target_namespace(ns).to_string()),
            (None, true) => None,
            (None, false) => None,
        };
        let name = if gr == "namespaces" {
            filter.target_namespace(name).to_string()
        } else {
            name.to_string()
        };
        out.entry(target).or_default().insert(name);
    }
    out
}

/// Reads the live side for the backup's `resource_list` (`apiVersion/Kind` → names).
pub async fn read(
    client: &kube::Client,
    filter: &Filter,
    resource_list: &BTreeMap<String, Vec<String>>,
) -> Live {
    let mut live = Live::default();
    let mut cache = HashMap::new();
    if let Some((ar, _)) = discover(client, &mut cache, "", "v1", "Namespace").await {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let _ = each_page(&api, &mut live, |obj, live| {
            if let Some(n) = obj.metadata.name {
                live.namespaces.insert(n);
            }
        })
        .await;
    }
    for (type_key, entries) in resource_list {
        let Some((group, version, kind)) = split_type(type_key) else {
            continue;
        };
        let Some((ar, caps)) = discover(client, &mut cache, group, version, kind).await else {
            live.types.insert(
                type_key.clone(),
                TypeInfo {
                    resource: None,
                    namespaced: false,
                    unreadable: None,
                },
            );
            continue;
        };
        let namespaced = caps.scope == Scope::Namespaced;
        let gr = group_resource(&ar);
        let want = wanted(filter, &gr, namespaced, entries);
        let mut info = TypeInfo {
            resource: Some(ar.clone()),
            namespaced,
            unreadable: None,
        };
        if !want.is_empty() {
            let namespaces: Vec<&Option<String>> = want.keys().collect();
            let apis: Vec<Api<DynamicObject>> =
                if namespaced && namespaces.len() <= PER_NAMESPACE_MAX {
                    namespaces
                        .iter()
                        .filter_map(|ns| ns.as_deref())
                        .map(|ns| Api::namespaced_with(client.clone(), ns, &ar))
                        .collect()
                } else {
                    vec![Api::all_with(client.clone(), &ar)]
                };
            for api in apis {
                let result = each_page(&api, &mut live, |obj, live| {
                    let ns = obj.metadata.namespace.clone();
                    let Some(name) = obj.metadata.name.clone() else {
                        return;
                    };
                    let name_wanted = want
                        .get(&ns.clone().filter(|_| namespaced))
                        .is_some_and(|names| names.contains(&name));
                    if !name_wanted {
                        return;
                    }
                    let value = serde_json::to_value(&obj).unwrap_or(Value::Null);
                    let normalized = compare::normalize(value, &gr, ns.as_deref());
                    live.fingerprints.insert(
                        key(type_key, ns.as_deref().filter(|_| namespaced), &name),
                        compare::fingerprint(&normalized),
                    );
                })
                .await;
                if let Err(e) = result {
                    info.unreadable =
                        Some(format!("cannot list `{gr}`: {}", crate::errors::kube(&e)));
                    break;
                }
            }
        }
        live.types.insert(type_key.clone(), info);
    }
    live
}

/// Calls `visit` with every object, a page at a time.
async fn each_page(
    api: &Api<DynamicObject>,
    live: &mut Live,
    mut visit: impl FnMut(DynamicObject, &mut Live),
) -> Result<(), kube::Error> {
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = api.list(&params).await?;
        live.pages += 1;
        live.max_held = live.max_held.max(page.items.len());
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        for obj in page.items {
            live.objects_read += 1;
            visit(obj, live);
        }
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}

/// The live object, read alone, normalized; `None` when it is gone.
pub async fn get_normalized(
    client: &kube::Client,
    info: &TypeInfo,
    gr: &str,
    namespace: Option<&str>,
    name: &str,
) -> Option<Value> {
    let ar = info.resource.as_ref()?;
    let api: Api<DynamicObject> = match namespace {
        Some(ns) if info.namespaced => Api::namespaced_with(client.clone(), ns, ar),
        _ => Api::all_with(client.clone(), ar),
    };
    let obj = api.get_opt(name).await.ok()??;
    let value = serde_json::to_value(&obj).ok()?;
    Some(compare::normalize(value, gr, namespace))
}
