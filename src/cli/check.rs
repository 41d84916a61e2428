//! `eks-upgrade check`: the workflow's pre-flight step alone, for people (a table) or machines
//! (`--output json`). It only reads: no journal, no lock, no prompt.

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::args::ClusterArgs;
use crate::cli::run::{Output, plan_failed};
use crate::cli::{inputs, session};
use crate::ui::Ui;
use crate::ui::reporter::{LogFormat, LogReporter};
use eks_upgrade_core::checks::FailOn;
use eks_upgrade_core::checks::{self, Finding, Severity};
use eks_upgrade_core::engine::plan;
use eks_upgrade_core::exit::ExitStatus;
use eks_upgrade_core::steps::StepKind;
use eks_upgrade_core::types::Version;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workflow file; its `preflight` step's `failOn`, `ignore` and `overrides` apply.
    #[arg(required_unless_present = "list_checks")]
    pub workflow: Option<PathBuf>,
    /// Print every check's code and what it looks at, and exit.
    #[arg(long)]
    pub list_checks: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The version to check the way to: `next`, `latest` or `MAJOR.MINOR`. Default: the
    /// workflow's.
    #[arg(long, value_name = "VERSION")]
    pub target: Option<String>,
    /// `text` for a table (stdout), `json` for machines.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Start the sandbox in-process (with SCENARIO, or the default healthy cluster) and check
    /// against it, as `run --sandbox` runs against it.
    #[arg(long, value_name = "SCENARIO", num_args = 0..=1, conflicts_with = "list_checks")]
    pub sandbox: Option<Option<PathBuf>>,
}

/// What `--output json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport<'a> {
    pub cluster: &'a str,
    pub current: Version,
    pub hops: &'a [Version],
    pub fail_on: FailOn,
    /// How many findings reach `failOn`: the run would stop when this is not zero.
    pub blocking: usize,
    pub findings: &'a [Finding],
}

pub fn run(ui: &Ui, args: Args) -> ExitStatus {
    if args.list_checks {
        for (code, what) in checks::CATALOG {
            println!("{code}  {what}");
        }
        return ExitStatus::Success;
    }
    if let (Some(scenario), Some(workflow)) = (&args.sandbox, &args.workflow) {
        if let Err(s) = inputs::check(ui, &[&|| inputs::check_cluster(&args.cluster)]) {
            return s;
        }
        let mut child = Vec::new();
        if let Some(t) = &args.target {
            child.extend(["--target".to_string(), t.clone()]);
        }
        if args.output == Output::Json {
            child.extend(["--output".to_string(), "json".to_string()]);
        }
        #[cfg(feature = "sandbox")]
        return super::sandboxed::check(ui, workflow, scenario.as_deref(), child);
        #[cfg(not(feature = "sandbox"))]
        {
            let _ = (scenario, workflow, child);
            return super::no_sandbox(ui, "check --sandbox");
        }
    }
    let rt = match session::runtime(ui) {
        Ok(r) => r,
        Err(s) => return s,
    };
    rt.block_on(check(ui, args))
}

async fn check(ui: &Ui, args: Args) -> ExitStatus {
    if let Err(s) = inputs::check(ui, &[&|| inputs::check_cluster(&args.cluster)]) {
        return s;
    }
    let Some(path) = &args.workflow else {
        ui.error("no workflow file given");
        return ExitStatus::Usage;
    };
    let workflow = match session::load_workflow(ui, path) {
        Ok(w) => w,
        Err(s) => return s,
    };
    let target = match session::parse_target(ui, args.target.as_deref()) {
        Ok(t) => t,
        Err(s) => return s,
    };
    let quiet = LogReporter {
        format: LogFormat::Text,
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
    let plan = match plan::resolve(&conn, &workflow, target).await {
        Ok(p) => p,
        Err(e) => return plan_failed(ui, &e),
    };
    // A workflow without a pre-flight step still gets the whole catalog, stopping on errors.
    let policy = workflow
        .prepare
        .iter()
        .find_map(|s| match &s.kind {
            StepKind::Preflight(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap_or_default();
    // The plan has just read the node groups, add-ons and versions; the checks use the same
    // reading.
    let facts = checks::Facts::new(
        &conn,
        &workflow.velero,
        workflow.coverage(),
        &plan.hops,
        plan.nodegroups.clone(),
        plan.addons.clone(),
    )
    .with_offered(plan.offered.clone());
    let findings = checks::apply_policy(checks::run_all(&facts).await, &policy);
    let blocking = checks::blocking(&findings, policy.fail_on).len();
    match args.output {
        Output::Json => {
            let report = CheckReport {
                cluster: &conn.cluster.name,
                current: conn.cluster.version,
                hops: &plan.hops,
                fail_on: policy.fail_on,
                blocking,
                findings: &findings,
            };
            match serde_json::to_string_pretty(&report) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    ui.error(format!("cannot write the findings as JSON: {e}"));
                    return ExitStatus::Stopped;
                }
            }
        }
        Output::Text => {
            let hops: Vec<String> = plan.hops.iter().map(|h| h.to_string()).collect();
            println!(
                "Pre-flight for cluster `{}` at {} → {}",
                conn.cluster.name,
                conn.cluster.version,
                if hops.is_empty() {
                    "no hops".to_string()
                } else {
                    hops.join(" → ")
                }
            );
            println!();
            print!("{}", table(&findings));
        }
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let summary = format!(
        "{} finding{}: {errors} error{}, {} warning{}",
        findings.len(),
        plural(findings.len()),
        plural(errors),
        findings.len() - errors,
        plural(findings.len() - errors)
    );
    if blocking == 0 {
        ui.info(format!(
            "{summary}; nothing reaches `failOn: {}`",
            fail_on_word(policy.fail_on)
        ));
        ExitStatus::Success
    } else {
        ui.error(format!(
            "{summary}; {blocking} reach{} `failOn: {}` and would stop the run",
            if blocking == 1 { "es" } else { "" },
            fail_on_word(policy.fail_on)
        ));
        ui.hint("fix them, or accept known exceptions with `preflight.ignore` or `preflight.overrides` in the workflow");
        ExitStatus::Stopped
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn fail_on_word(f: FailOn) -> &'static str {
    match f {
        FailOn::Error => "error",
        FailOn::Warning => "warning",
    }
}

/// The findings as an aligned table, each with its fix on the line below. Plain text: it is
/// data on stdout, which may be a file even when stderr is a terminal.
pub fn table(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "No findings.\n".to_string();
    }
    let object_width = findings
        .iter()
        .map(|f| f.object.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(6, 40);
    let mut out = format!(
        "{:<8} {:<7} {:<object_width$} FINDING\n",
        "SEVERITY", "CODE", "OBJECT"
    );
    for f in findings {
        let word = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let indent = " ".repeat(8 + 1 + 7 + 1 + object_width + 1);
        if f.object.chars().count() > object_width {
            // A name too long for the column gets a line of its own rather than pushing the
            // message out of alignment.
            out.push_str(&format!("{word:<8} {:<7} {}\n", f.code, f.object));
            out.push_str(&format!("{indent}{}\n", f.message));
        } else {
            out.push_str(&format!(
                "{word:<8} {:<7} {:<object_width$} {}\n",
                f.code, f.object, f.message
            ));
        }
        out.push_str(&format!("{indent}fix: {}\n", f.remedy));
        if let Some(why) = &f.overridden {
            out.push_str(&format!("{indent}severity set by the workflow: {why}\n"));
        }
    }
    out
}
