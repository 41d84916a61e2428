//! Access entries per cluster: ListAccessEntries, DescribeAccessEntry, CreateAccessEntry,
//! AssociateAccessPolicy and ListAssociatedAccessPolicies. The scenario's cluster starts with
//! its creator's admin entry and one `EC2_LINUX` entry per node group role; a created cluster
//! with its creator's entry (unless `bootstrapClusterCreatorAdminPermissions` is false), and a
//! managed node group adds its role's entry, as EKS does.
//!
//! Entries are bookkeeping: the sandbox's Kubernetes API authorizes every authenticated caller.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Call;
use super::errors::{EksError, ErrorKind};
use super::request::{body_str, page};
use super::state::{Eks, Nodegroup, epoch_now};
use crate::scenario::Scenario;

/// The EKS access policies (`arn:aws:eks::aws:cluster-access-policy/NAME`).
const POLICIES: &[&str] = &[
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSAdminPolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSViewPolicy",
    "AmazonEKSAdminViewPolicy",
];

/// The prefix of every EKS access policy ARN.
pub const POLICY_PREFIX: &str = "arn:aws:eks::aws:cluster-access-policy/";

/// Access entries per cluster: EKS's default quota.
const ENTRY_LIMIT: usize = 100;

#[derive(Debug, Clone)]
pub struct Associated {
    pub policy_arn: String,
    /// `accessScope`, in wire form.
    pub scope: Value,
    pub associated_at: f64,
    pub modified_at: f64,
}

#[derive(Debug, Clone)]
pub struct AccessEntry {
    pub principal_arn: String,
    /// `STANDARD`, `EC2_LINUX`, `EC2_WINDOWS`, `FARGATE_LINUX`, …
    pub kind: String,
    pub kubernetes_groups: Vec<String>,
    pub username: String,
    pub created_at: f64,
    pub modified_at: f64,
    pub tags: Map<String, Value>,
    pub policies: Vec<Associated>,
}

/// The principal the sandbox's credentials stand for: who created the clusters.
pub fn creator(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/sandbox-admin")
}

impl AccessEntry {
    fn new(principal: &str, kind: &str, groups: Vec<String>, username: String) -> AccessEntry {
        let now = epoch_now();
        AccessEntry {
            principal_arn: principal.to_string(),
            kind: kind.to_string(),
            kubernetes_groups: groups,
            username,
            created_at: now,
            modified_at: now,
            tags: Map::new(),
            policies: Vec::new(),
        }
    }

    /// The creator's entry: cluster admin on the whole cluster.
    pub fn admin(principal: &str) -> AccessEntry {
        let mut entry = AccessEntry::new(principal, "STANDARD", Vec::new(), principal.to_string());
        entry.policies.push(Associated {
            policy_arn: format!("{POLICY_PREFIX}AmazonEKSClusterAdminPolicy"),
            scope: json!({ "type": "cluster", "namespaces": [] }),
            associated_at: entry.created_at,
            modified_at: entry.created_at,
        });
        entry
    }

    /// A managed node group role's entry.
    pub fn node(role: &str) -> AccessEntry {
        AccessEntry::new(
            role,
            "EC2_LINUX",
            vec!["system:nodes".into()],
            "system:node:{{EC2PrivateDNSName}}".into(),
        )
    }

    fn wire(&self, cluster: &str, arn: &str) -> Value {
        json!({
            "clusterName": cluster,
            "principalArn": self.principal_arn,
            "kubernetesGroups": self.kubernetes_groups,
            "accessEntryArn": arn,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "tags": self.tags,
            "username": self.username,
            "type": self.kind,
        })
    }
}

fn associated_wire(a: &Associated) -> Value {
    json!({
        "policyArn": a.policy_arn,
        "accessScope": a.scope,
        "associatedAt": a.associated_at,
        "modifiedAt": a.modified_at,
    })
}

/// The scenario's cluster's entries: its creator's and its node groups' roles'.
pub fn initial(
    scenario: &Scenario,
    nodegroups: &BTreeMap<String, Nodegroup>,
) -> BTreeMap<String, AccessEntry> {
    let admin = creator(&scenario.spec.account);
    let mut entries = BTreeMap::new();
    entries.insert(admin.clone(), AccessEntry::admin(&admin));
    for ng in nodegroups.values() {
        entries
            .entry(ng.node_role.clone())
            .or_insert_with(|| AccessEntry::node(&ng.node_role));
    }
    entries
}

fn entry_arn(eks: &Eks, principal: &str) -> String {
    let spec = &eks.world.scenario.spec;
    let uid = super::state::stable_id(&format!("access/{}/{principal}", spec.cluster.name));
    let role = principal.rsplit('/').next().unwrap_or(principal);
    format!(
        "arn:aws:eks:{}:{}:access-entry/{}/role/{}/{role}/{uid}",
        spec.cluster.region, spec.account, spec.cluster.name, spec.account
    )
}

/// Access entries need the cluster's authentication mode to include the EKS API.
fn check_mode(eks: &Eks, cluster: &str) -> Result<(), EksError> {
    if eks.lock().cluster.config.authentication_mode == "CONFIG_MAP" {
        return Err(EksError::invalid_request(
            "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.",
        )
        .cluster(cluster));
    }
    Ok(())
}

fn no_entry(cluster: &str, principal: &str) -> EksError {
    EksError::not_found(format!(
        "The specified principalArn {principal} could not be found. You can view your available access entries with 'list-access-entries'."
    ))
    .cluster(cluster)
}

pub fn list_access_entries(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    check_mode(eks, cluster)?;
    let policy = call.query.one("associatedPolicyArn");
    let state = eks.lock();
    let names: Vec<String> = state
        .access_entries
        .values()
        .filter(|e| policy.is_none_or(|p| e.policies.iter().any(|a| a.policy_arn == p)))
        .map(|e| e.principal_arn.clone())
        .collect();
    let (names, next) = page(names, call.query.max_results()?, call.query.next_token())?;
    Ok(json!({ "accessEntries": names, "nextToken": next }))
}

pub fn describe_access_entry(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    let principal = call.param("principalArn");
    let state = eks.lock();
    let entry = state
        .access_entries
        .get(principal)
        .ok_or_else(|| no_entry(cluster, principal))?;
    Ok(json!({ "accessEntry": entry.wire(cluster, &entry_arn(eks, principal)) }))
}

fn string_list(body: &Value, key: &str) -> Result<Vec<String>, EksError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    EksError::invalid_parameter(format!("{key} must be a list of strings"))
                })
            })
            .collect(),
        Some(_) => Err(EksError::invalid_parameter(format!(
            "{key} must be a list of strings"
        ))),
    }
}

/// `arn:aws:iam::ACCOUNT:role/…` or `…:user/…`.
fn valid_principal(arn: &str) -> bool {
    arn.strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(account, rest)| {
            account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && (rest.starts_with("role/") || rest.starts_with("user/"))
        })
}

pub fn create_access_entry(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    check_mode(eks, cluster)?;
    let body = &call.body;
    let principal = body_str(body, "principalArn")?.unwrap_or_default();
    let bad = |m: String| EksError::invalid_parameter(m).cluster(cluster);
    if !valid_principal(principal) {
        return Err(bad(format!(
            "The principalArn {principal} is not a valid IAM role or user ARN"
        )));
    }
    let kind = body_str(body, "type")?.unwrap_or("STANDARD");
    if !matches!(
        kind,
        "STANDARD" | "EC2_LINUX" | "EC2_WINDOWS" | "FARGATE_LINUX" | "EC2" | "HYBRID_LINUX"
    ) {
        return Err(bad(format!(
            "The type {kind} is not a valid access entry type"
        )));
    }
    let groups = string_list(body, "kubernetesGroups").map_err(|e| e.cluster(cluster))?;
    if kind != "STANDARD" && !groups.is_empty() {
        return Err(bad(format!(
            "kubernetesGroups cannot be specified for access entries of type {kind}"
        )));
    }
    let mut state = eks.lock();
    if state.access_entries.contains_key(principal) {
        return Err(EksError::in_use(format!(
            "The specified access entry resource is already in use on this cluster: {principal}"
        ))
        .cluster(cluster));
    }
    if state.access_entries.len() >= ENTRY_LIMIT {
        return Err(EksError::new(
            ErrorKind::ResourceLimitExceeded,
            format!("Cluster {cluster} has reached its limit of {ENTRY_LIMIT} access entries"),
        )
        .cluster(cluster));
    }
    let username = body_str(body, "username")?
        .map(str::to_string)
        .unwrap_or_else(|| principal.to_string());
    let mut entry = AccessEntry::new(principal, kind, groups, username);
    if let Some(Value::Object(tags)) = body.get("tags") {
        entry.tags = tags.clone();
    }
    let answer = entry.wire(cluster, &entry_arn(eks, principal));
    state.access_entries.insert(principal.to_string(), entry);
    Ok(json!({ "accessEntry": answer }))
}

/// `accessScope`: `cluster`, or `namespace` with at least one namespace.
fn scope(body: &Value, cluster: &str) -> Result<Value, EksError> {
    let bad = |m: &str| EksError::invalid_parameter(m).cluster(cluster);
    let scope = body
        .get("accessScope")
        .filter(|s| s.is_object())
        .ok_or_else(|| bad("accessScope is required"))?;
    let namespaces = string_list(scope, "namespaces").map_err(|e| e.cluster(cluster))?;
    match body_str(scope, "type")? {
        Some("cluster") if namespaces.is_empty() => {
            Ok(json!({ "type": "cluster", "namespaces": [] }))
        }
        Some("cluster") => Err(bad(
            "namespaces cannot be specified for an access scope of type cluster",
        )),
        Some("namespace") if !namespaces.is_empty() => {
            Ok(json!({ "type": "namespace", "namespaces": namespaces }))
        }
        Some("namespace") => Err(bad(
            "at least one namespace is required for an access scope of type namespace",
        )),
        _ => Err(bad("accessScope.type must be cluster or namespace")),
    }
}

pub fn associate_access_policy(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    let principal = call.param("principalArn");
    let body = &call.body;
    let policy = body_str(body, "policyArn")?.unwrap_or_default();
    let known = policy
        .strip_prefix(POLICY_PREFIX)
        .is_some_and(|name| POLICIES.contains(&name));
    if !known {
        return Err(EksError::not_found(format!(
            "The specified policyArn {policy} could not be found"
        ))
        .cluster(cluster));
    }
    let scope = scope(body, cluster)?;
    let mut state = eks.lock();
    let entry = state
        .access_entries
        .get_mut(principal)
        .ok_or_else(|| no_entry(cluster, principal))?;
    if entry.kind != "STANDARD" {
        return Err(EksError::invalid_request(format!(
            "Access policies can only be associated with access entries of type STANDARD, not {}",
            entry.kind
        ))
        .cluster(cluster));
    }
    let now = epoch_now();
    let associated = match entry.policies.iter_mut().find(|a| a.policy_arn == policy) {
        Some(a) => {
            a.scope = scope;
            a.modified_at = now;
            a.clone()
        }
        None => {
            let a = Associated {
                policy_arn: policy.to_string(),
                scope,
                associated_at: now,
                modified_at: now,
            };
            entry.policies.push(a.clone());
            a
        }
    };
    entry.modified_at = now;
    Ok(json!({
        "clusterName": cluster,
        "principalArn": principal,
        "associatedAccessPolicy": associated_wire(&associated),
    }))
}

pub fn list_associated_access_policies(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    let cluster = call.cluster(eks)?;
    let principal = call.param("principalArn");
    let state = eks.lock();
    let entry = state
        .access_entries
        .get(principal)
        .ok_or_else(|| no_entry(cluster, principal))?;
    let items: Vec<Value> = entry.policies.iter().map(associated_wire).collect();
    let (items, next) = page(items, call.query.max_results()?, call.query.next_token())?;
    Ok(json!({
        "clusterName": cluster,
        "principalArn": principal,
        "associatedAccessPolicies": items,
        "nextToken": next,
    }))
}
