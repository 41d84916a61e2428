//! The Velero server itself: whether its Deployment runs, which the pre-flight check asks of
//! blue and `waitGreen` asks of green.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;

/// The Deployment `velero` in `namespace`: `None` when there is none, else its available and
/// wanted replicas. Available means at least one replica, and all that are wanted.
pub async fn replicas(
    kube: kube::Client,
    namespace: &str,
) -> Result<Option<Replicas>, kube::Error> {
    let found = Api::<Deployment>::namespaced(kube, namespace)
        .get_opt("velero")
        .await?;
    Ok(found.map(|d| Replicas {
        wanted: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        available: d
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0),
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicas {
    pub wanted: i32,
    pub available: i32,
}

impl Replicas {
    pub fn ready(self) -> bool {
        self.available >= self.wanted.max(1)
    }
}
