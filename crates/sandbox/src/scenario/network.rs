//! The cluster's VPC subnets: which ones EKS reports for the control plane
//! (`resourcesVpcConfig.subnetIds`) and for each managed node group, and how many free IPv4
//! addresses EC2 `DescribeSubnets` reports for each. A scenario names them in `spec.subnets`;
//! without that, the cluster gets three roomy subnets in three zones.

use serde::Deserialize;

use eks_upgrade_core::format::Problem;

use super::Scenario;
use crate::sim::names::hash;

/// Free addresses a subnet has when the scenario does not say: a /19 with room to spare.
pub const DEFAULT_FREE_IPS: u32 = 8000;

/// One subnet as a scenario writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubnetSpec {
    /// `subnet-` and 8 or 17 hexadecimal digits, as EC2 writes them.
    pub id: String,
    /// Default: the region and a zone letter by position (`us-east-1a`, `us-east-1b`, …).
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// Default: `10.0.N.0/19` by position.
    #[serde(default)]
    pub cidr_block: Option<String>,
    /// `availableIpAddressCount`. Default: 8000.
    #[serde(default = "default_free_ips")]
    pub free_ips: u32,
    /// Whether the subnet is one of the cluster's (`resourcesVpcConfig.subnetIds`). Default:
    /// true. A subnet only node groups use sets it false.
    #[serde(default = "yes")]
    pub cluster: bool,
}

fn default_free_ips() -> u32 {
    DEFAULT_FREE_IPS
}

fn yes() -> bool {
    true
}

/// A subnet with every attribute resolved, as the EKS and EC2 emulators describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub availability_zone_id: String,
    pub cidr_block: String,
    pub free_ips: u32,
    pub cluster: bool,
}

const ZONES: &[u8] = b"abcdef";

/// EC2's zone id for a zone name: `us-east-1a` → `use1-az1`. The real mapping differs per
/// account; a stable one is all a client can rely on anyway.
fn zone_id(zone: &str) -> String {
    let letter = zone.chars().last();
    let region = &zone[..zone.len() - letter.map_or(0, char::len_utf8)];
    let mut parts = region.split('-');
    let mut short = parts.next().unwrap_or("").to_string();
    for part in parts {
        let abbrev = match part {
            "northeast" => "ne",
            "southeast" => "se",
            "northwest" => "nw",
            "southwest" => "sw",
            "central" => "c",
            "north" => "n",
            "south" => "s",
            "east" => "e",
            "west" => "w",
            other => other,
        };
        short.push_str(abbrev);
    }
    let n = letter
        .and_then(|c| ZONES.iter().position(|z| char::from(*z) == c))
        .map_or(1, |i| i + 1);
    format!("{short}-az{n}")
}

/// Whether `id` has EC2's shape for a subnet id.
pub fn is_subnet_id(id: &str) -> bool {
    id.strip_prefix("subnet-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

impl Scenario {
    /// The VPC id EKS and EC2 report for the cluster.
    pub fn vpc_id(&self) -> String {
        if let Some(vpc) = &self.spec.vpc_override {
            return vpc.clone();
        }
        format!(
            "vpc-0{:016x}",
            hash(&format!("vpc/{}", self.spec.cluster.name))
        )
    }

    /// Every subnet of the scenario, in the order written (or the three defaults).
    pub fn subnets(&self) -> Vec<Subnet> {
        let region = &self.spec.cluster.region;
        let written: Vec<SubnetSpec> = if self.spec.subnets.is_empty() {
            (0..3)
                .map(|i| SubnetSpec {
                    id: format!(
                        "subnet-0{:016x}",
                        hash(&format!("subnet/{}/{i}", self.spec.cluster.name))
                    ),
                    availability_zone: None,
                    cidr_block: None,
                    free_ips: DEFAULT_FREE_IPS,
                    cluster: true,
                })
                .collect()
        } else {
            self.spec.subnets.clone()
        };
        written
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let zone = s
                    .availability_zone
                    .unwrap_or_else(|| format!("{region}{}", ZONES[i % ZONES.len()] as char));
                Subnet {
                    vpc_id: self.vpc_id(),
                    availability_zone_id: zone_id(&zone),
                    availability_zone: zone,
                    cidr_block: s
                        .cidr_block
                        .unwrap_or_else(|| format!("10.0.{}.0/19", (i % 8) * 32)),
                    free_ips: s.free_ips,
                    cluster: s.cluster,
                    id: s.id,
                }
            })
            .collect()
    }

    /// The control plane's subnets (`resourcesVpcConfig.subnetIds`).
    pub fn cluster_subnet_ids(&self) -> Vec<String> {
        self.subnets()
            .into_iter()
            .filter(|s| s.cluster)
            .map(|s| s.id)
            .collect()
    }

    /// A managed node group's subnets: its own list, else the cluster's.
    pub fn nodegroup_subnet_ids(&self, nodegroup: &str) -> Vec<String> {
        self.spec
            .nodegroups
            .iter()
            .find(|n| n.name == nodegroup)
            .and_then(|n| n.subnets.clone())
            .unwrap_or_else(|| self.cluster_subnet_ids())
    }

    /// Rules for `spec.subnets` and the node groups' `subnets`.
    pub(super) fn check_network(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let region = &self.spec.cluster.region;
        let mut seen: Vec<&str> = Vec::new();
        for s in &self.spec.subnets {
            if !is_subnet_id(&s.id) {
                problems.push(
                    Problem::new(format!("`{}` in `spec.subnets` is not a subnet id", s.id))
                        .help("EC2 subnet ids are `subnet-` and 8 or 17 hexadecimal digits"),
                );
            }
            if seen.contains(&s.id.as_str()) {
                problems.push(Problem::new(format!(
                    "subnet `{}` is listed twice in `spec.subnets`",
                    s.id
                )));
            }
            seen.push(&s.id);
            if let Some(zone) = &s.availability_zone
                && !(zone.len() == region.len() + 1 && zone.starts_with(region.as_str()))
            {
                problems.push(Problem::new(format!(
                    "subnet `{}` is in zone `{zone}`, which is not a zone of {region}",
                    s.id
                )));
            }
        }
        if !self.spec.subnets.is_empty() && !self.spec.subnets.iter().any(|s| s.cluster) {
            problems.push(
                Problem::new("no subnet in `spec.subnets` is the cluster's")
                    .help("EKS clusters have at least two subnets; leave `cluster` at its default"),
            );
        }
        let known: Vec<String> = self.subnets().into_iter().map(|s| s.id).collect();
        for ng in &self.spec.nodegroups {
            for id in ng.subnets.iter().flatten() {
                if !known.contains(id) {
                    problems.push(
                        Problem::new(format!(
                            "node group `{}` uses subnet `{id}`, which is not in `spec.subnets`",
                            ng.name
                        ))
                        .help("list every subnet in `spec.subnets`"),
                    );
                }
            }
            if let Some(p) = ng.max_unavailable_percentage
                && !(1..=100).contains(&p)
            {
                problems.push(Problem::new(format!(
                    "node group `{}` has `maxUnavailablePercentage: {p}`; EKS takes 1 to 100",
                    ng.name
                )));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_follow_ec2s_shape() {
        assert_eq!(zone_id("us-east-1a"), "use1-az1");
        assert_eq!(zone_id("ap-southeast-2c"), "apse2-az3");
        assert_eq!(zone_id("eu-central-1b"), "euc1-az2");
    }

    #[test]
    fn subnet_ids_are_checked() {
        assert!(is_subnet_id("subnet-0123456789abcdef0"));
        assert!(is_subnet_id("subnet-12345678"));
        assert!(!is_subnet_id("subnet-xyz"));
        assert!(!is_subnet_id("sg-12345678"));
    }
}
