//! What a request to a load balancer's DNS name meets in a cluster: the Service with that name
//! in its status, and the Ready pods its selector picks.

use serde_json::Value;

use crate::kube::selector::Selector;
use crate::kube::store::Store;
use crate::sim::workloads::OWNER_LABEL;

/// The HTTP status a request to `host` gets from the cluster whose objects are in `store`, or
/// `None` when no LoadBalancer Service of this cluster has that name. `serves_errors` are the
/// workloads (`namespace/name`) whose Ready pods answer 500.
pub fn status_in(store: &Store, host: &str, serves_errors: &[String]) -> Option<u16> {
    let services = store.resource("", "v1", "services")?;
    let pods = store.resource("", "v1", "pods")?;
    let (all, _) = store.list(&services, None, &Selector::default());
    let service = all.iter().find(|s| {
        s.pointer("/status/loadBalancer/ingress/0/hostname")
            .and_then(Value::as_str)
            == Some(host)
    })?;
    let namespace = service
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    // A Service without a selector sends nowhere the sandbox knows: nothing is Ready.
    let labels: Vec<String> = service
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect()
        })
        .unwrap_or_default();
    if labels.is_empty() {
        return Some(503);
    }
    let Ok(selector) = Selector::labels(&labels.join(",")) else {
        return Some(503);
    };
    let (selected, _) = store.list(&pods, Some(namespace), &selector);
    let ready: Vec<&Value> = selected
        .iter()
        .filter(|p| {
            p.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .collect();
    if ready.is_empty() {
        return Some(503);
    }
    let broken = ready.iter().any(|p| {
        let owner = p
            .pointer("/metadata/labels")
            .and_then(|l| l.get(OWNER_LABEL))
            .and_then(Value::as_str)
            .and_then(|o| o.split_once('.'))
            .map(|(_, name)| name);
        owner.is_some_and(|name| serves_errors.contains(&format!("{namespace}/{name}")))
    });
    Some(if broken { 500 } else { 200 })
}

/// The account's clusters, as requests meet them: the cluster whose LoadBalancer Service owns
/// the name answers, if EKS reports it `ACTIVE`.
pub struct Clusters(pub std::sync::Arc<crate::account::Account>);

impl super::generator::Backends for Clusters {
    fn answer(&self, host: &str) -> super::generator::Answer {
        for name in self.0.names() {
            let Some(cluster) = self.0.cluster(&name) else {
                continue;
            };
            if cluster.status() != "ACTIVE" {
                continue;
            }
            let world = &cluster.world;
            if let Some(status) = status_in(
                &world.store,
                host,
                &world.scenario.spec.faults.serves_errors,
            ) {
                return super::generator::Answer {
                    cluster: Some(name),
                    status,
                };
            }
        }
        super::generator::Answer {
            cluster: None,
            status: 502,
        }
    }
}
