//! The pre-flight check catalog: what would stop or endanger an upgrade, found before anything
//! changes. Each check has a stable code, a severity, the objects it concerns and the fix.

pub mod addons;
/// Paged listing lives with the clients; checks use it by this name.
pub use crate::cloud::list;
pub mod cluster;
pub mod insights;
pub mod karpenter;
pub mod karpenter_compat;
pub mod policy;
pub mod removed;
pub mod skew;
pub mod subnets;
pub mod velero;
pub mod workloads;

use serde::{Deserialize, Serialize};

use crate::cloud::connect::Connection;
use tokio::sync::OnceCell;

use crate::cloud::eks::{self, AddonInfo, EksError, NodegroupInfo, OfferedVersion};
use crate::cloud::nodes::{self, NodeInfo};
use crate::types::Version;
use crate::velero::Settings as VeleroSettings;

pub use policy::{CheckOverride, FailOn, OverrideSeverity, Policy, apply_policy, blocking};

/// Every check's stable code and what it looks at. Workflow files name these in
/// `preflight.ignore` and `preflight.overrides`, so a code, once published, never changes meaning.
pub const CATALOG: &[(&str, &str)] = &[
    ("EKS001", "the cluster is ACTIVE"),
    ("EKS002", "no cluster update is in progress"),
    (
        "EKS003",
        "managed node groups run the control plane's version",
    ),
    ("EKS004", "managed node groups are ACTIVE"),
    ("EKS005", "EKS add-ons are ACTIVE"),
    ("EKS006", "EKS offers every hop's version"),
    ("EKS007", "kubelet version skew against every hop"),
    ("EKS008", "kube-proxy version skew against every hop"),
    (
        "EKS009",
        "EKS add-ons have versions for the current and every hop's version",
    ),
    (
        "EKS010",
        "EKS upgrade insights for every hop's version, and misconfiguration insights",
    ),
    (
        "EKS011",
        "control-plane health issues DescribeCluster reports",
    ),
    (
        "EKS012",
        "managed node groups on Amazon Linux 2 AMIs, which EKS does not publish for 1.33+",
    ),
    (
        "EKS013",
        "each cluster subnet has the 5 free IP addresses a control-plane upgrade may need",
    ),
    (
        "EKS014",
        "managed node groups' subnets have room for the nodes an update adds",
    ),
    (
        "EKS015",
        "EC2NodeClasses in use select an AMI that exists for every hop (Karpenter drift)",
    ),
    (
        "EKS016",
        "the Karpenter controller's release supports every hop's Kubernetes version",
    ),
    (
        "EKS017",
        "Karpenter can launch nodes now: controller available, EC2NodeClasses and NodePools ready",
    ),
    ("K8S001", "PodDisruptionBudgets that allow zero disruptions"),
    (
        "K8S002",
        "single-replica workloads without a PodDisruptionBudget",
    ),
    (
        "K8S003",
        "kube-proxy in IPVS mode, deprecated from Kubernetes 1.35",
    ),
    (
        "K8S004",
        "the retired community ingress-nginx controller, on hops to 1.35 and later",
    ),
    (
        "K8S005",
        "NodePools whose disruption budgets allow no drift in the next 24 hours",
    ),
    (
        "K8S006",
        "nodes and pods on NodePool nodes annotated `karpenter.sh/do-not-disrupt`",
    ),
    (
        "API001",
        "removed APIs requested by clients (apiserver_requested_deprecated_apis)",
    ),
    (
        "API002",
        "removed APIs in last-applied-configuration annotations",
    ),
    ("API003", "removed APIs in deployed Helm 3 releases"),
    (
        "API004",
        "deployed Helm 3 releases holding APIs already removed (Kubernetes, cert-manager, Istio), which Helm can no longer upgrade or roll back",
    ),
    (
        "API005",
        "last-applied-configuration annotations naming APIs already removed",
    ),
    ("VEL001", "the Velero server is available"),
    ("VEL002", "the BackupStorageLocation is Available"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem found by a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable code, such as `EKS003`.
    pub code: String,
    pub severity: Severity,
    /// The object concerned: `Nodegroup general`, `Deployment shop/web`, `cluster demo`.
    pub object: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub message: String,
    pub remedy: String,
    /// Where the evidence came from, when a check has several sources (`metric`,
    /// `annotation`, `helm:NAMESPACE/RELEASE@REVISION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Set when a workflow override changed the severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden: Option<String>,
}

impl Finding {
    pub fn new(
        code: &str,
        severity: Severity,
        object: impl Into<String>,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Finding {
            code: code.into(),
            severity,
            object: object.into(),
            namespace: None,
            name: None,
            message: message.into(),
            remedy: remedy.into(),
            source: None,
            overridden: None,
        }
    }

    pub fn with_source(mut self, source: String) -> Self {
        self.source = Some(source);
        self
    }

    pub fn at(mut self, namespace: Option<&str>, name: &str) -> Self {
        self.namespace = namespace.map(str::to_string);
        self.name = Some(name.to_string());
        self
    }
}

/// What the checks look at, gathered once.
pub struct Facts<'a> {
    pub conn: &'a Connection,
    pub current: Version,
    pub hops: &'a [Version],
    pub nodegroups: Vec<NodegroupInfo>,
    pub addons: Vec<AddonInfo>,
    pub velero_namespace: &'a str,
    pub storage_location: &'a str,
    /// What the workflow does after each control-plane hop.
    pub coverage: Coverage,
    /// Read once, by the first check that asks (`nodes`, `offered_versions`): several checks
    /// judge the same nodes and versions, and a large cluster's node list is pages of requests.
    nodes: OnceCell<Result<Vec<NodeInfo>, String>>,
    offered: OnceCell<Result<Vec<OfferedVersion>, String>>,
}

/// What a workflow's hops move besides the control plane: the checks warn about what is left
/// behind only where the workflow will not move it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Coverage {
    /// EKS add-ons are upgraded after each control-plane hop.
    pub addons: bool,
    /// Managed node groups are upgraded after each hop.
    pub nodegroups: bool,
    /// Karpenter's and Auto Mode's NodePools are waited for after each hop.
    pub node_pools: bool,
    /// The run builds a new cluster at the target (blue/green) and never moves this one's
    /// control plane: how this cluster's kubelets, add-ons and NodePools would keep up with a
    /// newer control plane does not apply. What its workloads use still must exist at the
    /// target, so the removed-API and insight checks stay.
    pub new_cluster: bool,
}

/// Gathers what the checks share: the node groups and add-ons EKS reports, and what the
/// workflow will do about them.
pub async fn gather<'a>(
    conn: &'a Connection,
    velero: &'a VeleroSettings,
    coverage: Coverage,
    hops: &'a [Version],
) -> Result<Facts<'a>, EksError> {
    let cluster = conn.cluster.name.as_str();
    let nodegroups = eks::nodegroups(&conn.eks, cluster).await?;
    let addons = eks::addons(&conn.eks, cluster).await?;
    Ok(Facts::new(conn, velero, coverage, hops, nodegroups, addons))
}

impl<'a> Facts<'a> {
    /// The facts from node groups and add-ons already read (by the plan, say), so they are not
    /// read from EKS again.
    pub fn new(
        conn: &'a Connection,
        velero: &'a VeleroSettings,
        coverage: Coverage,
        hops: &'a [Version],
        nodegroups: Vec<NodegroupInfo>,
        addons: Vec<AddonInfo>,
    ) -> Self {
        Facts {
            conn,
            current: conn.cluster.version,
            hops,
            nodegroups,
            addons,
            velero_namespace: &velero.namespace,
            storage_location: &velero.storage_location,
            coverage,
            nodes: OnceCell::new(),
            offered: OnceCell::new(),
        }
    }
}

impl Facts<'_> {
    /// Every node, listed once for all checks; the error is the API server's answer, for a
    /// finding.
    pub async fn nodes(&self) -> Result<&[NodeInfo], &str> {
        self.nodes
            .get_or_init(|| async {
                nodes::inventory(self.conn.kube.clone())
                    .await
                    .map_err(|e| crate::errors::kube(&e))
            })
            .await
            .as_ref()
            .map(Vec::as_slice)
            .map_err(String::as_str)
    }

    /// The versions EKS offers as already read (by the plan), so the checks do not ask again.
    pub fn with_offered(mut self, offered: Vec<OfferedVersion>) -> Self {
        self.offered = OnceCell::new_with(Some(Ok(offered)));
        self
    }

    /// The versions EKS offers, read once for all checks.
    pub async fn offered_versions(&self) -> Result<&[OfferedVersion], &str> {
        self.offered
            .get_or_init(|| async {
                eks::offered_versions(&self.conn.eks)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
            .as_ref()
            .map(Vec::as_slice)
            .map_err(String::as_str)
    }
}

/// Runs the whole catalog.
pub async fn run_all(facts: &Facts<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let removals = match removed::table() {
        Ok(table) => removed::Removals::between(table, facts.current, facts.hops),
        Err(e) => {
            findings.push(Finding::new(
                "API001",
                Severity::Error,
                "eks-upgrade",
                format!("the built-in table of removed APIs does not parse: {e}"),
                "report this defect; removed APIs cannot be checked until it is fixed",
            ));
            removed::Removals::default()
        }
    };
    // The checks only read, and most of their time is waiting on the network: run them
    // together.
    // Only when this cluster's control plane moves.
    let in_place = |findings: Vec<Finding>| {
        if facts.coverage.new_cluster {
            Vec::new()
        } else {
            findings
        }
    };
    let (a, b, c, d, e, f, g, h, i) = tokio::join!(
        cluster::check(facts),
        velero::check(facts),
        async { in_place(skew::check(facts).await) },
        async { in_place(addons::check(facts).await) },
        insights::check(facts),
        workloads::check(facts, &removals),
        removed::check(facts, &removals),
        subnets::check(facts),
        async { in_place(karpenter::check(facts).await) },
    );
    for part in [a, b, c, d, e, f, g, h, i] {
        findings.extend(part);
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.code.cmp(&b.code))
            .then(a.object.cmp(&b.object))
    });
    findings
}
