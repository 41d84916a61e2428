//! The Kubernetes and Argo manifests: accepted by the real `kubectl apply` against the sandbox's
//! API server, free of fields the Kubernetes types do not know, and consistent with the
//! workflow they run (it validates, and every scheduled start falls inside its window).

use std::process::Command;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{args, cronjob_container, document, documents, flag_value};
use crate::common::{Test, TestSandbox, Timed, repo};

/// The sandbox serves Argo's WorkflowTemplate as a generic resource type, as a cluster with
/// Argo's CRDs installed would.
const SCENARIO: &str = r#"
apiVersion: eks-upgrade/v1
kind: Scenario
metadata: { name: deploy-manifests }
spec:
  cluster: { name: demo, region: us-east-1, version: "1.33" }
  nodegroups:
    - { name: general, nodes: 1 }
  resources:
    - { group: argoproj.io, version: v1alpha1, kind: WorkflowTemplate, plural: workflowtemplates }
"#;

/// `kubectl ARGS` against the sandbox, with a private discovery cache; panics unless it exits 0.
fn kubectl(sb: &TestSandbox, cache: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg(format!("--cache-dir={}", cache.display()))
        .args(args)
        .envs(sb.env())
        .output_timed()
        .expect("kubectl must be installed for these tests");
    let (stdout, stderr) = (out.stdout, out.stderr);
    assert!(out.code == Some(0), "kubectl {args:?}\n{stdout}\n{stderr}");
    stdout
}

#[test]
fn kubectl_applies_the_manifests_and_reads_them_back() {
    let sb = TestSandbox::start(Some(SCENARIO));
    let cache = tempfile::tempdir().expect("cache dir");
    // The CronJob file creates the namespace the fleet template lives in.
    for file in [
        "examples/kubernetes/cronjob.yaml",
        "examples/kubernetes/clusterrole.yaml",
        "examples/argo/fleet-upgrade.yaml",
    ] {
        let path = repo().join(file);
        let out = kubectl(
            &sb,
            cache.path(),
            &["apply", "-f", path.to_str().expect("path")],
        );
        let created = out.lines().filter(|l| l.ends_with(" created")).count();
        assert_eq!(created, documents(file).len(), "{file}:\n{out}");
    }

    let get = |args: &[&str]| -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&kubectl(&sb, cache.path(), &all)).expect("kubectl JSON")
    };
    let cronjob = get(&["cronjob", "-n", "eks-upgrade", "eks-upgrade"]);
    assert_eq!(cronjob["spec"]["concurrencyPolicy"], "Forbid");
    let container = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let argv = args(container);
    assert_eq!(argv[0], "run");
    assert!(argv.iter().any(|a| a == "--yes"), "{argv:?}");
    assert_eq!(flag_value(&argv, "--log-format"), Some("json"));
    assert!(flag_value(&argv, "--state").is_some_and(|s| s.starts_with("s3://")));
    assert!(flag_value(&argv, "--report").is_some_and(|r| r.ends_with(".json")));
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );

    let account = get(&["serviceaccount", "-n", "eks-upgrade", "eks-upgrade"]);
    assert!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
            .as_str()
            .is_some_and(|a| a.starts_with("arn:aws:iam::"))
    );
    let role = get(&["clusterrole", "eks-upgrade"]);
    assert!(role["rules"].as_array().is_some_and(|r| !r.is_empty()));
    get(&["role", "-n", "velero", "eks-upgrade"]);
    get(&["rolebinding", "-n", "kube-system", "eks-upgrade"]);

    let fleet = get(&["workflowtemplate", "-n", "eks-upgrade", "eks-upgrade-fleet"]);
    let templates = fleet["spec"]["templates"].as_array().expect("templates");
    let named = |n: &str| templates.iter().find(|t| t["name"] == n).expect(n).clone();
    let top = named("fleet");
    assert_eq!(top["failFast"], true);
    assert!(top["parallelism"].as_i64().is_some_and(|p| p >= 1));
    assert!(top["steps"][0][0]["withParam"].is_string());
    let upgrade = named("eks-upgrade");
    let retry = upgrade["retryStrategy"]["expression"]
        .as_str()
        .expect("expression");
    assert!(retry.contains("130"), "{retry}");
    assert!(
        !["== 3", "== 4", "== 5"].iter().any(|c| retry.contains(c)),
        "{retry}"
    );
    let judge = &named("one-cluster")["steps"][1][0]["when"];
    assert!(judge.as_str().is_some_and(|w| w.contains("'3'")), "{judge}");
}

/// Deserializes into the Kubernetes type and back: a field the type does not know (a typo, a
/// wrong level of nesting) is dropped on the way and shows up as a difference.
fn known_fields_only<T: DeserializeOwned + Serialize>(doc: &Value) {
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{}: {e}", doc["metadata"]["name"]));
    let back = serde_json::to_value(&typed).expect("serialize");
    let mut differences = Vec::new();
    diff("", &back, doc, &mut differences);
    assert!(
        differences.is_empty(),
        "{} {}: fields the Kubernetes type does not know or reads otherwise: {differences:#?}",
        doc["kind"],
        doc["metadata"]["name"]
    );
}

/// The JSON pointers at which two values differ.
fn diff(at: &str, read: &Value, written: &Value, out: &mut Vec<String>) {
    match (read, written) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let (x, y) = (
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                );
                diff(&format!("{at}/{k}"), x, y, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{at}/{i}"), x, y, out);
            }
        }
        (a, b) if a != b => out.push(format!("{at}: read {a}, written {b}")),
        _ => {}
    }
}

#[test]
fn every_builtin_object_uses_only_fields_kubernetes_knows() {
    use k8s_openapi::api::{batch::v1::CronJob, core::v1, rbac::v1 as rbac};
    let mut checked = 0;
    for file in [
        "examples/kubernetes/cronjob.yaml",
        "examples/kubernetes/clusterrole.yaml",
        "examples/argo/fleet-upgrade.yaml",
    ] {
        for doc in documents(file) {
            match doc["kind"].as_str().unwrap_or("") {
                "Namespace" => known_fields_only::<v1::Namespace>(&doc),
                "ServiceAccount" => known_fields_only::<v1::ServiceAccount>(&doc),
                "ConfigMap" => known_fields_only::<v1::ConfigMap>(&doc),
                "CronJob" => known_fields_only::<CronJob>(&doc),
                "ClusterRole" => known_fields_only::<rbac::ClusterRole>(&doc),
                "ClusterRoleBinding" => known_fields_only::<rbac::ClusterRoleBinding>(&doc),
                "Role" => known_fields_only::<rbac::Role>(&doc),
                "RoleBinding" => known_fields_only::<rbac::RoleBinding>(&doc),
                // Argo's own schema is not available offline; kubectl apply above is its check.
                "WorkflowTemplate" => continue,
                other => panic!("{file}: add a type check for {other}"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked}");
}

/// The workflow the CronJob runs: the ConfigMap key mounted at the path in its arguments.
fn configmap_workflow() -> String {
    let cm = document("examples/kubernetes/cronjob.yaml", "ConfigMap");
    let container = cronjob_container();
    let mount = container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["name"] == "workflow")
        .expect("the workflow mount");
    let (key, text) = cm["data"]
        .as_object()
        .and_then(|d| d.iter().next())
        .expect("one workflow in the ConfigMap");
    let path = format!("{}/{key}", mount["mountPath"].as_str().expect("mountPath"));
    assert_eq!(
        args(&container)[1],
        path,
        "the CronJob runs the mounted workflow"
    );
    text.as_str().expect("text").to_string()
}

#[test]
fn the_configmap_workflow_passes_validate() {
    Test::new()
        .file("in-place.yaml", configmap_workflow())
        .args(["validate", "in-place.yaml"])
        .run()
        .no_panic()
        .code(0);
}

/// The values a cron field allows: `*`, `N`, `A-B` and lists of them.
fn cron_field(field: &str, all: std::ops::RangeInclusive<u32>) -> Vec<u32> {
    if field == "*" {
        return all.collect();
    }
    field
        .split(',')
        .flat_map(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b): (u32, u32) = (a.parse().expect("a number"), b.parse().expect("a number"));
            a..=b
        })
        .collect()
}

#[test]
fn every_scheduled_start_falls_inside_the_window_with_time_for_a_hop() {
    let cronjob = document("examples/kubernetes/cronjob.yaml", "CronJob");
    let schedule = cronjob["spec"]["schedule"].as_str().expect("schedule");
    let tz: chrono_tz::Tz = cronjob["spec"]["timeZone"]
        .as_str()
        .expect("an explicit timeZone, not the controller's")
        .parse()
        .expect("an IANA zone");
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    assert_eq!(fields.len(), 5, "{schedule}");
    assert_eq!(
        (fields[2], fields[3]),
        ("*", "*"),
        "extend this test for day/month fields"
    );
    let minutes = cron_field(fields[0], 0..=59);
    let hours = cron_field(fields[1], 0..=23);
    // Cron counts Sunday as 0 (and 7).
    let days: Vec<u32> = cron_field(fields[4], 0..=6).iter().map(|d| d % 7).collect();

    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("in-place.yaml");
    std::fs::write(&path, configmap_workflow()).expect("write");
    let workflow = eks_upgrade_core::workflow::load(&path).expect("the workflow loads");
    let window = workflow.window.expect("scheduled workflows have a window");
    let deadline = cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .expect("activeDeadlineSeconds");

    // Two months of starts, across a DST change in zones that have one.
    let mut starts = 0;
    let first = NaiveDate::from_ymd_opt(2026, 3, 1).expect("date");
    for date in first.iter_days().take(61) {
        if !days.contains(&date.weekday().num_days_from_sunday()) {
            continue;
        }
        for (&h, &m) in hours
            .iter()
            .flat_map(|h| minutes.iter().map(move |m| (h, m)))
        {
            let Some(local) = date.and_hms_opt(h, m, 0) else {
                continue;
            };
            let Some(at) = tz.from_local_datetime(&local).earliest() else {
                continue;
            };
            let at = at.with_timezone(&Utc);
            starts += 1;
            let left = window
                .remaining(at)
                .unwrap_or_else(|| panic!("{at} ({schedule} {tz}) is outside the window"));
            // Backup, verification and one hop of the in-place workflow take about two hours.
            assert!(
                left >= Duration::from_secs(2 * 3600),
                "only {left:?} left at {at}"
            );
            // The Job's deadline must not end the run while the window still allows work.
            assert!(
                deadline >= left.as_secs(),
                "deadline {deadline}s < window {left:?}"
            );
        }
    }
    assert!(starts >= 8, "{starts} starts in two months");
}
