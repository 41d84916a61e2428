//! Reading Karpenter's objects (`karpenter.sh/v1` NodePools and NodeClaims, the AWS provider's
//! `karpenter.k8s.aws/v1` EC2NodeClasses) and its controller's Deployment, into the few fields
//! the tool judges: which AMIs a class selects, what each pool's disruption budgets allow, what
//! the controller's version supports.
//!
//! The reads are made on every cluster, whatever it runs: a 404 says Karpenter is not installed
//! and a 403 that the tool may not look, which is itself worth a warning when Karpenter-labelled
//! nodes exist. Auto Mode serves NodePools and NodeClaims too; its pools point at an
//! `eks.amazonaws.com` NodeClass and EKS drives them.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::karpenter_budget::Budget;
use super::list;

/// Karpenter's own API group (NodePool, NodeClaim).
pub const GROUP: &str = "karpenter.sh";
/// The AWS provider's API group (EC2NodeClass).
pub const AWS_GROUP: &str = "karpenter.k8s.aws";
/// Auto Mode's NodeClasses live here: a NodePool pointing at one belongs to EKS.
pub const AUTO_MODE_GROUP: &str = "eks.amazonaws.com";

/// What a read of the cluster found.
#[derive(Debug, Clone)]
pub enum Read {
    /// The API server does not serve `karpenter.sh` NodePools.
    NotInstalled,
    /// The tool may not list them; the text is the API server's answer.
    Forbidden(String),
    Found(Karpenter),
}

/// Karpenter's objects, as read.
#[derive(Debug, Clone, Default)]
pub struct Karpenter {
    pub pools: Vec<NodePool>,
    pub classes: Vec<Ec2NodeClass>,
    pub claims: Vec<NodeClaim>,
    /// The self-installed controller; `None` on Auto Mode alone, or when no Deployment labelled
    /// `app.kubernetes.io/name=karpenter` is found.
    pub controller: Option<Controller>,
}

impl Karpenter {
    pub fn class(&self, name: &str) -> Option<&Ec2NodeClass> {
        self.classes.iter().find(|c| c.name == name)
    }

    /// Whether Karpenter weighs the pods of `node` before disrupting it for drift: not when the
    /// node's NodeClaim carries a `terminationGracePeriod` (Karpenter's `NewCandidate` ignores
    /// pod-level blocks for eventual disruption then).
    pub fn pods_hold(&self, node: &str) -> bool {
        !self
            .claims
            .iter()
            .any(|c| c.node.as_deref() == Some(node) && c.termination_grace_period.is_some())
    }
}

/// A status condition, as Karpenter writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// The condition `kind` when it is `False`.
pub fn failing<'a>(conditions: &'a [Condition], kind: &str) -> Option<&'a Condition> {
    conditions
        .iter()
        .find(|c| c.kind == kind && c.status == "False")
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ClassRef {
    pub group: String,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct NodePool {
    pub name: String,
    pub class: ClassRef,
    /// Budgets as written; empty means Karpenter's default, `nodes: "10%"`.
    pub budgets: Vec<Budget>,
    /// `spec.template.spec.terminationGracePeriod`: past it, Karpenter drains a node whatever
    /// its pods' annotations and budgets say.
    pub termination_grace_period: Option<String>,
    pub conditions: Vec<Condition>,
}

impl NodePool {
    /// EKS Auto Mode's pool rather than a self-installed Karpenter's.
    pub fn auto_mode(&self) -> bool {
        self.class.group == AUTO_MODE_GROUP
    }
}

/// How one `amiSelectorTerms` entry picks AMIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmiTerm {
    /// `FAMILY@latest` follows the control plane; `FAMILY@vYYYYMMDD` needs that release to exist
    /// for each version.
    Alias { family: String, release: Release },
    /// A fixed AMI, whatever the control plane's version.
    Id(String),
    /// By name or tags: fixed too, as far as the tool can tell.
    Fixed(String),
    /// An SSM parameter: the tool cannot tell what it resolves to.
    Ssm(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    Latest,
    Pinned(NaiveDate),
    /// A release the tool cannot read as a date.
    Unknown,
}

impl std::fmt::Display for AmiTerm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AmiTerm::Alias { family, release } => match release {
                Release::Latest => write!(f, "alias `{family}@latest`"),
                Release::Pinned(d) => write!(f, "alias `{family}@v{}`", d.format("%Y%m%d")),
                Release::Unknown => write!(f, "alias `{family}@…`"),
            },
            AmiTerm::Id(id) => write!(f, "AMI id `{id}`"),
            AmiTerm::Fixed(what) => write!(f, "AMI {what}"),
            AmiTerm::Ssm(p) => write!(f, "SSM parameter `{p}`"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ec2NodeClass {
    pub name: String,
    pub terms: Vec<AmiTerm>,
    /// The AMI ids the controller resolved (`status.amis`).
    pub amis: Vec<String>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub struct NodeClaim {
    pub name: String,
    /// Copied from the NodePool when the node launched: past it Karpenter drains the node
    /// whatever its pods' annotations and budgets say, so they do not hold drift back.
    pub termination_grace_period: Option<String>,
    pub pool: Option<String>,
    pub node: Option<String>,
    pub image_id: Option<String>,
    pub conditions: Vec<Condition>,
}

/// The controller's Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    pub namespace: String,
    pub name: String,
    /// The controller image's tag, `1.6.2` from `…/karpenter/controller:1.6.2@sha256:…`.
    pub tag: Option<String>,
    pub available: i32,
}

// The shapes of the objects' JSON, only the fields read; everything absent defaults.

#[derive(Deserialize, Default)]
#[serde(default)]
struct Object<S, T> {
    spec: S,
    status: T,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PoolSpec {
    template: PoolTemplate,
    disruption: Disruption,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PoolTemplate {
    spec: PoolTemplateSpec,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PoolTemplateSpec {
    node_class_ref: ClassRef,
    termination_grace_period: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Disruption {
    budgets: Vec<Budget>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Conditions {
    conditions: Vec<Condition>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ClassSpec {
    ami_selector_terms: Vec<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ClassStatus {
    amis: Vec<Ami>,
    conditions: Vec<Condition>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Ami {
    id: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ClaimStatus {
    node_name: Option<String>,
    #[serde(rename = "imageID")]
    image_id: Option<String>,
    conditions: Vec<Condition>,
}

/// Reads one `amiSelectorTerms` entry.
pub fn ami_term(term: &BTreeMap<String, serde_json::Value>) -> AmiTerm {
    let text = |k: &str| term.get(k).and_then(|v| v.as_str()).map(str::to_string);
    if let Some(alias) = text("alias") {
        let (family, release) = alias.split_once('@').unwrap_or((alias.as_str(), ""));
        let release = match release {
            "latest" => Release::Latest,
            r => r
                .strip_prefix('v')
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
                .map_or(Release::Unknown, Release::Pinned),
        };
        return AmiTerm::Alias {
            family: family.to_string(),
            release,
        };
    }
    if let Some(id) = text("id") {
        return AmiTerm::Id(id);
    }
    if let Some(p) = text("ssmParameter") {
        return AmiTerm::Ssm(p);
    }
    match text("name") {
        Some(name) => AmiTerm::Fixed(format!("named `{name}`")),
        None => AmiTerm::Fixed("selected by tags".into()),
    }
}

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Every object of a kind, each as its metadata and the rest of its JSON read into `T`. An
/// object whose JSON does not fit is read as `T::default()`: one odd object must not hide the
/// others.
async fn all<T: DeserializeOwned + Default>(
    kube: &kube::Client,
    ar: &ApiResource,
) -> Result<Vec<(ObjectMeta, T)>, kube::Error> {
    let api: Api<DynamicObject> = Api::all_with(kube.clone(), ar);
    let mut out = Vec::new();
    list::each(&api, ListParams::default(), |obj| {
        out.push((
            obj.metadata,
            serde_json::from_value(obj.data).unwrap_or_default(),
        ));
    })
    .await?;
    Ok(out)
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ClaimSpec {
    termination_grace_period: Option<String>,
}

/// Reads Karpenter's objects and controller. The three kinds are always all asked for, at once:
/// the same requests on every cluster keep the tool's ClusterRole testable (each rule used).
pub async fn read(kube: &kube::Client) -> Result<Read, kube::Error> {
    let pool_type = resource(GROUP, "NodePool", "nodepools");
    let pools = all::<Object<PoolSpec, Conditions>>(kube, &pool_type);
    let claim_type = resource(GROUP, "NodeClaim", "nodeclaims");
    let claims = all::<Object<ClaimSpec, ClaimStatus>>(kube, &claim_type);
    let classes = async {
        // Auto Mode alone serves no EC2NodeClass.
        match all::<Object<ClassSpec, ClassStatus>>(
            kube,
            &resource(AWS_GROUP, "EC2NodeClass", "ec2nodeclasses"),
        )
        .await
        {
            Err(e) if list::not_served(&e) => Ok(Vec::new()),
            other => other,
        }
    };
    let (pools, claims, classes, controller) =
        tokio::join!(pools, claims, classes, controller(kube));
    let pools = match pools {
        Ok(p) => p,
        Err(e) if list::not_served(&e) => return Ok(Read::NotInstalled),
        Err(kube::Error::Api(s)) if s.code == 403 => return Ok(Read::Forbidden(s.message)),
        Err(e) => return Err(e),
    };
    Ok(Read::Found(Karpenter {
        pools: pools
            .into_iter()
            .map(|(meta, o)| NodePool {
                name: meta.name.unwrap_or_default(),
                class: o.spec.template.spec.node_class_ref,
                budgets: o.spec.disruption.budgets,
                termination_grace_period: o.spec.template.spec.termination_grace_period,
                conditions: o.status.conditions,
            })
            .collect(),
        classes: classes?
            .into_iter()
            .map(|(meta, o)| Ec2NodeClass {
                name: meta.name.unwrap_or_default(),
                terms: o.spec.ami_selector_terms.iter().map(ami_term).collect(),
                amis: o.status.amis.into_iter().map(|a| a.id).collect(),
                conditions: o.status.conditions,
            })
            .collect(),
        claims: claims?
            .into_iter()
            .map(|(meta, o)| NodeClaim {
                // NodeClaims name their pool only in a label.
                pool: meta
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(super::nodes::NODEPOOL_LABEL))
                    .cloned(),
                name: meta.name.unwrap_or_default(),
                termination_grace_period: o.spec.termination_grace_period,
                node: o.status.node_name,
                image_id: o.status.image_id,
                conditions: o.status.conditions,
            })
            .collect(),
        // Only pre-flight's version check and a diagnosis need the controller: a read that
        // fails leaves it unknown rather than failing the whole read.
        controller: controller.ok().flatten(),
    }))
}

/// A running pod on a node Karpenter is to replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodOn {
    pub pool: String,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Annotated `karpenter.sh/do-not-disrupt: "true"`.
    pub do_not_disrupt: bool,
    /// Owned by a DaemonSet: a drain leaves it on the node, so no budget holds the node for it.
    pub daemon: bool,
}

impl PodOn {
    /// `NAMESPACE/NAME`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The running pods on the nodes of `on` (node → pool). Read a page at a time: every pod of the
/// cluster is looked at.
pub async fn running_pods_on(
    kube: &kube::Client,
    on: &BTreeMap<String, String>,
) -> Result<Vec<PodOn>, kube::Error> {
    let mut pods = Vec::new();
    list::each(
        &Api::<k8s_openapi::api::core::v1::Pod>::all(kube.clone()),
        ListParams::default(),
        |pod| {
            let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
            if let (true, Some(pool)) = (running, node.and_then(|n| on.get(n))) {
                let meta = pod.metadata;
                let daemon = meta
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.kind == "DaemonSet");
                pods.push(PodOn {
                    daemon,
                    pool: pool.clone(),
                    do_not_disrupt: meta
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(super::nodes::DO_NOT_DISRUPT))
                        .is_some_and(|v| v == "true"),
                    namespace: meta.namespace.unwrap_or_default(),
                    name: meta.name.unwrap_or_default(),
                    labels: meta.labels.unwrap_or_default(),
                });
            }
        },
    )
    .await?;
    Ok(pods)
}

/// The running pods annotated `karpenter.sh/do-not-disrupt` on the nodes of `on` (node → pool),
/// as `NAMESPACE/NAME` by pool.
pub async fn do_not_disrupt_pods(
    kube: &kube::Client,
    on: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, std::collections::BTreeSet<String>>, kube::Error> {
    let mut pods: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for p in running_pods_on(kube, on).await? {
        if p.do_not_disrupt {
            pods.entry(p.pool.clone()).or_default().insert(p.id());
        }
    }
    Ok(pods)
}

/// The controller's Deployment, found by the label its Helm chart sets, in any namespace.
async fn controller(kube: &kube::Client) -> Result<Option<Controller>, kube::Error> {
    let api: Api<Deployment> = Api::all(kube.clone());
    let found = api
        .list(&ListParams::default().labels("app.kubernetes.io/name=karpenter"))
        .await?;
    Ok(found.items.into_iter().next().map(|d| {
        let image = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.iter().find(|c| c.name == "controller"))
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        Controller {
            namespace: d.metadata.namespace.clone().unwrap_or_default(),
            name: d.metadata.name.clone().unwrap_or_default(),
            tag: image_tag(&image),
            available: d
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0),
        }
    }))
}

/// The tag of an image reference, without a digest: `repo/x:1.6.2@sha256:…` → `1.6.2`.
fn image_tag(image: &str) -> Option<String> {
    let without_digest = image.split('@').next()?;
    let (repo, tag) = without_digest.rsplit_once(':')?;
    // `registry:5000/karpenter` has a port, not a tag.
    (!tag.contains('/') && !repo.is_empty()).then(|| tag.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(json: serde_json::Value) -> AmiTerm {
        ami_term(&serde_json::from_value(json).expect("a term"))
    }

    #[test]
    fn ami_terms_say_whether_they_follow_the_control_plane() {
        assert_eq!(
            term(serde_json::json!({ "alias": "al2023@latest" })),
            AmiTerm::Alias {
                family: "al2023".into(),
                release: Release::Latest
            }
        );
        assert_eq!(
            term(serde_json::json!({ "alias": "bottlerocket@v20250601" })),
            AmiTerm::Alias {
                family: "bottlerocket".into(),
                release: Release::Pinned(NaiveDate::from_ymd_opt(2025, 6, 1).expect("a date"))
            }
        );
        assert_eq!(
            term(serde_json::json!({ "id": "ami-0123" })),
            AmiTerm::Id("ami-0123".into())
        );
        assert_eq!(
            term(serde_json::json!({ "tags": { "team": "a" } })),
            AmiTerm::Fixed("selected by tags".into())
        );
        assert_eq!(
            term(serde_json::json!({ "alias": "al2023@v2025" })).to_string(),
            "alias `al2023@…`"
        );
    }

    #[test]
    fn the_controller_version_is_the_image_tag_without_its_digest() {
        assert_eq!(
            image_tag("public.ecr.aws/karpenter/controller:1.6.2@sha256:abc").as_deref(),
            Some("1.6.2")
        );
        assert_eq!(
            image_tag("registry:5000/karpenter/controller:v1.5.0").as_deref(),
            Some("v1.5.0")
        );
        assert_eq!(image_tag("registry:5000/karpenter/controller"), None);
    }
}
