//! The cluster a scenario describes, written into the store before any service answers.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{addons, automode, fargate, karpenter, names, nodes, workloads};
use crate::kube::resources;
use crate::kube::store::{ResourceType, Store, StoreError, Subresource};
use crate::scenario::Scenario;
use crate::world::{ACCESS_KEY, SECRET_KEY};
use eks_upgrade_core::types::Version;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("scenario object #{index} ({what}): {source}")]
    Object {
        index: usize,
        what: String,
        #[source]
        source: StoreError,
    },
    #[error(
        "scenario object #{index} has `apiVersion: {api_version}` and `kind: {kind}`, which the sandbox does not serve; declare it under `spec.resources`"
    )]
    UnknownKind {
        index: usize,
        api_version: String,
        kind: String,
    },
    #[error("seeding the cluster: {0}")]
    Store(#[from] StoreError),
}

pub(super) fn ensure_namespace(store: &Store, name: &str) -> Result<(), StoreError> {
    let Some(rt) = store.resource("", "v1", "namespaces") else {
        return Ok(());
    };
    match store.create(&rt, None, json!({ "metadata": { "name": name, "labels": { "kubernetes.io/metadata.name": name } }, "spec": { "finalizers": ["kubernetes"] } })) {
        Ok(_) => {
            store.patch(&rt, None, name, &json!({ "status": { "phase": "Active" } }), Subresource::Status)?;
            Ok(())
        }
        Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

pub(super) fn resource_of(
    store: &Store,
    kind: &str,
) -> Result<std::sync::Arc<ResourceType>, StoreError> {
    let (group, plural) = match kind {
        "Deployment" => ("apps", "deployments"),
        "StatefulSet" => ("apps", "statefulsets"),
        "DaemonSet" => ("apps", "daemonsets"),
        "Node" => ("", "nodes"),
        "Secret" => ("", "secrets"),
        "ConfigMap" => ("", "configmaps"),
        "ServiceAccount" => ("", "serviceaccounts"),
        "PodDisruptionBudget" => ("policy", "poddisruptionbudgets"),
        "BackupStorageLocation" => ("velero.io", "backupstoragelocations"),
        "CustomResourceDefinition" => ("apiextensions.k8s.io", "customresourcedefinitions"),
        _ => ("", ""),
    };
    let version = "v1";
    store
        .resource(group, version, plural)
        .ok_or_else(|| StoreError::Invalid(format!("no resource for {kind}")))
}

/// Registers the resource types: built-in, Velero's, and the scenario's own.
pub fn register_types(store: &Store, scenario: &Scenario) -> Result<(), StoreError> {
    for rt in resources::builtin() {
        store.register(rt);
    }
    for rt in custom_types(scenario) {
        store.register(rt);
    }
    for r in &scenario.spec.resources {
        store.register(ResourceType::new(
            &r.group,
            &r.version,
            &r.kind,
            &r.plural,
            r.namespaced,
        ));
    }
    Ok(())
}

/// The custom resource types of Auto Mode and of a self-installed Karpenter, each once: both
/// serve Karpenter's NodePools and NodeClaims.
fn custom_types(scenario: &Scenario) -> Vec<ResourceType> {
    let mut types = Vec::new();
    if scenario.spec.cluster.auto_mode() {
        types.extend(automode::resource_types());
    }
    if scenario.spec.karpenter.is_some() {
        types.extend(karpenter::resource_types());
    }
    let mut seen = std::collections::BTreeSet::new();
    types.retain(|t| seen.insert((t.group.clone(), t.plural.clone())));
    types
}

/// Writes the scenario's cluster into the store. `s3_url` is where the BackupStorageLocation
/// points.
pub fn seed(store: &Store, scenario: &Scenario, s3_url: &str) -> Result<(), SeedError> {
    let spec = &scenario.spec;
    let region = spec.cluster.region.as_str();
    let mut namespaces: BTreeSet<String> =
        ["default", "kube-system", "kube-public", "kube-node-lease"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    if spec.velero.installed {
        namespaces.insert(spec.velero.namespace.clone());
    }
    namespaces.extend(spec.workloads.iter().map(|w| w.namespace.clone()));
    namespaces.extend(spec.objects.iter().filter_map(|o| {
        o.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string)
    }));
    for ns in &namespaces {
        ensure_namespace(store, ns)?;
    }

    // CRDs for the scenario's custom resources (and Auto Mode's), so discovery-driven tools
    // see them as a real cluster would show them.
    let crd = resource_of(store, "CustomResourceDefinition")?;
    let auto_types = custom_types(scenario);
    let custom = spec
        .resources
        .iter()
        .map(|r| ResourceType::new(&r.group, &r.version, &r.kind, &r.plural, r.namespaced))
        .chain(auto_types);
    for t in custom {
        let name = format!("{}.{}", t.plural, t.group);
        let columns: Vec<Value> = t
            .columns
            .iter()
            .map(|c| json!({ "name": c.name, "type": c.ty, "priority": c.priority, "jsonPath": c.json_path }))
            .collect();
        let mut names = json!({ "kind": t.kind, "plural": t.plural, "singular": t.singular, "listKind": format!("{}List", t.kind) });
        if !t.short_names.is_empty() {
            names["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            names["categories"] = json!(t.categories);
        }
        let mut version = json!({ "name": t.version, "served": true, "storage": true, "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } });
        if !columns.is_empty() {
            version["additionalPrinterColumns"] = json!(columns);
        }
        if t.status_subresource {
            version["subresources"] = json!({ "status": {} });
        }
        let obj = json!({
            "metadata": { "name": name },
            "spec": {
                "group": t.group,
                "names": names,
                "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                "versions": [ version ],
            },
        });
        match store.create(&crd, None, obj) {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }

    let node_rt = resource_of(store, "Node")?;
    let zones = ["a", "b", "c"];
    let mut n = 0usize;
    for ng in &spec.nodegroups {
        let version = ng.version.unwrap_or(spec.cluster.version);
        for i in 0..ng.nodes {
            let name = names::node_name(region, &format!("{}/{}/{i}", spec.cluster.name, ng.name));
            let zone = format!("{region}{}", zones[n % zones.len()]);
            n += 1;
            let origin = nodes::Origin::Managed {
                nodegroup: &ng.name,
                instance_type: &ng.instance_type,
                labels: &ng.labels,
            };
            store.create(
                &node_rt,
                None,
                nodes::node_object(&name, version, &origin, &zone),
            )?;
        }
    }
    for asg in &spec.self_managed_nodes {
        for i in 0..asg.nodes {
            let name = names::node_name(region, &format!("{}/{}/{i}", spec.cluster.name, asg.name));
            let zone = format!("{region}{}", zones[n % zones.len()]);
            n += 1;
            store.create(
                &node_rt,
                None,
                nodes::node_object(
                    &name,
                    asg.version,
                    &nodes::Origin::SelfManaged { asg: &asg.name },
                    &zone,
                ),
            )?;
        }
    }

    let n = karpenter::seed(store, scenario, n)?;
    automode::seed(store, scenario, n)?;

    for addon in &spec.addons {
        for (kind, _, obj) in addons::objects(region, &addon.name, &addon.version) {
            let rt = resource_of(store, kind)?;
            store.create(&rt, Some("kube-system"), obj)?;
        }
    }

    let pdb_rt = resource_of(store, "PodDisruptionBudget")?;
    for w in &spec.workloads {
        let rt = resource_of(store, &w.kind)?;
        let mut labels = json!({ "app.kubernetes.io/name": w.name });
        for (k, v) in &w.labels {
            labels[k.as_str()] = json!(v);
        }
        let mut object = workloads::workload_object(&workloads::Template {
            kind: &w.kind,
            namespace: &w.namespace,
            name: &w.name,
            replicas: w.replicas,
            container: &w.name,
            image: &w.image,
            labels: &labels,
            broken: w.broken,
        });
        if w.do_not_disrupt {
            object["spec"]["template"]["metadata"]["annotations"][nodes::DO_NOT_DISRUPT] =
                json!("true");
        }
        store.create(&rt, Some(&w.namespace), object)?;
        if let Some(min) = w.pdb_min_available {
            store.create(&pdb_rt, Some(&w.namespace), json!({
                "metadata": { "name": w.name },
                "spec": { "minAvailable": min, "selector": { "matchLabels": { "app.kubernetes.io/name": w.name } } },
            }))?;
        }
    }

    if spec.velero.installed {
        let ns = spec.velero.namespace.as_str();
        let deploy = resource_of(store, "Deployment")?;
        let labels = json!({ "component": "velero", "app.kubernetes.io/name": "velero" });
        store.create(
            &deploy,
            Some(ns),
            workloads::workload_object(&workloads::Template {
                kind: "Deployment",
                namespace: ns,
                name: "velero",
                replicas: 1,
                container: "velero",
                image: if spec.velero.queues_backups() {
                    "velero/velero:v1.18.1"
                } else {
                    "velero/velero:v1.17.1"
                },
                labels: &labels,
                broken: false,
            }),
        )?;
        let secret = resource_of(store, "Secret")?;
        let credentials = format!(
            "[default]\naws_access_key_id={ACCESS_KEY}\naws_secret_access_key={SECRET_KEY}\n"
        );
        use base64::Engine;
        store.create(
            &secret,
            Some(ns),
            json!({
                "metadata": { "name": "cloud-credentials" },
                "type": "Opaque",
                "data": { "cloud": base64::engine::general_purpose::STANDARD.encode(credentials) },
            }),
        )?;
        // A created cluster's Velero waits for the tool to attach a location.
        if !spec.velero.without_location {
            let bsl = resource_of(store, "BackupStorageLocation")?;
            let mut object_storage = json!({ "bucket": spec.velero.bucket });
            if let Some(prefix) = &spec.velero.prefix {
                object_storage["prefix"] = json!(prefix);
            }
            store.create(
                &bsl,
                Some(ns),
                json!({
                    "metadata": { "name": spec.velero.storage_location },
                    "spec": {
                        "provider": "aws",
                        "default": true,
                        "accessMode": "ReadWrite",
                        "objectStorage": object_storage,
                        "config": { "region": region, "s3Url": s3_url, "s3ForcePathStyle": "true" },
                        "credential": { "name": "cloud-credentials", "key": "cloud" },
                    },
                }),
            )?;
        }
    }

    seed_objects(store, scenario, spec.cluster.version, false)?;

    if let Some(bulk) = &spec.bulk {
        super::bulk::seed(store, bulk)?;
    }
    let placement = fargate::Placement::new(scenario, spec.cluster.version);
    workloads::reconcile_all(store, &placement)?;
    Ok(())
}

/// The version that started serving the API an object uses (`spec.resources[].servedSince`).
fn served_since(scenario: &Scenario, api_version: &str, kind: &str) -> Option<Version> {
    scenario
        .spec
        .resources
        .iter()
        .find(|r| {
            r.kind == kind
                && api_version == format!("{}/{}", r.group, r.version).trim_start_matches('/')
        })
        .and_then(|r| r.served_since)
}

/// Writes the scenario's further objects that the API server serves at `version` (with
/// `arrived`, only those of APIs that `version` starts serving). Objects of an API that a later
/// version introduces wait for it: they are written when the control plane reaches that
/// version (as by an operator that adopts the API once it is there). Objects that exist
/// already are left alone.
pub fn seed_objects(
    store: &Store,
    scenario: &Scenario,
    version: Version,
    arrived: bool,
) -> Result<(), SeedError> {
    for (index, obj) in scenario.spec.objects.iter().enumerate() {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let rt =
            store
                .resource_for_kind(api_version, kind)
                .ok_or_else(|| SeedError::UnknownKind {
                    index,
                    api_version: api_version.to_string(),
                    kind: kind.to_string(),
                })?;
        let since = served_since(scenario, api_version, kind);
        if since.is_some_and(|s| s > version) || (arrived && since != Some(version)) {
            continue;
        }
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        let created = match store.create(&rt, namespace.as_deref(), obj.clone()) {
            Err(StoreError::AlreadyExists { .. }) => continue,
            other => other,
        }
        .map_err(|source| SeedError::Object {
            index,
            what: format!(
                "{kind} {}",
                obj.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            ),
            source,
        })?;
        // Objects that carry a status keep it, as if their controller had written it.
        if rt.status_subresource
            && let Some(status) = obj.get("status")
        {
            let name = created
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            store.patch(
                &rt,
                namespace.as_deref(),
                name,
                &json!({ "status": status }),
                Subresource::Status,
            )?;
        }
    }

    Ok(())
}
