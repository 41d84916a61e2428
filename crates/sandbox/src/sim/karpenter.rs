//! A self-installed Karpenter (v1 APIs), as it stands when the scenario starts: the controller's
//! Deployment, EC2NodeClasses with the AMIs they resolved, NodePools with their budgets, and one
//! NodeClaim per node, each with its Node.
//!
//! What is seeded is what Karpenter would have written on a settled cluster: classes `Ready`,
//! claims `Launched`/`Registered`/`Initialized`, pool status counting its nodes. Drift and
//! replacement after a control-plane upgrade are not emulated yet: the nodes keep their version,
//! as they would with the controller stopped (docs/sandbox.md).

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::nodes::{self, DO_NOT_DISRUPT};
use super::{names, workloads};
use crate::kube::store::{ResourceType, Store, StoreError};
use crate::scenario::{Ec2NodeClassSpec, Scenario};
use eks_upgrade_core::types::Version;

/// The API group of Karpenter's AWS provider (EC2NodeClass).
pub const AWS_GROUP: &str = "karpenter.k8s.aws";

/// The resource types a cluster with Karpenter serves. NodePools and NodeClaims are the same
/// types Auto Mode serves; EC2NodeClass is the AWS provider's.
pub fn resource_types() -> Vec<ResourceType> {
    vec![
        ResourceType::new("karpenter.sh", "v1", "NodePool", "nodepools", false).with_status(),
        ResourceType::new("karpenter.sh", "v1", "NodeClaim", "nodeclaims", false).with_status(),
        ResourceType::new(AWS_GROUP, "v1", "EC2NodeClass", "ec2nodeclasses", false).with_status(),
    ]
}

/// What `@latest` resolves to in the sandbox: a release after every version it offers.
const LATEST_RELEASE: &str = "v20260801";

/// The AMIs a class selects for Kubernetes `version`, released on `released`: `(id, name)`.
/// AWS publishes a release `vYYYYMMDD` of an EKS AMI for every Kubernetes version EKS offers
/// on that day, so a pinned alias older than the version's release finds none. (The real
/// calendar differs in detail: the sandbox does not know it, docs/sandbox.md.)
fn amis(
    class: &Ec2NodeClassSpec,
    version: Version,
    released: Option<NaiveDate>,
) -> Vec<(String, String)> {
    match &class.alias {
        Some(alias) => {
            let (family, release) = alias.split_once('@').unwrap_or((alias.as_str(), "latest"));
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
            vec![(id, name)]
        }
        None => class
            .ami_ids
            .iter()
            .map(|id| (id.clone(), format!("custom-{id}")))
            .collect(),
    }
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

fn class_object(
    class: &Ec2NodeClassSpec,
    cluster: &str,
    version: Version,
    released: Option<NaiveDate>,
) -> Value {
    let terms: Vec<Value> = match &class.alias {
        Some(alias) => vec![json!({ "alias": alias })],
        None => class.ami_ids.iter().map(|id| json!({ "id": id })).collect(),
    };
    let amis: Vec<Value> = amis(class, version, released)
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
        // Karpenter's own condition when its selector terms match no AMI: the class, and so
        // every pool using it, launches nothing.
        let message = format!(
            "AMISelector did not match any AMIs for Kubernetes {version} ({})",
            class.alias.as_deref().unwrap_or("amiSelectorTerms")
        );
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
    let discovery = json!([ { "tags": { "karpenter.sh/discovery": cluster } } ]);
    json!({
        "metadata": { "name": class.name },
        "spec": {
            "amiSelectorTerms": terms,
            "role": format!("KarpenterNodeRole-{cluster}"),
            "subnetSelectorTerms": discovery,
            "securityGroupSelectorTerms": discovery,
        },
        "status": { "amis": amis, "conditions": conditions },
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
    let released = scenario
        .versions()
        .iter()
        .find(|v| v.version == cluster.version)
        .and_then(|v| NaiveDate::parse_from_str(&v.release_date, "%Y-%m-%d").ok());

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
        let pool_uid = created
            .pointer("/metadata/uid")
            .cloned()
            .unwrap_or_default();
        let image = k
            .node_classes
            .iter()
            .find(|c| c.name == pool.node_class)
            .and_then(|c| amis(c, version, released).into_iter().next())
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
            let provider_id = node["spec"]["providerID"].clone();
            store.create(&node_rt, None, node)?;
            let claim = format!("{}-{}", pool.name, names::suffix(&seed, 5));
            store.create(
                &claims,
                None,
                json!({
                    "metadata": {
                        "name": claim,
                        "labels": {
                            nodes::NODEPOOL_LABEL: pool.name,
                            "karpenter.k8s.aws/ec2nodeclass": pool.node_class,
                            "node.kubernetes.io/instance-type": pool.instance_type,
                            "topology.kubernetes.io/zone": zone,
                        },
                        "ownerReferences": [ {
                            "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "name": pool.name,
                            "uid": pool_uid, "blockOwnerDeletion": true,
                        } ],
                    },
                    "spec": { "nodeClassRef": class_ref },
                    "status": {
                        "providerID": provider_id,
                        "imageID": image,
                        "nodeName": name,
                        "conditions": conditions(&["Launched", "Registered", "Initialized", "Ready"]),
                    },
                }),
            )?;
        }
    }
    Ok(n)
}
