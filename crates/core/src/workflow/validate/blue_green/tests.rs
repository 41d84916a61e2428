//! The blue/green structure rules, one test per rule, over steps given as role lists.

use super::*;

const R: fn() -> Loc = Loc::default;

fn step<'a>(phase: Phase, id: &'a str, key: &'a str, roles: &'a [Role]) -> Placed<'a> {
    Placed {
        phase,
        loc: R(),
        id,
        key,
        roles,
        on_green: false,
        needs_approval: false,
    }
}

fn health_on_green(phase: Phase, id: &str) -> Placed<'_> {
    Placed {
        on_green: true,
        ..step(phase, id, "healthCheck", &[])
    }
}

use Phase::{Finish, OnFailure, Prepare, Upgrade};

/// A complete blue/green workflow as the rules see it.
fn good() -> Vec<Placed<'static>> {
    vec![
        step(Prepare, "backup", "veleroBackup", &[Role::CreatesBackup]),
        step(Prepare, "verify", "verifyBackup", &[Role::VerifiesBackup]),
        step(Upgrade, "green", "createGreen", &[Role::ProvidesGreen]),
        step(Upgrade, "ready", "waitGreen", &[Role::WaitsForGreen]),
        step(
            Upgrade,
            "attach",
            "attachBackupLocation",
            &[Role::AttachesBackups],
        ),
        step(
            Upgrade,
            "restore",
            "restoreToGreen",
            &[Role::RestoresBackup, Role::RestoresIntoGreen],
        ),
        health_on_green(Upgrade, "green-health"),
        step(Upgrade, "compat", "testGreen", &[Role::TestsGreen]),
        step(Upgrade, "shift", "shiftTraffic", &[Role::ShiftsTraffic]),
        step(Upgrade, "soak", "soak", &[Role::WatchesTraffic]),
        step(
            OnFailure,
            "switch-back",
            "switchBack",
            &[Role::SwitchesBack],
        ),
        step(Finish, "approve", "approval", &[]),
        Placed {
            needs_approval: true,
            ..step(Finish, "retire", "retireBlue", &[Role::RetiresBlue])
        },
    ]
}

/// The problems' messages for `steps`.
fn problems(steps: &[Placed], traffic: bool, settings: Option<Loc>) -> Vec<String> {
    let mut v = Validator::new("");
    rules(&mut v, steps, traffic, settings);
    v.into_problems().into_iter().map(|p| p.message).collect()
}

fn without(id: &str) -> Vec<Placed<'static>> {
    good().into_iter().filter(|s| s.id != id).collect()
}

#[test]
fn a_complete_blue_green_workflow_passes() {
    assert_eq!(problems(&good(), true, Some(R())), Vec::<String>::new());
}

#[test]
fn rule_1_one_provider_first_in_upgrade_and_nothing_moves_blue() {
    let mut two = good();
    two.insert(
        3,
        step(Upgrade, "again", "adoptGreen", &[Role::ProvidesGreen]),
    );
    assert_eq!(
        problems(&two, true, None),
        ["`again` provides a second green cluster"]
    );

    let mut late = good();
    late.swap(2, 3);
    let found = problems(&late, true, None);
    assert!(
        found.contains(&"`green` must be the first step of `upgrade`".to_string()),
        "{found:?}"
    );

    let mut in_place = good();
    in_place.insert(
        4,
        step(
            Upgrade,
            "cp",
            "upgradeControlPlane",
            &[Role::MovesControlPlane],
        ),
    );
    in_place.push(step(
        OnFailure,
        "rb",
        "rollbackControlPlane",
        &[Role::RollsBackControlPlane],
    ));
    assert_eq!(
        problems(&in_place, true, None),
        [
            "`cp` changes blue in place, which a blue/green workflow never does",
            "`rb` changes blue in place, which a blue/green workflow never does",
        ]
    );
}

#[test]
fn rule_2_green_steps_need_green_and_the_wait_first() {
    // No provider at all: every green step and the settings are reported.
    let found = problems(&without("green"), true, Some(R()));
    assert!(
        found.contains(
            &"`ready` needs a green cluster, but no step creates or adopts one".to_string()
        ),
        "{found:?}"
    );
    assert!(
        found.contains(
            &"`green-health` needs a green cluster, but no step creates or adopts one".to_string()
        ),
        "{found:?}"
    );
    assert!(
            found
                .iter()
                .any(|m| m
                    .starts_with("`spec.green` and `spec.traffic` are for a blue/green workflow")),
            "{found:?}"
        );

    // A green step in `prepare` runs before green exists.
    let mut early = good();
    early.insert(2, health_on_green(Prepare, "too-soon"));
    assert_eq!(
        problems(&early, true, None),
        ["`too-soon` runs before green exists"]
    );

    // Steps that use green come after the wait.
    let mut order = good();
    order.swap(3, 4);
    assert_eq!(
        problems(&order, true, None),
        ["`attach` uses green before `ready` has seen it ready"]
    );

    let found = problems(&without("ready"), true, None);
    assert_eq!(found.len(), 6, "{found:?}");
    assert!(
        found
            .iter()
            .all(|m| m.ends_with("but no `waitGreen` step waits for it to be ready")),
        "{found:?}"
    );
}

#[test]
fn rule_3_one_shift_with_traffic_after_restore_health_and_tests() {
    assert_eq!(
        problems(&good(), false, None),
        ["`shift` shifts traffic, but the workflow has no `spec.traffic`"]
    );

    let mut two = good();
    two.insert(
        9,
        step(Upgrade, "shift-2", "shiftTraffic", &[Role::ShiftsTraffic]),
    );
    assert_eq!(
        problems(&two, true, None),
        ["`shift-2` is a second traffic shift"]
    );

    assert_eq!(
        problems(&without("restore"), true, None),
        ["`shift` shifts traffic before anything is restored into green"]
    );
    assert_eq!(
        problems(&without("green-health"), true, None),
        ["`shift` shifts traffic before green's health is checked"]
    );
    // A health check before the restore looks at an empty cluster: it does not count.
    let mut before_restore = without("green-health");
    before_restore.insert(4, health_on_green(Upgrade, "empty-health"));
    assert_eq!(
        problems(&before_restore, true, None),
        ["`shift` shifts traffic before green's health is checked"]
    );

    let mut late_test = without("compat");
    late_test.insert(8, step(Upgrade, "compat", "testGreen", &[Role::TestsGreen]));
    assert_eq!(
        problems(&late_test, true, None),
        ["`compat` tests green after `shift` has moved traffic to it"]
    );
    // Without a test, the shift needs none.
    assert_eq!(
        problems(&without("compat"), true, None),
        Vec::<String>::new()
    );
}

#[test]
fn rule_4_on_failure_starts_by_switching_back() {
    assert_eq!(
        problems(&without("switch-back"), true, None),
        ["`shift` shifts traffic, but `onFailure` cannot switch it back"]
    );
    let mut second = good();
    second.insert(10, health_on_green(OnFailure, "look"));
    assert_eq!(
        problems(&second, true, None),
        ["`onFailure` must start by switching traffic back to blue"]
    );
    let mut misplaced = good();
    misplaced.insert(
        9,
        step(Upgrade, "back", "switchBack", &[Role::SwitchesBack]),
    );
    assert_eq!(
        problems(&misplaced, true, None),
        ["`back` switches traffic back outside `onFailure`"]
    );
    // Without a shift, `onFailure` may be anything.
    let no_shift: Vec<Placed> = good()
        .into_iter()
        .filter(|s| s.id != "shift" && s.id != "switch-back")
        .collect();
    assert_eq!(problems(&no_shift, false, Some(R())), Vec::<String>::new());
}

#[test]
fn rule_5_blue_is_retired_in_finish_and_deleted_only_after_approval() {
    assert_eq!(
        problems(&without("approve"), true, None),
        ["`retire` needs an `approval` step before it in `finish`"]
    );
    // An approval in another section does not count.
    let mut elsewhere = without("approve");
    elsewhere.insert(2, step(Prepare, "approve", "approval", &[]));
    assert_eq!(
        problems(&elsewhere, true, None),
        ["`retire` needs an `approval` step before it in `finish`"]
    );
    let mut misplaced = without("retire");
    misplaced.insert(
        10,
        step(Upgrade, "retire", "retireBlue", &[Role::RetiresBlue]),
    );
    assert_eq!(
        problems(&misplaced, true, None),
        ["`retire` retires blue outside `finish`"]
    );
    // Keeping blue needs no approval.
    let keep: Vec<Placed> = without("approve")
        .into_iter()
        .map(|s| Placed {
            needs_approval: false,
            ..s
        })
        .collect();
    assert_eq!(problems(&keep, true, None), Vec::<String>::new());
}

#[test]
fn an_in_place_workflow_has_no_blue_green_problems() {
    let steps = [
        step(Prepare, "backup", "veleroBackup", &[Role::CreatesBackup]),
        step(
            Upgrade,
            "cp",
            "upgradeControlPlane",
            &[Role::MovesControlPlane],
        ),
        step(
            Upgrade,
            "nodes",
            "upgradeNodegroups",
            &[Role::UpgradesNodes],
        ),
        step(
            OnFailure,
            "rb",
            "rollbackControlPlane",
            &[Role::RollsBackControlPlane],
        ),
    ];
    assert_eq!(problems(&steps, false, None), Vec::<String>::new());
}
