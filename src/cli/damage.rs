//! Journals that cannot be read or trusted, as the commands meet them: `run` refuses to start
//! over one of its cluster's until a person acknowledges it, `resume` without a run id will not
//! guess past one, and `resume` and `status` say what is wrong with one and how to go on, with exit codes that tell a scheduler a person is needed.

use crate::ui::Ui;
use eks_upgrade_core::exit::ExitStatus;
use eks_upgrade_core::journal::RunState;
use eks_upgrade_core::journal::store::{JournalStore, Listed, StoreError};

/// The variable (and `run --acknowledge`) naming the runs a person has looked at.
pub const ACKNOWLEDGED: &str = "EKS_UPGRADE_ACKNOWLEDGED_RUN";

/// Stops `run` (exit 5) when the store holds a damaged or unreadable journal that may be one of
/// this cluster's runs and that nobody acknowledged: that run may have stopped mid-upgrade, and
/// a new run would start over it blind.
pub async fn refuse_new_run(
    ui: &Ui,
    store: &JournalStore,
    cluster: &str,
    region: &str,
    acknowledged: &[String],
) -> Result<(), ExitStatus> {
    let damaged = match store
        .unacknowledged_damage(cluster, region, acknowledged)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            ui.error(format!(
                "cannot read the runs in {} to check for unfinished ones: {e}",
                store.describe()
            ));
            if let Some(hint) = crate::cli::session::journal_hint(&e.to_string()) {
                ui.hint(hint);
            }
            return Err(ExitStatus::Stopped);
        }
    };
    if damaged.is_empty() {
        return Ok(());
    }
    for d in &damaged {
        let whose = match &d.cluster {
            Some(c) => format!("cluster `{c}`"),
            None => "cluster unknown".into(),
        };
        ui.error(format!(
            "not starting: the journal of run `{}` ({whose}) cannot be used, and that run may have stopped mid-upgrade: {}",
            d.run_id, d.damaged
        ));
    }
    let ids: Vec<&str> = damaged.iter().map(|d| d.run_id.as_str()).collect();
    ui.hint(format!(
        "check the cluster first; once it is sound, acknowledge with `--acknowledge {}` (or `{ACKNOWLEDGED}={}`) to start new runs",
        ids.join(" --acknowledge "),
        ids.join(",")
    ));
    Err(ExitStatus::NeedsHuman)
}

/// Reports a journal that could not be loaded, with the exit code it means: 5 for one that is
/// damaged or refused (a person must look), 3 when the store cannot be read, 2 for a run that
/// is not there.
pub fn load_failed(ui: &Ui, e: &StoreError, run_id: &str) -> ExitStatus {
    ui.error(e);
    if let Some(h) = e.hint() {
        ui.hint(h);
    }
    match e {
        e if e.is_damaged() => {
            ui.hint(format!(
                "to start new runs without it: `run --acknowledge {run_id}` (or `{ACKNOWLEDGED}={run_id}`)"
            ));
            ExitStatus::NeedsHuman
        }
        StoreError::NotFound { .. } | StoreError::BadUrl(_) => {
            ui.hint("`eks-upgrade runs` lists the runs");
            ExitStatus::Usage
        }
        _ => ExitStatus::Stopped,
    }
}

/// The newest run that has not finished. A damaged journal newer than it may be the run to
/// resume, so then the run must be named.
pub async fn newest_unfinished(ui: &Ui, store: &JournalStore) -> Result<String, ExitStatus> {
    let listed = store.list().await.map_err(|e| {
        ui.error(e);
        ExitStatus::Stopped
    })?;
    for entry in listed {
        match entry {
            Listed::Run(r) if r.state != RunState::Done => return Ok(r.run_id),
            Listed::Run(_) => {}
            Listed::Damaged(d) => {
                ui.error(format!(
                    "cannot tell which run to resume: the newer run `{}` has a journal that cannot be used: {}",
                    d.run_id, d.damaged
                ));
                ui.hint("name the run: `eks-upgrade resume RUN_ID`; `eks-upgrade runs` lists them");
                return Err(ExitStatus::NeedsHuman);
            }
        }
    }
    ui.error(format!("no unfinished run in {}", store.describe()));
    Err(ExitStatus::Usage)
}
