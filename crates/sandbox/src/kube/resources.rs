//! The resource types the emulated API server knows without being told: the built-in kinds the
//! tool and kubectl touch, plus Velero's CRDs. A scenario can add more (`spec.resources`).

use super::store::ResourceType;

pub fn builtin() -> Vec<ResourceType> {
    let rt = ResourceType::new;
    vec![
        rt("", "v1", "Namespace", "namespaces", false)
            .short(&["ns"])
            .with_status(),
        rt("", "v1", "Node", "nodes", false)
            .short(&["no"])
            .with_status(),
        rt("", "v1", "Pod", "pods", true)
            .short(&["po"])
            .with_status(),
        rt("", "v1", "Service", "services", true)
            .short(&["svc"])
            .with_status(),
        rt("", "v1", "ConfigMap", "configmaps", true).short(&["cm"]),
        rt("", "v1", "Secret", "secrets", true),
        rt("", "v1", "ServiceAccount", "serviceaccounts", true).short(&["sa"]),
        rt("", "v1", "Event", "events", true).short(&["ev"]),
        rt(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
        )
        .short(&["pvc"])
        .with_status(),
        rt("", "v1", "PersistentVolume", "persistentvolumes", false)
            .short(&["pv"])
            .with_status(),
        rt("apps", "v1", "Deployment", "deployments", true)
            .short(&["deploy"])
            .with_status(),
        rt("apps", "v1", "StatefulSet", "statefulsets", true)
            .short(&["sts"])
            .with_status(),
        rt("apps", "v1", "DaemonSet", "daemonsets", true)
            .short(&["ds"])
            .with_status(),
        rt("apps", "v1", "ReplicaSet", "replicasets", true)
            .short(&["rs"])
            .with_status(),
        rt("batch", "v1", "Job", "jobs", true).with_status(),
        rt("batch", "v1", "CronJob", "cronjobs", true)
            .short(&["cj"])
            .with_status(),
        rt(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
        )
        .short(&["pdb"])
        .with_status(),
        rt("coordination.k8s.io", "v1", "Lease", "leases", true),
        rt("networking.k8s.io", "v1", "Ingress", "ingresses", true)
            .short(&["ing"])
            .with_status(),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
        ),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
        ),
        rt("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
        ),
        rt(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
        )
        .short(&["crd", "crds"])
        .with_status(),
        // Velero's CRDs have no status subresource: Velero merge-patches the whole object.
        rt("velero.io", "v1", "Backup", "backups", true),
        rt("velero.io", "v1", "Restore", "restores", true),
        rt(
            "velero.io",
            "v1",
            "BackupStorageLocation",
            "backupstoragelocations",
            true,
        )
        .short(&["bsl"]),
        rt(
            "velero.io",
            "v1",
            "VolumeSnapshotLocation",
            "volumesnapshotlocations",
            true,
        )
        .short(&["vsl"]),
        rt(
            "velero.io",
            "v1",
            "DeleteBackupRequest",
            "deletebackuprequests",
            true,
        ),
    ]
}
