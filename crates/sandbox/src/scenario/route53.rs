//! Route 53 hosted zones the scenario starts with (`spec.route53`): the DNS names a blue/green
//! switch moves between clusters, as weighted record sets.

use serde::Deserialize;

use eks_upgrade_core::format::Problem;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Route53Spec {
    #[serde(default)]
    pub hosted_zones: Vec<HostedZoneSpec>,
}

/// A public hosted zone and its record sets (Route 53 adds the zone's SOA and NS itself).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostedZoneSpec {
    /// `example.com` (a trailing dot is optional, as in Route 53).
    pub name: String,
    #[serde(default)]
    pub records: Vec<RecordSpec>,
}

/// A record set: simple, or weighted with `setIdentifier` and `weight`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecordSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "default_ttl")]
    pub ttl: u64,
    #[serde(default)]
    pub values: Vec<String>,
    /// Instead of `values`: `namespace/name` of a LoadBalancer Service of the cluster; the
    /// value is its load balancer's DNS name.
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub set_identifier: Option<String>,
    #[serde(default)]
    pub weight: Option<u64>,
}

fn default_ttl() -> u64 {
    60
}

// One spelling of a fully qualified name for the sandbox and the tool.
pub use eks_upgrade_core::cloud::route53::fqdn;

/// Whether `name` is `zone` or below it.
pub fn in_zone(name: &str, zone: &str) -> bool {
    let (name, zone) = (fqdn(name), fqdn(zone));
    name == zone || name.ends_with(&format!(".{zone}"))
}

impl Route53Spec {
    /// The zones with each `service:` record given its value: the DNS name the Service's load
    /// balancer has in cluster `cluster` of `region`.
    pub fn resolved(&self, cluster: &str, region: &str) -> Route53Spec {
        let mut spec = self.clone();
        for r in spec.hosted_zones.iter_mut().flat_map(|z| &mut z.records) {
            if let Some((ns, name)) = r.service.as_deref().and_then(|s| s.split_once('/')) {
                r.values = vec![crate::sim::services::lb_hostname(cluster, region, ns, name)];
            }
        }
        spec
    }

    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (i, z) in self.hosted_zones.iter().enumerate() {
            if self.hosted_zones[..i]
                .iter()
                .any(|o| fqdn(&o.name) == fqdn(&z.name))
            {
                problems.push(Problem::new(format!(
                    "hosted zone `{}` is listed twice in `route53.hostedZones`",
                    z.name
                )));
            }
            for r in &z.records {
                let what = format!("record `{} {}` of zone `{}`", r.kind, r.name, z.name);
                if !in_zone(&r.name, &z.name) {
                    problems.push(Problem::new(format!("{what} is not in the zone")));
                }
                if r.set_identifier.is_some() != r.weight.is_some() {
                    problems.push(
                        Problem::new(format!("{what} has one of `setIdentifier` and `weight`"))
                            .help("a weighted record has both; a simple record neither"),
                    );
                }
                if r.weight.is_some_and(|w| w > 255) {
                    problems.push(Problem::new(format!(
                        "{what} has a weight above 255, Route 53's largest"
                    )));
                }
                if r.values.is_empty() == r.service.is_none() {
                    problems.push(
                        Problem::new(format!("{what} needs one of `values` and `service`"))
                            .help("`service: namespace/name` points the record at a LoadBalancer Service's DNS name"),
                    );
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kept_fully_qualified_and_zones_hold_their_subdomains() {
        assert_eq!(fqdn("App.Example.com"), "app.example.com.");
        assert_eq!(fqdn("example.com."), "example.com.");
        assert!(in_zone("app.example.com", "example.com."));
        assert!(in_zone("example.com", "example.com"));
        assert!(!in_zone("app.badexample.com", "example.com"));
    }
}
