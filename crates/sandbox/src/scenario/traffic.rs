//! Traffic the sandbox sends (`spec.traffic`): users of a DNS name of `spec.route53`, their
//! requests spread over the clusters the name's weighted records point at. What the requests
//! meet is counted for the Prometheus stand-in (`traffic::prometheus`).

use serde::Deserialize;

use eks_upgrade_core::format::Problem;

use super::{ScenarioSpec, fqdn};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficSpec {
    /// A record of `spec.route53` (`app.example.com`).
    pub record: String,
    /// Requests per emulated second. Default: 5.
    #[serde(default = "default_rate")]
    pub rate: f64,
}

fn default_rate() -> f64 {
    5.0
}

/// `namespace/name` of a Service of type LoadBalancer among the scenario's `objects`.
pub fn load_balancer(spec: &ScenarioSpec, service: &str) -> bool {
    let Some((ns, name)) = service.split_once('/') else {
        return false;
    };
    spec.objects.iter().any(|o| {
        o.get("kind").and_then(|k| k.as_str()) == Some("Service")
            && o.pointer("/metadata/namespace").and_then(|v| v.as_str()) == Some(ns)
            && o.pointer("/metadata/name").and_then(|v| v.as_str()) == Some(name)
            && o.pointer("/spec/type").and_then(|v| v.as_str()) == Some("LoadBalancer")
    })
}

pub fn check(spec: &ScenarioSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    let records: Vec<String> = spec
        .route53
        .hosted_zones
        .iter()
        .flat_map(|z| &z.records)
        .map(|r| fqdn(&r.name))
        .collect();
    for t in &spec.traffic {
        if !records.contains(&fqdn(&t.record)) {
            problems.push(
                Problem::new(format!(
                    "`traffic` sends requests to `{}`, which is not a record of `route53.hostedZones`",
                    t.record
                ))
                .help("add the record to a hosted zone, or name one that is there"),
            );
        }
        if !(t.rate.is_finite() && t.rate > 0.0) {
            problems.push(Problem::new(format!(
                "`traffic` to `{}` needs a positive `rate` (requests per emulated second)",
                t.record
            )));
        }
    }
    for r in spec.route53.hosted_zones.iter().flat_map(|z| &z.records) {
        if let Some(service) = &r.service
            && !load_balancer(spec, service)
        {
            problems.push(
                Problem::new(format!(
                    "record `{}` points at the Service `{service}`, which is not a Service of type LoadBalancer in `objects`",
                    r.name
                ))
                .help("write `namespace/name` of a Service with `spec.type: LoadBalancer`"),
            );
        }
    }
    // A created cluster's workloads are the first one's, restored: both lists name those.
    let lists = [
        ("faults", &spec.faults.serves_errors),
        (
            "newClusters.faults",
            &spec.new_clusters.faults.serves_errors,
        ),
    ];
    for (field, list) in lists {
        for w in list {
            let known = w.split_once('/').is_some_and(|(ns, name)| {
                spec.workloads
                    .iter()
                    .any(|x| x.namespace == ns && x.name == name)
            });
            if !known {
                problems.push(Problem::new(format!(
                    "`{field}.servesErrors` names `{w}`, which is not a workload of the scenario"
                )));
            }
        }
    }
    problems
}
