//! Seeds a scenario's `bulk` objects: Deployments (whose pods the workload simulator adds),
//! ConfigMaps, Secrets and Helm 3 release Secrets encoded exactly as Helm stores them.

use std::io::Write;

use base64::Engine as _;
use serde_json::{Value, json};

use super::seed::SeedError;
use crate::kube::store::Store;
use crate::scenario::BulkSpec;

/// A Helm release Secret's `data.release`: JSON, gzipped, base64 by Helm, and base64 again as
/// every Secret value is on the wire.
pub fn helm_release_field(release: &Value) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(release.to_string().as_bytes());
    let zipped = gz.finish().unwrap_or_default();
    let helm = base64::engine::general_purpose::STANDARD.encode(zipped);
    base64::engine::general_purpose::STANDARD.encode(helm)
}

/// A Helm release Secret as Helm 3 writes it.
pub fn helm_release_secret(
    namespace: &str,
    name: &str,
    revision: u32,
    status: &str,
    manifest: &str,
) -> Value {
    let release = json!({
        "name": name,
        "namespace": namespace,
        "version": revision,
        "info": { "status": status, "description": "Install complete" },
        "chart": { "metadata": { "name": name, "version": "1.0.0" } },
        "manifest": manifest,
    });
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": format!("sh.helm.release.v1.{name}.v{revision}"),
            "namespace": namespace,
            "labels": { "owner": "helm", "name": name, "status": status, "version": revision.to_string() },
        },
        "data": { "release": helm_release_field(&release) },
    })
}

fn manifest(namespace: &str, name: &str, removed: Option<(&str, &str)>) -> String {
    let mut out = format!(
        "---\n# Source: {name}/templates/service.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  ports:\n    - port: 80\n      targetPort: http\n  selector:\n    app: {name}\n---\n# Source: {name}/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n    app: {name}\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n        - name: app\n          image: public.ecr.aws/nginx/nginx:1.27\n          ports:\n            - name: http\n              containerPort: 8080\n"
    );
    if let Some((api_version, kind)) = removed {
        out.push_str(&format!(
            "---\n# Source: {name}/templates/extra.yaml\napiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}-extra\nspec: {{}}\n"
        ));
    }
    out
}

pub fn seed(store: &Store, bulk: &BulkSpec) -> Result<(), SeedError> {
    let ns_count = bulk.namespaces.max(1);
    let ns = |i: u32| format!("bulk-{}", i % ns_count);
    for i in 0..ns_count {
        super::seed::ensure_namespace(store, &ns(i))?;
    }
    let rt = |kind: &str| super::seed::resource_of(store, kind);
    let deployment = rt("Deployment")?;
    for i in 0..bulk.deployments {
        let name = format!("app-{i}");
        let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns(i)}}).to_string();
        store.create(
            &deployment,
            Some(&ns(i)),
            json!({
                "metadata": {
                    "name": name,
                    "annotations": { "kubectl.kubernetes.io/last-applied-configuration": applied },
                },
                "spec": {
                    "replicas": 2,
                    "selector": { "matchLabels": { "app": name } },
                    "template": {
                        "metadata": { "labels": { "app": name } },
                        "spec": { "containers": [ { "name": "app", "image": "public.ecr.aws/nginx/nginx:1.27" } ] },
                    },
                },
            }),
        )?;
    }
    let config_map = rt("ConfigMap")?;
    for i in 0..bulk.config_maps {
        store.create(
            &config_map,
            Some(&ns(i)),
            json!({ "metadata": { "name": format!("config-{i}") }, "data": { "settings.json": format!("{{\"instance\": {i}, \"feature\": true}}") } }),
        )?;
    }
    let secret = rt("Secret")?;
    for i in 0..bulk.secrets {
        store.create(
            &secret,
            Some(&ns(i)),
            json!({ "metadata": { "name": format!("secret-{i}") }, "type": "Opaque", "data": { "token": base64::engine::general_purpose::STANDARD.encode(format!("token-{i}")) } }),
        )?;
    }
    let removed = bulk.removed_api.as_deref().and_then(|s| s.split_once(' '));
    let revisions = bulk.helm_revisions.max(1);
    for i in 0..bulk.helm_releases {
        let namespace = ns(i);
        let name = format!("release-{i}");
        for revision in 1..=revisions {
            let last = revision == revisions;
            let uses_removed = bulk.removed_api_every > 0 && i % bulk.removed_api_every == 0;
            // Older revisions always carry the removed API, so a checker that reads
            // superseded revisions reports releases that no longer use it.
            let removed_here = if uses_removed || !last { removed } else { None };
            let obj = helm_release_secret(
                &namespace,
                &name,
                revision,
                if last { "deployed" } else { "superseded" },
                &manifest(&namespace, &name, removed_here),
            );
            store.create(&secret, Some(&namespace), obj)?;
        }
    }
    Ok(())
}
