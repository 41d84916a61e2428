//! Load balancers for `type: LoadBalancer` Services, as the AWS Load Balancer Controller gives
//! them: a DNS name in the Service's `status.loadBalancer.ingress`. The name is a pure
//! function of cluster, region and Service, so a scenario's Route 53 record can point at a
//! Service (`service: ns/name`) and the traffic generator can tell which cluster a value is.

use serde_json::{Value, json};

use super::names;
use crate::kube::selector::Selector;
use crate::kube::store::{Store, StoreError, Subresource};

/// `k8s-{namespace}-{name}-{hash}.elb.{region}.amazonaws.com`, namespace and name cut to eight
/// characters each as the controller cuts them.
pub fn lb_hostname(cluster: &str, region: &str, namespace: &str, name: &str) -> String {
    let cut = |s: &str| s.chars().take(8).collect::<String>();
    let hash = names::suffix(&format!("{cluster}/{region}/{namespace}/{name}"), 10);
    format!(
        "k8s-{}-{}-{hash}.elb.{region}.amazonaws.com",
        cut(namespace),
        cut(name)
    )
}

fn wants_hostname(service: &Value) -> bool {
    service.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
        && service
            .pointer("/status/loadBalancer/ingress/0/hostname")
            .is_none()
}

/// Gives the Service `namespace/name` its load balancer's name when it is of type
/// LoadBalancer and has none yet.
pub fn provision(
    store: &Store,
    cluster: &str,
    region: &str,
    service: &Value,
) -> Result<(), StoreError> {
    if !wants_hostname(service) {
        return Ok(());
    }
    let (Some(namespace), Some(name)) = (
        service
            .pointer("/metadata/namespace")
            .and_then(Value::as_str),
        service.pointer("/metadata/name").and_then(Value::as_str),
    ) else {
        return Ok(());
    };
    let Some(rt) = store.resource("", "v1", "services") else {
        return Ok(());
    };
    let hostname = lb_hostname(cluster, region, namespace, name);
    store.patch(
        &rt,
        Some(namespace),
        name,
        &json!({"status": {"loadBalancer": {"ingress": [{"hostname": hostname}]}}}),
        Subresource::Status,
    )?;
    Ok(())
}

/// Provisions every LoadBalancer Service that has no name yet: the ones seeded before the
/// simulator started listening.
pub fn provision_all(store: &Store, cluster: &str, region: &str) {
    let Some(rt) = store.resource("", "v1", "services") else {
        return;
    };
    for service in store.list(&rt, None, &Selector::default()).0 {
        let _ = provision(store, cluster, region, &service);
    }
}
