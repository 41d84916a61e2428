//! The EKS writes a blue/green run makes besides upgrades: create and delete a cluster, a node
//! group and an add-on, the version EKS installs by default for a Kubernetes version, and the
//! access entries (read blue's, create green's). Requests come from `green_copy`; every create
//! carries a client request token, so a retried call after a crash returns what the first one
//! made instead of a second resource. Errors are `EksError`, keeping EKS's code and the SDK
//! error.

use std::collections::HashMap;

use aws_sdk_eks::types::{
    AccessEntry, AccessScope, AccessScopeType, AmiTypes, AssociatedAccessPolicy,
    AuthenticationMode, BlockStorage, CapacityTypes, Cluster, ComputeConfigRequest,
    CreateAccessConfigRequest, ElasticLoadBalancing, EncryptionConfig, IpFamily,
    KubernetesNetworkConfigRequest, LaunchTemplateSpecification, LogSetup, Logging,
    NodegroupScalingConfig, NodegroupUpdateConfig, Provider, RemoteAccessConfig, ResolveConflicts,
    StorageConfigRequest, SupportType, Taint, TaintEffect, UpgradePolicyRequest, VpcConfigRequest,
};

use super::eks::{EksError, addon_versions, eks_error};
use super::green_copy::{
    AccessEntryRequest, AddonRequest, ClusterRequest, NodegroupRequest, PolicyAssociation, log_type,
};
use crate::types::Version;

/// A cluster as CreateCluster or DescribeCluster returns it, reduced to what a run follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub arn: String,
    pub status: String,
    /// The tags EKS reports, to tell a cluster this run created from someone else's.
    pub tags: HashMap<String, String>,
}

fn created(c: &Cluster) -> Created {
    Created {
        arn: c.arn().unwrap_or_default().to_string(),
        status: c
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        tags: c.tags().cloned().unwrap_or_default(),
    }
}

/// Blue as DescribeCluster returns it, for `green_copy`; `None` when no such cluster exists.
pub async fn describe(eks: &aws_sdk_eks::Client, name: &str) -> Result<Option<Cluster>, EksError> {
    match eks.describe_cluster().name(name).send().await {
        Ok(out) => out
            .cluster
            .map(Some)
            .ok_or_else(|| EksError::answer("DescribeCluster", "the response has no cluster")),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(eks_error("DescribeCluster", e)),
    }
}

/// CreateCluster. The same request and token again returns the same cluster.
pub async fn create_cluster(
    eks: &aws_sdk_eks::Client,
    r: &ClusterRequest,
) -> Result<Created, EksError> {
    let vpc = VpcConfigRequest::builder()
        .set_subnet_ids(Some(r.subnet_ids.clone()))
        .set_security_group_ids(Some(r.security_group_ids.clone()))
        .endpoint_public_access(r.endpoint_public_access)
        .endpoint_private_access(r.endpoint_private_access)
        .set_public_access_cidrs(
            (!r.public_access_cidrs.is_empty()).then(|| r.public_access_cidrs.clone()),
        )
        .build();
    let mut network = KubernetesNetworkConfigRequest::builder()
        .set_service_ipv4_cidr(r.service_ipv4_cidr.clone())
        .set_ip_family(r.ip_family.as_deref().map(IpFamily::from));
    let mut req = eks
        .create_cluster()
        .name(&r.name)
        .version(r.version.to_string())
        .role_arn(&r.role_arn)
        .resources_vpc_config(vpc)
        .client_request_token(&r.client_request_token)
        .set_tags(Some(r.tags.clone().into_iter().collect()))
        .access_config(
            CreateAccessConfigRequest::builder()
                .set_authentication_mode(
                    r.authentication_mode
                        .as_deref()
                        .map(AuthenticationMode::from),
                )
                // The caller administers what it creates, as `aws eks create-cluster` does.
                .bootstrap_cluster_creator_admin_permissions(true)
                .build(),
        );
    if !r.enabled_log_types.is_empty() {
        req = req.logging(
            Logging::builder()
                .cluster_logging(
                    LogSetup::builder()
                        .set_types(Some(
                            r.enabled_log_types.iter().map(|t| log_type(t)).collect(),
                        ))
                        .enabled(true)
                        .build(),
                )
                .build(),
        );
    }
    if let Some(support) = &r.support_type {
        req = req.upgrade_policy(
            UpgradePolicyRequest::builder()
                .support_type(SupportType::from(support.as_str()))
                .build(),
        );
    }
    if let Some(key) = &r.encryption_key_arn {
        req = req.encryption_config(
            EncryptionConfig::builder()
                .provider(Provider::builder().key_arn(key).build())
                .build(),
        );
    }
    if let Some(auto) = &r.auto_mode {
        // Auto Mode is the three capabilities together; EKS refuses one without the others.
        req = req
            .compute_config(
                ComputeConfigRequest::builder()
                    .enabled(true)
                    .set_node_pools(Some(auto.node_pools.clone()))
                    .set_node_role_arn(auto.node_role_arn.clone())
                    .build(),
            )
            .storage_config(
                StorageConfigRequest::builder()
                    .block_storage(BlockStorage::builder().enabled(true).build())
                    .build(),
            )
            // Auto Mode clusters do not get the self-managed add-ons.
            .bootstrap_self_managed_addons(false);
        network =
            network.elastic_load_balancing(ElasticLoadBalancing::builder().enabled(true).build());
    }
    let out = req
        .kubernetes_network_config(network.build())
        .send()
        .await
        .map_err(|e| eks_error("CreateCluster", e))?;
    out.cluster
        .as_ref()
        .map(created)
        .ok_or_else(|| EksError::answer("CreateCluster", "the response has no cluster"))
}

/// The names of a cluster's Fargate profiles, every page: what a copy of it does not bring.
pub async fn fargate_profiles(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
) -> Result<Vec<String>, EksError> {
    let mut pages = eks
        .list_fargate_profiles()
        .cluster_name(cluster)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| eks_error("ListFargateProfiles", e))?;
        out.extend(page.fargate_profile_names().iter().cloned());
    }
    Ok(out)
}

/// DeleteCluster. EKS refuses while node groups or Fargate profiles are attached.
pub async fn delete_cluster(eks: &aws_sdk_eks::Client, name: &str) -> Result<(), EksError> {
    eks.delete_cluster()
        .name(name)
        .send()
        .await
        .map_err(|e| eks_error("DeleteCluster", e))?;
    Ok(())
}

/// CreateNodegroup. The same request and token again returns the same group.
pub async fn create_nodegroup(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    r: &NodegroupRequest,
) -> Result<(), EksError> {
    let mut req = eks
        .create_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(&r.name)
        .node_role(&r.node_role)
        .set_subnets(Some(r.subnets.clone()))
        .set_instance_types((!r.instance_types.is_empty()).then(|| r.instance_types.clone()))
        .set_ami_type(r.ami_type.as_deref().map(AmiTypes::from))
        .set_capacity_type(r.capacity_type.as_deref().map(CapacityTypes::from))
        .set_version(r.version.map(|v| v.to_string()))
        .scaling_config(
            NodegroupScalingConfig::builder()
                .set_min_size(r.min_size)
                .set_max_size(r.max_size)
                .set_desired_size(r.desired_size)
                .build(),
        )
        .set_disk_size(r.disk_size)
        .set_labels((!r.labels.is_empty()).then(|| r.labels.clone().into_iter().collect()))
        .set_tags(Some(r.tags.clone().into_iter().collect()))
        .client_request_token(&r.client_request_token);
    for t in &r.taints {
        req = req.taints(
            Taint::builder()
                .key(&t.key)
                .set_value(t.value.clone())
                .effect(TaintEffect::from(t.effect.as_str()))
                .build(),
        );
    }
    if r.max_unavailable.is_some() || r.max_unavailable_percentage.is_some() {
        req = req.update_config(
            NodegroupUpdateConfig::builder()
                .set_max_unavailable(r.max_unavailable)
                .set_max_unavailable_percentage(r.max_unavailable_percentage)
                .build(),
        );
    }
    if let Some(lt) = &r.launch_template {
        req = req.launch_template(
            LaunchTemplateSpecification::builder()
                .set_id(lt.id.clone())
                .set_name(lt.name.clone())
                .set_version(lt.version.clone())
                .build(),
        );
    }
    if let Some(key) = &r.ssh_key {
        req = req.remote_access(
            RemoteAccessConfig::builder()
                .ec2_ssh_key(key)
                .set_source_security_groups(
                    (!r.remote_access_security_groups.is_empty())
                        .then(|| r.remote_access_security_groups.clone()),
                )
                .build(),
        );
    }
    req.send()
        .await
        .map_err(|e| eks_error("CreateNodegroup", e))?;
    Ok(())
}

/// DeleteNodegroup.
pub async fn delete_nodegroup(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    name: &str,
) -> Result<(), EksError> {
    eks.delete_nodegroup()
        .cluster_name(cluster)
        .nodegroup_name(name)
        .send()
        .await
        .map_err(|e| eks_error("DeleteNodegroup", e))?;
    Ok(())
}

/// CreateAddon. Green is new, so what the add-on would replace (the self-managed copy EKS
/// installs with a cluster) is overwritten.
pub async fn create_addon(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    r: &AddonRequest,
    token: &str,
) -> Result<(), EksError> {
    eks.create_addon()
        .cluster_name(cluster)
        .addon_name(&r.name)
        .set_addon_version(r.version.clone())
        .set_configuration_values(r.configuration_values.clone())
        .set_service_account_role_arn(r.service_account_role_arn.clone())
        .resolve_conflicts(ResolveConflicts::Overwrite)
        .client_request_token(token)
        .send()
        .await
        .map_err(|e| eks_error("CreateAddon", e))?;
    Ok(())
}

/// The version EKS installs by default of `addon` on `kubernetes`; `None` when EKS offers no
/// version of it for that Kubernetes version (or marks none default).
pub async fn default_addon_version(
    eks: &aws_sdk_eks::Client,
    addon: &str,
    kubernetes: Version,
) -> Result<Option<String>, EksError> {
    let versions = addon_versions(eks, addon, kubernetes).await?;
    Ok(versions.into_iter().find(|v| v.default).map(|v| v.version))
}

/// Every access entry of `cluster` with its associated policies.
pub async fn access_entries(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
) -> Result<Vec<(AccessEntry, Vec<AssociatedAccessPolicy>)>, EksError> {
    let mut principals = Vec::new();
    let mut pages = eks
        .list_access_entries()
        .cluster_name(cluster)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        principals.extend(
            page.map_err(|e| eks_error("ListAccessEntries", e))?
                .access_entries()
                .iter()
                .cloned(),
        );
    }
    let mut out = Vec::new();
    for principal in principals {
        let entry = eks
            .describe_access_entry()
            .cluster_name(cluster)
            .principal_arn(&principal)
            .send()
            .await
            .map_err(|e| eks_error("DescribeAccessEntry", e))?
            .access_entry
            .ok_or_else(|| {
                EksError::answer("DescribeAccessEntry", "the response has no access entry")
            })?;
        let policies = associated_policies(eks, cluster, &principal).await?;
        out.push((entry, policies));
    }
    Ok(out)
}

/// The access policies associated with one principal's entry.
pub async fn associated_policies(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<Vec<AssociatedAccessPolicy>, EksError> {
    let mut out = Vec::new();
    let mut pages = eks
        .list_associated_access_policies()
        .cluster_name(cluster)
        .principal_arn(principal)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        out.extend(
            page.map_err(|e| eks_error("ListAssociatedAccessPolicies", e))?
                .associated_access_policies()
                .iter()
                .cloned(),
        );
    }
    Ok(out)
}

/// CreateAccessEntry. `Ok(false)` when the entry already exists (a resumed run made it, or
/// EKS did for the creator): the policies are still associated by the caller.
pub async fn create_access_entry(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    r: &AccessEntryRequest,
) -> Result<bool, EksError> {
    let result = eks
        .create_access_entry()
        .cluster_name(cluster)
        .principal_arn(&r.principal_arn)
        .set_kubernetes_groups(
            (!r.kubernetes_groups.is_empty()).then(|| r.kubernetes_groups.clone()),
        )
        .set_username(r.username.clone())
        .set_tags((!r.tags.is_empty()).then(|| r.tags.clone().into_iter().collect()))
        .r#type("STANDARD")
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(eks_error("CreateAccessEntry", e)),
    }
}

/// AssociateAccessPolicy. Associating the same policy again replaces its scope, so a retry is
/// harmless.
pub async fn associate_access_policy(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
    p: &PolicyAssociation,
) -> Result<(), EksError> {
    let scope = AccessScope::builder()
        .r#type(AccessScopeType::from(p.scope.as_str()))
        .set_namespaces((!p.namespaces.is_empty()).then(|| p.namespaces.clone()))
        .build();
    eks.associate_access_policy()
        .cluster_name(cluster)
        .principal_arn(principal)
        .policy_arn(&p.policy_arn)
        .access_scope(scope)
        .send()
        .await
        .map_err(|e| eks_error("AssociateAccessPolicy", e))?;
    Ok(())
}
