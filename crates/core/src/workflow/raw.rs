//! The workflow file as written, at the level of the document: what it is, which cluster, the
//! target, the window, Velero, and its sections of steps. The steps themselves — one mapping
//! per step with exactly one kind — are declared by the step kinds (`crate::steps`).
//!
//! These types are the single description of the format. The JSON Schema is generated from
//! them (doc comments become the descriptions editors show), the structural check walks that
//! schema, and [`super::validate`] turns a parsed file into the validated [`super::model`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::format::spanned::Spanned;
use crate::format::text::{DayText, DurationText, PercentText, TargetText, TimeText};
use crate::steps::RawStep;

/// A workflow file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "eks-upgrade workflow")]
pub struct RawWorkflow {
    /// Always `eks-upgrade/v1`.
    pub api_version: Spanned<String>,
    /// Always `Workflow`.
    pub kind: Spanned<String>,
    pub metadata: Spanned<RawMetadata>,
    pub spec: Spanned<RawSpec>,
}

/// Names the workflow.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetadata {
    /// A short name, shown in plans, logs and reports.
    pub name: Spanned<String>,
    /// What the workflow is for.
    pub description: Option<String>,
}

/// What the run does and to which cluster.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSpec {
    /// The cluster to upgrade. `--cluster` and `--region` override it.
    pub cluster: Option<Spanned<RawCluster>>,
    /// The version to end at. `--target` overrides it; when neither is given, an interactive run
    /// asks and an unattended run stops.
    pub target: Option<Spanned<TargetText>>,
    /// When an unattended run may start work. Without a window it may start at any time.
    pub window: Option<Spanned<RawWindow>>,
    /// Where Velero runs.
    pub velero: Option<Spanned<RawVelero>>,
    /// The new cluster of a blue/green workflow (one whose `upgrade` starts with `createGreen`
    /// or `adoptGreen`).
    pub green: Option<Spanned<RawGreen>>,
    /// The DNS record a blue/green workflow moves from blue to green, and how each stage is
    /// judged.
    pub traffic: Option<Spanned<RawTraffic>>,
    /// Steps run once, before the first hop. A failure here stops the run before any change.
    #[serde(default)]
    pub prepare: Vec<Spanned<RawStep>>,
    /// Steps run once per hop (one minor version each).
    #[serde(default)]
    pub upgrade: Vec<Spanned<RawStep>>,
    /// Steps run when an `upgrade` step fails: restore, roll back, check health again.
    #[serde(default)]
    pub on_failure: Vec<Spanned<RawStep>>,
    /// Steps run once after the last hop succeeded.
    #[serde(default)]
    pub finish: Vec<Spanned<RawStep>>,
}

/// An EKS cluster.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCluster {
    /// The EKS cluster name.
    pub name: Option<Spanned<String>>,
    /// The AWS region, such as `eu-west-1`.
    pub region: Option<Spanned<String>>,
}

/// A weekly maintenance window.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWindow {
    /// Days on which the window opens.
    pub days: Spanned<Vec<Spanned<DayText>>>,
    /// Local time at which the window opens.
    pub start: Spanned<TimeText>,
    /// Local time at which it closes. An end before the start means the window crosses midnight.
    pub end: Spanned<TimeText>,
    /// An IANA time zone such as `UTC` or `Europe/Berlin`. Default: `UTC`.
    pub timezone: Option<Spanned<String>>,
}

/// Velero's installation.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawVelero {
    /// The namespace Velero runs in. Default: `velero`.
    pub namespace: Option<Spanned<String>>,
    /// The BackupStorageLocation backups go to. Default: `default`.
    pub storage_location: Option<Spanned<String>>,
}

/// The green cluster of a blue/green workflow.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawGreen {
    /// Green's EKS cluster name. Default: blue's name with the target version, such as
    /// `demo-1-35`.
    pub name: Option<Spanned<String>>,
}

/// A weighted DNS record (CNAME) in a public Route 53 hosted zone, with one set for blue and
/// one for green.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTraffic {
    /// The public hosted zone, such as `example.com`.
    pub zone: Spanned<String>,
    /// The record in that zone whose weights move, such as `app.example.com`.
    pub record: Spanned<String>,
    /// Blue's weighted set. A simple record is turned into this set by the first change.
    pub blue: Spanned<RawBlueSet>,
    /// Green's weighted set, created by the first change.
    pub green: Spanned<RawGreenSet>,
    /// The error rate each stage is judged by. Without it, stages are judged by green's
    /// health alone.
    pub error_rate: Option<Spanned<RawErrorRate>>,
}

/// Blue's weighted set.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawBlueSet {
    /// The set's `SetIdentifier`, such as `blue`.
    pub set_identifier: Spanned<String>,
}

/// Green's weighted set: where it points is either a Service on green (`service`) or a value
/// (`value`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawGreenSet {
    /// The set's `SetIdentifier`, such as `green`.
    pub set_identifier: Spanned<String>,
    /// A Service of type LoadBalancer on green, as `namespace/name`: the record points at its
    /// load balancer's hostname.
    pub service: Option<Spanned<String>>,
    /// The record's value for green, such as a load balancer's hostname.
    pub value: Option<Spanned<String>>,
}

/// The share of failed requests a stage tolerates, read from a metrics source.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawErrorRate {
    /// A Prometheus-compatible query API (Prometheus, Thanos, Mimir, Amazon Managed Service
    /// for Prometheus through a proxy).
    pub prometheus: Spanned<RawPrometheus>,
    /// The largest share of failed requests green may have, such as `1%`.
    pub max: Spanned<PercentText>,
    /// Fewer requests than this in the window cannot be judged; the stage waits for more.
    /// Default: `50`.
    pub min_requests: Option<Spanned<u64>>,
    /// How far back the queries look (`{window}`). Default: `2m`.
    pub window: Option<Spanned<DurationText>>,
}

/// Two instant queries whose ratio is the error rate.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPrometheus {
    /// The base URL of the query API, such as `http://prometheus:9090`.
    pub url: Option<Spanned<String>>,
    /// The environment variable holding the base URL.
    pub url_env: Option<Spanned<String>>,
    /// The number of failed requests in the window. `{cluster}` is replaced by the cluster's
    /// name and `{window}` by the window.
    pub errors: Spanned<String>,
    /// The number of all requests in the window, with the same placeholders.
    pub requests: Spanned<String>,
}
