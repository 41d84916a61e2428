//! Restore preview: `backup restore NAME --dry-run` against a sandbox whose cluster drifted from
//! the backup, changed with the real kubectl. What the preview predicts is then held against
//! what the restore did.

use std::process::Command;

use serde_json::Value;

use super::{BIN, External};
use crate::common::Timed;

fn kubectl(sb: &External, args: &[&str]) -> String {
    let mut cmd = Command::new("kubectl");
    cmd.args(args).arg(format!(
        "--cache-dir={}",
        sb.dir.path().join("kube-cache").display()
    ));
    for (k, v) in &sb.env {
        cmd.env(k, v);
    }
    let out = cmd.output_timed().expect("kubectl is installed");
    assert!(out.code == Some(0), "kubectl {args:?}: {}", out.stderr);
    out.stdout
}

/// Creates and verifies a backup by hand.
pub fn backup_and_verify(sb: &External, name: &str, extra: &[&str]) {
    let mut create = vec!["backup", "create", "--cluster", "demo", "--name", name];
    create.extend_from_slice(extra);
    sb.eks_upgrade(&create).run().code(0);
    sb.eks_upgrade(&["backup", "verify", name, "--cluster", "demo"])
        .run()
        .code(0);
}

/// `backup restore NAME --dry-run --output json ARGS`, parsed.
fn preview(sb: &External, name: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "backup",
        "restore",
        name,
        "--cluster",
        "demo",
        "--dry-run",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = sb.eks_upgrade(&args).run().code(0);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// The item for `kind namespace/name`.
fn item<'a>(p: &'a Value, kind: &str, namespace: Option<&str>, name: &str) -> &'a Value {
    p["items"]
        .as_array()
        .and_then(|items| {
            items.iter().find(|i| {
                i["kind"] == kind && i["name"] == name && i["namespace"].as_str() == namespace
            })
        })
        .unwrap_or_else(|| panic!("no {kind} {namespace:?}/{name} in {p}"))
}

fn restores(sb: &External) -> usize {
    sb.count(
        "kubernetes",
        "POST /apis/velero.io/v1/namespaces/velero/restores",
    )
}

#[test]
fn a_dry_run_says_what_would_be_created_updated_left_and_skipped() {
    let sb = External::from_example("healthy.yaml");
    backup_and_verify(&sb, "drift", &[]);
    kubectl(&sb, &["-n", "shop", "delete", "configmap", "web-config"]);
    kubectl(
        &sb,
        &[
            "-n",
            "shop",
            "patch",
            "secret",
            "db-credentials",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"password":"Y2hhbmdlZA=="}}"#,
        ],
    );
    kubectl(
        &sb,
        &["-n", "shop", "scale", "deployment", "web", "--replicas=5"],
    );

    let p = preview(&sb, "drift", &["--show-unchanged"]);
    assert_eq!(restores(&sb), 0, "a dry run creates no Restore");
    assert_eq!(
        item(&p, "ConfigMap", Some("shop"), "web-config")["action"],
        "create"
    );
    let web = item(&p, "Deployment", Some("shop"), "web");
    assert_eq!(web["action"], "update");
    assert_eq!(web["changes"], serde_json::json!(["spec.replicas: 5 → 3"]));
    let secret = item(&p, "Secret", Some("shop"), "db-credentials");
    assert_eq!(secret["action"], "update");
    assert_eq!(
        secret["changes"],
        serde_json::json!(["data.password: changed (value hidden)"])
    );
    assert!(!p.to_string().contains("Y2hhbmdlZA=="), "no Secret data");
    let api = item(&p, "Deployment", Some("shop"), "api");
    assert_eq!(api["action"], "unchanged", "{api}");
    let node = p["items"]
        .as_array()
        .and_then(|i| i.iter().find(|x| x["kind"] == "Node"))
        .expect("the backup holds Nodes");
    assert_eq!(node["action"], "skip");
    assert!(
        node["reason"]
            .as_str()
            .is_some_and(|r| r.contains("never restores")),
        "{node}"
    );
    assert!(
        p["counts"]["unchanged"].as_u64().is_some_and(|n| n > 5),
        "{}",
        p["counts"]
    );
    // Without `--show-unchanged` unchanged objects are counted, not listed.
    let changes = preview(&sb, "drift", &[]);
    assert_eq!(changes["counts"], p["counts"]);
    let listed = changes["items"].as_array().map_or(0, Vec::len) as u64;
    let unchanged = p["counts"]["unchanged"].as_u64().unwrap_or(0);
    assert_eq!(
        listed + unchanged,
        p["items"].as_array().map_or(0, Vec::len) as u64
    );
    assert!(
        changes["items"]
            .as_array()
            .is_some_and(|i| i.iter().all(|x| x["action"] != "unchanged")),
        "{changes}"
    );

    // The same preview, kept existing objects: the drifted ones are skipped, and why.
    let kept = preview(&sb, "drift", &["--keep-existing"]);
    let web = item(&kept, "Deployment", Some("shop"), "web");
    assert_eq!(web["action"], "skip");
    assert!(
        web["reason"]
            .as_str()
            .is_some_and(|r| r.contains("existingResourcePolicy: none"))
    );
    // Only some namespaces: the others' objects are skipped, cluster-scoped ones too.
    let shop = preview(&sb, "drift", &["--include-namespace", "shop"]);
    let velero = p["items"]
        .as_array()
        .and_then(|i| {
            i.iter()
                .find(|x| x["namespace"] == "velero" && x["kind"] == "Deployment")
        })
        .expect("the backup holds Velero's Deployment");
    let name = velero["name"].as_str().unwrap_or_default();
    let skipped = item(&shop, "Deployment", Some("velero"), name);
    assert_eq!(skipped["action"], "skip");
    assert!(
        skipped["reason"]
            .as_str()
            .is_some_and(|r| r.contains("namespace `velero` is excluded"))
    );

    // The table for people: one row per object, unchanged ones left out.
    let table = sb
        .eks_upgrade(&[
            "backup",
            "restore",
            "drift",
            "--cluster",
            "demo",
            "--dry-run",
        ])
        .run()
        .code(0);
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with("update") && l.contains("Deployment") && l.contains(" web "))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(row.contains("spec.replicas: 5 → 3"), "{row}");
    assert!(!table.stdout.lines().any(|l| l.starts_with("unchanged")));
    assert!(
        table
            .stderr
            .contains("Restore preview: 1 to create, 2 to update"),
        "{}",
        table.stderr
    );

    // The restore does what the preview said: afterwards nothing is left to create or update
    // among the objects that were changed.
    sb.eks_upgrade(&["backup", "restore", "drift", "--cluster", "demo"])
        .run()
        .code(0);
    let after = preview(&sb, "drift", &["--show-unchanged"]);
    for (kind, name) in [
        ("ConfigMap", "web-config"),
        ("Deployment", "web"),
        ("Secret", "db-credentials"),
    ] {
        assert_eq!(
            item(&after, kind, Some("shop"), name)["action"],
            "unchanged",
            "{kind}"
        );
    }
}

#[test]
fn namespace_mapping_previews_and_restores_into_the_new_namespace() {
    let sb = External::from_example("healthy.yaml");
    backup_and_verify(&sb, "mapped", &["--include-namespace", "shop"]);
    let args = [
        "--include-namespace",
        "shop",
        "--namespace-mapping",
        "shop=shop-copy",
    ];
    let p = preview(&sb, "mapped", &args);
    let config = item(&p, "ConfigMap", Some("shop-copy"), "web-config");
    assert_eq!(config["action"], "create");
    assert_eq!(config["fromNamespace"], "shop");
    assert_eq!(p["namespaceMapping"]["shop"], "shop-copy");
    let ns = item(&p, "Namespace", None, "shop-copy");
    assert_eq!(ns["action"], "create", "{ns}");
    assert!(
        p["items"]
            .as_array()
            .is_some_and(|i| i.iter().all(|x| x["namespace"] != "shop")),
        "nothing lands in `shop`"
    );

    let mut restore = vec!["backup", "restore", "mapped", "--cluster", "demo"];
    restore.extend_from_slice(&args);
    sb.eks_upgrade(&restore).run().code(0);
    assert_eq!(
        kubectl(
            &sb,
            &[
                "-n",
                "shop-copy",
                "get",
                "configmap",
                "web-config",
                "-o",
                "jsonpath={.data.LOG_LEVEL}"
            ]
        ),
        "info"
    );
    let mut again_args = args.to_vec();
    again_args.push("--show-unchanged");
    let again = preview(&sb, "mapped", &again_args);
    assert_eq!(
        item(&again, "ConfigMap", Some("shop-copy"), "web-config")["action"],
        "unchanged"
    );
}

/// Runs `eks-upgrade ARGS` under `/usr/bin/time`: its stdout and its peak RSS in MiB, the
/// tool's own process only, as the verifier's benchmark measures it.
fn peak_rss(sb: &External, args: &[&str]) -> (String, f64) {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%M", BIN])
        .args(args)
        .current_dir(crate::common::repo())
        .env("EKS_UPGRADE_STATE_DIR", sb.state_dir())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE");
    for (k, v) in &sb.env {
        cmd.env(k, v);
    }
    let out = cmd.output_timed().expect("/usr/bin/time is installed");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let kib: f64 = out
        .stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}", out.stderr));
    (out.stdout, kib / 1024.0)
}

/// What the preview of 20,000 objects may hold beyond the preview of a few dozen: a fingerprint
/// entry per live object the backup holds (its key and 32 bytes), one page of live objects, the
/// stream's buffers, and a record per object the restore would change (unchanged ones are only
/// counted). The verifier's budget is 64 MiB for the whole process (release
/// build; the test's debug build starts near 50 MiB).
const GROWTH_BUDGET_MIB: f64 = 16.0;

#[test]
fn a_preview_of_20000_objects_stays_within_the_verifiers_memory_budget() {
    let scenario =
        std::fs::read_to_string(crate::common::repo().join("examples/sandbox/healthy.yaml"))
            .expect("healthy.yaml")
            .replace(
                "  speed: 600\n",
                "  speed: 600\n  bulk: { namespaces: 10, configMaps: 20000 }\n",
            );
    let sb = External::start(&scenario);
    backup_and_verify(&sb, "small", &["--include-namespace", "shop"]);
    backup_and_verify(&sb, "big", &[]);
    kubectl(&sb, &["-n", "bulk-3", "delete", "configmap", "config-3"]);

    let dry_run = |name: &'static str| {
        [
            "backup",
            "restore",
            name,
            "--cluster",
            "demo",
            "--dry-run",
            "--output",
            "json",
        ]
    };
    let (_, small_mib) = peak_rss(&sb, &dry_run("small"));
    let (stdout, big_mib) = peak_rss(&sb, &dry_run("big"));
    let p: Value = serde_json::from_str(&stdout).expect("JSON preview");
    let stats = &p["stats"];
    assert!(
        stats["tarballItems"].as_u64().is_some_and(|n| n > 20_000),
        "{stats}"
    );
    assert!(
        stats["liveObjectsRead"]
            .as_u64()
            .is_some_and(|n| n > 20_000),
        "{stats}"
    );
    assert!(
        stats["maxLiveObjectsHeld"]
            .as_u64()
            .is_some_and(|n| n <= 500),
        "one page of live objects at a time: {stats}"
    );
    assert!(
        p["counts"]["unchanged"]
            .as_u64()
            .is_some_and(|n| n >= 19_999),
        "{}",
        p["counts"]
    );
    assert_eq!(
        item(&p, "ConfigMap", Some("bulk-3"), "config-3")["action"],
        "create"
    );
    assert!(
        big_mib - small_mib <= GROWTH_BUDGET_MIB,
        "20,000 objects took {:.1} MiB more than a few dozen ({big_mib:.1} against {small_mib:.1} MiB)",
        big_mib - small_mib
    );
}

#[test]
fn the_demos_report_shows_what_the_restore_changed() {
    let dir = tempfile::tempdir().expect("scratch dir");
    let json = dir.path().join("report.json");
    let out = crate::common::Test::new()
        .args(["demo", "--yes", "--report"])
        .arg(&json)
        .run()
        .code(0);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
            .expect("JSON");
    let preview = &report["restorePreview"];
    assert_eq!(preview["existingResourcePolicy"], "update", "{preview}");
    // The scenario broke `shop/web` by changing its pod template: the restore puts it back.
    let web = item(preview, "Deployment", Some("shop"), "web");
    assert_eq!(web["action"], "update", "{web}");
    assert!(
        web["changes"].as_array().is_some_and(|c| c
            .iter()
            .any(|x| x.as_str().is_some_and(|s| s.contains("broken")))),
        "{web}"
    );
    assert_eq!(preview["counts"]["update"], 1, "{}", preview["counts"]);
    assert!(
        preview["items"]
            .as_array()
            .is_some_and(|i| i.iter().all(|x| x["action"] != "unchanged")),
        "the journal keeps what changes; unchanged objects are counted: {preview}"
    );
    // The Markdown the demo prints says the same for people.
    let section = out
        .stderr
        .split("## What the restore changed")
        .nth(1)
        .unwrap_or_else(|| panic!("no preview section in the demo's report:\n{}", out.stderr));
    assert!(
        section.contains("- Deployment shop/web: spec.template.metadata.annotations"),
        "{section}"
    );
}
