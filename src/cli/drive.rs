//! Driving a run once it is planned and journaled: the lock, the engine, signals, and the
//! reports at the end. Shared by `run` and `resume`.

use std::path::PathBuf;

use crate::cli::args::{FaceArgs, RunArgs, StateArgs};
use crate::cli::inputs::ReportFormat;
use crate::cli::run::exit_of;
use crate::ui::Ui;
use crate::ui::reporter::Reporter;
use eks_upgrade_core::cloud::connect::Connection;
use eks_upgrade_core::engine::lock::{LockError, RunLock};
use eks_upgrade_core::engine::locks::LockSet;
use eks_upgrade_core::engine::report;
use eks_upgrade_core::engine::run::{Engine, RunOptions};
use eks_upgrade_core::events::{Event, Level};
use eks_upgrade_core::exit::ExitStatus;
use eks_upgrade_core::journal::handle::JournalHandle;
use eks_upgrade_core::journal::{Outcome, RunResult, RunState, now};
use eks_upgrade_core::workflow::Workflow;

/// Waits for SIGINT or SIGTERM.
async fn signalled() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// After an interrupt of a blue/green run whose traffic moved: the weights as last recorded,
/// and the one command that puts every request back on blue, for a person who will not resume.
async fn split_traffic(
    conn: &Connection,
    workflow: &Workflow,
    journal: &JournalHandle,
) -> Option<String> {
    use eks_upgrade_core::steps::green;
    let traffic = workflow.blue_green.as_ref()?.traffic.as_ref()?;
    let points = green::traffic(journal).await;
    let last = points.last().filter(|_| green::moved(&points))?;
    let command = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        green::switch_back_command(conn, traffic),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .map(|c| format!("; to put every request on blue without resuming, run:\n  {c}"))
    .unwrap_or_default();
    Some(format!(
        "traffic is split: blue {}/green {} as last recorded{command}",
        last.blue, last.green
    ))
}

/// Takes the lock, runs the engine until it ends or a signal arrives, then reports.
#[allow(clippy::too_many_arguments)]
pub async fn drive(
    ui: &Ui,
    conn: &Connection,
    workflow: &Workflow,
    journal: &JournalHandle,
    reporter: &dyn Reporter,
    face: &FaceArgs,
    run: &RunArgs,
    state: &StateArgs,
    resumed: bool,
) -> ExitStatus {
    let snapshot = journal.snapshot().await;
    let run_id = snapshot.run_id.clone();
    let scaled = workflow.with_time_scale(run.time_scale);
    let lock = match RunLock::acquire(conn.kube.clone(), &workflow.velero.namespace, &run_id).await
    {
        Ok(l) => l,
        Err(e) => {
            ui.error(&e);
            if matches!(e, LockError::Held { .. }) {
                ui.hint("wait for that run to finish; a lease that is not renewed for a minute may be taken over");
            }
            let stopped = Outcome {
                result: RunResult::Stopped,
                exit_code: ExitStatus::Stopped.code(),
                message: e.to_string(),
            };
            if !resumed {
                let _ = journal
                    .update(|j| {
                        j.outcome = Some(stopped);
                        j.state = RunState::Done;
                    })
                    .await;
            }
            return ExitStatus::Stopped;
        }
    };
    let locks = LockSet::new(lock);
    reporter.emit(&Event::RunStarted {
        run_id: &run_id,
        workflow: &snapshot.workflow_name,
        cluster: &snapshot.cluster,
        region: &snapshot.region,
        from: snapshot.start_version,
        hops: &snapshot.hops,
        resumed,
    });
    let state_dir = eks_upgrade_core::state::state_dir(state.state_dir.as_deref())
        .unwrap_or_else(|_| std::env::temp_dir());
    let engine = Engine {
        conn,
        workflow: &scaled,
        journal,
        reporter,
        options: RunOptions {
            yes: face.yes,
            enforce_window: !face.interactive() && !run.ignore_window,
            state_dir,
        },
        green: Default::default(),
        locks: &locks,
    };
    let started = std::time::Instant::now();
    let mut lost = locks.lost();
    // A resumed run first checks what its journal claims against EKS.
    let go = async {
        if resumed && let Some(refused) = engine.verify_resume().await? {
            return Ok(refused);
        }
        engine.execute().await
    };
    let result = tokio::select! {
        r = go => Some(r),
        _ = signalled() => None,
        _ = lost.changed() => None,
    };
    locks.release().await;
    let status = match result {
        Some(Ok(outcome)) => {
            reporter.emit(&Event::RunFinished {
                run_id: &run_id,
                result: outcome.result.as_str(),
                exit_code: outcome.exit_code,
                message: &outcome.message,
                duration_ms: started.elapsed().as_millis() as u64,
            });
            exit_of(outcome.exit_code)
        }
        Some(Err(e)) => {
            reporter.emit(&Event::Message { level: Level::Error, message: &format!("{e}; the run stopped; `eks-upgrade resume {run_id}` continues it once the journal can be written") });
            ExitStatus::NeedsHuman
        }
        None => {
            let _ = journal.update(|j| j.interrupted_at = Some(now())).await;
            reporter.emit(&Event::Message {
                level: Level::Warning,
                message: &format!("interrupted; operations already started on AWS continue there. Continue with `eks-upgrade resume {run_id}`"),
            });
            if let Some(line) = split_traffic(conn, workflow, journal).await {
                reporter.emit(&Event::Message {
                    level: Level::Warning,
                    message: &line,
                });
            }
            ExitStatus::Interrupted
        }
    };
    write_reports(ui, conn, journal, &run.report).await;
    status
}

async fn write_reports(ui: &Ui, conn: &Connection, journal: &JournalHandle, paths: &[PathBuf]) {
    if paths.is_empty() {
        return;
    }
    let state = eks_upgrade_core::engine::assess::cluster_state(conn).await;
    let report = report::build(&journal.snapshot().await, Some(state));
    for path in paths {
        // The format was checked with the rest of the command line, before the run started.
        let text = match crate::cli::inputs::report_format(path) {
            Ok(ReportFormat::Markdown) => report::markdown(&report),
            Ok(ReportFormat::Json) => match serde_json::to_string_pretty(&report) {
                Ok(t) => t,
                Err(e) => {
                    ui.error(format!(
                        "cannot write the report `{}` as JSON: {e}",
                        path.display()
                    ));
                    continue;
                }
            },
            Err(p) => {
                ui.error(p.error);
                continue;
            }
        };
        match eks_upgrade_core::state::write_atomic(path, text.as_bytes()) {
            Ok(()) => ui.info(format!("Report written to `{}`", path.display())),
            Err(e) => ui.error(e),
        }
    }
}
