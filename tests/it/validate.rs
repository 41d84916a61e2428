//! `eks-upgrade validate`: the shipped workflows, every kind of bad input, and the rendered
//! diagnostics (snapshots).

use crate::common::{Test, repo};

const GOOD: &str = r#"apiVersion: eks-upgrade/v1
kind: Workflow
metadata:
  name: good
spec:
  cluster: { name: prod, region: eu-west-1 }
  target: "1.35"
  prepare:
    - id: backup
      veleroBackup: { ttl: 720h }
    - id: verify
      verifyBackup: { backup: backup }
  upgrade:
    - id: control-plane
      upgradeControlPlane: {}
  onFailure:
    - id: restore
      veleroRestore: { backup: backup }
"#;

fn validate(name: &str, contents: impl AsRef<[u8]>) -> crate::common::Output {
    Test::new()
        .file(name, contents)
        .args(["validate", name])
        .run()
        .no_panic()
}

#[test]
fn shipped_workflows_are_valid() {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("workflows"))
        .expect("workflows/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    for required in [
        "in-place.yaml",
        "multi-hop.yaml",
        "eksctl.yaml",
        "check-only.yaml",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(required)),
            "workflows/{required} is missing"
        );
    }
    let out = Test::new()
        .arg("validate")
        .args(files.clone())
        .run()
        .code(0);
    assert_eq!(
        out.stderr.matches("Valid `").count(),
        files.len(),
        "{}",
        out.stderr
    );
}

#[test]
fn a_good_workflow_becomes_the_model() {
    let w = eks_upgrade_core::workflow::parse(std::path::Path::new("good.yaml"), GOOD.into())
        .expect("valid");
    assert_eq!(w.cluster.name.as_deref(), Some("prod"));
    assert_eq!(w.target.map(|t| t.to_string()).as_deref(), Some("1.35"));
    assert_eq!(w.velero.namespace, "velero");
    let ids: Vec<&str> = w.steps().map(|(_, s)| s.id.as_str()).collect();
    assert_eq!(ids, ["backup", "verify", "control-plane", "restore"]);
    let json = serde_json::to_value(&w.prepare[0]).expect("serializable");
    assert_eq!(json["veleroBackup"]["ttl"], "720h");
    assert_eq!(json["veleroBackup"]["storageLocation"], "default");
}

#[test]
fn empty_file() {
    let out = validate("empty.yaml", "").code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn comments_only_is_empty_too() {
    validate("c.yaml", "# nothing here\n\n")
        .code(2)
        .stderr_contains("is empty");
}

#[test]
fn not_yaml() {
    let out = validate("settings.ini", "[section]\nkey = value\n").code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn json_is_yaml_but_not_a_workflow() {
    let out = validate(
        "w.json",
        r#"{"apiVersion": "eks-upgrade/v1", "kind": "Workflow"}"#,
    )
    .code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn binary_garbage() {
    let mut bytes: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    bytes[100] = 0;
    let out = validate("garbage.yaml", &bytes).code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn invalid_utf8_without_nul() {
    let out = validate(
        "latin1.yaml",
        b"apiVersion: eks-upgrade/v1\nkind: Workfl\xf6w\n",
    )
    .code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn tabs() {
    let out = validate(
        "tabs.yaml",
        "apiVersion: eks-upgrade/v1\nkind: Workflow\nmetadata:\n\tname: tabs\nspec: {}\n",
    )
    .code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn duplicate_keys() {
    let out = validate(
        "dup.yaml",
        "apiVersion: eks-upgrade/v1\nkind: Workflow\nmetadata: { name: dup }\nspec:\n  target: next\n  target: latest\n",
    )
    .code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn unknown_fields_are_all_reported_with_suggestions() {
    let out = validate(
        "typos.yaml",
        GOOD.replace("ttl: 720h", "ttl: 720h, timeot: 5m")
            .replace(
                "upgradeControlPlane: {}",
                "upgradeControlPlane: { forse: true }",
            )
            .replace("  target:", "  targt: next\n  target:")
            .replace(
                "    - id: verify\n",
                "    - id: verify\n      nmae: Verify\n",
            ),
    )
    .code(2);
    assert_eq!(
        out.stderr.matches("x unknown field `").count(),
        4,
        "{}",
        out.stderr
    );
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn wrong_types_and_choices() {
    let out = validate(
        "types.yaml",
        GOOD.replace(
            "upgradeControlPlane: {}",
            "upgradeControlPlane: { force: yes, timeout: [1m] }",
        )
        .replace(
            "verifyBackup: { backup: backup }",
            "verifyBackup: { backup: backup, depth: fulll }",
        )
        .replace(
            "  prepare:\n",
            "  window: { days: [Sat, Fry], start: \"02:00\", end: \"04:00\" }\n  prepare:\n",
        )
        .replace(
            "cluster: { name: prod, region: eu-west-1 }",
            "cluster: [prod]",
        ),
    )
    .code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn missing_fields() {
    let out = validate(
        "missing.yaml",
        "apiVersion: eks-upgrade/v1\nkind: Workflow\nmetadata: {}\nspec:\n  prepare:\n    - veleroBackup: {}\n    - id: verify\n      verifyBackup: {}\n",
    )
    .code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn semantic_problems_are_all_reported() {
    let text = r#"apiVersion: eks-upgrade/v1
kind: Workflow
metadata:
  name: Semantic_Problems
spec:
  target: 1.35.2
  window: { days: [Sat, Sat], start: "02:00", end: "02:00", timezone: Europe/Berln }
  prepare:
    - id: backup
      veleroBackup: { ttl: 30, timeout: 0s }
    - id: verify
      verifyBackup: { backup: bakup }
    - id: cp
      upgradeControlPlane: {}
  upgrade:
    - id: nodes
      upgradeNodegroups: { maxParallel: 0 }
    - id: control-plane
      upgradeControlPlane: {}
    - id: twice
      upgradeControlPlane: {}
      healthCheck: {}
  onFailure:
    - id: restore
      veleroRestore: { backup: backup }
    - id: nodes
      notify: { url: "ftp://example.com", urlEnv: HOOK }
    - id: ask
      approval: {}
"#;
    let out = validate("semantic.yaml", text).code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn restore_needs_a_verified_backup() {
    let text = GOOD.replace(
        "    - id: verify\n      verifyBackup: { backup: backup }\n",
        "",
    );
    validate("unverified.yaml", text)
        .code(2)
        .stderr_contains("which no `verifyBackup` step in `prepare` verifies");
}

#[test]
fn versions_compare_numerically_and_unquoted_versions_keep_their_text() {
    // An unquoted 1.30 is the YAML float 1.3; typed as a string it keeps its spelling.
    let w = eks_upgrade_core::workflow::parse(
        std::path::Path::new("v.yaml"),
        GOOD.replace("target: \"1.35\"", "target: 1.30").into(),
    )
    .expect("valid");
    assert_eq!(w.target.map(|t| t.to_string()).as_deref(), Some("1.30"));
}

#[test]
fn alias_bomb() {
    let mut text = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..10u8 {
        let (prev, cur) = ((b'a' + i - 1) as char, (b'a' + i) as char);
        text.push_str(&format!(
            "{cur}: &{cur} [{}]\n",
            vec![format!("*{prev}"); 9].join(",")
        ));
    }
    let out = validate("bomb.yaml", text).code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn deep_flow_nesting() {
    let text = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let out = validate("deep.yaml", text).code(2);
    // The line is 200,000 characters: no snippet, just the place.
    assert!(out.stderr.len() < 1000, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn deep_block_nesting() {
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!("{}k{i}:\n", "  ".repeat(i)));
    }
    text.push_str(&format!("{}v\n", "  ".repeat(200)));
    let out = validate("deep.yaml", text).code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn multi_megabyte_file() {
    let text = format!(
        "apiVersion: eks-upgrade/v1\n{}",
        "# padding padding padding\n".repeat(200_000)
    );
    let out = validate("big.yaml", text).code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn just_under_the_size_limit_is_parsed() {
    // A megabyte of comments is read and parsed, and reported as empty rather than too large.
    let text = "# padding padding padding padding padding padding padding padding\n".repeat(15_000);
    assert!(text.len() < 1024 * 1024);
    validate("padded.yaml", text)
        .code(2)
        .stderr_contains("is empty");
}

#[test]
fn missing_file() {
    let out = Test::new().args(["validate", "nope.yaml"]).run().code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn directory_instead_of_file() {
    let t = Test::new().file("workflows/a.yaml", GOOD);
    let out = t.args(["validate", "workflows"]).run().code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn several_files_report_each_and_fail_together() {
    let out = Test::new()
        .file("good.yaml", GOOD)
        .file("bad.yaml", GOOD.replace("kind: Workflow", "kind: Wrkflow"))
        .args(["validate", "good.yaml", "bad.yaml", "missing.yaml"])
        .run()
        .code(2);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn json_output_for_machines() {
    let out = Test::new()
        .file("good.yaml", GOOD)
        .file("bad.yaml", GOOD.replace("ttl: 720h", "ttl: 720"))
        .args(["validate", "--output", "json", "good.yaml", "bad.yaml"])
        .run()
        .code(2);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    assert_eq!(report[0]["valid"], true);
    assert_eq!(report[1]["valid"], false);
    assert_eq!(report[1]["problems"][0]["line"], 10);
    assert_eq!(report[1]["problems"][0]["column"], 28);
    assert!(
        report[1]["problems"][0]["help"]
            .as_str()
            .unwrap_or("")
            .contains("add a unit")
    );
}

#[test]
fn unknown_check_codes_in_preflight_exceptions() {
    let text = GOOD.replace(
        "  prepare:\n",
        "  prepare:\n    - id: preflight\n      preflight:\n        ignore: [EKS0O1]\n        overrides:\n          - { check: NOPE, severity: warning }\n",
    );
    let out = validate("codes.yaml", text).code(2);
    insta::assert_snapshot!(out.stderr);
}

/// EKS rolls the control plane back only after nodes and add-ons: a recovery that gets the
/// order wrong, or leaves out what the hop moves, would be refused on the night.
#[test]
fn recovery_must_reverse_nodes_and_add_ons_before_the_control_plane() {
    let text = r#"apiVersion: eks-upgrade/v1
kind: Workflow
metadata:
  name: wrong-order
spec:
  prepare:
    - id: backup
      veleroBackup: {}
    - id: verify
      verifyBackup: { backup: backup }
  upgrade:
    - id: control-plane
      upgradeControlPlane: {}
    - id: addons
      upgradeAddons: {}
    - id: nodes
      upgradeNodegroups: {}
  onFailure:
    - id: rollback
      rollbackControlPlane: {}
    - id: rollback-nodes
      rollbackNodegroups: {}
"#;
    let out = validate("wrong-order.yaml", text).code(2);
    assert!(
        out.stderr
            .contains("`rollback-nodes` runs after the control plane is rolled back"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("nothing moves the add-ons"),
        "{}",
        out.stderr
    );
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn an_unknown_field_no_longer_hides_the_other_problems() {
    // One typo in a field name, and two mistakes in values that only validation proper sees
    // (the second one also leaves the restore without a verified backup): all are reported in
    // one pass.
    let out = validate(
        "mixed.yaml",
        GOOD.replace("  target: \"1.35\"", "  targt: next\n  target: \"1.35.2\"")
            .replace(
                "verifyBackup: { backup: backup }",
                "verifyBackup: { backup: bakup }",
            ),
    )
    .code(2);
    assert_eq!(out.stderr.matches("  x ").count(), 4, "{}", out.stderr);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn a_workflow_without_upgrade_steps_must_be_check_only() {
    // The shipped in-place workflow cut short after its backup: it would back up and stop.
    let text = std::fs::read_to_string(repo().join("workflows/in-place.yaml")).expect("read");
    let cut = &text[..text.find("  upgrade:").expect("an upgrade section")];
    let out = validate("truncated.yaml", cut).code(2);
    assert!(
        out.stderr
            .contains("the workflow has no `upgrade` steps, but `backup` changes the cluster"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("[truncated.yaml:"), "{}", out.stderr);
    // Cut before any step: nothing at all to do.
    let bare = &text[..text.find("  prepare:").expect("a prepare section")];
    validate("no-steps.yaml", bare)
        .code(2)
        .stderr_contains("the workflow has no steps");
    // Steps that change nothing make a check-only workflow, which is valid.
    let check_only = format!(
        "{}  prepare:\n    - id: preflight\n      preflight: {{}}\n    - id: tell\n      notify: {{ urlEnv: HOOK }}\n    - id: health\n      healthCheck: {{}}\n",
        bare
    );
    validate("check.yaml", check_only)
        .code(0)
        .stderr_contains("Valid `check.yaml` (3 prepare)");
}

#[test]
fn mangled_workflows_through_the_binary_exit_2_naming_the_file() {
    use eks_upgrade_core::workflow::mutants::{self, SEED, SHIPPED, Verdict, XorShift};
    // A sample of the bounded fuzz test's mutants (the seed is its own), through the binary.
    let mut rng = XorShift::new(SEED ^ 0xb1);
    let mut sampled = 0;
    let mut slowest = std::time::Duration::ZERO;
    for round in 0..400 {
        let (name, original) = SHIPPED[round % SHIPPED.len()];
        let bytes = mutants::mutate(original.as_bytes(), &mut rng);
        if round % 10 != 0
            || !matches!(
                mutants::check(name, bytes.clone()),
                Ok(Verdict::Refused { .. })
            )
        {
            continue;
        }
        let started = std::time::Instant::now();
        let out = validate(name, &bytes).code(2);
        slowest = slowest.max(started.elapsed());
        assert!(out.stderr.contains(name), "round {round}:\n{}", out.stderr);
        sampled += 1;
    }
    assert!(sampled >= 20, "only {sampled} mutants were sampled");
    // Measured, not asserted: a loaded machine must not fail the suite.
    eprintln!("{sampled} mutants through `eks-upgrade validate`, slowest {slowest:?}");
}

#[test]
fn blue_green_settings_are_checked_where_they_are_written() {
    let settings = r#"  green: { name: -green }
  traffic:
    zone: example.com
    record: app.example.org
    blue: { setIdentifier: blue }
    green: { setIdentifier: blue, service: shop/web, value: lb.example.com }
    errorRate:
      prometheus:
        url: http://prometheus:9090
        urlEnv: PROMETHEUS_URL
        errors: 'sum(increase(requests{status=~"5.."}[{window}]))'
        requests: 'sum(increase(requests{cluster="{clustr}"}[{window}]))'
      max: 200%
      minRequests: 0
  prepare:
"#;
    let text = GOOD.replace("  prepare:\n", settings);
    let out = validate("blue-green-settings.yaml", text).code(2);
    insta::assert_snapshot!(out.stderr);
}
