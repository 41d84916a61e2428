//! Journals that cannot be trusted: a damaged one stays in sight (`runs`) and stops new runs of
//! its cluster until a person acknowledges it; one from a newer release or failing its checksum
//! is refused; and a hand-edited one whose claims EKS contradicts stops a resume before it acts.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::runs::slow_scenario;
use super::{External, redact, running_with_fact, workflow};
use crate::common::{POLL_TIMEOUT, Test, poll};
use eks_upgrade_core::journal::Journal;
use eks_upgrade_core::journal::seal;

const CUT: &str = "20260307t020500z-aaaaaa";
const DONE: &str = "20260301t020500z-bbbbbb";

/// A sealed journal of cluster `demo`, as a run writes it, with `edit` applied before sealing.
fn sealed(run_id: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut j = json!({
        "journalVersion": 2, "runId": run_id,
        "createdAt": "2026-03-07T02:05:00.000Z", "updatedAt": "2026-03-07T02:35:00.000Z",
        "workflowName": "in-place", "workflowPath": "workflows/in-place.yaml",
        "workflowText": std::fs::read_to_string(crate::common::repo().join("workflows/in-place.yaml")).expect("workflow"),
        "cluster": "demo", "region": "us-east-1", "startVersion": "1.33",
        "hops": ["1.34"], "completedHops": [],
        "state": { "state": "upgrade", "hop": 1 }, "approved": true
    });
    edit(&mut j);
    let journal: Journal = serde_json::from_value(j).expect("a journal");
    seal::encode(&journal).expect("encode")
}

fn write(dir: &Path, run_id: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join("runs").join(format!("{run_id}.json"));
    std::fs::create_dir_all(path.parent().expect("parent")).expect("runs dir");
    std::fs::write(&path, bytes).expect("write journal");
    path
}

/// Redactions for these snapshots: the state directory, the usual ones, and checksums.
fn redacted(text: &str, state: &Path) -> String {
    let text = redact(&text.replace(&state.display().to_string(), "$STATE"));
    regex_lite::Regex::new(r"sha256:[0-9a-f]{64}")
        .map(|r| r.replace_all(&text, "sha256:HASH").into_owned())
        .unwrap_or(text)
}

#[test]
fn a_damaged_local_journal_is_listed_and_stops_new_runs_of_its_cluster_until_acknowledged() {
    let sb = External::from_example("healthy.yaml");
    let dir = sb.state_dir();
    let done = sealed(DONE, |j| {
        j["state"] = json!({ "state": "done" });
        j["completedHops"] = json!(["1.34"]);
        j["outcome"] =
            json!({ "result": "succeeded", "exitCode": 0, "message": "the cluster is at 1.34" });
    });
    write(&dir, DONE, &done);
    let whole = sealed(CUT, |_| {});
    write(&dir, CUT, &whole[..whole.len() - 40]);

    let text = sb.eks_upgrade(&["runs"]).run().code(0);
    insta::assert_snapshot!(
        "damaged_runs_text",
        redacted(&format!("{}--- stderr\n{}", text.stdout, text.stderr), &dir)
    );
    let listed = sb.eks_upgrade(&["runs", "--output", "json"]).run().code(0);
    let value: Value = serde_json::from_str(&listed.stdout).expect("every byte of stdout is JSON");
    insta::assert_snapshot!("damaged_runs_json", redacted(&listed.stdout, &dir));
    assert_eq!(value[0]["runId"], CUT);
    assert_eq!(value[0]["cluster"], "demo", "salvaged from the cut journal");

    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    let before = sb.requests().len();
    let refused = sb.run(&wf, &[]).code(5);
    insta::assert_snapshot!("damaged_refuses_run", redacted(&refused.stderr, &dir));
    assert_eq!(
        sb.writes_since(before),
        Vec::<Value>::new(),
        "nothing changed"
    );
    assert_eq!(
        std::fs::read_dir(dir.join("runs")).expect("runs").count(),
        2,
        "no journal was started"
    );

    // A person checked the cluster and acknowledged the run: a new run starts and succeeds,
    // and the damaged journal stays where it was, for the record.
    sb.run(&wf, &["--acknowledge", CUT]).code(0);
    assert_eq!(sb.count("eks", "UpdateClusterVersion"), 1);
    assert_eq!(
        std::fs::read(dir.join("runs").join(format!("{CUT}.json"))).expect("still there"),
        whole[..whole.len() - 40].to_vec()
    );
}

#[test]
fn a_journal_from_a_newer_release_or_failing_its_checksum_is_refused() {
    let state = tempfile::tempdir().expect("state dir");
    let newer = "20260307t020500z-cccccc";
    let mut value: Value = serde_json::from_slice(&sealed(newer, |_| {})).expect("JSON");
    value["journalVersion"] = json!(999);
    write(
        state.path(),
        newer,
        &serde_json::to_vec_pretty(&value).expect("newer"),
    );
    let edited = "20260307t020500z-dddddd";
    let mut value: Value = serde_json::from_slice(&sealed(edited, |_| {})).expect("JSON");
    value["hops"] = json!(["1.35"]);
    write(
        state.path(),
        edited,
        &serde_json::to_vec_pretty(&value).expect("edited"),
    );

    // Sound as a journal, but the workflow stored in it is not: reported against the journal.
    let invalid = "20260307t010500z-eeeeee";
    write(
        state.path(),
        invalid,
        &sealed(invalid, |j| {
            j["workflowText"] = json!(
                "apiVersion: eks-upgrade/v1\nkind: Workflow\nmetadata: { name: w }\nspec:\n  upgrade: []\n  colour: blue\n"
            );
        }),
    );
    let cli = |args: &[&str]| {
        Test::new()
            .args(args)
            .env("EKS_UPGRADE_STATE_DIR", state.path())
            .env_remove("EKS_UPGRADE_STATE")
            .env_remove("AWS_PROFILE")
            .run()
    };
    let mut seen = String::new();
    let stored = cli(&["resume", invalid, "--yes"]).code(5);
    seen.push_str(&format!("$ resume {invalid}\n{}", stored.stderr));
    for run_id in [newer, edited] {
        // Refused before anything connects anywhere: no AWS settings are even needed.
        let resumed = cli(&["resume", run_id, "--yes"]).code(5);
        let status = cli(&["status", run_id]).code(5);
        seen.push_str(&format!(
            "$ resume {run_id}\n{}$ status {run_id}\n{}",
            resumed.stderr, status.stderr
        ));
    }
    insta::assert_snapshot!("refused_journals", redacted(&seen, state.path()));
    // Both are listed as damaged; neither is resumed by a bare `resume`.
    let listed = cli(&["runs", "--output", "json"]).code(0);
    let value: Value = serde_json::from_str(&listed.stdout).expect("JSON");
    assert!(
        value.as_array().is_some_and(
            |a| a.len() == 3 && a.iter().filter(|r| r["damaged"].is_string()).count() == 2
        ),
        "{value}"
    );
    cli(&["resume", "--yes"])
        .code(5)
        .stderr_contains("cannot tell which run to resume");
}

/// The journal of a run killed while EKS moves its control plane, as a version 1 journal (no
/// checksum, so only the check against EKS stands between an edit and the run).
fn as_version_1(bytes: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(bytes).expect("JSON");
    if let Some(o) = value.as_object_mut() {
        o.remove("checksum");
    }
    value["journalVersion"] = json!(1);
    edit(&mut value);
    serde_json::to_vec_pretty(&value).expect("JSON")
}

/// A hand edit of a journal.
type Edit = fn(&mut Value);

#[test]
fn an_edited_hops_list_is_caught_on_resume_and_changes_nothing() {
    let sb = External::start(&slow_scenario("controlPlaneUpdate: 50m"));
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| {
        t.replace(
            "upgradeControlPlane: { timeout: 60m }",
            "upgradeControlPlane: { timeout: 4h }",
        )
    });
    let mut run = sb.run_workflow(&wf, &[]).spawn();
    poll("the control-plane update to start", POLL_TIMEOUT, || {
        run.check(
            sb.journal_so_far()
                .is_some_and(|j| running_with_fact(&j, "control-plane", "updateId")),
        )
    });
    run.kill();
    let path = sb.journal_path().expect("the journal");
    let original = std::fs::read(&path).expect("journal");
    let resume = || {
        sb.eks_upgrade(&["resume", "--yes", "--time-scale", "600", "--ignore-window"])
            .run()
    };

    let edits: [(&str, Edit); 2] = [
        // A half-finished hop made "completed": the run would end as succeeded.
        ("completed", |j| {
            j["completedHops"] = json!(["1.34"]);
            j["state"] = json!({ "state": "upgrade", "hop": 2 });
        }),
        // The hop moved: the run would fail, restore the backup and roll the control plane back.
        ("hops", |j| j["hops"] = json!(["1.35"])),
    ];
    let mut seen = String::new();
    for (name, edit) in edits {
        std::fs::write(&path, as_version_1(&original, edit)).expect("edit");
        let before = sb.requests().len();
        let out = resume().code(5);
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("error:"))
            .collect();
        seen.push_str(&format!("--- {name}\n{}\n", errors.join("\n")));
        let changed: Vec<Value> = sb
            .writes_since(before)
            .into_iter()
            .filter(|r| {
                // Taking the run's own lock back and releasing it is all a refused resume does.
                !r["operation"]
                    .as_str()
                    .is_some_and(|o| o.contains("/leases/eks-upgrade"))
            })
            .collect();
        assert_eq!(
            changed,
            Vec::<Value>::new(),
            "{name}: the resume changed something"
        );
        let journal: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("journal")).expect("JSON");
        assert_eq!(journal["outcome"]["exitCode"], 5, "{name}: {journal}");
    }
    insta::assert_snapshot!("edited_hops_caught", redacted(&seen, &sb.state_dir()));
    assert_eq!(sb.count("eks", "UpdateClusterVersion"), 1);
    assert_eq!(
        sb.count(
            "kubernetes",
            "POST /apis/velero.io/v1/namespaces/velero/restores"
        ),
        0,
        "nothing was restored"
    );

    // The journal as the run wrote it resumes to the end.
    std::fs::write(&path, &original).expect("put back");
    resume().code(0);
    assert_eq!(sb.count("eks", "UpdateClusterVersion"), 1);
    assert_eq!(sb.cluster_version("demo"), "1.34");
}
