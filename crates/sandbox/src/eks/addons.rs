//! EKS add-ons: ListAddons, DescribeAddon, DescribeAddonVersions (the catalogue) and
//! UpdateAddon, whose success changes the add-on's workloads in `kube-system`. UpdateAddon
//! takes a version listed for the cluster's version or, while a control-plane rollback is
//! possible, for the version it would return to (moving an add-on back comes first).

use std::sync::Arc;

use serde_json::{Value, json};

use super::Call;
use super::errors::EksError;
use super::request::{body_str, page};
use super::rollback::window_target;
use super::state::{Eks, Target, epoch_now};
use super::wire;
use crate::kube::store::{Store, StoreError, Subresource};
use crate::scenario::{AddonCatalogEntry, AddonVersionSpec, Scenario};
use crate::sim::{addons, workloads};
use eks_upgrade_core::types::Version;

pub fn list_addons(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    call.cluster(eks)?;
    let names: Vec<String> = eks.lock().addons.keys().cloned().collect();
    let (names, next) = page(names, call.query.max_results()?, call.query.next_token())?;
    Ok(json!({ "addons": names, "nextToken": next }))
}

pub fn describe_addon(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    call.cluster(eks)?;
    let state = eks.lock();
    let addon = state.addon(call.param("addonName"))?;
    Ok(json!({ "addon": wire::addon(&state, addon) }))
}

/// The numbers in an add-on version (`v1.19.2-eksbuild.1` → 1, 19, 2, 1), to order versions.
pub(super) fn version_key(version: &str) -> Vec<u64> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// An add-on version EKS would install on a cluster of `cluster_version`.
pub(super) fn compatible(
    catalog: &[AddonCatalogEntry],
    addon: &str,
    version: &str,
    cluster: Version,
) -> bool {
    catalog
        .iter()
        .filter(|e| e.name == addon)
        .flat_map(|e| &e.versions)
        .any(|v| v.version == version && v.compatible.contains(&cluster))
}

fn version_info(addon: &str, v: &AddonVersionSpec, only: Option<Version>) -> Value {
    let mut clusters: Vec<Version> = v
        .compatible
        .iter()
        .copied()
        .filter(|c| only.is_none_or(|o| o == *c))
        .collect();
    clusters.sort_by_key(|c| std::cmp::Reverse(*c));
    json!({
        "addonVersion": v.version,
        "architecture": ["amd64", "arm64"],
        "computeTypes": ["ec2", "hybrid"],
        "compatibilities": clusters.iter().map(|c| json!({
            "clusterVersion": c.to_string(),
            "platformVersions": ["*"],
            "defaultVersion": v.default_for.contains(c),
        })).collect::<Vec<_>>(),
        "requiresConfiguration": false,
        // The CSI driver calls EC2 on the nodes' behalf; the others need no extra IAM role.
        "requiresIamPermissions": addon == "aws-ebs-csi-driver",
    })
}

/// DescribeAddonVersions: every catalogue add-on matching the filters, versions newest first;
/// with `kubernetesVersion`, only versions compatible with it and only that compatibility.
pub fn describe_addon_versions(scenario: &Scenario, call: &Call) -> Result<Value, EksError> {
    let q = &call.query;
    let only = q
        .one("kubernetesVersion")
        .map(|t| {
            t.parse::<Version>().map_err(|_| {
                EksError::invalid_parameter(format!("Invalid Kubernetes version: {t}"))
            })
        })
        .transpose()?;
    let name = q.one("addonName");
    let (types, publishers, owners) = (q.all("types"), q.all("publishers"), q.all("owners"));
    let mut catalog = scenario.addon_catalog();
    catalog.sort_by(|a, b| a.name.cmp(&b.name));
    let items: Vec<Value> = catalog
        .iter()
        .filter(|e| name.is_none_or(|n| n == e.name))
        .filter(|e| types.is_empty() || types.contains(&e.r#type.as_str()))
        // Every add-on in the sandbox's catalogue is an AWS one published by EKS.
        .filter(|_| publishers.is_empty() || publishers.contains(&"eks"))
        .filter(|_| owners.is_empty() || owners.contains(&"aws"))
        .filter_map(|e| {
            let mut versions: Vec<&AddonVersionSpec> = e
                .versions
                .iter()
                .filter(|v| only.is_none_or(|o| v.compatible.contains(&o)))
                .collect();
            versions.sort_by_key(|v| std::cmp::Reverse(version_key(&v.version)));
            (!versions.is_empty()).then(|| {
                json!({
                    "addonName": e.name,
                    "type": e.r#type,
                    "addonVersions": versions.iter().map(|v| version_info(&e.name, v, only)).collect::<Vec<_>>(),
                    "publisher": "eks",
                    "owner": "aws",
                    "defaultNamespace": "kube-system",
                })
            })
        })
        .collect();
    let (items, next) = page(items, q.max_results()?, q.next_token())?;
    Ok(json!({ "addons": items, "nextToken": next }))
}

pub fn update_addon(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    let name = call.param("addonName");
    let body = &call.body;
    let token = body_str(body, "clientRequestToken")?;
    let version = body_str(body, "addonVersion")?;
    let resolve = body_str(body, "resolveConflicts")?;
    let config = body_str(body, "configurationValues")?;
    let role = body_str(body, "serviceAccountRoleArn")?;
    let bad = |message: String| {
        EksError::invalid_parameter(message)
            .cluster(cluster)
            .addon(name)
    };

    let mut state = eks.lock();
    let target = Target::Addon(name.to_string());
    if let Some(update) = state.replay(&target, token) {
        return Ok(json!({ "update": update.to_json() }));
    }
    let addon = state.addon(name)?.clone();
    if let Some(running) = state.in_progress(&target) {
        return Err(EksError::in_use(format!(
            "Cannot AddonUpdate because addon {name} currently has update {} in progress",
            running.id
        ))
        .cluster(cluster)
        .addon(name));
    }
    if let Some(r) = resolve
        && !matches!(r, "OVERWRITE" | "NONE" | "PRESERVE")
    {
        return Err(bad(format!(
            "Invalid resolveConflicts value {r}. Valid values are OVERWRITE, NONE, PRESERVE"
        )));
    }
    let catalog = eks.world.scenario.addon_catalog();
    let rollback_target = window_target(eks, &state);
    if let Some(v) = version
        && !compatible(&catalog, name, v, state.cluster.version)
        && !rollback_target.is_some_and(|t| compatible(&catalog, name, v, t))
    {
        return Err(bad("Addon version specified is not supported".into()));
    }
    if let Some(c) = config
        && c.trim_start().starts_with('{')
        && serde_json::from_str::<Value>(c).is_err()
    {
        return Err(bad(format!(
            "ConfigurationValue provided in request is not supported: {c} is not valid JSON"
        )));
    }
    let mut params = Vec::new();
    let given = [
        ("AddonVersion", version),
        ("ServiceAccountRoleArn", role),
        ("ResolveConflicts", resolve),
        ("ConfigurationValues", config),
    ];
    for (kind, value) in given {
        if let Some(v) = value {
            params.push((kind, v.to_string()));
        }
    }
    let update = state.begin(target, "AddonUpdate", params, token);
    if let Some(a) = state.addons.get_mut(name) {
        a.status = "UPDATING";
        a.modified_at = epoch_now();
    }
    drop(state);
    let change = Change {
        version: version.unwrap_or(&addon.version).to_string(),
        config: config.map(str::to_string),
        role: role.map(str::to_string),
    };
    tokio::spawn(apply(eks.clone(), update.id.clone(), addon.name, change));
    Ok(json!({ "update": update.to_json() }))
}

/// What an add-on update changes. Configuration and role are kept unless given.
struct Change {
    version: String,
    config: Option<String>,
    role: Option<String>,
}

/// Sets the image of the add-on's containers to the new version, as EKS's apply does.
fn set_images(store: &Store, region: &str, addon: &str, version: &str) {
    for (kind, name, container, repo) in addons::workloads(addon) {
        let plural = if *kind == "Deployment" {
            "deployments"
        } else {
            "daemonsets"
        };
        let Some(rt) = store.resource("apps", "v1", plural) else {
            continue;
        };
        let image = addons::image(region, repo, version);
        // A workload the user deleted stays deleted; EKS would report it as a health issue.
        let _ = store.update(
            &rt,
            Some("kube-system"),
            name,
            None,
            Subresource::Main,
            |obj| {
                let containers = obj
                    .pointer_mut("/spec/template/spec/containers")
                    .and_then(Value::as_array_mut)
                    .ok_or_else(|| StoreError::Invalid("no containers".into()))?;
                for c in containers.iter_mut() {
                    if c.get("name").and_then(Value::as_str) == Some(*container) {
                        c["image"] = json!(image);
                    }
                }
                Ok(())
            },
        );
    }
}

async fn apply(eks: Arc<Eks>, id: String, name: String, change: Change) {
    eks.sleep(eks.world.scenario.spec.timings.addon_update)
        .await;
    let cluster_version = eks.lock().cluster.version;
    let failure = eks.failure_for(
        &Target::Addon(name.clone()),
        Some(cluster_version),
        Some(&change.version),
    );
    let store = &eks.world.store;
    let degrades = eks
        .world
        .scenario
        .spec
        .faults
        .addon_degrades
        .iter()
        .any(|d| d.addon == name && d.version == cluster_version);
    let was_degraded = eks
        .lock()
        .addons
        .get(&name)
        .is_some_and(|a| !a.issues.is_empty());
    if failure.is_none() {
        set_images(
            store,
            &eks.world.scenario.spec.cluster.region,
            &name,
            &change.version,
        );
        // A degraded add-on crash-loops; a later healthy update repairs it.
        if degrades || was_degraded {
            for (kind, workload, _, _) in addons::workloads(&name) {
                let _ = workloads::set_broken(store, kind, "kube-system", workload, degrades);
            }
        }
    }
    let mut state = eks.lock();
    if let Some(a) = state.addons.get_mut(&name) {
        a.modified_at = epoch_now();
        a.status = "ACTIVE";
        if failure.is_none() {
            a.version = change.version;
            if change.config.is_some() {
                a.configuration_values = change.config;
            }
            if change.role.is_some() {
                a.service_account_role_arn = change.role;
            }
            a.issues.clear();
            if degrades {
                a.status = "DEGRADED";
                let resources: Vec<&str> = addons::workloads(&name)
                    .iter()
                    .map(|(_, workload, _, _)| *workload)
                    .collect();
                a.issues.push(json!({
                    "code": "InsufficientNumberOfReplicas",
                    "message": "The add-on is unhealthy because it doesn't have the desired number of replicas.",
                    "resourceIds": resources,
                }));
            }
        }
    }
    state.finish(&id, failure);
}
