//! Bulk objects for scale tests: a cluster with tens of thousands of objects and thousands of
//! Helm releases, generated rather than written out.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BulkSpec {
    /// Namespaces `bulk-0` … the objects are spread over.
    #[serde(default = "default_namespaces")]
    pub namespaces: u32,
    /// Deployments with two replicas each (the workload simulator adds their pods).
    #[serde(default)]
    pub deployments: u32,
    #[serde(default)]
    pub config_maps: u32,
    /// Opaque Secrets (Helm's release Secrets come on top).
    #[serde(default)]
    pub secrets: u32,
    #[serde(default)]
    pub helm_releases: u32,
    /// Revisions per release: the last is `deployed`, the others `superseded`.
    #[serde(default = "default_revisions")]
    pub helm_revisions: u32,
    /// Every Nth release's deployed manifest uses this removed API (`apiVersion` + `kind`,
    /// such as `flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema`); 0 for none.
    #[serde(default)]
    pub removed_api_every: u32,
    #[serde(default)]
    pub removed_api: Option<String>,
}

fn default_namespaces() -> u32 {
    20
}

fn default_revisions() -> u32 {
    1
}
