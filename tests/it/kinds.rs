//! The list of step kinds against everything derived from it: for every kind, a workflow with a
//! step of that kind (its `EXAMPLE`, in the first section it may appear in) validates with the
//! step kept, the schema documents the kind, and `plan` against the sandbox prints at least one
//! line for it. A kind missing a part of the derivation fails here or does not compile (the run
//! and plan dispatch are exhaustive matches generated from the same list).

use eks_upgrade_core::steps::{self, STEP_KINDS};
use eks_upgrade_core::types::Phase;

use crate::e2e::External;

/// A workflow around one step of `key`, with what such a step needs: a verified backup to name,
/// and a control-plane step for a hop — or, for a kind of a blue/green run, green made and
/// waited for, the backup restored into it and checked before traffic moves, and a switch back.
fn workflow_with(key: &str, example: &str) -> String {
    if steps::roles(key).iter().any(|r| r.is_green()) {
        return blue_green_with(key, example);
    }
    let placement = steps::placement(key).expect("every listed kind has a placement");
    let section = placement.sections[0];
    let subject = format!("    - id: subject\n      {key}: {example}\n");
    let mut prepare = String::from(
        "    - id: backup\n      veleroBackup: {}\n    - id: verify\n      verifyBackup: { backup: backup }\n",
    );
    let moves = matches!(key, "upgradeControlPlane" | "eksctl");
    let mut upgrade = if moves {
        String::new()
    } else {
        "    - id: control-plane\n      upgradeControlPlane: {}\n".to_string()
    };
    let mut on_failure = String::new();
    let mut finish = String::new();
    match section {
        Phase::Prepare => prepare.push_str(&subject),
        Phase::Upgrade => upgrade.push_str(&subject),
        Phase::OnFailure => on_failure.push_str(&subject),
        Phase::Finish => finish.push_str(&subject),
    }
    let mut text = format!(
        "apiVersion: eks-upgrade/v1\nkind: Workflow\nmetadata:\n  name: kinds\nspec:\n  cluster: {{ name: demo, region: us-east-1 }}\n  target: next\n  prepare:\n{prepare}  upgrade:\n{upgrade}"
    );
    if !on_failure.is_empty() {
        text.push_str(&format!("  onFailure:\n{on_failure}"));
    }
    if !finish.is_empty() {
        text.push_str(&format!("  finish:\n{finish}"));
    }
    text
}

/// The blue/green skeleton around one green step, in the order the structure rules ask for.
/// Green is named, as `adoptGreen` needs.
fn blue_green_with(key: &str, example: &str) -> String {
    use eks_upgrade_core::steps::Role;
    let has = |role: Role| steps::roles(key).contains(&role);
    let subject = format!("    - id: subject\n      {key}: {example}\n");
    let mut upgrade = String::new();
    let mut step = |id: &str, kind: &str, options: &str, role: Role| {
        if has(role) {
            upgrade.push_str(&subject);
        } else if STEP_KINDS.contains(&kind) {
            upgrade.push_str(&format!("    - id: {id}\n      {kind}: {options}\n"));
        }
    };
    step("green", "createGreen", "{}", Role::ProvidesGreen);
    step("green-ready", "waitGreen", "{}", Role::WaitsForGreen);
    step(
        "restore",
        "restoreToGreen",
        "{ backup: backup }",
        Role::RestoresIntoGreen,
    );
    upgrade.push_str("    - id: green-health\n      healthCheck: { on: green }\n");
    let section = steps::placement(key)
        .expect("every listed kind has a placement")
        .sections[0];
    let is_upgrade_extra = section == Phase::Upgrade
        && !(has(Role::ProvidesGreen) || has(Role::WaitsForGreen) || has(Role::RestoresIntoGreen));
    if is_upgrade_extra {
        upgrade.push_str(&subject);
    }
    let on_failure = if section == Phase::OnFailure {
        subject.clone()
    } else if STEP_KINDS.contains(&"switchBack") {
        "    - id: switch-back\n      switchBack: {}\n".to_string()
    } else {
        // Until `switchBack` exists: a step `onFailure` allows.
        "    - id: after\n      healthCheck: {}\n".to_string()
    };
    let finish = if section == Phase::Finish {
        subject.clone()
    } else {
        String::new()
    };
    let mut text = format!(
        "apiVersion: eks-upgrade/v1\nkind: Workflow\nmetadata:\n  name: kinds\nspec:\n  cluster: {{ name: demo, region: us-east-1 }}\n  target: next\n  green: {{ name: demo-green }}\n  traffic:\n    zone: example.com\n    record: app.example.com\n    blue: {{ setIdentifier: blue }}\n    green: {{ setIdentifier: green, service: shop/web }}\n  prepare:\n    - id: backup\n      veleroBackup: {{}}\n    - id: verify\n      verifyBackup: {{ backup: backup }}\n  upgrade:\n{upgrade}  onFailure:\n{on_failure}"
    );
    if !finish.is_empty() {
        text.push_str(&format!("  finish:\n{finish}"));
    }
    text
}

#[test]
fn every_kind_validates_is_documented_and_plans() {
    let examples = steps::examples();
    assert_eq!(
        examples.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        STEP_KINDS.to_vec()
    );
    let schema = eks_upgrade_core::workflow::schema::schema();
    let sb = External::from_example("healthy.yaml");
    let dir = tempfile::tempdir().expect("scratch dir");
    for (key, example) in examples {
        let description = &schema["$defs"]["RawStep"]["properties"][key]["description"];
        assert!(
            description.as_str().is_some_and(|d| !d.is_empty()),
            "`{key}` has no description in the schema"
        );

        let text = workflow_with(key, example);
        let path = dir.path().join(format!("{key}.yaml"));
        std::fs::write(&path, &text).expect("write workflow");
        let workflow = eks_upgrade_core::workflow::load(&path).unwrap_or_else(|e| {
            panic!(
                "`{key}` does not validate:\n{}\n{text}",
                eks_upgrade_core::workflow::render(&e, eks_upgrade_core::workflow::Style::Plain)
            )
        });
        let built = workflow
            .steps()
            .find(|(_, s)| s.id == "subject")
            .unwrap_or_else(|| panic!("`{key}` was dropped by validation"));
        assert_eq!(built.1.kind.key(), key);

        // `notify` reads its URL from the environment only when it runs; plans need nothing.
        let out = sb
            .eks_upgrade(&[
                "plan",
                path.to_str().expect("utf-8 path"),
                "--output",
                "json",
            ])
            .run()
            .code(0);
        let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("plan JSON");
        let planned = plan["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["id"] == "subject")
            .unwrap_or_else(|| panic!("`{key}` is missing from the plan: {plan}"));
        assert_eq!(planned["kind"], key);
        assert!(
            planned["changes"]
                .as_array()
                .is_some_and(|c| !c.is_empty()
                    && c.iter().all(|l| l.as_str().is_some_and(|l| !l.is_empty()))),
            "`{key}` plans no line: {planned}"
        );
    }
}
