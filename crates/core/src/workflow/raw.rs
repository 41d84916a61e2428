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
use crate::format::text::{DayText, TargetText, TimeText};
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
