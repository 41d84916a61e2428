//! Scenarios: YAML files that seed the sandbox — the cluster, its node groups, add-ons and
//! workloads, how long each AWS operation takes, and which faults to inject.
//!
//! Durations are in emulated time (what the operation would take on AWS); `speed` says how many
//! emulated seconds pass per real second, so a 12-minute control-plane upgrade takes a fraction of
//! a second in tests.

mod bulk;
mod catalog;
mod compute;
pub mod faults;
mod karpenter;
mod network;
mod new_clusters;
mod route53;
mod specs;
mod traffic;

pub use bulk::BulkSpec;
pub use catalog::{builtin_addon_catalog, builtin_versions};
pub use compute::{ComputeConfigSpec, FargateProfile, FargateProfileSpec, NodePoolSpec};
pub use faults::{
    AddonDegrades, ApiFault, BreakAfter, BucketFault, FailedUpdate, Faults, LaunchFailure,
};
pub use karpenter::{BudgetSpec, Ec2NodeClassSpec, KarpenterPoolSpec, KarpenterSpec};
pub use network::{DEFAULT_FREE_IPS, Subnet, SubnetSpec, is_subnet_id};
pub use new_clusters::{CreateFailure, NewCluster, NewClustersSpec, NodegroupCreateFailure};
pub use route53::{HostedZoneSpec, RecordSpec, Route53Spec, fqdn, in_zone};
pub use specs::{
    AddonCatalogEntry, AddonSpec, AddonVersionSpec, ClusterIssueSpec, ClusterSpec,
    DeprecatedRequest, InsightSpec, NodegroupSpec, ResourceSpec, SelfManagedSpec, Timings,
    VeleroSpec, VersionSpec, WorkloadSpec,
};
pub use traffic::TrafficSpec;

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use eks_upgrade_core::format::{LoadError, Problem};
use eks_upgrade_core::types::HumanDuration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    pub api_version: String,
    pub kind: String,
    pub metadata: ScenarioMetadata,
    pub spec: ScenarioSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScenarioMetadata {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScenarioSpec {
    /// Emulated seconds per real second. Default: 600 (ten minutes pass in a second).
    #[serde(default = "default_speed")]
    pub speed: f64,
    /// The AWS account id in ARNs.
    #[serde(default = "default_account")]
    pub account: String,
    pub cluster: ClusterSpec,
    /// The versions EKS offers. Default: the built-in catalogue with real support dates.
    #[serde(default)]
    pub versions: Option<Vec<VersionSpec>>,
    #[serde(default)]
    pub nodegroups: Vec<NodegroupSpec>,
    /// The VPC subnets EKS reports for the cluster and its node groups, with the free IPv4
    /// addresses EC2 `DescribeSubnets` reports. Default: three subnets with 8000 free each.
    #[serde(default)]
    pub subnets: Vec<SubnetSpec>,
    /// Nodes that belong to no managed node group (self-managed Auto Scaling groups).
    #[serde(default)]
    pub self_managed_nodes: Vec<SelfManagedSpec>,
    /// Fargate profiles: pods of the namespaces they select run on Fargate.
    #[serde(default)]
    pub fargate_profiles: Vec<FargateProfileSpec>,
    /// Auto Mode NodePools and their nodes (needs `cluster.computeConfig.enabled`).
    #[serde(default)]
    pub node_pools: Vec<NodePoolSpec>,
    /// A Karpenter the cluster's owners installed, with its NodePools and their nodes.
    #[serde(default)]
    pub karpenter: Option<KarpenterSpec>,
    /// Route 53 hosted zones and their record sets.
    #[serde(default)]
    pub route53: Route53Spec,
    /// Requests sent to names of `route53`, spread over clusters by the records' weights.
    #[serde(default)]
    pub traffic: Vec<TrafficSpec>,
    #[serde(default)]
    pub addons: Vec<AddonSpec>,
    /// Add-on versions EKS offers. Default: the built-in catalogue.
    #[serde(default)]
    pub addon_catalog: Option<Vec<AddonCatalogEntry>>,
    #[serde(default)]
    pub workloads: Vec<WorkloadSpec>,
    /// Further Kubernetes objects, as JSON-compatible YAML (ConfigMaps, Secrets, PDBs, CRs…).
    #[serde(default)]
    pub objects: Vec<serde_json::Value>,
    /// Resource types beyond the built-in ones, served generically.
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
    #[serde(default)]
    pub velero: VeleroSpec,
    /// S3 buckets that exist from the start besides Velero's, such as one for run journals
    /// (`--state s3://…`). Any other bucket must be made with `CreateBucket` first: the
    /// sandbox's S3 refuses requests to buckets that do not exist.
    #[serde(default)]
    pub buckets: Vec<BucketSpec>,
    /// Deprecated API requests the API server reports in `/metrics`.
    #[serde(default)]
    pub deprecated_api_requests: Vec<DeprecatedRequest>,
    /// EKS upgrade insights.
    #[serde(default)]
    pub insights: Vec<InsightSpec>,
    #[serde(default)]
    pub timings: Timings,
    #[serde(default)]
    pub faults: Faults,
    /// Generated objects in bulk, for scale tests and benchmarks.
    #[serde(default)]
    pub bulk: Option<BulkSpec>,
    /// Clusters made with CreateCluster: what they come with and how they fail.
    #[serde(default)]
    pub new_clusters: NewClustersSpec,
    /// The VPC a created cluster shares with the account's first cluster (its id hashes that
    /// cluster's name). Not a scenario field.
    #[serde(skip)]
    pub vpc_override: Option<String>,
}

/// A bucket the scenario creates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BucketSpec {
    pub name: String,
    /// Default: the cluster's region.
    #[serde(default)]
    pub region: Option<String>,
}

fn default_speed() -> f64 {
    600.0
}

fn default_account() -> String {
    "111122223333".to_string()
}

/// The scenario the sandbox uses without `--scenario`: a healthy cluster `demo` in `us-east-1`
/// at 1.33, two managed node groups, the usual add-ons, a few workloads and Velero.
pub const DEFAULT_SCENARIO: &str = include_str!("../../../../examples/sandbox/healthy.yaml");

impl Scenario {
    pub fn default_scenario() -> Scenario {
        // The shipped file is checked by a test; a failure here is a build defect, not input.
        Scenario::parse(Path::new("examples/sandbox/healthy.yaml"), DEFAULT_SCENARIO)
            .expect("the built-in scenario is valid")
    }

    pub fn load(path: &Path) -> Result<Scenario, LoadError> {
        let text = eks_upgrade_core::format::source::read(path)?;
        Scenario::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Scenario, LoadError> {
        let invalid = |problems: Vec<Problem>| LoadError::Invalid {
            path: path.to_path_buf(),
            text: text.into(),
            problems,
        };
        let scenario: Scenario =
            serde_saphyr::from_str_with_options(text, eks_upgrade_core::format::parse_options())
                .map_err(|e| invalid(vec![eks_upgrade_core::format::yaml_problem(&e, text)]))?;
        let problems = scenario.check();
        if problems.is_empty() {
            Ok(scenario)
        } else {
            Err(invalid(problems))
        }
    }

    /// Rules serde cannot express. Problems here have no location; they name the field.
    fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.api_version != "eks-upgrade/v1" || self.kind != "Scenario" {
            problems.push(
                Problem::new(
                    "a scenario starts with `apiVersion: eks-upgrade/v1` and `kind: Scenario`",
                )
                .help("see `examples/sandbox/healthy.yaml`"),
            );
        }
        if !(self.spec.speed.is_finite() && self.spec.speed > 0.0) {
            problems.push(
                Problem::new("`spec.speed` must be a positive number")
                    .help("600 makes ten emulated minutes pass in a real second"),
            );
        }
        let versions = self.versions();
        if !versions
            .iter()
            .any(|v| v.version == self.spec.cluster.version)
        {
            problems.push(Problem::new(format!(
                "the cluster's version {} is not in the version catalogue",
                self.spec.cluster.version
            )));
        }
        for b in &self.spec.buckets {
            if let Err(p) = eks_upgrade_core::types::names::s3_bucket(&b.name) {
                problems.push(
                    Problem::new(format!(
                        "`{}` in `spec.buckets` is not a valid S3 bucket name{}",
                        b.name,
                        p.why.map(|w| format!(": {w}")).unwrap_or_default()
                    ))
                    .help(p.rule),
                );
            }
            if let Some(r) = &b.region
                && let Err(p) = eks_upgrade_core::types::names::aws_region(r)
            {
                problems.push(
                    Problem::new(format!("bucket `{}`: `{r}` is not an AWS region", b.name))
                        .help(p.rule),
                );
            }
        }
        for ng in &self.spec.nodegroups {
            if ng.version.is_some_and(|v| v > self.spec.cluster.version) {
                problems.push(Problem::new(format!(
                    "node group `{}` is newer than the control plane",
                    ng.name
                )));
            }
            if ng.max_unavailable == 0 {
                problems.push(Problem::new(format!(
                    "node group `{}` has `maxUnavailable: 0`; EKS needs at least 1",
                    ng.name
                )));
            }
        }
        problems.extend(self.check_compute());
        problems.extend(self.spec.route53.check());
        problems.extend(traffic::check(&self.spec));
        problems.extend(self.check_network());
        let catalog = self.addon_catalog();
        for addon in &self.spec.addons {
            if !catalog.iter().any(|c| {
                c.name == addon.name && c.versions.iter().any(|v| v.version == addon.version)
            }) {
                problems.push(Problem::new(format!(
                    "add-on `{}` version `{}` is not in the add-on catalogue",
                    addon.name, addon.version
                )));
            }
        }
        for w in &self.spec.workloads {
            if !matches!(w.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet") {
                problems.push(Problem::new(format!(
                    "workload `{}/{}` has kind `{}`; use Deployment, StatefulSet or DaemonSet",
                    w.namespace, w.name, w.kind
                )));
            }
        }
        for b in &self.spec.faults.break_after {
            let known = b.workload.split_once('/').is_some_and(|(ns, name)| {
                self.spec
                    .workloads
                    .iter()
                    .any(|w| w.namespace == ns && w.name == name)
            });
            if !known {
                problems.push(Problem::new(format!(
                    "`faults.breakAfter` names `{}`, which is not a workload of the scenario",
                    b.workload
                )));
            }
        }
        if let Some(phase) = &self.spec.faults.backup_phase
            && !matches!(
                phase.as_str(),
                "Completed" | "PartiallyFailed" | "Failed" | "FailedValidation"
            )
        {
            problems.push(Problem::new(format!(
                "`faults.backupPhase` `{phase}` is not a Velero terminal phase"
            )));
        }
        for f in &self.spec.faults.api {
            if !matches!(
                f.service.as_str(),
                "eks" | "ec2" | "kubernetes" | "s3" | "route53"
            ) || !matches!(f.fault.as_str(), "throttle" | "unavailable" | "internal")
            {
                problems.push(Problem::new(format!(
                    "`faults.api` entry `{} {}` needs service eks|ec2|kubernetes|s3|route53 and fault throttle|unavailable|internal",
                    f.service, f.operation
                )));
            }
        }
        problems.extend(self.spec.new_clusters.check());
        if !matches!(self.spec.velero.version.as_str(), "1.17" | "1.18") {
            problems.push(
                Problem::new(format!(
                    "`velero.version` `{}` is not emulated",
                    self.spec.velero.version
                ))
                .help("use `1.17` or `1.18`"),
            );
        }
        if self.spec.velero.hold_queued.is_some() && !self.spec.velero.queues_backups() {
            problems.push(
                Problem::new("`velero.holdQueued` needs `velero.version: \"1.18\"`")
                    .help("Velero 1.17 has no backup queue"),
            );
        }
        problems
    }

    /// Auto Mode and Fargate rules.
    fn check_compute(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let spec = &self.spec;
        if !spec.node_pools.is_empty() && !spec.cluster.auto_mode() {
            problems.push(
                Problem::new("`nodePools` are Auto Mode's, but the cluster does not use Auto Mode")
                    .help("set `cluster.computeConfig: { enabled: true }`"),
            );
        }
        for pool in &spec.node_pools {
            if pool.version.is_some_and(|v| v > spec.cluster.version) {
                problems.push(Problem::new(format!(
                    "NodePool `{}` is newer than the control plane",
                    pool.name
                )));
            }
            if !karpenter::valid_budget_nodes(&pool.budget) {
                problems.push(
                    Problem::new(format!(
                        "NodePool `{}` has budget `{}`",
                        pool.name, pool.budget
                    ))
                    .help("a budget is a node count or a percentage up to 100%, such as `\"0\"` or `\"10%\"`"),
                );
            }
        }
        match &spec.karpenter {
            Some(k) => problems.extend(k.check(spec.cluster.version, &spec.faults.launch_failures)),
            None if !spec.faults.launch_failures.is_empty() => problems.push(
                Problem::new("`faults.launchFailures` needs `karpenter`")
                    .help("add a `karpenter` section with the NodePools that fail to launch"),
            ),
            None => {}
        }
        for w in &spec.workloads {
            if w.kind == "DaemonSet"
                && spec
                    .fargate_profiles
                    .iter()
                    .any(|p| p.namespaces().contains(&w.namespace))
            {
                problems.push(Problem::new(format!(
                    "DaemonSet `{}/{}` is in a namespace a Fargate profile selects; Fargate runs no DaemonSets",
                    w.namespace, w.name
                )));
            }
        }
        problems
    }

    /// The namespaces whose pods Fargate runs.
    pub fn fargate_namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .spec
            .fargate_profiles
            .iter()
            .flat_map(|p| p.namespaces().iter().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The EKS version catalogue in effect.
    pub fn versions(&self) -> Vec<VersionSpec> {
        self.spec.versions.clone().unwrap_or_else(builtin_versions)
    }

    /// The add-on catalogue in effect.
    pub fn addon_catalog(&self) -> Vec<AddonCatalogEntry> {
        self.spec
            .addon_catalog
            .clone()
            .unwrap_or_else(builtin_addon_catalog)
    }

    /// Converts an emulated duration to real time under the scenario's speed.
    pub fn real(&self, emulated: HumanDuration) -> Duration {
        Duration::from_secs_f64(emulated.0.as_secs_f64() / self.spec.speed)
    }
}
