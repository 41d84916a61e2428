//! A self-installed Karpenter (v1 APIs): the controller's Deployment, EC2NodeClasses with the
//! AMIs they resolve, NodePools with their budgets, and one NodeClaim per node, each with its
//! Node, seeded as a settled cluster would have them; `drift` is the controller that replaces
//! nodes after the control plane (or a class) changes.

mod command;
pub mod drift;

pub use drift::start;

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::nodes::{self, DO_NOT_DISRUPT};
use super::{names, workloads};
use crate::kube::store::{PrinterColumn, ResourceType, Store, StoreError};
use crate::scenario::{Ec2NodeClassSpec, Scenario};
use eks_upgrade_core::cloud::karpenter_budget::Budget;
use eks_upgrade_core::types::Version;

/// The API group of Karpenter's AWS provider (EC2NodeClass).
pub const AWS_GROUP: &str = "karpenter.k8s.aws";
/// The label naming a node's (and NodeClaim's) EC2NodeClass.
pub const CLASS_LABEL: &str = "karpenter.k8s.aws/ec2nodeclass";

const READY: &str = r#".status.conditions[?(@.type=="Ready")].status"#;
const AGE: &str = ".metadata.creationTimestamp";

/// `karpenter.sh/v1` NodePool, with the printer columns and category of Karpenter's CRD (Auto
/// Mode serves the same type).
pub fn nodepool_type() -> ResourceType {
    let c = PrinterColumn::new;
    ResourceType::new("karpenter.sh", "v1", "NodePool", "nodepools", false)
        .with_status()
        .with_categories(&["karpenter"])
        .with_columns(vec![
            c(
                "NodeClass",
                "string",
                0,
                ".spec.template.spec.nodeClassRef.name",
            ),
            c("Nodes", "string", 0, ".status.nodes"),
            c("Ready", "string", 0, READY),
            c("Age", "date", 0, AGE),
            c("Weight", "integer", 1, ".spec.weight"),
            c("CPU", "string", 1, ".status.resources.cpu"),
            c("Memory", "string", 1, ".status.resources.memory"),
        ])
}

/// `karpenter.sh/v1` NodeClaim, with its CRD's printer columns.
pub fn nodeclaim_type() -> ResourceType {
    let c = PrinterColumn::new;
    ResourceType::new("karpenter.sh", "v1", "NodeClaim", "nodeclaims", false)
        .with_status()
        .with_categories(&["karpenter"])
        .with_columns(vec![
            c(
                "Type",
                "string",
                0,
                r".metadata.labels.node\.kubernetes\.io/instance-type",
            ),
            c(
                "Capacity",
                "string",
                0,
                r".metadata.labels.karpenter\.sh/capacity-type",
            ),
            c(
                "Zone",
                "string",
                0,
                r".metadata.labels.topology\.kubernetes\.io/zone",
            ),
            c("Node", "string", 0, ".status.nodeName"),
            c("Ready", "string", 0, READY),
            c("Age", "date", 0, AGE),
            c("ImageID", "string", 1, ".status.imageID"),
            c("ID", "string", 1, ".status.providerID"),
            c(
                "NodePool",
                "string",
                1,
                r".metadata.labels.karpenter\.sh/nodepool",
            ),
            c("NodeClass", "string", 1, ".spec.nodeClassRef.name"),
            c(
                "Drifted",
                "string",
                1,
                r#".status.conditions[?(@.type=="Drifted")].status"#,
            ),
        ])
}

/// The resource types a cluster with Karpenter serves. NodePools and NodeClaims are the same
/// types Auto Mode serves; EC2NodeClass is the AWS provider's.
pub fn resource_types() -> Vec<ResourceType> {
    let c = PrinterColumn::new;
    vec![
        nodepool_type(),
        nodeclaim_type(),
        ResourceType::new(AWS_GROUP, "v1", "EC2NodeClass", "ec2nodeclasses", false)
            .with_status()
            .short(&["ec2nc", "ec2ncs"])
            .with_categories(&["karpenter"])
            .with_columns(vec![
                c("Ready", "string", 0, READY),
                c("Age", "date", 0, AGE),
                c("Role", "string", 1, ".spec.role"),
            ]),
    ]
}

/// What `@latest` resolves to in the sandbox: a release after every version it offers.
const LATEST_RELEASE: &str = "v20260801";

/// The AMIs `amiSelectorTerms` select for Kubernetes `version`, released on `released`:
/// `(id, name)`. AWS publishes a release `vYYYYMMDD` of an EKS AMI for every Kubernetes version
/// EKS offers on that day, so a pinned alias older than the version's release finds none. (The
/// real calendar differs in detail: the sandbox does not know it, docs/sandbox.md.) `id` terms
/// select themselves, whatever the version.
pub fn amis(terms: &Value, version: Version, released: Option<NaiveDate>) -> Vec<(String, String)> {
    let terms = terms.as_array().map(Vec::as_slice).unwrap_or_default();
    if let Some(alias) = terms
        .iter()
        .find_map(|t| t.get("alias").and_then(Value::as_str))
    {
        let (family, release) = alias.split_once('@').unwrap_or((alias, "latest"));
        let release = if release == "latest" {
            LATEST_RELEASE
        } else {
            release
        };
        let published = release
            .strip_prefix('v')
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok());
        if release != LATEST_RELEASE
            && let (Some(published), Some(released)) = (published, released)
            && published < released
        {
            return Vec::new();
        }
        let id = format!(
            "ami-0{}",
            names::suffix(&format!("{family}/{version}/{release}"), 16)
        );
        let name = format!("amazon-eks-node-{family}-x86_64-standard-{version}-{release}");
        return vec![(id, name)];
    }
    terms
        .iter()
        .filter_map(|t| t.get("id").and_then(Value::as_str))
        .map(|id| (id.to_string(), format!("custom-{id}")))
        .collect()
}

/// A NodePool object's disruption budgets, as Karpenter reads them; none (Karpenter's default
/// `10%`) when they are absent or do not parse.
pub fn budgets_of(pool: &Value) -> Vec<Budget> {
    pool.pointer("/spec/disruption/budgets")
        .cloned()
        .and_then(|b| serde_json::from_value(b).ok())
        .unwrap_or_default()
}

/// When EKS released `version`, from the scenario's catalogue.
pub fn released(scenario: &Scenario, version: Version) -> Option<NaiveDate> {
    scenario
        .versions()
        .iter()
        .find(|v| v.version == version)
        .and_then(|v| NaiveDate::parse_from_str(&v.release_date, "%Y-%m-%d").ok())
}

fn condition(kind: &str) -> Value {
    json!({
        "type": kind, "status": "True", "reason": kind, "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    })
}

fn conditions(kinds: &[&str]) -> Value {
    Value::Array(kinds.iter().map(|k| condition(k)).collect())
}

/// An EC2NodeClass's `status` for the control plane at `version`: the AMIs its terms resolve
/// and its conditions, `AMIsReady` and `Ready` False (Karpenter's `AMINotFound`) when none does.
pub fn class_status(terms: &Value, version: Version, released: Option<NaiveDate>) -> Value {
    let amis: Vec<Value> = amis(terms, version, released)
        .into_iter()
        .map(|(id, name)| json!({ "id": id, "name": name, "requirements": [] }))
        .collect();
    let mut conditions = conditions(&[
        "AMIsReady",
        "SubnetsReady",
        "SecurityGroupsReady",
        "InstanceProfileReady",
        "ValidationSucceeded",
        "Ready",
    ]);
    if amis.is_empty() {
        // The class, and so every pool using it, launches nothing.
        let alias = terms
            .as_array()
            .and_then(|t| {
                t.iter()
                    .find_map(|t| t.get("alias").and_then(Value::as_str))
            })
            .unwrap_or("amiSelectorTerms");
        let message =
            format!("AMISelector did not match any AMIs for Kubernetes {version} ({alias})");
        for c in conditions.as_array_mut().into_iter().flatten() {
            if c["type"] == "AMIsReady" || c["type"] == "Ready" {
                c["status"] = json!("False");
                c["reason"] = json!(if c["type"] == "Ready" {
                    "AMIsNotReady"
                } else {
                    "AMINotFound"
                });
                c["message"] = json!(message);
            }
        }
    }
    json!({ "amis": amis, "conditions": conditions })
}

fn terms_of(class: &Ec2NodeClassSpec) -> Value {
    match &class.alias {
        Some(alias) => json!([ { "alias": alias } ]),
        None => Value::Array(class.ami_ids.iter().map(|id| json!({ "id": id })).collect()),
    }
}

fn class_object(
    class: &Ec2NodeClassSpec,
    cluster: &str,
    version: Version,
    released: Option<NaiveDate>,
) -> Value {
    let terms = terms_of(class);
    let discovery = json!([ { "tags": { "karpenter.sh/discovery": cluster } } ]);
    json!({
        "metadata": { "name": class.name },
        "spec": {
            "amiSelectorTerms": terms,
            "role": format!("KarpenterNodeRole-{cluster}"),
            "subnetSelectorTerms": discovery,
            "securityGroupSelectorTerms": discovery,
        },
        "status": class_status(&terms, version, released),
    })
}

/// The NodeClaim Karpenter keeps for `node` (a Node object) launched from `image` for `pool` (the
/// NodePool object): the pool's `terminationGracePeriod` is copied at launch, and later changes
/// to the pool do not reach it, as in Karpenter.
pub fn claim_object(node: &Value, pool: &Value, image: &str) -> Value {
    let pool_name = pool
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let template = |k: &str| pool.pointer(&format!("/spec/template/spec/{k}")).cloned();
    let mut spec = json!({ "nodeClassRef": template("nodeClassRef") });
    if let Some(tgp) = template("terminationGracePeriod").filter(|v| !v.is_null()) {
        spec["terminationGracePeriod"] = tgp;
    }
    let (pool, pool_uid) = (pool_name, pool.pointer("/metadata/uid").cloned());
    let name = node
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let label = |k: &str| {
        node.pointer("/metadata/labels")
            .and_then(|l| l.get(k))
            .cloned()
    };
    json!({
        "metadata": {
            "name": format!("{pool}-{}", names::suffix(name, 5)),
            "labels": {
                nodes::NODEPOOL_LABEL: pool,
                CLASS_LABEL: label(CLASS_LABEL),
                "node.kubernetes.io/instance-type": label("node.kubernetes.io/instance-type"),
                "topology.kubernetes.io/zone": label("topology.kubernetes.io/zone"),
                "karpenter.sh/capacity-type": label("karpenter.sh/capacity-type"),
            },
            "ownerReferences": [ {
                "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "name": pool,
                "uid": pool_uid, "blockOwnerDeletion": true,
            } ],
        },
        "spec": spec,
        "status": {
            "providerID": node.pointer("/spec/providerID").cloned(),
            "imageID": image,
            "nodeName": name,
            "conditions": conditions(&["Launched", "Registered", "Initialized", "Ready"]),
        },
    })
}

/// Seeds the controller, classes, pools, claims and nodes. `zone_offset` spreads the nodes over
/// zones after those seeded before; returns the offset after them.
pub fn seed(store: &Store, scenario: &Scenario, zone_offset: usize) -> Result<usize, StoreError> {
    let spec = &scenario.spec;
    let Some(k) = &spec.karpenter else {
        return Ok(zone_offset);
    };
    let missing = |what: &str| StoreError::Invalid(format!("no {what} resource"));
    let rt = |group: &str, plural: &str| {
        store
            .resource(group, "v1", plural)
            .ok_or_else(|| missing(plural))
    };
    let (classes, pools, claims) = (
        rt(AWS_GROUP, "ec2nodeclasses")?,
        rt("karpenter.sh", "nodepools")?,
        rt("karpenter.sh", "nodeclaims")?,
    );
    let (node_rt, deployments) = (rt("", "nodes")?, rt("apps", "deployments")?);
    let cluster = &spec.cluster;
    let released = released(scenario, cluster.version);

    let controller = workloads::workload_object(&workloads::Template {
        kind: "Deployment",
        namespace: &k.namespace,
        name: "karpenter",
        replicas: k.replicas,
        container: "controller",
        image: &format!("public.ecr.aws/karpenter/controller:{}", k.version),
        labels: &json!({
            "app.kubernetes.io/name": "karpenter",
            "app.kubernetes.io/instance": "karpenter",
            "app.kubernetes.io/version": k.version,
        }),
        broken: false,
    });
    store.create(&deployments, Some(&k.namespace), controller)?;

    for class in &k.node_classes {
        store.create(
            &classes,
            None,
            class_object(class, &cluster.name, cluster.version, released),
        )?;
    }

    let zones = ["a", "b", "c"];
    let mut n = zone_offset;
    for pool in &k.node_pools {
        let version = pool.version.unwrap_or(cluster.version);
        let budgets = if pool.budgets.is_empty() {
            json!([ { "nodes": "10%" } ])
        } else {
            serde_json::to_value(&pool.budgets)
                .map_err(|e| StoreError::Invalid(format!("budgets of `{}`: {e}", pool.name)))?
        };
        let class_ref =
            json!({ "group": AWS_GROUP, "kind": "EC2NodeClass", "name": pool.node_class });
        let mut template = json!({
            "nodeClassRef": class_ref,
            "requirements": [
                { "key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"] },
                { "key": "node.kubernetes.io/instance-type", "operator": "In", "values": [pool.instance_type] },
            ],
            "expireAfter": "720h",
        });
        if let Some(tgp) = &pool.termination_grace_period {
            template["terminationGracePeriod"] = json!(tgp);
        }
        let created = store.create(
            &pools,
            None,
            json!({
                "metadata": { "name": pool.name },
                "spec": {
                    "template": { "spec": template },
                    "disruption": {
                        "consolidationPolicy": "WhenEmptyOrUnderutilized",
                        "consolidateAfter": "1m",
                        "budgets": budgets,
                    },
                },
                "status": {
                    "nodes": pool.nodes,
                    "conditions": conditions(&["NodeClassReady", "NodeRegistrationHealthy", "Ready"]),
                },
            }),
        )?;
        // A settled cluster: each claim runs the AMI its class resolves now, so the controller
        // drifts only what changes after the start (a control-plane upgrade, an edited class).
        let image = k
            .node_classes
            .iter()
            .find(|c| c.name == pool.node_class)
            .and_then(|c| {
                amis(&terms_of(c), cluster.version, released)
                    .into_iter()
                    .next()
            })
            .map(|(id, _)| id)
            .unwrap_or_default();
        for i in 0..pool.nodes {
            let seed = format!("{}/karpenter/{}/{i}", cluster.name, pool.name);
            let name = names::node_name(&cluster.region, &seed);
            let zone = format!("{}{}", cluster.region, zones[n % zones.len()]);
            n += 1;
            let origin = nodes::Origin::Karpenter {
                pool: &pool.name,
                class: &pool.node_class,
                instance_type: &pool.instance_type,
            };
            let mut node = nodes::node_object(&name, version, &origin, &zone);
            if pool.do_not_disrupt {
                node["metadata"]["annotations"] = json!({ DO_NOT_DISRUPT: "true" });
            }
            let claim = claim_object(&node, &created, &image);
            store.create(&node_rt, None, node)?;
            store.create(&claims, None, claim)?;
        }
    }
    Ok(n)
}
