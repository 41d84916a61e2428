//! The backup side of the preview: the tarball read once, item by item, on a blocking thread.
//! Each item Velero would restore (its unversioned copy; the `-preferredversion` twin holds the
//! same bytes) goes through the Restore's filters and is compared with the live fingerprint;
//! only an item that differs makes a request, to describe what differs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use super::compare;
use super::filter::Filter;
use super::live::{self, Live};
use super::{Action, PreviewItem};
use crate::velero::verify::stream::ChunkReader;
use crate::velero::verify::tarball::{self, MAX_ITEM_BYTES, Place};
use crate::velero::verify::tarwalk::{Kind, TarWalk};

/// What the walk needs besides the bytes.
pub struct Walk {
    pub filter: Filter,
    pub live: Live,
    pub client: kube::Client,
    pub runtime: tokio::runtime::Handle,
    /// CustomResourceDefinitions in the backup, by name (`widgets.example.com`): their custom
    /// resources can be restored even where the cluster does not serve them yet.
    pub crds: BTreeSet<String>,
    /// Changed objects described field by field at most; the rest are only counted as changed.
    pub max_described: usize,
    pub listing: super::Listing,
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct Walked {
    /// The objects listed one by one (see [`super::Listing`]).
    pub items: Vec<PreviewItem>,
    /// Every object, listed or not, per action.
    pub counts: BTreeMap<Action, u64>,
    pub tarball_items: u64,
    /// The tarball could not be read to its end: why.
    pub broken: Option<String>,
}

/// `resources/<gr>/(cluster|namespaces/<ns>)/<name>.json` → group-resource.
fn group_resource(path: &str) -> Option<&str> {
    path.strip_prefix("resources/")?.split('/').next()
}

pub fn run(walk: Arc<Walk>, compressed: ChunkReader) -> Walked {
    tarball::inflate_beside(compressed, |tar_bytes| walk_entries(&walk, tar_bytes))
}

fn walk_entries(walk: &Walk, tar_bytes: ChunkReader) -> Walked {
    let mut out = Walked::default();
    let mut described = 0usize;
    let mut entries = TarWalk::new(tar_bytes);
    let mut needs_namespace: BTreeSet<String> = BTreeSet::new();
    let mut namespace_items: BTreeSet<String> = BTreeSet::new();
    loop {
        let header = match entries.next_entry() {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(e) => {
                out.broken = Some(e.to_string());
                return out;
            }
        };
        if header.kind != Kind::File {
            continue;
        }
        let path = entries.path().to_string();
        let Some(Place::Unversioned {
            namespace, name, ..
        }) = tarball::classify(&path)
        else {
            continue;
        };
        let Some(gr) = group_resource(&path) else {
            continue;
        };
        out.tarball_items += 1;
        let parsed = if header.size > MAX_ITEM_BYTES {
            Err(format!(
                "`{path}` is {} bytes, far larger than any Kubernetes object",
                header.size
            ))
        } else {
            match entries.content() {
                Ok(content) => serde_json::from_slice::<Value>(&content)
                    .map_err(|e| format!("`{path}` is not valid JSON: {e}")),
                Err(e) => {
                    out.broken = Some(e.to_string());
                    return out;
                }
            }
        };
        let item = match parsed {
            Ok(v) => v,
            Err(why) => {
                *out.counts.entry(Action::Unknown).or_insert(0) += 1;
                out.items.push(PreviewItem::new(
                    Action::Unknown,
                    "",
                    "",
                    namespace,
                    name,
                    Some(why),
                ));
                continue;
            }
        };
        let found = decide(walk, gr, namespace, name, item, &mut described);
        if gr == "namespaces" {
            namespace_items.insert(walk.filter.target_namespace(name).to_string());
        }
        if matches!(found.action, Action::Create | Action::Update)
            && let Some(ns) = &found.namespace
        {
            needs_namespace.insert(ns.clone());
        }
        *out.counts.entry(found.action).or_insert(0) += 1;
        // Unchanged objects are most of a backup: counted, and listed only when asked for, so
        // that what the preview holds grows with what the restore would change.
        if found.action != Action::Unchanged || walk.listing == super::Listing::Everything {
            out.items.push(found);
        }
    }
    // Velero creates the namespace a restored item needs when neither the cluster nor the
    // backup has it.
    for ns in needs_namespace {
        if !walk.live.namespaces.contains(&ns) && !namespace_items.contains(&ns) {
            let mut item = PreviewItem::new(
                Action::Create,
                "v1",
                "Namespace",
                None,
                &ns,
                Some("created for the items restored into it".into()),
            );
            item.from_namespace = None;
            *out.counts.entry(Action::Create).or_insert(0) += 1;
            out.items.push(item);
        }
    }
    out
}

fn decide(
    walk: &Walk,
    gr: &str,
    namespace: Option<&str>,
    name: &str,
    item: Value,
    described: &mut usize,
) -> PreviewItem {
    let text = |ptr: &str| {
        item.pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (api_version, kind) = (text("/apiVersion"), text("/kind"));
    let filter = &walk.filter;
    let target_ns = namespace.map(|ns| filter.target_namespace(ns).to_string());
    let target_name = if gr == "namespaces" {
        filter.target_namespace(name).to_string()
    } else {
        name.to_string()
    };
    let mut result = PreviewItem::new(
        Action::Skip,
        &api_version,
        &kind,
        target_ns.as_deref(),
        &target_name,
        None,
    );
    if namespace != target_ns.as_deref() || target_name != name {
        result.from_namespace = namespace.or(Some(name)).map(str::to_string);
    }
    if let Some(why) = filter
        .by_place(gr, namespace, name)
        .or_else(|| filter.by_content(gr, &item))
    {
        result.reason = Some(why);
        return result;
    }
    let type_key = format!("{api_version}/{kind}");
    let info = walk.live.types.get(&type_key);
    match info {
        None => {
            result.action = Action::Unknown;
            result.reason = Some(format!("`{type_key}` is not in the backup's resource list"));
            return result;
        }
        Some(i) if i.resource.is_none() => {
            if walk.crds.contains(gr) {
                result.action = Action::Create;
                result.reason = Some("its CustomResourceDefinition is restored first".into());
            } else {
                result.reason = Some(format!(
                    "the cluster does not serve `{type_key}`: Velero cannot restore it"
                ));
            }
            return result;
        }
        Some(i) if i.unreadable.is_some() => {
            result.action = Action::Unknown;
            result.reason = i.unreadable.clone();
            return result;
        }
        Some(_) => {}
    }
    let info = info.cloned().unwrap_or(live::TypeInfo {
        resource: None,
        namespaced: false,
        unreadable: None,
    });
    let backed_up = compare::normalize(item, gr, target_ns.as_deref());
    let key = live::key(
        &type_key,
        target_ns.as_deref().filter(|_| info.namespaced),
        &target_name,
    );
    let Some(live_print) = walk.live.fingerprints.get(&key) else {
        result.action = Action::Create;
        return result;
    };
    if *live_print == compare::fingerprint(&backed_up) {
        result.action = Action::Unchanged;
        return result;
    }
    let merged = gr == "serviceaccounts";
    result.action = if filter.existing_resource_policy == "update" || merged {
        Action::Update
    } else {
        Action::Skip
    };
    result.reason = Some(if merged {
        "Velero merges ServiceAccounts: it adds the backup's secrets, labels and annotations".into()
    } else if result.action == Action::Skip {
        "it exists and differs; `existingResourcePolicy: none` keeps the cluster's version (Velero warns)".into()
    } else {
        "it exists and differs".into()
    });
    if *described < walk.max_described {
        *described += 1;
        let current = walk.runtime.block_on(live::get_normalized(
            &walk.client,
            &info,
            gr,
            target_ns.as_deref(),
            &target_name,
        ));
        match current {
            Some(l) => result.changes = compare::changes(&l, &backed_up, kind == "Secret"),
            None => {
                result.action = Action::Create;
                result.reason = Some("it was deleted while the preview ran".into());
            }
        }
    }
    result
}
