//! Free IPv4 addresses in the subnets an upgrade draws on, from EC2 `DescribeSubnets`.
//!
//! - EKS013: the control-plane upgrade places new network interfaces in the cluster's subnets
//!   and needs up to five free addresses there; a subnet with fewer fails the upgrade.
//! - EKS014: a managed node group's update launches new nodes before it drains old ones (its
//!   Auto Scaling group grows by the larger of twice its zones and its `maxUnavailable`); subnets
//!   without room for those nodes stop the rollout halfway.

use super::{Facts, Finding, Severity};
use crate::cloud::ec2::{Ec2Error, SubnetInfo};
use crate::cloud::eks::NodegroupInfo;

/// Free addresses EKS may need in the cluster's subnets for a control-plane upgrade.
pub const CONTROL_PLANE_ADDRESSES: i64 = 5;

/// Addresses one new node takes, roughly: its primary address and the secondary addresses of
/// the warm network interface the VPC CNI attaches by default (ten on an ENI of an `m5.large`).
/// The real figure depends on the instance type and the CNI's warm-pool settings, so the
/// check that uses it only warns.
pub const ADDRESSES_PER_NODE: i64 = 10;

const IAM_HINT: &str =
    "grant `ec2:DescribeSubnets` to the identity the tool runs as (see examples/iam/policy.json)";

pub async fn check(facts: &Facts<'_>) -> Vec<Finding> {
    let cluster_ids = &facts.conn.cluster.subnet_ids;
    // The node-group check only matters when the workflow rolls the groups.
    let groups: Vec<&NodegroupInfo> = if facts.coverage.nodegroups {
        facts.nodegroups.iter().collect()
    } else {
        Vec::new()
    };
    let mut ids: Vec<String> = cluster_ids.clone();
    for g in &groups {
        ids.extend(g.subnets.iter().cloned());
    }
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Vec::new();
    }
    match crate::cloud::ec2::subnets(&facts.conn.ec2, &ids).await {
        Ok(subnets) => evaluate(&facts.conn.cluster.name, cluster_ids, &groups, &subnets),
        Err(e) => vec![unreadable(&facts.conn.cluster.name, &e)],
    }
}

fn unreadable(cluster: &str, e: &Ec2Error) -> Finding {
    Finding::new(
        "EKS013",
        Severity::Warning,
        format!("cluster {cluster}"),
        format!(
            "cannot read the cluster's subnets, so their free IP addresses are not known: {}",
            e.message
        ),
        IAM_HINT,
    )
}

/// The findings for subnets EC2 described. Pure, so the rules are tested without a network.
pub fn evaluate(
    cluster: &str,
    cluster_ids: &[String],
    groups: &[&NodegroupInfo],
    subnets: &[SubnetInfo],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let find = |id: &str| subnets.iter().find(|s| s.id == id);
    for id in cluster_ids {
        match find(id) {
            None => out.push(
                Finding::new(
                    "EKS013",
                    Severity::Error,
                    format!("Subnet {id}"),
                    format!(
                        "cluster `{cluster}` names subnet `{id}`, which EC2 does not report: EKS fails the upgrade when a cluster subnet is gone"
                    ),
                    "restore the subnet, or replace it in the cluster's subnets with `aws eks update-cluster-config --resources-vpc-config subnetIds=…`",
                )
                .at(None, id),
            ),
            Some(s) if s.free_ips < CONTROL_PLANE_ADDRESSES => out.push(
                Finding::new(
                    "EKS013",
                    Severity::Error,
                    format!("Subnet {id}"),
                    format!(
                        "subnet `{id}` ({}) has {} free IP address{}; EKS needs up to {CONTROL_PLANE_ADDRESSES} free in each cluster subnet to upgrade the control plane",
                        s.availability_zone,
                        s.free_ips,
                        if s.free_ips == 1 { "" } else { "es" }
                    ),
                    format!(
                        "free addresses in `{id}` (delete unused network interfaces, or move pods and load balancers elsewhere), or give the cluster roomier subnets with `aws eks update-cluster-config --resources-vpc-config subnetIds=…`"
                    ),
                )
                .at(None, id),
            ),
            Some(_) => {}
        }
    }
    for g in groups {
        if let Some(f) = surge_finding(g, subnets) {
            out.push(f);
        }
    }
    out
}

/// How many nodes a group's update adds before it removes any: the larger of twice its
/// zones and what `updateConfig` lets go at once.
pub fn surge(group: &NodegroupInfo, zones: usize) -> i64 {
    let unavailable = match (group.max_unavailable_percentage, group.max_unavailable) {
        (Some(p), _) => (i64::from(group.desired_size) * i64::from(p) + 99) / 100,
        (None, Some(n)) => i64::from(n),
        (None, None) => 1,
    };
    (2 * zones as i64).max(unavailable).max(1)
}

fn surge_finding(group: &NodegroupInfo, subnets: &[SubnetInfo]) -> Option<Finding> {
    let own: Vec<&SubnetInfo> = subnets
        .iter()
        .filter(|s| group.subnets.contains(&s.id))
        .collect();
    if own.is_empty() {
        return None;
    }
    let mut zones: Vec<&str> = own.iter().map(|s| s.availability_zone.as_str()).collect();
    zones.sort_unstable();
    zones.dedup();
    let surge = surge(group, zones.len());
    let needed = surge * ADDRESSES_PER_NODE;
    let free: i64 = own.iter().map(|s| s.free_ips).sum();
    if free >= needed {
        return None;
    }
    let counts: Vec<String> = own
        .iter()
        .map(|s| format!("{} {}", s.id, s.free_ips))
        .collect();
    let setting = match (group.max_unavailable_percentage, group.max_unavailable) {
        (Some(p), _) => format!("`maxUnavailablePercentage: {p}`"),
        (None, Some(n)) => format!("`maxUnavailable: {n}`"),
        (None, None) => "the default `maxUnavailable: 1`".to_string(),
    };
    Some(
        Finding::new(
            "EKS014",
            Severity::Warning,
            format!("Nodegroup {}", group.name),
            format!(
                "node group `{}` adds up to {surge} nodes during its update ({} zones, {setting}), about {needed} IP addresses at {ADDRESSES_PER_NODE} a node, but its subnets have {free} free ({})",
                group.name,
                zones.len(),
                counts.join(", ")
            ),
            "free addresses in the group's subnets, or move the workloads to a node group in roomier subnets before upgrading; new nodes that get no address stop the rollout halfway",
        )
        .at(None, &group.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(subnets: &[&str], max: Option<i32>, pct: Option<i32>, desired: i32) -> NodegroupInfo {
        NodegroupInfo {
            name: "general".into(),
            version: None,
            release_version: None,
            status: "ACTIVE".into(),
            desired_size: desired,
            ami_type: None,
            health_issues: Vec::new(),
            subnets: subnets.iter().map(|s| s.to_string()).collect(),
            max_unavailable: max,
            max_unavailable_percentage: pct,
        }
    }

    fn subnet(id: &str, zone: &str, free: i64) -> SubnetInfo {
        SubnetInfo {
            id: id.into(),
            availability_zone: zone.into(),
            free_ips: free,
        }
    }

    #[test]
    fn a_cluster_subnet_under_five_free_addresses_is_an_error() {
        let subnets = [
            subnet("subnet-a", "us-east-1a", 3),
            subnet("subnet-b", "us-east-1b", 5),
        ];
        let ids = ["subnet-a".to_string(), "subnet-b".into(), "subnet-c".into()];
        let found = evaluate("demo", &ids, &[], &subnets);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].object, "Subnet subnet-a");
        assert_eq!(found[0].severity, Severity::Error);
        assert!(found[0].message.contains("has 3 free IP addresses"));
        assert!(found[1].message.contains("EC2 does not report"));
    }

    #[test]
    fn surge_follows_zones_and_the_update_config() {
        assert_eq!(surge(&group(&[], Some(1), None, 3), 3), 6);
        assert_eq!(surge(&group(&[], Some(10), None, 30), 2), 10);
        assert_eq!(surge(&group(&[], None, Some(50), 30), 1), 15);
    }

    #[test]
    fn a_node_group_without_room_for_its_surge_is_a_warning() {
        let subnets = [
            subnet("subnet-a", "us-east-1a", 12),
            subnet("subnet-b", "us-east-1b", 8),
        ];
        let g = group(&["subnet-a", "subnet-b"], Some(1), None, 3);
        let found = evaluate("demo", &[], &[&g], &subnets);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].code, "EKS014");
        assert_eq!(found[0].severity, Severity::Warning);
        assert!(
            found[0].message.contains("up to 4 nodes"),
            "{}",
            found[0].message
        );
        assert!(found[0].message.contains("subnet-a 12, subnet-b 8"));
        let roomy = [
            subnet("subnet-a", "us-east-1a", 400),
            subnet("subnet-b", "us-east-1b", 8),
        ];
        assert!(evaluate("demo", &[], &[&g], &roomy).is_empty());
    }
}
