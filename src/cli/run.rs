//! `eks-upgrade plan`, `run` and `resume`.

use std::path::PathBuf;

use crate::cli::args::{ClusterArgs, FaceArgs, RunArgs, StateArgs};
use crate::cli::{inputs, session};
use crate::ui::Ui;
use crate::ui::reporter::{LogReporter, Reporter, TerminalReporter};
use eks_upgrade_core::cloud::connect::Connection;
use eks_upgrade_core::engine::plan;
use eks_upgrade_core::exit::ExitStatus;
use eks_upgrade_core::journal::handle::JournalHandle;
use eks_upgrade_core::journal::{JOURNAL_VERSION, Journal, RunState, new_run_id, now};
use eks_upgrade_core::workflow::{StepKind, Workflow};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The workflow file.
    pub workflow: PathBuf,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The version to end at: `next`, `latest` or `MAJOR.MINOR`. Default: the workflow's.
    #[arg(long, value_name = "VERSION")]
    pub target: Option<String>,
    /// `text` for people (stdout), `json` for machines.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct RunCmdArgs {
    /// The workflow file.
    pub workflow: PathBuf,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The version to end at: `next`, `latest` or `MAJOR.MINOR`. Default: the workflow's.
    #[arg(long, value_name = "VERSION")]
    pub target: Option<String>,
    #[command(flatten)]
    pub face: FaceArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// A run whose journal is damaged, acknowledged by a person who checked the cluster: new
    /// runs start despite it. Repeatable, or comma-separated in the variable.
    #[arg(
        long,
        value_name = "RUN_ID",
        env = "EKS_UPGRADE_ACKNOWLEDGED_RUN",
        value_delimiter = ','
    )]
    pub acknowledge: Vec<String>,
    /// Start the sandbox in-process (with SCENARIO, or the default healthy cluster) and run
    /// against it.
    #[arg(long, value_name = "SCENARIO", num_args = 0..=1)]
    pub sandbox: Option<Option<PathBuf>>,
}

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The run to continue. Default: the newest run that has not finished.
    pub run_id: Option<String>,
    /// The AWS profile to use. Default: the standard credential chain.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Use this kubeconfig context (checked against EKS) instead of building the client from EKS.
    #[arg(long, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
    #[command(flatten)]
    pub face: FaceArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

fn reporter(ui: &Ui, face: &FaceArgs) -> Box<dyn Reporter> {
    if face.interactive() {
        Box::new(TerminalReporter::new(*ui))
    } else {
        Box::new(LogReporter {
            format: face.log_format,
        })
    }
}

pub fn plan(ui: &Ui, args: PlanArgs) -> ExitStatus {
    if let Err(s) = inputs::check(ui, &[&|| inputs::check_cluster(&args.cluster)]) {
        return s;
    }
    let rt = match session::runtime(ui) {
        Ok(r) => r,
        Err(s) => return s,
    };
    rt.block_on(async {
        let workflow = match session::load_workflow(ui, &args.workflow) {
            Ok(w) => w,
            Err(s) => return s,
        };
        let target = match session::parse_target(ui, args.target.as_deref()) {
            Ok(t) => t,
            Err(s) => return s,
        };
        let quiet = LogReporter {
            format: crate::ui::reporter::LogFormat::Text,
        };
        let connect_target =
            match session::choose_cluster(ui, &args.cluster, Some(&workflow), &quiet).await {
                Ok(t) => t,
                Err(s) => return s,
            };
        let conn = match session::connect(ui, &connect_target).await {
            Ok(c) => c,
            Err(s) => return s,
        };
        match plan::resolve(&conn, &workflow, target).await {
            Ok(p) => {
                match args.output {
                    Output::Text => print!("{}", plan::render(&p)),
                    Output::Json => return print_json(ui, &p),
                }
                ExitStatus::Success
            }
            Err(e) => plan_failed(ui, &e),
        }
    })
}

/// One JSON document and a newline on stdout, or nothing there and an error: stdout never
/// carries an empty or partial document.
pub(crate) fn print_json(ui: &Ui, value: &impl serde::Serialize) -> ExitStatus {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            ExitStatus::Success
        }
        Err(e) => {
            ui.error(format!("cannot write the result as JSON: {e}"));
            ExitStatus::Stopped
        }
    }
}

pub(crate) fn plan_failed(ui: &Ui, e: &plan::PlanError) -> ExitStatus {
    ui.error(e);
    match e {
        plan::PlanError::Hops(h) => {
            ui.hint(h.hint());
            ExitStatus::Usage
        }
        plan::PlanError::NoTarget => ExitStatus::Usage,
        plan::PlanError::Eks(_) => ExitStatus::Stopped,
    }
}

/// An unattended run must be told it may change the cluster.
fn require_consent(ui: &Ui, face: &FaceArgs, workflow: &Workflow) -> Result<(), ExitStatus> {
    if face.interactive() || face.yes {
        return Ok(());
    }
    let approvals: Vec<&str> = workflow
        .steps()
        .filter(|(_, s)| matches!(&s.kind, StepKind::Approval(a) if !a.auto))
        .map(|(_, s)| s.id.as_str())
        .collect();
    if approvals.is_empty() {
        ui.error("this run is unattended (no terminal) and would change the cluster without anyone approving it");
    } else {
        ui.error(format!(
            "approval step `{}` needs a person, and there is no terminal to ask on",
            approvals.join("`, `")
        ));
    }
    ui.hint("pass `--yes` to approve in advance, as a scheduled run does");
    Err(ExitStatus::Usage)
}

/// The checks of `run`'s command line, made before the sandbox, the workflow or AWS.
fn check_run_args(ui: &Ui, args: &RunCmdArgs) -> Result<(), ExitStatus> {
    inputs::check(
        ui,
        &[
            &|| inputs::check_cluster(&args.cluster),
            &|| inputs::check_run(&args.run),
            &|| inputs::check_state(&args.state),
        ],
    )
}

pub fn run(ui: &Ui, args: RunCmdArgs) -> ExitStatus {
    if let Err(s) = check_run_args(ui, &args) {
        return s;
    }
    if let Some(scenario) = &args.sandbox {
        #[cfg(feature = "sandbox")]
        return super::sandboxed::run(ui, &args, scenario.as_deref());
        #[cfg(not(feature = "sandbox"))]
        {
            let _ = scenario;
            return super::no_sandbox(ui, "run --sandbox");
        }
    }
    let rt = match session::runtime(ui) {
        Ok(r) => r,
        Err(s) => return s,
    };
    rt.block_on(start(ui, args))
}

async fn start(ui: &Ui, args: RunCmdArgs) -> ExitStatus {
    let workflow_text = match eks_upgrade_core::format::source::read(&args.workflow) {
        Ok(t) => t,
        Err(e) => {
            ui.diagnostic(&eks_upgrade_core::workflow::render(
                &e,
                ui.diagnostic_style(),
            ));
            return ExitStatus::Usage;
        }
    };
    let workflow = match eks_upgrade_core::workflow::parse(&args.workflow, workflow_text.clone()) {
        Ok(w) => w,
        Err(e) => {
            ui.diagnostic(&eks_upgrade_core::workflow::render(
                &e,
                ui.diagnostic_style(),
            ));
            return ExitStatus::Usage;
        }
    };
    super::logging::register_workflow_secrets(&workflow);
    if let Err(s) = require_consent(ui, &args.face, &workflow) {
        return s;
    }
    let target = match session::parse_target(ui, args.target.as_deref()) {
        Ok(t) => t,
        Err(s) => return s,
    };
    let reporter = reporter(ui, &args.face);
    let connect_target = match session::choose_cluster(
        ui,
        &args.cluster,
        Some(&workflow),
        reporter.as_ref(),
    )
    .await
    {
        Ok(t) => t,
        Err(s) => return s,
    };
    let conn = match session::connect(ui, &connect_target).await {
        Ok(c) => c,
        Err(s) => return s,
    };
    let store = match session::open_store(ui, &args.state, Some(&conn.sdk)) {
        Ok(s) => s,
        Err(s) => return s,
    };
    if let Err(s) = super::damage::refuse_new_run(
        ui,
        &store,
        &conn.cluster.name,
        &conn.cluster.region,
        &args.acknowledge,
    )
    .await
    {
        return s;
    }
    let target = match target.or(workflow.target) {
        Some(t) => Some(t),
        None if reporter.interactive() => match choose_target(&conn, reporter.as_ref()).await {
            Ok(t) => Some(t),
            Err(message) => {
                ui.error(message);
                return ExitStatus::Usage;
            }
        },
        None => None,
    };
    let plan = match plan::resolve(&conn, &workflow, target).await {
        Ok(p) => p,
        Err(e) => return plan_failed(ui, &e),
    };
    if args.face.log_format == crate::ui::reporter::LogFormat::Text {
        ui.info(plan::render(&plan));
    }
    if reporter.interactive() {
        match reporter.confirm("Start this run?") {
            Ok(true) => {}
            Ok(false) => {
                ui.info("Nothing was changed.");
                return ExitStatus::Stopped;
            }
            Err(e) => {
                ui.error(e);
                return ExitStatus::Usage;
            }
        }
    }
    let run_id = new_run_id();
    let created = now();
    let journal = Journal {
        journal_version: JOURNAL_VERSION,
        run_id: run_id.clone(),
        created_at: created.clone(),
        updated_at: created,
        workflow_name: workflow.name.clone(),
        workflow_path: args.workflow.display().to_string(),
        workflow_text: workflow_text.to_string(),
        cluster: conn.cluster.name.clone(),
        region: conn.cluster.region.clone(),
        profile: connect_target.profile.clone(),
        start_version: Some(plan.from),
        hops: plan.hops.clone(),
        completed_hops: Vec::new(),
        state: RunState::Started,
        steps: Vec::new(),
        failure: None,
        outcome: None,
        approved: args.face.yes,
        interrupted_at: None,
        facts: Default::default(),
    };
    let handle = JournalHandle::new(journal, store);
    if let Err(e) = handle.update(|_| ()).await {
        let message = e.to_string();
        ui.error(format!("cannot write the journal: {message}"));
        if let Some(hint) = session::journal_hint(&message) {
            ui.hint(hint);
        }
        return ExitStatus::Stopped;
    }
    super::drive::drive(
        ui,
        &conn,
        &workflow,
        &handle,
        reporter.as_ref(),
        &args.face,
        &args.run,
        &args.state,
        false,
    )
    .await
}

async fn choose_target(
    conn: &Connection,
    reporter: &dyn Reporter,
) -> Result<eks_upgrade_core::workflow::Target, String> {
    let offered = eks_upgrade_core::cloud::eks::offered_versions(&conn.eks)
        .await
        .map_err(|e| e.to_string())?;
    let newer: Vec<_> = offered
        .into_iter()
        .filter(|o| o.version > conn.cluster.version)
        .collect();
    if newer.is_empty() {
        return Err(format!(
            "the cluster runs {}, the newest version EKS offers",
            conn.cluster.version
        ));
    }
    let items: Vec<String> = newer
        .iter()
        .map(|o| {
            format!(
                "{} ({})",
                o.version,
                o.status.to_lowercase().replace('_', " ")
            )
        })
        .collect();
    let i = reporter
        .select(
            &format!(
                "The cluster runs {}. Upgrade to which version?",
                conn.cluster.version
            ),
            &items,
            0,
        )
        .map_err(|e| e.to_string())?;
    Ok(eks_upgrade_core::workflow::Target::Version(
        newer[i].version,
    ))
}

pub fn resume(ui: &Ui, args: ResumeArgs) -> ExitStatus {
    let checks = inputs::check(
        ui,
        &[
            &|| args.run_id.as_deref().map_or(Ok(()), inputs::check_run_id),
            &|| inputs::check_profile(args.profile.as_deref()),
            &|| {
                inputs::check_cluster(&crate::cli::args::ClusterArgs {
                    cluster: None,
                    region: None,
                    profile: None,
                    kube_context: args.kube_context.clone(),
                })
            },
            &|| inputs::check_run(&args.run),
            &|| inputs::check_state(&args.state),
        ],
    );
    if let Err(s) = checks {
        return s;
    }
    let rt = match session::runtime(ui) {
        Ok(r) => r,
        Err(s) => return s,
    };
    rt.block_on(resume_async(ui, args))
}

async fn resume_async(ui: &Ui, args: ResumeArgs) -> ExitStatus {
    // The store may be S3, which needs credentials before the journal says which region.
    let sdk = if args.state.state.is_some() {
        match eks_upgrade_core::cloud::connect::load_sdk(None, args.profile.as_deref()).await {
            Ok(s) => Some(s),
            Err(e) => return session::connect_failed(ui, &e),
        }
    } else {
        None
    };
    let store = match session::open_store(ui, &args.state, sdk.as_ref()) {
        Ok(s) => s,
        Err(s) => return s,
    };
    let run_id = match &args.run_id {
        Some(id) => id.clone(),
        None => match super::damage::newest_unfinished(ui, &store).await {
            Ok(id) => id,
            Err(s) => return s,
        },
    };
    let journal = match store.load(&run_id).await {
        Ok(j) => j,
        Err(e) => return super::damage::load_failed(ui, &e, &run_id),
    };
    if journal.state == RunState::Done {
        let o = journal.outcome.clone();
        ui.info(format!(
            "Run `{run_id}` already finished: {}",
            o.as_ref().map(|o| o.message.as_str()).unwrap_or("")
        ));
        return o
            .map(|o| exit_of(o.exit_code))
            .unwrap_or(ExitStatus::Success);
    }
    // The workflow is the journal's own copy: its problems are the journal's, located in it,
    // whatever the file it was once read from says now.
    let location = store.location(&run_id);
    let workflow = match eks_upgrade_core::workflow::parse(
        std::path::Path::new(&format!("{location}#workflowText")),
        journal.workflow_text.clone().into(),
    ) {
        Ok(w) => w,
        Err(e) => {
            ui.diagnostic(&eks_upgrade_core::workflow::render(
                &e,
                ui.diagnostic_style(),
            ));
            ui.error(format!(
                "the workflow stored in journal `{location}` (`workflowText`, read from `{}` when the run started) is not valid, so the run cannot go on",
                journal.workflow_path
            ));
            ui.hint(format!(
                "a resume runs the stored copy, never the file; once the cluster is checked, acknowledge the run (`EKS_UPGRADE_ACKNOWLEDGED_RUN={run_id}`) and start a new one"
            ));
            return ExitStatus::NeedsHuman;
        }
    };
    super::logging::register_workflow_secrets(&workflow);
    if let Err(s) = require_consent(ui, &args.face, &workflow) {
        return s;
    }
    let reporter = reporter(ui, &args.face);
    let target = eks_upgrade_core::cloud::connect::Target {
        cluster: journal.cluster.clone(),
        region: Some(journal.region.clone()),
        profile: args.profile.clone().or(journal.profile.clone()),
        kube_context: args.kube_context.clone(),
    };
    let conn = match session::connect(ui, &target).await {
        Ok(c) => c,
        Err(s) => return s,
    };
    let handle = JournalHandle::new(journal, store);
    super::drive::drive(
        ui,
        &conn,
        &workflow,
        &handle,
        reporter.as_ref(),
        &args.face,
        &args.run,
        &args.state,
        true,
    )
    .await
}

pub fn exit_of(code: u8) -> ExitStatus {
    match code {
        0 => ExitStatus::Success,
        2 => ExitStatus::Usage,
        3 => ExitStatus::Stopped,
        4 => ExitStatus::Restored,
        130 => ExitStatus::Interrupted,
        _ => ExitStatus::NeedsHuman,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_round_trip() {
        for s in [
            ExitStatus::Success,
            ExitStatus::Usage,
            ExitStatus::Stopped,
            ExitStatus::Restored,
            ExitStatus::NeedsHuman,
            ExitStatus::Interrupted,
        ] {
            assert_eq!(exit_of(s.code()), s);
        }
    }
}
