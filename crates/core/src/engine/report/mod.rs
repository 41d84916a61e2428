//! The run report: the post-upgrade or post-rollback assessment. What ran and how long it took,
//! what failed and why, what was restored, what could not be rolled back, and what to do next.
//! Written as JSON (with a schema, for machines) and as Markdown (for people and tickets).

mod blue_green;
mod markdown;
mod preview;
mod recovery;

pub use blue_green::BlueGreenReport;
pub use markdown::markdown;
pub use preview::RestorePreviewReport;

use schemars::JsonSchema;
use serde::Serialize;

use crate::journal::{Journal, RunResult, StepRecord, StepStatus};
use crate::steps::rollback::RollbackResult;
use crate::steps::{KindName, backup, restore, rollback, verify};

pub const REPORT_VERSION: u32 = 1;

pub use super::assess::{ClusterState, KubeletCount, NamedVersion};

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportStep {
    pub id: String,
    pub phase: String,
    pub hop: Option<String>,
    pub kind: String,
    pub title: String,
    /// `succeeded`, `failed`, `skipped` or `running` (interrupted).
    pub status: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_seconds: Option<f64>,
    pub summary: Option<String>,
    pub error: Option<String>,
    pub attempts: u32,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSummary {
    pub name: String,
    pub uid: Option<String>,
    pub verified: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub report_version: u32,
    pub run_id: String,
    pub workflow: String,
    pub cluster: String,
    pub region: String,
    pub started_at: String,
    pub updated_at: String,
    /// `succeeded`, `stopped`, `outsideWindow`, `restored`, `needsHuman`, `nothingToDo`, or
    /// `inProgress` for a run that has not ended.
    pub result: String,
    pub exit_code: Option<u8>,
    pub message: String,
    pub start_version: Option<String>,
    pub hops: Vec<String>,
    pub completed_hops: Vec<String>,
    pub failed_step: Option<String>,
    /// The hop (target version) whose step failed, when an `upgrade` step failed: the hops
    /// before it are in `completedHops`, the ones after it never started.
    pub failed_hop: Option<String>,
    pub failure: Option<String>,
    pub backups: Vec<BackupSummary>,
    pub restored: Option<String>,
    /// What the restore was about to change, worked out just before it ran.
    pub restore_preview: Option<RestorePreviewReport>,
    pub control_plane_rollback: Option<String>,
    /// What is still as the failed hop left it, and why.
    pub not_rolled_back: Vec<String>,
    /// What each recovery step did, in the order it ran (with EKS update ids).
    pub recovery: Vec<String>,
    /// The health problems that failed the hop, by name.
    pub health_problems: Vec<String>,
    /// The rollback-readiness insights EKS showed before the control-plane rollback.
    pub rollback_readiness: Vec<String>,
    pub cluster_state: Option<ClusterState>,
    pub steps: Vec<ReportStep>,
    pub next_steps: Vec<String>,
    /// Both clusters and the DNS weights over time, for a blue/green run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenReport>,
}

fn seconds_between(a: &str, b: &str) -> Option<f64> {
    let a = chrono::DateTime::parse_from_rfc3339(a).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(b).ok()?;
    Some((b - a).num_milliseconds() as f64 / 1000.0)
}

pub fn build(j: &Journal, state: Option<ClusterState>) -> RunReport {
    let steps: Vec<ReportStep> = j
        .steps
        .iter()
        .map(|s| ReportStep {
            id: s.key.id.clone(),
            phase: s.key.phase.key().into(),
            hop: s.key.hop.map(|h| h.to_string()),
            kind: s.kind.clone(),
            title: s.title.clone(),
            status: match s.status {
                StepStatus::Succeeded => "succeeded",
                StepStatus::Failed => "failed",
                StepStatus::Skipped => "skipped",
                StepStatus::Running => "running",
            }
            .into(),
            started_at: s.started_at.clone(),
            ended_at: s.ended_at.clone(),
            duration_seconds: s
                .ended_at
                .as_deref()
                .and_then(|e| seconds_between(&s.started_at, e)),
            summary: s.summary.clone(),
            error: s.error.clone(),
            attempts: s.attempts,
        })
        .collect();

    let is = |s: &StepRecord, kind: KindName| s.kind == kind.key();
    let verified: Vec<String> = j
        .steps
        .iter()
        .filter_map(|s| s.get(&verify::VERIFIED))
        .map(|v| v.backup)
        .collect();
    let backups: Vec<BackupSummary> = j
        .steps
        .iter()
        .filter(|s| is(s, KindName::VeleroBackup))
        .filter_map(|s| {
            let name = s.get(&backup::BACKUP)?;
            Some(BackupSummary {
                verified: verified.contains(&name),
                uid: s.get(&backup::BACKUP_UID).flatten(),
                name,
            })
        })
        .collect();
    let restored = j
        .steps
        .iter()
        .find(|s| is(s, KindName::VeleroRestore))
        .map(|s| {
            format!(
                "{}: {}",
                s.status_word(),
                s.summary.clone().unwrap_or_default()
            )
        });
    let restore_preview = j
        .steps
        .iter()
        .find(|s| is(s, KindName::VeleroRestore))
        .and_then(|s| {
            RestorePreviewReport::of(s.get(&restore::PREVIEW), s.get(&restore::PREVIEW_ERROR))
        });
    let rollback: Option<RollbackResult> = j
        .steps
        .iter()
        .filter(|s| is(s, KindName::RollbackControlPlane))
        .find_map(|s| s.get(&rollback::ROLLBACK));

    // The cluster as read now, or as recorded when recovery ended.
    let state = state.or_else(|| j.get(&super::assess::FINAL_STATE));
    let not_rolled_back = j
        .failure
        .as_ref()
        .map(|f| recovery::not_rolled_back(j, f, state.as_ref()))
        .unwrap_or_default();
    let health_problems = j
        .failure
        .as_ref()
        .map(|f| recovery::health_problems(j, f))
        .unwrap_or_default();
    let rollback_readiness = recovery::readiness(j);
    let recovery_actions = recovery::actions(j);

    let (result, exit_code, message) = match &j.outcome {
        Some(o) => (Some(o.result), Some(o.exit_code), o.message.clone()),
        None => (
            None,
            None,
            "the run has not finished; `eks-upgrade resume` continues it".to_string(),
        ),
    };
    let mut next_steps = Vec::new();
    let names: Vec<String> = backups.iter().map(|b| format!("`{}`", b.name)).collect();
    match result {
        Some(RunResult::Succeeded) => {
            next_steps.push("check the applications' own health and dashboards".into());
            if !names.is_empty() {
                next_steps.push(format!(
                    "the pre-upgrade backup {} is kept until its TTL expires",
                    names.join(", ")
                ));
            }
        }
        Some(RunResult::Stopped | RunResult::OutsideWindow) => {
            next_steps.push("nothing in the cluster was changed by the upgrade; fix what stopped the run, then run it again".into());
            if !names.is_empty() {
                next_steps.push(format!(
                    "backups made by this run are kept for inspection: {}",
                    names.join(", ")
                ));
            }
        }
        Some(RunResult::Restored) => {
            next_steps.push(if health_problems.is_empty() {
                "find out why the step failed before trying again (see the failure above)".into()
            } else {
                format!(
                    "fix what failed at the new version before trying again: {}",
                    health_problems.join("; ")
                )
            });
            if !not_rolled_back.is_empty() {
                next_steps.push("the components listed as not rolled back stay at their new versions; they are supported on the control plane's version".into());
            }
        }
        Some(RunResult::NeedsHuman) => {
            next_steps.push("a person must take over: read the failed recovery step's error and the cluster state below".into());
            if let Some(unsupported) = state
                .as_ref()
                .map(|s| &s.unsupported)
                .filter(|u| !u.is_empty())
            {
                next_steps.push(format!(
                    "bring the cluster back into a supported configuration: {}",
                    unsupported.join("; ")
                ));
            }
            if rollback_readiness.iter().any(|r| r.starts_with("ERROR")) {
                next_steps.push("resolve what the rollback-readiness insights above name, then roll the control plane back (`aws eks update-cluster-version`) while EKS still allows it, or fix forward at the new version".into());
            }
            if !names.is_empty() {
                next_steps.push(format!("the verified backup {} is intact and can be restored by hand: `velero restore create --from-backup NAME`", names.join(", ")));
            }
        }
        None => next_steps.push(format!("continue with `eks-upgrade resume {}`", j.run_id)),
        Some(RunResult::NothingToDo) => {}
    }

    let blue_green = BlueGreenReport::of(j);
    if let Some(bg) = &blue_green {
        // Blue was never changed in place: the in-place advice (restores, rollbacks) does not
        // apply.
        next_steps = bg.next_steps(result, &j.region);
    }
    RunReport {
        report_version: REPORT_VERSION,
        run_id: j.run_id.clone(),
        workflow: j.workflow_name.clone(),
        cluster: j.cluster.clone(),
        region: j.region.clone(),
        started_at: j.created_at.clone(),
        updated_at: j.updated_at.clone(),
        result: result.map_or("inProgress", RunResult::as_str).to_string(),
        exit_code,
        message,
        start_version: j.start_version.map(|v| v.to_string()),
        hops: j.hops.iter().map(|v| v.to_string()).collect(),
        completed_hops: j.completed_hops.iter().map(|v| v.to_string()).collect(),
        // An upgrade step's failure is recorded for recovery; a step of `prepare` that stopped
        // the run before any change is found among the steps.
        failed_step: j.failure.as_ref().map(|f| f.step.to_string()).or_else(|| {
            j.steps
                .iter()
                .find(|s| s.status == StepStatus::Failed)
                .map(|s| s.key.to_string())
        }),
        failed_hop: j
            .failure
            .as_ref()
            .and_then(|f| f.step.hop)
            .map(|h| h.to_string()),
        failure: j.failure.as_ref().map(|f| f.message.clone()),
        backups,
        restored,
        restore_preview,
        control_plane_rollback: rollback.map(|r| {
            if r.rolled_back {
                format!("rolled back {} → {} ({})", r.from, r.to, r.reason)
            } else {
                format!("not rolled back ({} → {}): {}", r.from, r.to, r.reason)
            }
        }),
        not_rolled_back,
        recovery: recovery_actions,
        health_problems,
        rollback_readiness,
        cluster_state: state,
        steps,
        next_steps,
        blue_green,
    }
}

impl crate::journal::StepRecord {
    fn status_word(&self) -> &'static str {
        match self.status {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Running => "interrupted",
        }
    }
}

/// The JSON Schema of the report.
pub fn schema() -> serde_json::Value {
    schemars::schema_for!(RunReport).to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_failed_step_changed_before_failing_is_not_rolled_back() {
        let step = |id: &str, kind: &str, facts: serde_json::Value| {
            serde_json::json!({
                "key": { "phase": "upgrade", "hop": "1.34", "id": id },
                "kind": kind, "title": id, "status": "failed",
                "startedAt": "2026-01-01T00:00:00Z", "facts": facts,
            })
        };
        let journal: Journal = serde_json::from_value(serde_json::json!({
            "journalVersion": 1, "runId": "r", "workflowName": "w", "workflowPath": "w.yaml",
            "workflowText": "", "cluster": "c", "region": "eu-west-1",
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
            "startVersion": "1.33", "hops": ["1.34"], "state": { "state": "done" },
            "failure": { "step": { "phase": "upgrade", "hop": "1.34", "id": "nodes" }, "message": "x" },
            "steps": [
                step("addons", "upgradeAddons", serde_json::json!({ "changed": { "coredns": "coredns a → b" } })),
                step("nodes", "upgradeNodegroups", serde_json::json!({ "upgraded": ["system → 1.34"] })),
            ],
        }))
        .expect("a journal");
        let report = build(&journal, None);
        assert_eq!(report.failed_hop.as_deref(), Some("1.34"));
        assert_eq!(
            report.not_rolled_back,
            [
                "add-ons (1.34): coredns a → b",
                "node groups (1.34): upgraded system → 1.34"
            ]
        );
    }
}
