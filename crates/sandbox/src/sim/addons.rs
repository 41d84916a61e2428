//! How EKS add-ons show up inside the cluster: each installs workloads in `kube-system` whose
//! image tag is the add-on version. Updating an add-on through EKS changes those images.

use serde_json::json;

/// The workloads an add-on runs: (kind, name, container, image repository).
pub fn workloads(
    addon: &str,
) -> &'static [(&'static str, &'static str, &'static str, &'static str)] {
    match addon {
        "vpc-cni" => &[("DaemonSet", "aws-node", "aws-node", "amazon-k8s-cni")],
        "coredns" => &[("Deployment", "coredns", "coredns", "eks/coredns")],
        "kube-proxy" => &[("DaemonSet", "kube-proxy", "kube-proxy", "eks/kube-proxy")],
        "aws-ebs-csi-driver" => &[
            (
                "Deployment",
                "ebs-csi-controller",
                "ebs-plugin",
                "eks/aws-ebs-csi-driver",
            ),
            (
                "DaemonSet",
                "ebs-csi-node",
                "ebs-plugin",
                "eks/aws-ebs-csi-driver",
            ),
        ],
        _ => &[],
    }
}

/// The image of an add-on's container at a version.
pub fn image(region: &str, repository: &str, version: &str) -> String {
    format!("{}/{repository}:{version}", super::names::ecr(region))
}

/// The labels EKS puts on add-on workloads.
pub fn labels(addon: &str, name: &str) -> serde_json::Value {
    json!({
        "k8s-app": name,
        "eks.amazonaws.com/component": addon,
        "app.kubernetes.io/managed-by": "EKS",
    })
}

/// The workload objects an add-on at `version` runs in `kube-system`: (kind, name, object).
pub fn objects(
    region: &str,
    addon: &str,
    version: &str,
) -> Vec<(&'static str, &'static str, serde_json::Value)> {
    workloads(addon)
        .iter()
        .map(|(kind, name, container, repo)| {
            let object = super::workloads::workload_object(&super::workloads::Template {
                kind,
                namespace: "kube-system",
                name,
                replicas: 2,
                container,
                image: &image(region, repo, version),
                labels: &labels(addon, name),
                broken: false,
            });
            (*kind, *name, object)
        })
        .collect()
}
