//! The pre-flight catalog end to end: `eks-upgrade check` against sandbox scenarios made to
//! trigger each check, and against the healthy one, where it must stay quiet.

use serde_json::{Value, json};

use crate::common::Timed;
use crate::e2e::External;
use eks_upgrade_sandbox::sim::bulk::helm_release_secret;

const FLOWSCHEMA_V1BETA3: &str = "flowcontrol.apiserver.k8s.io/v1beta3";

/// One manifest document with a FlowSchema in the API 1.32 removes.
fn flowschema_manifest(name: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-settings\n---\napiVersion: {FLOWSCHEMA_V1BETA3}\nkind: FlowSchema\nmetadata:\n  name: {name}\nspec:\n  matchingPrecedence: 500\n"
    )
}

/// A 1.31 cluster with one reason for every check to fire on the way to 1.32.
fn problems_scenario() -> String {
    let applied = json!({"apiVersion": FLOWSCHEMA_V1BETA3, "kind": "FlowSchema", "metadata": {"name": "tenant-a"}}).to_string();
    let objects = [
        // API002: applied with kubectl from a v1beta3 manifest.
        json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
               "metadata": {"name": "tenant-a", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied}},
               "spec": {}}),
        // API003: revision 1 (superseded) and 2 (deployed) use the removed API, with
        // different object names so the test can tell which revision was read.
        helm_release_secret(
            "shop",
            "web",
            1,
            "superseded",
            &flowschema_manifest("old-flow"),
        ),
        helm_release_secret(
            "shop",
            "web",
            2,
            "deployed",
            &flowschema_manifest("web-flow"),
        ),
        // A release whose deployed revision moved off the removed API.
        helm_release_secret(
            "shop",
            "api",
            1,
            "superseded",
            &flowschema_manifest("api-flow"),
        ),
        helm_release_secret(
            "shop",
            "api",
            2,
            "deployed",
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api\n",
        ),
        // EKS008: a self-managed kube-proxy four minors behind.
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
               "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
               "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                        "template": {"metadata": {"labels": {"k8s-app": "kube-proxy"}},
                                     "spec": {"containers": [{"name": "kube-proxy", "image": "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy:v1.27.16-eksbuild.2"}]}}}}),
    ];
    let objects: Vec<String> = objects.iter().map(|o| format!("    - {o}")).collect();
    format!(
        r#"apiVersion: eks-upgrade/v1
kind: Scenario
metadata: {{ name: preflight-problems }}
spec:
  speed: 600
  cluster:
    name: demo
    region: us-east-1
    version: "1.31"
    healthIssues:
      - {{ code: Ec2SubnetNotFound, message: One or more subnets were deleted, resourceIds: [subnet-0abc] }}
  nodegroups:
    - {{ name: general, nodes: 2 }}
    - {{ name: old, nodes: 1, version: "1.30", amiType: AL2_x86_64 }}
  selfManagedNodes:
    - {{ name: legacy-asg, version: "1.28", nodes: 2 }}
  addons:
    - {{ name: legacy-agent, version: v1.0.0-eksbuild.1 }}
  addonCatalog:
    - name: legacy-agent
      versions:
        - {{ version: v1.0.0-eksbuild.1, compatible: ["1.30", "1.31"], defaultFor: ["1.30", "1.31"] }}
  workloads:
    - {{ kind: Deployment, namespace: shop, name: cart, replicas: 1 }}
    - {{ kind: StatefulSet, namespace: shop, name: db, replicas: 2, pdbMinAvailable: 2 }}
    - {{ kind: Deployment, namespace: shop, name: web, replicas: 2, pdbMinAvailable: 1 }}
  resources:
    - {{ group: flowcontrol.apiserver.k8s.io, version: v1, kind: FlowSchema, plural: flowschemas, namespaced: false }}
  objects:
{}
  deprecatedApiRequests:
    - {{ group: flowcontrol.apiserver.k8s.io, version: v1beta3, resource: flowschemas, removedRelease: "1.32" }}
  insights:
    - {{ name: Cluster health issues, kubernetesVersion: "1.32", status: WARNING, reason: One subnet has fewer than 5 free IP addresses }}
    - {{ name: Amazon EKS add-on misconfigured, category: MISCONFIGURATION, kubernetesVersion: "1.31", status: ERROR, reason: The add-on's IAM role cannot be assumed }}
  velero: {{ unavailable: true }}
"#,
        objects.join("\n")
    )
}

/// Runs `check --output json` and returns (exit code, report).
pub(crate) fn check(sb: &External, workflow: &str, target: &str) -> (Option<i32>, Value, String) {
    let out = sb
        .eks_upgrade(&[
            "check",
            workflow,
            "--cluster",
            "demo",
            "--target",
            target,
            "--output",
            "json",
        ])
        .run();
    let report = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("check prints JSON ({e}):\n{}\n{}", out.stdout, out.stderr));
    (out.code, report, out.stderr)
}

pub(crate) fn findings<'a>(report: &'a Value, code: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .map(|f| f.iter().filter(|x| x["code"] == code).collect())
        .unwrap_or_default()
}

fn objects(report: &Value, code: &str) -> Vec<String> {
    findings(report, code)
        .iter()
        .map(|f| f["object"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn the_healthy_cluster_has_no_findings() {
    let sb = External::from_example("healthy.yaml");
    let (code, report, stderr) = check(&sb, "workflows/in-place.yaml", "1.34");
    assert_eq!(report["findings"], json!([]), "{stderr}");
    assert_eq!(code, Some(0));
    assert_eq!(report["hops"], json!(["1.34"]));
}

#[test]
fn every_check_fires_on_the_scenario_made_to_trigger_it() {
    let sb = External::start(&problems_scenario());
    let (code, report, stderr) = check(&sb, "workflows/check-only.yaml", "1.32");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("would stop the run"), "{stderr}");

    assert_eq!(objects(&report, "EKS003"), ["Nodegroup old"]);
    let kubelets = findings(&report, "EKS007");
    assert_eq!(kubelets.len(), 1, "{kubelets:?}");
    assert_eq!(kubelets[0]["object"], "self-managed nodes in `legacy-asg`");
    assert!(
        kubelets[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("kubelet 1.28 on 2 nodes")
    );
    assert_eq!(
        objects(&report, "EKS008"),
        ["DaemonSet kube-system/kube-proxy"]
    );
    let addons = findings(&report, "EKS009");
    assert!(
        addons.iter().any(|f| f["severity"] == "error"
            && f["message"]
                .as_str()
                .unwrap_or("")
                .contains("no version of this add-on for Kubernetes 1.32")),
        "{addons:?}"
    );
    // The insight from the scenario, and the one EKS derives from the deprecated requests.
    let insights = findings(&report, "EKS010");
    assert!(insights.iter().any(|f| {
        f["severity"] == "warning"
            && f["object"]
                .as_str()
                .unwrap_or("")
                .contains("Cluster health issues")
    }));
    assert!(insights.iter().any(|f| {
        f["severity"] == "error"
            && f["object"]
                .as_str()
                .unwrap_or("")
                .contains("Deprecated APIs removed in Kubernetes v1.32")
    }));
    assert!(
        insights.iter().any(|f| f["severity"] == "error"
            && f["object"].as_str().unwrap_or("").contains("misconfigured")),
        "{insights:?}"
    );
    let health = findings(&report, "EKS011");
    assert_eq!(health.len(), 1, "{health:?}");
    assert!(
        health[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Ec2SubnetNotFound")
    );
    let al2 = findings(&report, "EKS012");
    assert_eq!(al2.len(), 1, "{al2:?}");
    assert_eq!(
        (al2[0]["object"].as_str(), al2[0]["severity"].as_str()),
        (Some("Nodegroup old"), Some("warning"))
    );
    assert_eq!(objects(&report, "K8S001"), ["PodDisruptionBudget shop/db"]);
    assert_eq!(objects(&report, "K8S002"), ["Deployment shop/cart"]);
    assert_eq!(objects(&report, "VEL002").len(), 1);

    // Removed APIs, one finding per source, each naming the API, the release that removes it
    // and the replacement.
    let metric = findings(&report, "API001");
    assert_eq!(metric.len(), 1, "{metric:?}");
    assert_eq!(metric[0]["source"], "metric");
    assert_eq!(
        metric[0]["object"],
        "API flowcontrol.apiserver.k8s.io/v1beta3 flowschemas"
    );
    let annotation = findings(&report, "API002");
    assert_eq!(annotation.len(), 1, "{annotation:?}");
    assert_eq!(annotation[0]["object"], "FlowSchema tenant-a");
    assert_eq!(annotation[0]["source"], "annotation");
    let helm = findings(&report, "API003");
    assert_eq!(
        helm.len(),
        1,
        "only the deployed revision of `web` counts: {helm:?}"
    );
    assert_eq!(helm[0]["object"], "FlowSchema shop/web-flow");
    assert_eq!(helm[0]["source"], "helm:shop/web@2");
    for f in metric.iter().chain(&annotation).chain(&helm) {
        let message = f["message"].as_str().unwrap_or("");
        assert!(
            message.contains(FLOWSCHEMA_V1BETA3) && message.contains("1.32"),
            "{message}"
        );
        assert!(
            f["remedy"]
                .as_str()
                .unwrap_or("")
                .contains("flowcontrol.apiserver.k8s.io/v1`"),
            "{f}"
        );
    }
}

#[test]
fn the_checks_for_a_hop_to_1_35_fire() {
    let sb = External::start(
        r#"apiVersion: eks-upgrade/v1
kind: Scenario
metadata: { name: to-1-35 }
spec:
  cluster: { name: demo, region: us-east-1, version: "1.34" }
  nodegroups:
    - { name: general, nodes: 2 }
    - { name: legacy, nodes: 1, amiType: AL2_x86_64 }
  addons:
    - { name: kube-proxy, version: v1.34.3-eksbuild.2, configurationValues: '{"mode":"ipvs"}' }
  workloads:
    - { kind: Deployment, namespace: ingress-nginx, name: controller, replicas: 2, image: "registry.k8s.io/ingress-nginx/controller:v1.12.1", pdbMinAvailable: 1 }
"#,
    );
    let (code, report, stderr) = check(&sb, "workflows/check-only.yaml", "1.35");
    assert_eq!(code, Some(3), "{stderr}");
    let al2 = findings(&report, "EKS012");
    assert_eq!(al2.len(), 1, "{report}");
    assert_eq!(al2[0]["severity"], "error");
    assert_eq!(al2[0]["object"], "Nodegroup legacy");
    let ipvs = findings(&report, "K8S003");
    assert_eq!(ipvs.len(), 1, "{report}");
    assert_eq!(ipvs[0]["severity"], "warning");
    assert!(
        ipvs[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("configurationValues")
    );
    assert_eq!(
        objects(&report, "K8S004"),
        ["Deployment ingress-nginx/controller"]
    );
    // None of them fire on the way to 1.34.
    let sb = External::from_example("healthy.yaml");
    let (_, quiet, _) = check(&sb, "workflows/check-only.yaml", "1.34");
    for code in ["EKS011", "EKS012", "K8S003", "K8S004"] {
        assert!(findings(&quiet, code).is_empty(), "{code}: {quiet}");
    }
}

#[test]
fn ignores_and_overrides_in_the_workflow_apply() {
    let sb = External::start(&problems_scenario());
    let wf = sb.dir.path().join("exceptions.yaml");
    std::fs::write(
        &wf,
        r#"apiVersion: eks-upgrade/v1
kind: Workflow
metadata: { name: exceptions }
spec:
  target: next
  prepare:
    - id: preflight
      preflight:
        failOn: error
        ignore: [K8S002, EKS007, EKS008, EKS009, EKS010, EKS011, EKS012, EKS003, API001, API002, VEL002]
        overrides:
          - { check: API003, namespace: shop, name: web-flow, severity: warning, reason: moves to v1 in chart 2.0 }
          - { check: K8S001, severity: ignore }
"#,
    )
    .expect("write workflow");
    let (code, report, stderr) = check(&sb, wf.to_str().unwrap_or(""), "1.32");
    let all: Vec<&str> = report["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["code"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(all, ["API003"], "{stderr}");
    let helm = &report["findings"][0];
    assert_eq!(helm["severity"], "warning");
    assert_eq!(helm["overridden"], "moves to v1 in chart 2.0");
    assert_eq!(
        code,
        Some(0),
        "a warning does not reach `failOn: error`: {stderr}"
    );
}

#[test]
fn the_table_shows_each_finding_with_its_fix() {
    let sb = External::start(&problems_scenario());
    let out = sb
        .eks_upgrade(&[
            "check",
            "workflows/check-only.yaml",
            "--cluster",
            "demo",
            "--target",
            "1.32",
        ])
        .run()
        .code(3);
    assert!(
        out.stdout
            .starts_with("Pre-flight for cluster `demo` at 1.31 → 1.32"),
        "{}",
        out.stdout
    );
    let row = out
        .stdout
        .lines()
        .position(|l| l.starts_with("error    API003  FlowSchema shop/web-flow"))
        .unwrap_or_else(|| panic!("a row for the Helm finding:\n{}", out.stdout));
    let fix = out.stdout.lines().nth(row + 1).unwrap_or("");
    assert!(
        fix.trim_start()
            .starts_with("fix: migrate the manifest to `flowcontrol.apiserver.k8s.io/v1`"),
        "{fix}"
    );
    insta::assert_snapshot!("check_table", out.stdout);
    insta::assert_snapshot!("check_summary", crate::e2e::redact(&out.stderr));
}

#[test]
fn an_update_in_progress_is_found() {
    // Slow time, so the update is still running when the check looks.
    let text = std::fs::read_to_string(crate::common::repo().join("examples/sandbox/healthy.yaml"))
        .expect("healthy.yaml")
        .replace("speed: 600", "speed: 1");
    let sb = External::start(&text);
    let mut aws = std::process::Command::new("aws");
    aws.args([
        "eks",
        "update-cluster-version",
        "--name",
        "demo",
        "--kubernetes-version",
        "1.34",
    ]);
    for (k, v) in &sb.env {
        aws.env(k, v);
    }
    let started = aws.output_timed().expect("the aws CLI is installed");
    assert!(started.code == Some(0), "{}", started.stderr);
    let (code, report, stderr) = check(&sb, "workflows/check-only.yaml", "1.34");
    assert_eq!(code, Some(3), "{stderr}");
    let busy = findings(&report, "EKS002");
    assert_eq!(busy.len(), 1, "{report}");
    assert!(
        busy[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("VersionUpdate"),
        "{}",
        busy[0]
    );
}
