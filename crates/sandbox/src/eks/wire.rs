//! The JSON shapes of EKS responses (`Cluster`, `Nodegroup`, `Addon`), member names as in the
//! service model. Timestamps are epoch-second numbers: the Rust SDK rejects strings.

use base64::Engine;
use serde_json::{Value, json};

use super::state::{Addon, Eks, Nodegroup, State};

/// The `Cluster` shape. The endpoint and CA are the sandbox's Kubernetes API: this is how the
/// tool finds it, exactly as it finds a real cluster's.
pub fn cluster(eks: &Eks, state: &State) -> Value {
    let spec = &eks.world.scenario.spec;
    let c = &state.cluster;
    let cfg = &c.config;
    let region = &spec.cluster.region;
    let account = &spec.account;
    // A cluster being created has no API server yet: no endpoint, an empty CA.
    let endpoint = eks
        .world
        .endpoints()
        .map(|e| e.kubernetes)
        .filter(|k| !k.is_empty());
    let ca = match (c.status, &endpoint) {
        ("CREATING" | "FAILED", _) | (_, None) => json!({}),
        _ => json!({ "data": base64::engine::general_purpose::STANDARD.encode(&eks.world.ca_pem) }),
    };
    let mut cluster = json!({
        "name": c.name,
        "arn": c.arn,
        "createdAt": c.created_at,
        "version": c.version.to_string(),
        "endpoint": endpoint,
        "roleArn": cfg.role_arn,
        "resourcesVpcConfig": {
            "subnetIds": cfg.subnet_ids,
            "securityGroupIds": cfg.security_group_ids,
            "clusterSecurityGroupId": cfg.cluster_security_group_id,
            "vpcId": eks.world.scenario.vpc_id(),
            "endpointPublicAccess": cfg.endpoint_public_access,
            "endpointPrivateAccess": cfg.endpoint_private_access,
            "publicAccessCidrs": cfg.public_access_cidrs,
        },
        "kubernetesNetworkConfig": {
            "serviceIpv4Cidr": cfg.service_ipv4_cidr,
            "ipFamily": cfg.ip_family,
            "elasticLoadBalancing": { "enabled": false },
        },
        "logging": cfg.logging,
        "identity": {
            "oidc": { "issuer": format!("https://oidc.eks.{region}.amazonaws.com/id/{}", c.oidc_id) },
        },
        "status": c.status,
        "certificateAuthority": ca,
        "platformVersion": c.platform_version,
        "tags": cfg.tags,
        "health": { "issues": c.issues },
        "accessConfig": { "authenticationMode": cfg.authentication_mode },
        "upgradePolicy": { "supportType": cfg.support_type },
        "deletionProtection": false,
        "encryptionConfig": cfg.encryption,
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

pub fn nodegroup(_eks: &Eks, state: &State, ng: &Nodegroup) -> Value {
    json!({
        "nodegroupName": ng.name,
        "nodegroupArn": ng.arn,
        "clusterName": state.cluster.name,
        "version": ng.version.to_string(),
        "releaseVersion": ng.release_version,
        "createdAt": ng.created_at,
        "modifiedAt": ng.modified_at,
        "status": ng.status,
        "capacityType": ng.capacity_type,
        "scalingConfig": {
            "minSize": ng.min_size,
            "maxSize": ng.max_size,
            "desiredSize": ng.nodes,
        },
        "instanceTypes": [ng.instance_type],
        "subnets": ng.subnets,
        "amiType": ng.ami_type,
        "nodeRole": ng.node_role,
        "labels": ng.labels,
        "taints": (!ng.taints.is_empty()).then_some(&ng.taints),
        "resources": { "autoScalingGroups": [{ "name": ng.asg }] },
        "diskSize": ng.disk_size,
        "health": { "issues": ng.issues },
        "updateConfig": match ng.max_unavailable_percentage {
            Some(p) => json!({ "maxUnavailablePercentage": p }),
            None => json!({ "maxUnavailable": ng.max_unavailable }),
        },
        "tags": ng.tags,
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
        "tags": a.tags,
        "configurationValues": a.configuration_values,
        "podIdentityAssociations": [],
    })
}
