//! Add-ons that come and go: CreateAddon (`CREATING` → its workloads in `kube-system` →
//! `ACTIVE`; without a version, the catalogue's default for the cluster's version) and
//! DeleteAddon (`DELETING` → its workloads removed unless `preserve` → gone).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Call;
use super::addons::{compatible, version_key};
use super::errors::EksError;
use super::request::body_str;
use super::state::{Addon, Eks, epoch_now, stable_id};
use super::wire;
use crate::kube::store::StoreError;
use crate::scenario::AddonCatalogEntry;
use crate::sim::addons;
use eks_upgrade_core::types::Version;

/// The version EKS installs when CreateAddon names none: the catalogue's default for the
/// cluster's version, else its newest compatible one.
pub fn default_version(
    catalog: &[AddonCatalogEntry],
    addon: &str,
    cluster: Version,
) -> Option<String> {
    let versions: Vec<_> = catalog
        .iter()
        .filter(|e| e.name == addon)
        .flat_map(|e| &e.versions)
        .filter(|v| v.compatible.contains(&cluster))
        .collect();
    versions
        .iter()
        .find(|v| v.default_for.contains(&cluster))
        .or_else(|| versions.iter().max_by_key(|v| version_key(&v.version)))
        .map(|v| v.version.clone())
}

pub fn create_addon(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    let body = &call.body;
    let name = body_str(body, "addonName")?.unwrap_or_default();
    let bad = |m: String| EksError::invalid_parameter(m).cluster(cluster).addon(name);
    let config = body_str(body, "configurationValues")?;
    let role = body_str(body, "serviceAccountRoleArn")?;
    let mut state = eks.lock();
    if state.cluster.status != "ACTIVE" {
        return Err(EksError::invalid_request(format!(
            "Cluster {cluster} is {} and cannot take add-ons until it is ACTIVE",
            state.cluster.status
        ))
        .cluster(cluster)
        .addon(name));
    }
    if state.addons.contains_key(name) {
        return Err(EksError::in_use(format!("Addon already exists: {name}"))
            .cluster(cluster)
            .addon(name));
    }
    let catalog = eks.world.scenario.addon_catalog();
    if !catalog.iter().any(|e| e.name == name) {
        return Err(bad(format!("Addon {name} specified is not supported")));
    }
    let cluster_version = state.cluster.version;
    let version = match body_str(body, "addonVersion")? {
        Some(v) if compatible(&catalog, name, v, cluster_version) => v.to_string(),
        Some(_) => return Err(bad("Addon version specified is not supported".into())),
        None => default_version(&catalog, name, cluster_version).ok_or_else(|| {
            bad(format!(
                "Addon {name} has no version for Kubernetes {cluster_version}"
            ))
        })?,
    };
    if let Some(c) = config
        && c.trim_start().starts_with('{')
        && serde_json::from_str::<Value>(c).is_err()
    {
        return Err(bad(format!(
            "ConfigurationValue provided in request is not supported: {c} is not valid JSON"
        )));
    }
    let spec = &eks.world.scenario.spec;
    let uid = stable_id(&format!("addon/{cluster}/{name}/{}", epoch_now()));
    let now = epoch_now();
    let addon = Addon {
        name: name.to_string(),
        arn: format!(
            "arn:aws:eks:{}:{}:addon/{cluster}/{name}/{uid}",
            spec.cluster.region, spec.account
        ),
        version,
        status: "CREATING",
        created_at: now,
        modified_at: now,
        configuration_values: config.map(str::to_string),
        service_account_role_arn: role.map(str::to_string),
        issues: Vec::new(),
        tags: body
            .get("tags")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(Map::new),
    };
    let answer = json!({ "addon": wire::addon(&state, &addon) });
    state.addons.insert(name.to_string(), addon.clone());
    drop(state);
    tokio::spawn(create(eks.clone(), addon));
    Ok(answer)
}

/// After `timings.addonCreate`, the add-on's workloads run in `kube-system` (a workload already
/// there is adopted at the add-on's image) and it is `ACTIVE`.
async fn create(eks: Arc<Eks>, addon: Addon) {
    eks.sleep(eks.world.scenario.spec.timings.addon_create)
        .await;
    let store = &eks.world.store;
    let region = &eks.world.scenario.spec.cluster.region;
    let mut failure = None;
    for (kind, _, obj) in addons::objects(region, &addon.name, &addon.version) {
        let Some(rt) = store.resource(
            "apps",
            "v1",
            if kind == "Deployment" {
                "deployments"
            } else {
                "daemonsets"
            },
        ) else {
            continue;
        };
        match store.create(&rt, Some("kube-system"), obj) {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => failure = Some(e.to_string()),
        }
    }
    let mut state = eks.lock();
    if let Some(a) = state.addons.get_mut(&addon.name) {
        a.modified_at = epoch_now();
        match failure {
            None => a.status = "ACTIVE",
            Some(message) => {
                a.status = "CREATE_FAILED";
                a.issues.push(json!({
                    "code": "ConfigurationConflict",
                    "message": message,
                    "resourceIds": [],
                }));
            }
        }
    }
}

pub fn delete_addon(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    let name = call.param("addonName");
    let preserve = match call.query.one("preserve") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(EksError::invalid_parameter(format!(
                "preserve must be true or false, not {other}"
            ))
            .cluster(cluster)
            .addon(name));
        }
    };
    let mut state = eks.lock();
    let addon = state.addon(name)?.clone();
    if matches!(addon.status, "CREATING" | "UPDATING") {
        return Err(EksError::invalid_request(format!(
            "Addon {name} is {} and cannot be deleted until that finishes",
            addon.status
        ))
        .cluster(cluster)
        .addon(name));
    }
    let first = addon.status != "DELETING";
    let Some(a) = state.addons.get_mut(name) else {
        return Err(EksError::not_found(format!(
            "No addon: {name} found in cluster: {cluster}"
        )));
    };
    a.status = "DELETING";
    a.modified_at = epoch_now();
    let a = a.clone();
    let answer = json!({ "addon": wire::addon(&state, &a) });
    drop(state);
    if first {
        tokio::spawn(delete(eks.clone(), name.to_string(), preserve));
    }
    Ok(answer)
}

/// After `timings.addonCreate`, the add-on's workloads are gone (kept with `preserve`) and EKS
/// no longer lists it.
async fn delete(eks: Arc<Eks>, name: String, preserve: bool) {
    eks.sleep(eks.world.scenario.spec.timings.addon_create)
        .await;
    if !preserve {
        let store = &eks.world.store;
        for (kind, workload, _, _) in addons::workloads(&name) {
            let plural = if *kind == "Deployment" {
                "deployments"
            } else {
                "daemonsets"
            };
            if let Some(rt) = store.resource("apps", "v1", plural) {
                let _ = store.delete(&rt, Some("kube-system"), workload);
            }
        }
    }
    eks.lock().addons.remove(&name);
}
