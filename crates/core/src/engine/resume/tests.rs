//! The rules of `engine::resume` on journals a run writes, and on hand-edited ones.

use serde_json::{Value, json};

use super::*;

fn v(s: &str) -> Version {
    s.parse().expect("a version")
}

fn update(id: &str, status: &str, to: &str) -> UpdateState {
    UpdateState {
        id: id.into(),
        status: status.into(),
        kind: "VersionUpdate".into(),
        version: Some(to.into()),
        errors: Vec::new(),
    }
}

fn step(hop: Option<&str>, phase: &str, id: &str, status: &str, facts: Value) -> Value {
    let mut key = json!({ "phase": phase, "id": id });
    if let Some(h) = hop {
        key["hop"] = json!(h);
    }
    let mut s = json!({
        "key": key, "kind": "k", "title": "t", "status": status,
        "startedAt": "t", "facts": facts
    });
    if status == "failed" {
        s["error"] = json!("the health check failed");
    }
    s
}

/// A one-hop run 1.33 → 1.34 whose control plane update `u1` started, with `edit` applied.
fn journal(edit: impl FnOnce(&mut Value)) -> Journal {
    let mut j = json!({
        "journalVersion": 2, "runId": "r", "createdAt": "t", "updatedAt": "t",
        "workflowName": "w", "workflowPath": "w.yaml", "workflowText": "",
        "cluster": "demo", "region": "us-east-1", "startVersion": "1.33",
        "hops": ["1.34"], "completedHops": [],
        "state": { "state": "upgrade", "hop": 1 },
        "steps": [
            step(None, "prepare", "backup", "succeeded", json!({})),
            step(Some("1.34"), "upgrade", "control-plane", "running", json!({ "updateId": "u1" })),
        ]
    });
    edit(&mut j);
    serde_json::from_value(j).expect("a journal")
}

fn eks(version: &str, updates: &[UpdateState]) -> Observed {
    Observed {
        version: v(version),
        updates: updates
            .iter()
            .map(|u| (u.id.clone(), Some(u.clone())))
            .collect(),
        in_progress: updates
            .iter()
            .filter(|u| u.status == "InProgress")
            .cloned()
            .collect(),
    }
}

#[track_caller]
fn agrees(j: &Journal, seen: &Observed) {
    let problems = disagreements(j, seen);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[track_caller]
fn caught(j: &Journal, seen: &Observed, needle: &str) {
    let problems = disagreements(j, seen);
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "no problem mentions {needle:?}: {problems:#?}"
    );
}

#[test]
fn every_state_a_run_writes_agrees_with_the_cluster_it_left() {
    // Mid-update, and after the update finished.
    agrees(
        &journal(|_| {}),
        &eks("1.33", &[update("u1", "InProgress", "1.34")]),
    );
    agrees(
        &journal(|_| {}),
        &eks("1.34", &[update("u1", "Successful", "1.34")]),
    );
    // Before any upgrade.
    let started = journal(|j| {
        j["state"] = json!({ "state": "prepare" });
        j["steps"] = json!([step(None, "prepare", "backup", "running", json!({}))]);
    });
    agrees(&started, &eks("1.33", &[]));
    // The hop done, about to finish.
    let finished = journal(|j| {
        j["completedHops"] = json!(["1.34"]);
        j["state"] = json!({ "state": "finish" });
        j["steps"][1]["status"] = json!("succeeded");
    });
    agrees(
        &finished,
        &eks("1.34", &[update("u1", "Successful", "1.34")]),
    );
    // In recovery from a failed health check, before and after the rollback.
    let recovery = journal(|j| {
        j["state"] = json!({ "state": "recovery" });
        j["steps"][1]["status"] = json!("succeeded");
        j["steps"].as_array_mut().expect("steps").push(step(
            Some("1.34"),
            "upgrade",
            "health",
            "failed",
            json!({}),
        ));
        j["failure"] = json!({
            "step": { "phase": "upgrade", "hop": "1.34", "id": "health" },
            "message": "unhealthy", "versionBefore": "1.33"
        });
    });
    agrees(
        &recovery,
        &eks("1.34", &[update("u1", "Successful", "1.34")]),
    );
    agrees(
        &recovery,
        &eks("1.33", &[update("u1", "Successful", "1.34")]),
    );
}

#[test]
fn a_half_finished_hop_counted_as_completed_is_caught() {
    let j = journal(|j| {
        j["completedHops"] = json!(["1.34"]);
        j["state"] = json!({ "state": "upgrade", "hop": 2 });
    });
    let seen = eks("1.33", &[update("u1", "InProgress", "1.34")]);
    caught(
        &j,
        &seen,
        "hop `1.34` is counted as completed, but EKS runs the control plane at `1.33`",
    );
    caught(&j, &seen, "its step `control-plane` is `running`");
    caught(&j, &seen, "its update `u1` as `InProgress`");
}

#[test]
fn hops_edited_away_from_the_plan_are_caught() {
    let seen = eks("1.33", &[update("u1", "InProgress", "1.34")]);
    let j = journal(|j| j["hops"] = json!(["1.35"]));
    caught(
        &j,
        &seen,
        "do not go one minor version at a time from `1.33`",
    );
    caught(&j, &seen, "which is not among the hops `1.35`");
    // Start and hops edited together still disagree with EKS.
    let j = journal(|j| {
        j["startVersion"] = json!("1.32");
        j["hops"] = json!(["1.33"]);
    });
    caught(&j, &seen, "which is not among the hops `1.33`");
    caught(&j, &seen, "EKS is moving the control plane to `1.34`");
    // Hops cut short before the run finished.
    let j = journal(|j| {
        j["hops"] = json!(["1.34"]);
        j["state"] = json!({ "state": "finish" });
    });
    caught(&j, &seen, "the state `finish` comes after 1 completed hop");
}

#[test]
fn recovery_needs_a_recorded_failure_with_its_error() {
    let j = journal(|j| {
        j["state"] = json!({ "state": "recovery" });
        j["steps"][1]["status"] = json!("succeeded");
        j["failure"] = json!({
            "step": { "phase": "upgrade", "hop": "1.34", "id": "control-plane" },
            "message": "?", "versionBefore": "1.33"
        });
    });
    let seen = eks("1.34", &[update("u1", "Successful", "1.34")]);
    caught(&j, &seen, "nothing proves that hop `1.34` failed");
    let j = journal(|j| j["state"] = json!({ "state": "recovery" }));
    caught(&j, &seen, "no failure is recorded");
    let j = journal(|j| {
        j["steps"][1]["status"] = json!("failed");
    });
    caught(&j, &seen, "recorded as failed without its error");
}

#[test]
fn an_update_eks_does_not_know_is_caught() {
    let j = journal(|_| {});
    let mut seen = eks("1.33", &[]);
    seen.updates.insert("u1".into(), None);
    caught(
        &j,
        &seen,
        "recorded the update `u1`, which EKS does not know",
    );
}
