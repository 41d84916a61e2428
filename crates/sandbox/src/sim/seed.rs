//! The cluster a scenario describes, written into the store before any service answers.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{addons, names, nodes, workloads};
use crate::kube::resources;
use crate::kube::store::{ResourceType, Store, StoreError, Subresource};
use crate::scenario::Scenario;
use crate::world::{ACCESS_KEY, SECRET_KEY};

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

    // CRDs for the scenario's custom resources, so discovery-driven tools see them as a real
    // cluster would show them.
    let crd = resource_of(store, "CustomResourceDefinition")?;
    for r in &spec.resources {
        let name = format!("{}.{}", r.plural, r.group);
        let obj = json!({
            "metadata": { "name": name },
            "spec": {
                "group": r.group,
                "names": { "kind": r.kind, "plural": r.plural, "singular": r.kind.to_ascii_lowercase(), "listKind": format!("{}List", r.kind) },
                "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                "versions": [ { "name": r.version, "served": true, "storage": true, "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } } ],
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

    for addon in &spec.addons {
        for (kind, name, container, repo) in addons::workloads(&addon.name) {
            let rt = resource_of(store, kind)?;
            let obj = workloads::workload_object(&workloads::Template {
                kind,
                namespace: "kube-system",
                name,
                replicas: 2,
                container,
                image: &addons::image(region, repo, &addon.version),
                labels: &addons::labels(&addon.name, name),
                broken: false,
            });
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
        store.create(
            &rt,
            Some(&w.namespace),
            workloads::workload_object(&workloads::Template {
                kind: &w.kind,
                namespace: &w.namespace,
                name: &w.name,
                replicas: w.replicas,
                container: &w.name,
                image: &w.image,
                labels: &labels,
                broken: w.broken,
            }),
        )?;
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
                image: "velero/velero:v1.17.1",
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

    for (index, obj) in spec.objects.iter().enumerate() {
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
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        let created = store
            .create(&rt, namespace.as_deref(), obj.clone())
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

    if let Some(bulk) = &spec.bulk {
        super::bulk::seed(store, bulk)?;
    }
    workloads::reconcile_all(store)?;
    Ok(())
}
