//! Field tables for the protobuf decoder: for each kind `kubectl create` makes, the field
//! numbers (from Kubernetes' `generated.proto`), JSON names and types of the fields kubectl's
//! generators set.

/// How a field's bytes become JSON.
#[derive(Clone, Copy)]
pub enum T {
    Str,
    /// Bytes, as base64 (how JSON carries `[]byte`).
    Bytes,
    Int,
    Bool,
    Msg(&'static [F]),
    MapStr,
    MapBytes,
    /// `map<string, Quantity>` (resource requests and limits).
    MapQty,
    /// `meta/v1.Time`: seconds and nanos, as RFC 3339.
    Time,
    /// `util/intstr.IntOrString`.
    IntOrStr,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Card {
    One,
    Rep,
    /// A pointer field: zero is a value, not "unset".
    Ptr,
}

/// One field: number, JSON name, type, cardinality.
#[derive(Clone, Copy)]
pub struct F(pub u32, pub &'static str, pub T, pub Card);

use Card::{One, Ptr, Rep};

const OWNER_REF: &[F] = &[
    F(5, "apiVersion", T::Str, One),
    F(1, "kind", T::Str, One),
    F(3, "name", T::Str, One),
    F(4, "uid", T::Str, One),
    F(6, "controller", T::Bool, Ptr),
    F(7, "blockOwnerDeletion", T::Bool, Ptr),
];
const OBJECT_META: &[F] = &[
    F(1, "name", T::Str, One),
    F(2, "generateName", T::Str, One),
    F(3, "namespace", T::Str, One),
    F(5, "uid", T::Str, One),
    F(6, "resourceVersion", T::Str, One),
    F(8, "creationTimestamp", T::Time, One),
    F(11, "labels", T::MapStr, One),
    F(12, "annotations", T::MapStr, One),
    F(13, "ownerReferences", T::Msg(OWNER_REF), Rep),
    F(14, "finalizers", T::Str, Rep),
];
const REQUIREMENT: &[F] = &[
    F(1, "key", T::Str, One),
    F(2, "operator", T::Str, One),
    F(3, "values", T::Str, Rep),
];
const LABEL_SELECTOR: &[F] = &[
    F(1, "matchLabels", T::MapStr, One),
    F(2, "matchExpressions", T::Msg(REQUIREMENT), Rep),
];
const CONTAINER_PORT: &[F] = &[
    F(1, "name", T::Str, One),
    F(2, "hostPort", T::Int, One),
    F(3, "containerPort", T::Int, One),
    F(4, "protocol", T::Str, One),
];
const ENV_VAR: &[F] = &[F(1, "name", T::Str, One), F(2, "value", T::Str, One)];
const RESOURCES: &[F] = &[
    F(1, "limits", T::MapQty, One),
    F(2, "requests", T::MapQty, One),
];
const VOLUME_MOUNT: &[F] = &[
    F(1, "name", T::Str, One),
    F(2, "readOnly", T::Bool, One),
    F(3, "mountPath", T::Str, One),
    F(4, "subPath", T::Str, One),
];
const CONTAINER: &[F] = &[
    F(1, "name", T::Str, One),
    F(2, "image", T::Str, One),
    F(3, "command", T::Str, Rep),
    F(4, "args", T::Str, Rep),
    F(5, "workingDir", T::Str, One),
    F(6, "ports", T::Msg(CONTAINER_PORT), Rep),
    F(7, "env", T::Msg(ENV_VAR), Rep),
    F(8, "resources", T::Msg(RESOURCES), One),
    F(9, "volumeMounts", T::Msg(VOLUME_MOUNT), Rep),
    F(13, "terminationMessagePath", T::Str, One),
    F(14, "imagePullPolicy", T::Str, One),
    F(16, "stdin", T::Bool, One),
    F(17, "stdinOnce", T::Bool, One),
    F(18, "tty", T::Bool, One),
    F(20, "terminationMessagePolicy", T::Str, One),
];
const LOCAL_REF: &[F] = &[F(1, "name", T::Str, One)];
const POD_SPEC: &[F] = &[
    F(2, "containers", T::Msg(CONTAINER), Rep),
    F(3, "restartPolicy", T::Str, One),
    F(4, "terminationGracePeriodSeconds", T::Int, Ptr),
    F(6, "dnsPolicy", T::Str, One),
    F(7, "nodeSelector", T::MapStr, One),
    F(8, "serviceAccountName", T::Str, One),
    F(10, "nodeName", T::Str, One),
    F(11, "hostNetwork", T::Bool, One),
    F(15, "imagePullSecrets", T::Msg(LOCAL_REF), Rep),
    F(16, "hostname", T::Str, One),
    F(17, "subdomain", T::Str, One),
    F(19, "schedulerName", T::Str, One),
    F(20, "initContainers", T::Msg(CONTAINER), Rep),
    F(24, "priorityClassName", T::Str, One),
];
const POD_TEMPLATE: &[F] = &[
    F(1, "metadata", T::Msg(OBJECT_META), One),
    F(2, "spec", T::Msg(POD_SPEC), One),
];
const DEPLOYMENT_STRATEGY: &[F] = &[F(1, "type", T::Str, One)];
const DEPLOYMENT_SPEC: &[F] = &[
    F(1, "replicas", T::Int, Ptr),
    F(2, "selector", T::Msg(LABEL_SELECTOR), One),
    F(3, "template", T::Msg(POD_TEMPLATE), One),
    F(4, "strategy", T::Msg(DEPLOYMENT_STRATEGY), One),
    F(5, "minReadySeconds", T::Int, One),
    F(6, "revisionHistoryLimit", T::Int, Ptr),
    F(7, "paused", T::Bool, One),
    F(9, "progressDeadlineSeconds", T::Int, Ptr),
];
const JOB_SPEC: &[F] = &[
    F(1, "parallelism", T::Int, Ptr),
    F(2, "completions", T::Int, Ptr),
    F(3, "activeDeadlineSeconds", T::Int, Ptr),
    F(4, "selector", T::Msg(LABEL_SELECTOR), One),
    F(6, "template", T::Msg(POD_TEMPLATE), One),
    F(7, "backoffLimit", T::Int, Ptr),
    F(8, "ttlSecondsAfterFinished", T::Int, Ptr),
    F(10, "suspend", T::Bool, Ptr),
];
const JOB_TEMPLATE: &[F] = &[
    F(1, "metadata", T::Msg(OBJECT_META), One),
    F(2, "spec", T::Msg(JOB_SPEC), One),
];
const CRON_JOB_SPEC: &[F] = &[
    F(1, "schedule", T::Str, One),
    F(2, "startingDeadlineSeconds", T::Int, Ptr),
    F(3, "concurrencyPolicy", T::Str, One),
    F(4, "suspend", T::Bool, Ptr),
    F(5, "jobTemplate", T::Msg(JOB_TEMPLATE), One),
    F(6, "successfulJobsHistoryLimit", T::Int, Ptr),
    F(7, "failedJobsHistoryLimit", T::Int, Ptr),
    F(8, "timeZone", T::Str, Ptr),
];
const SERVICE_PORT: &[F] = &[
    F(1, "name", T::Str, One),
    F(2, "protocol", T::Str, One),
    F(3, "port", T::Int, One),
    F(4, "targetPort", T::IntOrStr, One),
    F(5, "nodePort", T::Int, One),
];
const SERVICE_SPEC: &[F] = &[
    F(1, "ports", T::Msg(SERVICE_PORT), Rep),
    F(2, "selector", T::MapStr, One),
    F(3, "clusterIP", T::Str, One),
    F(4, "type", T::Str, One),
    F(5, "externalIPs", T::Str, Rep),
    F(7, "sessionAffinity", T::Str, One),
    F(10, "externalName", T::Str, One),
];
const NAMESPACE_SPEC: &[F] = &[F(1, "finalizers", T::Str, Rep)];

/// The top-level fields of each supported kind (`status` is never decoded: writes ignore it).
pub fn kind_schema(api_version: &str, kind: &str) -> Option<Vec<F>> {
    let meta = F(1, "metadata", T::Msg(OBJECT_META), One);
    let spec = |s: &'static [F]| F(2, "spec", T::Msg(s), One);
    Some(match (api_version, kind) {
        ("v1", "Namespace") => vec![meta, spec(NAMESPACE_SPEC)],
        ("v1", "ConfigMap") => vec![
            meta,
            F(2, "data", T::MapStr, One),
            F(3, "binaryData", T::MapBytes, One),
            F(4, "immutable", T::Bool, Ptr),
        ],
        ("v1", "Secret") => vec![
            meta,
            F(2, "data", T::MapBytes, One),
            F(3, "type", T::Str, One),
            F(4, "stringData", T::MapStr, One),
            F(5, "immutable", T::Bool, Ptr),
        ],
        ("v1", "ServiceAccount") => vec![
            meta,
            F(3, "imagePullSecrets", T::Msg(LOCAL_REF), Rep),
            F(4, "automountServiceAccountToken", T::Bool, Ptr),
        ],
        ("v1", "Service") => vec![meta, spec(SERVICE_SPEC)],
        ("v1", "Pod") => vec![meta, spec(POD_SPEC)],
        ("apps/v1", "Deployment") => vec![meta, spec(DEPLOYMENT_SPEC)],
        ("batch/v1", "Job") => vec![meta, spec(JOB_SPEC)],
        ("batch/v1", "CronJob") => vec![meta, spec(CRON_JOB_SPEC)],
        _ => return None,
    })
}
