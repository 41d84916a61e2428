//! The JSON shapes of EKS responses (`Cluster`, `Nodegroup`, `Addon`), member names as in the
//! service model. Timestamps are epoch-second numbers: the Rust SDK rejects strings.

use base64::Engine;
use serde_json::{Value, json};

use super::state::{Addon, Eks, Nodegroup, State};
use crate::sim::names;

/// The `Cluster` shape. The endpoint and CA are the sandbox's Kubernetes API: this is how the
/// tool finds it, exactly as it finds a real cluster's.
pub fn cluster(eks: &Eks, state: &State) -> Value {
    let spec = &eks.world.scenario.spec;
    let c = &state.cluster;
    let region = &spec.cluster.region;
    let account = &spec.account;
    let endpoint = eks
        .world
        .endpoints()
        .map(|e| e.kubernetes)
        .unwrap_or_default();
    let ca = base64::engine::general_purpose::STANDARD.encode(&eks.world.ca_pem);
    let suffix = names::suffix(&c.name, 8);
    let mut cluster = json!({
        "name": c.name,
        "arn": c.arn,
        "createdAt": c.created_at,
        "version": c.version.to_string(),
        "endpoint": endpoint,
        "roleArn": format!("arn:aws:iam::{account}:role/{}-cluster-role", c.name),
        "resourcesVpcConfig": {
            "subnetIds": eks.world.scenario.cluster_subnet_ids(),
            "securityGroupIds": [format!("sg-0{suffix}01")],
            "clusterSecurityGroupId": format!("sg-0{suffix}c1"),
            "vpcId": eks.world.scenario.vpc_id(),
            "endpointPublicAccess": true,
            "endpointPrivateAccess": true,
            "publicAccessCidrs": ["0.0.0.0/0"],
        },
        "kubernetesNetworkConfig": {
            "serviceIpv4Cidr": "172.20.0.0/16",
            "ipFamily": "ipv4",
            "elasticLoadBalancing": { "enabled": false },
        },
        "logging": {
            "clusterLogging": [{
                "types": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
                "enabled": false,
            }],
        },
        "identity": {
            "oidc": { "issuer": format!("https://oidc.eks.{region}.amazonaws.com/id/{}", c.oidc_id) },
        },
        "status": c.status,
        "certificateAuthority": { "data": ca },
        "platformVersion": c.platform_version,
        "tags": { "eks-upgrade/sandbox": eks.world.scenario.metadata.name },
        "health": { "issues": spec.cluster.health_issues.iter().map(|i| json!({
            "code": i.code, "message": i.message, "resourceIds": i.resource_ids,
        })).collect::<Vec<_>>() },
        "accessConfig": { "authenticationMode": "API_AND_CONFIG_MAP" },
        "upgradePolicy": { "supportType": spec.cluster.support_type },
        "deletionProtection": false,
    });
    // Auto Mode turns on compute, block storage and load balancing together.
    if let Some(compute) = &c.compute {
        cluster["computeConfig"] = json!({
            "enabled": true,
            "nodePools": compute.node_pools,
            "nodeRoleArn": compute.node_role_arn.clone().unwrap_or_else(|| format!("arn:aws:iam::{account}:role/{}-auto-node-role", c.name)),
        });
        cluster["storageConfig"] = json!({ "blockStorage": { "enabled": true } });
        cluster["kubernetesNetworkConfig"]["elasticLoadBalancing"] = json!({ "enabled": true });
    }
    cluster
}

pub fn nodegroup(eks: &Eks, state: &State, ng: &Nodegroup) -> Value {
    let spec = &eks.world.scenario.spec;
    json!({
        "nodegroupName": ng.name,
        "nodegroupArn": ng.arn,
        "clusterName": state.cluster.name,
        "version": ng.version.to_string(),
        "releaseVersion": ng.release_version,
        "createdAt": ng.created_at,
        "modifiedAt": ng.modified_at,
        "status": ng.status,
        "capacityType": "ON_DEMAND",
        "scalingConfig": {
            "minSize": ng.nodes.min(1),
            "maxSize": ng.nodes.max(1) * 2,
            "desiredSize": ng.nodes,
        },
        "instanceTypes": [ng.instance_type],
        "subnets": ng.subnets,
        "amiType": ng.ami_type,
        "nodeRole": format!("arn:aws:iam::{}:role/{}-node-role", spec.account, state.cluster.name),
        "labels": ng.labels,
        "resources": { "autoScalingGroups": [{ "name": ng.asg }] },
        "diskSize": 20,
        "health": { "issues": [] },
        "updateConfig": match ng.max_unavailable_percentage {
            Some(p) => json!({ "maxUnavailablePercentage": p }),
            None => json!({ "maxUnavailable": ng.max_unavailable }),
        },
        "tags": {},
    })
}

pub fn addon(state: &State, a: &Addon) -> Value {
    json!({
        "addonName": a.name,
        "clusterName": state.cluster.name,
        "status": a.status,
        "addonVersion": a.version,
        "health": { "issues": a.issues },
        "addonArn": a.arn,
        "createdAt": a.created_at,
        "modifiedAt": a.modified_at,
        "serviceAccountRoleArn": a.service_account_role_arn,
        "tags": {},
        "configurationValues": a.configuration_values,
        "podIdentityAssociations": [],
    })
}
