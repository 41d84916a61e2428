//! `examples/kubernetes/clusterrole.yaml` against what the tool really asks of Kubernetes.
//!
//! A whole workflow runs against the sandbox: pre-flight, backup, verification, the control
//! plane, add-ons and node groups, a health check that fails, the restore, the rollback and the
//! health check after it. Every Kubernetes request it made (the sandbox's request record, with
//! watches told apart by the API server's own request metrics) must be authorized by the RBAC
//! rules, evaluated as the API server's RBAC authorizer does, and every rule must have been
//! needed by some request (a wildcard rule: some request that only it authorizes), or grant
//! `list` on a kind whose API a supported hop removes.

use std::collections::BTreeSet;

use serde_json::Value;

use super::documents;
use crate::common::Timed;
use crate::e2e::External;

/// One request, as RBAC sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Attributes {
    Resource {
        verb: String,
        group: String,
        resource: String,
        namespace: Option<String>,
        name: Option<String>,
    },
    NonResource {
        path: String,
    },
}

/// `GET /apis/velero.io/v1/namespaces/velero/backups/x` → attributes; `None` for discovery
/// (`/api`, `/apis/G/V`), which every authenticated user may read (`system:discovery`).
fn attributes(method: &str, path: &str, watched: &BTreeSet<(String, String)>) -> Vec<Attributes> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        ["api"] | ["apis"] | ["apis", _] => return Vec::new(),
        _ => {
            return vec![Attributes::NonResource {
                path: path.to_string(),
            }];
        }
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        other => (None, other),
    };
    let (resource, name) = match rest {
        [] => return Vec::new(),
        [resource] => (resource.to_string(), None),
        [resource, name, sub @ ..] => {
            let r = match sub.first() {
                Some(s) => format!("{resource}/{s}"),
                None => resource.to_string(),
            };
            (r, Some(name.to_string()))
        }
    };
    let verbs: Vec<&str> = match (method, name.is_some()) {
        ("GET", true) => vec!["get"],
        // The record does not tell a list from a watch; the metrics say which were watched.
        ("GET", false) if watched.contains(&(group.to_string(), resource.clone())) => {
            vec!["list", "watch"]
        }
        ("GET", false) => vec!["list"],
        ("POST", _) => vec!["create"],
        ("PUT", _) => vec!["update"],
        ("PATCH", _) => vec!["patch"],
        ("DELETE", true) => vec!["delete"],
        ("DELETE", false) => vec!["deletecollection"],
        (other, _) => panic!("unexpected method {other} {path}"),
    };
    verbs
        .into_iter()
        .map(|verb| Attributes::Resource {
            verb: verb.into(),
            group: group.into(),
            resource: resource.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
        })
        .collect()
}

/// A rule and where it applies: `None` everywhere (a ClusterRole), else one namespace.
struct Rule {
    scope: Option<String>,
    rule: Value,
}

fn list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn has(v: &Value, want: &str) -> bool {
    list(v).iter().any(|x| x == want || x == "*")
}

/// RBAC's rule match (k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac): groups, resources,
/// verbs, and resourceNames only for requests that name an object.
fn allows(r: &Rule, a: &Attributes) -> bool {
    match a {
        Attributes::Resource {
            verb,
            group,
            resource,
            namespace,
            name,
        } => {
            let in_scope = r.scope.is_none() || r.scope == *namespace;
            let names = list(&r.rule["resourceNames"]);
            in_scope
                && has(&r.rule["apiGroups"], group)
                && has(&r.rule["resources"], resource)
                && has(&r.rule["verbs"], verb)
                && (names.is_empty() || name.as_ref().is_some_and(|n| names.contains(n)))
        }
        Attributes::NonResource { path } => {
            r.scope.is_none()
                && has(&r.rule["verbs"], "get")
                && list(&r.rule["nonResourceURLs"])
                    .iter()
                    .any(|u| u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p)))
        }
    }
}

/// The rules of clusterrole.yaml that are bound to the tool's group.
fn rules() -> Vec<Rule> {
    let docs = documents("examples/kubernetes/clusterrole.yaml");
    let bound = |kind: &str, name: &str, ns: Option<&str>| {
        docs.iter().any(|d| {
            d["kind"].as_str().is_some_and(|k| k.ends_with("Binding"))
                && d["roleRef"]["kind"] == kind
                && d["roleRef"]["name"] == name
                && d["metadata"]["namespace"].as_str() == ns
                && d["subjects"].as_array().is_some_and(|s| {
                    s.iter()
                        .any(|x| x["kind"] == "Group" && x["name"] == "eks-upgrade")
                })
        })
    };
    let mut out = Vec::new();
    for d in &docs {
        let kind = d["kind"].as_str().unwrap_or("");
        if kind != "ClusterRole" && kind != "Role" {
            continue;
        }
        let ns = d["metadata"]["namespace"].as_str();
        let name = d["metadata"]["name"].as_str().expect("name");
        assert!(
            bound(kind, name, ns),
            "{kind} {name} is bound to the group eks-upgrade"
        );
        for rule in d["rules"].as_array().expect("rules") {
            out.push(Rule {
                scope: ns.map(str::to_string),
                rule: rule.clone(),
            });
        }
    }
    out
}

/// (group, resource) pairs that pre-flight lists to read `last-applied-configuration` for hops
/// from 1.28 on, from the table the check embeds.
fn removed_kinds() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(
        crate::common::repo().join("crates/core/src/checks/removed_apis.yaml"),
    )
    .expect("crates/core/src/checks/removed_apis.yaml");
    let rows: Vec<Value> = serde_saphyr::from_str(&text).expect("the table parses");
    let minor = |v: &str| {
        v.split('.')
            .nth(1)
            .and_then(|m| m.parse::<u32>().ok())
            .unwrap_or(0)
    };
    rows.iter()
        .filter(|r| r["removedIn"].as_str().is_some_and(|v| minor(v) >= 29))
        .filter_map(|r| {
            let replacement = r["replacement"].as_str()?;
            let group = replacement.split_once('/').map(|(g, _)| g).unwrap_or("");
            Some((group.to_string(), r["resource"].as_str()?.to_string()))
        })
        .collect()
}

/// (group, resource) pairs the API server counted a WATCH for, from its request metrics.
fn watched(sb: &External) -> BTreeSet<(String, String)> {
    let mut cmd = std::process::Command::new("kubectl");
    cmd.args(["get", "--raw", "/metrics"]);
    let cache = sb.dir.path().join("kubectl-cache");
    cmd.arg(format!("--cache-dir={}", cache.display()));
    for (k, v) in &sb.env {
        cmd.env(k, v);
    }
    let out = cmd.output_timed().expect("kubectl must be installed");
    assert!(out.code == Some(0), "{}", out.stderr);
    let label = |line: &str, key: &str| -> String {
        line.split(&format!("{key}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("")
            .to_string()
    };
    out.stdout
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{") && l.contains("verb=\"WATCH\""))
        .map(|l| (label(l, "group"), label(l, "resource")))
        .collect()
}

#[test]
fn the_rbac_rules_authorize_a_whole_run_with_recovery_and_nothing_more() {
    let sb = External::from_example("breaks-after-upgrade.yaml");
    let wf = crate::common::repo().join("workflows/in-place.yaml");
    sb.run(&wf, &[]).code(4);
    let record = sb.requests();

    // Only the tool talks to the sandbox's EKS: what it called must be what the code search
    // behind the IAM test found.
    let called: BTreeSet<String> = record
        .iter()
        .filter(|r| r["service"] == "eks")
        .filter_map(|r| r["operation"].as_str().map(str::to_string))
        .collect();
    let found: BTreeSet<String> = super::iam::code_operations()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    assert!(
        called.is_subset(&found),
        "called {called:?}, found in code {found:?}"
    );

    // The record was read before the metrics, whose request is the test's, not the tool's.
    let watched = watched(&sb);
    let requests: BTreeSet<Attributes> = record
        .iter()
        .filter(|r| r["service"] == "kubernetes")
        .filter_map(|r| r["operation"].as_str().map(str::to_string))
        .flat_map(|op| {
            let (method, path) = op.split_once(' ').expect("METHOD path");
            attributes(method, path, &watched)
        })
        .collect();
    assert!(requests.len() > 10, "{requests:?}");
    let rules = rules();
    let denied: Vec<&Attributes> = requests
        .iter()
        .filter(|a| !rules.iter().any(|r| allows(r, a)))
        .collect();
    assert!(
        denied.is_empty(),
        "clusterrole.yaml does not authorize:\n{denied:#?}"
    );

    // Least privilege: every verb on every resource a rule grants was needed by a request, or
    // is `list` on a kind pre-flight reads for the APIs a hop removes.
    let removed = removed_kinds();
    let mut unused = Vec::new();
    for r in &rules {
        for verb in list(&r.rule["verbs"]) {
            for url in list(&r.rule["nonResourceURLs"]) {
                let a = Attributes::NonResource { path: url.clone() };
                if !requests.contains(&a) {
                    unused.push(format!("{verb} {url}"));
                }
            }
            for group in list(&r.rule["apiGroups"]) {
                for resource in list(&r.rule["resources"]) {
                    let used = if group == "*" || resource == "*" {
                        // A wildcard rule is needed when it alone authorizes some request.
                        requests.iter().any(|a| {
                            matches!(a, Attributes::Resource { verb: v, .. } if *v == verb)
                                && allows(r, a)
                                && !rules.iter().any(|o| !std::ptr::eq(o, r) && allows(o, a))
                        })
                    } else {
                        requests.iter().any(|a| {
                            matches!(a, Attributes::Resource { verb: v, group: g, resource: x, .. }
                                if *v == verb && *g == group && *x == resource)
                                && allows(r, a)
                        })
                    };
                    let for_removed =
                        verb == "list" && removed.contains(&(group.clone(), resource.clone()));
                    // Read only on a hop to 1.35 or later (IPVS mode, K8S003); this run goes
                    // to 1.34.
                    let for_later_hops =
                        verb == "get" && group.is_empty() && resource == "configmaps";
                    if !used && !for_removed && !for_later_hops {
                        unused.push(format!("{verb} {group}/{resource} in {:?}", r.scope));
                    }
                }
            }
        }
    }
    assert!(
        unused.is_empty(),
        "clusterrole.yaml grants what no request needed: {unused:?}"
    );
    for (group, resource) in &removed {
        // Deployments and StatefulSets are listed by the workload check anyway.
        let a = Attributes::Resource {
            verb: "list".into(),
            group: group.clone(),
            resource: resource.clone(),
            namespace: None,
            name: None,
        };
        assert!(
            rules.iter().any(|r| allows(r, &a)),
            "pre-flight lists {group}/{resource} for removed APIs; grant `list` cluster-wide"
        );
    }
    // The tool never deletes anything in Kubernetes, least of all a Backup.
    assert!(
        !requests
            .iter()
            .any(|a| matches!(a, Attributes::Resource { verb, .. }
            if verb.starts_with("delete"))),
        "{requests:?}"
    );
}
