//! `eks-upgrade backup restore NAME [--dry-run]`: restore a verified backup after checking its
//! files against its manifest, or with `--dry-run` only show what the restore would do.

use std::collections::BTreeMap;
use std::time::Duration;

use super::backup::{VeleroArgs, connect, locate, verify_backup};
use crate::cli::args::{ClusterArgs, StateArgs};
use crate::cli::run::Output;
use crate::ui::Ui;
use eks_upgrade_core::exit::ExitStatus;
use eks_upgrade_core::state::{load_verification, state_dir};
use eks_upgrade_core::velero::gate;
use eks_upgrade_core::velero::manifest::check::Trust;
use eks_upgrade_core::velero::objects;
use eks_upgrade_core::velero::preview::{Action, Listing, Preview};
use eks_upgrade_core::velero::restore::{self, ExistingResourcePolicy, RestoreSpec};
use eks_upgrade_core::velero::verify::VerifyDepth;

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The Backup's name.
    pub name: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub velero: VeleroArgs,
    /// Verify the backup in S3 (full depth) now, instead of relying on an earlier
    /// `backup verify`.
    #[arg(long)]
    pub verify: bool,
    /// Leave objects that still exist as they are, instead of updating them to the backup.
    #[arg(long)]
    pub keep_existing: bool,
    /// Namespaces to restore (repeatable). Default: all in the backup.
    #[arg(long = "include-namespace", value_name = "NAMESPACE")]
    pub include_namespaces: Vec<String>,
    /// Namespaces to leave out (repeatable).
    #[arg(long = "exclude-namespace", value_name = "NAMESPACE")]
    pub exclude_namespaces: Vec<String>,
    /// Restore a namespace's objects into another: `OLD=NEW` (repeatable).
    #[arg(long = "namespace-mapping", value_name = "OLD=NEW", value_parser = mapping)]
    pub namespace_mapping: Vec<(String, String)>,
    /// Only show what the restore would create, update, leave unchanged or skip; restore
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Restore without previewing first.
    #[arg(long, conflicts_with = "dry_run")]
    pub no_preview: bool,
    /// With `--dry-run`: list unchanged objects too (table and JSON); otherwise they are only
    /// counted.
    #[arg(long)]
    pub show_unchanged: bool,
    /// `text` (a table) or `json` for the preview.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Require the manifest to be signed by this KMS key (key id, key ARN, `alias/NAME` or
    /// alias ARN), checked with `kms:Verify`.
    #[arg(long, value_name = "KMS_KEY")]
    pub kms_key: Option<String>,
    /// How long to wait for the restore.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub timeout: eks_upgrade_core::types::HumanDuration,
    #[command(flatten)]
    pub state: StateArgs,
}

fn mapping(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((old, new)) if !old.is_empty() && !new.is_empty() => {
            Ok((old.to_string(), new.to_string()))
        }
        _ => Err(format!("`{text}` is not `OLD=NEW`")),
    }
}

/// Establishes that `args.name` was verified (now, or by an earlier `backup verify`) and what
/// is known of its manifest.
async fn proof(
    ui: &Ui,
    conn: &eks_upgrade_core::cloud::connect::Connection,
    args: &RestoreArgs,
) -> Result<(Option<String>, Trust), ExitStatus> {
    let ns = &args.velero.velero_namespace;
    let mut trust = Trust {
        sha256: None,
        kms_key: args.kms_key.clone(),
    };
    if args.verify {
        let v = verify_backup(ui, conn, ns, &args.name, VerifyDepth::Full).await?;
        if !v.verification.sound {
            ui.error(format!(
                "refusing to restore `{}`: it failed verification in S3",
                args.name
            ));
            return Err(ExitStatus::Stopped);
        }
        return Ok((v.uid, trust));
    }
    let record = state_dir(args.state.state_dir.as_deref())
        .and_then(|d| load_verification(&d, &conn.cluster.region, &conn.cluster.name, &args.name));
    let current = objects::backups(conn.kube.clone(), ns)
        .get_opt(&args.name)
        .await
        .ok()
        .flatten()
        .and_then(|o| o.metadata.uid);
    match record {
        Ok(Some(r)) if r.sound && Some(&r.uid) == current.as_ref() => {
            trust.sha256 = r.manifest_sha256.clone();
            if trust.kms_key.is_none() {
                trust.kms_key = r.manifest_signed_by.clone();
            }
            Ok((current, trust))
        }
        Ok(Some(_)) => {
            ui.error(format!(
                "refusing to restore `{}`: it changed since it was verified (its uid differs)",
                args.name
            ));
            ui.hint("verify it again, or pass `--verify` to verify it now");
            Err(ExitStatus::Stopped)
        }
        Ok(None) => {
            ui.error(format!(
                "refusing to restore `{}`: it has not been verified in S3",
                args.name
            ));
            ui.hint(format!(
                "run `eks-upgrade backup verify {}` first, or pass `--verify` to verify it now",
                args.name
            ));
            Err(ExitStatus::Stopped)
        }
        Err(e) => {
            ui.error(e);
            Err(ExitStatus::Stopped)
        }
    }
}

pub async fn restore_cmd(ui: &Ui, args: RestoreArgs) -> ExitStatus {
    let conn = match connect(ui, &args.cluster).await {
        Ok(c) => c,
        Err(s) => return s,
    };
    let ns = args.velero.velero_namespace.clone();
    let (uid, trust) = match proof(ui, &conn, &args).await {
        Ok(x) => x,
        Err(s) => return s,
    };
    let run_id = format!("manual-{}", chrono::Utc::now().format("%Y%m%dt%H%M%Sz"));
    let name = format!("eks-upgrade-{run_id}-restore");
    let spec = RestoreSpec {
        existing_resource_policy: if args.keep_existing {
            ExistingResourcePolicy::None
        } else {
            ExistingResourcePolicy::Update
        },
        included_namespaces: (!args.include_namespaces.is_empty())
            .then(|| args.include_namespaces.clone()),
        excluded_namespaces: args.exclude_namespaces.clone(),
        namespace_mapping: args
            .namespace_mapping
            .iter()
            .cloned()
            .collect::<BTreeMap<_, _>>(),
    };
    let object = restore::restore_object(&name, &args.name, &run_id, &conn.cluster.name, &spec);

    let (s3, target, _) = match locate(ui, &conn, &ns, &args.name).await {
        Ok(x) => x,
        Err(s) => return s,
    };
    let kms = trust
        .kms_key
        .as_ref()
        .map(|_| aws_sdk_kms::Client::new(&conn.sdk));
    let restore_spec = object.data.get("spec").cloned().unwrap_or_default();
    let checked = match gate::check(
        &s3,
        kms.as_ref(),
        &conn.kube,
        &target,
        &trust,
        &restore_spec,
        (!args.no_preview).then_some(if args.show_unchanged {
            Listing::Everything
        } else {
            Listing::Changes
        }),
        None,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            ui.error(format!("refusing to restore `{}`: {e}", args.name));
            if e.is_mismatch() {
                ui.hint(format!(
                    "`{}` is no longer what was verified; do not restore from it before finding out why",
                    e.key()
                ));
            } else {
                ui.hint(format!(
                    "the files could not be checked against the manifest; check access to `{}` (and to the KMS key, if the manifest is signed), then try again",
                    e.key()
                ));
            }
            return ExitStatus::Stopped;
        }
    };
    if let Some(m) = &checked.manifest {
        ui.info(format!(
            "{} the backup's {} files match its manifest{}",
            ui.good("✓"),
            m.manifest.files.len(),
            m.signed_by
                .as_ref()
                .map(|k| format!(", signed by `{k}`"))
                .unwrap_or_default()
        ));
    } else {
        ui.warn(format!(
            "`{}` has no manifest: its files cannot be checked against what was verified",
            args.name
        ));
    }
    match &checked.preview {
        Some(Ok(p)) => {
            ui.info(format!("Restore preview: {}", p.summary()));
            if args.dry_run {
                print_preview(p, args.output, args.show_unchanged);
                return ExitStatus::Success;
            }
        }
        Some(Err(e)) => {
            if args.dry_run {
                ui.error(format!(
                    "cannot preview the restore of `{}`: {e}",
                    args.name
                ));
                return ExitStatus::Stopped;
            }
            ui.warn(format!("no restore preview: {e}"));
        }
        None => {}
    }

    if let Err(e) = restore::create_or_adopt(conn.kube.clone(), &ns, &object, &run_id).await {
        ui.error(e);
        return ExitStatus::NeedsHuman;
    }
    ui.info(format!(
        "Restore `{name}` from `{}` (uid {}) created; waiting for Velero",
        args.name,
        uid.unwrap_or_default()
    ));
    match restore::wait(
        conn.kube.clone(),
        &ns,
        &name,
        &args.name,
        args.timeout.0.max(Duration::from_secs(1)),
        |_| {},
    )
    .await
    {
        Ok(o) if o.completed() => {
            ui.info(format!(
                "{} {} items from `{}` ({} warnings)",
                ui.good("Restored"),
                o.status.items_done.unwrap_or(0),
                args.name,
                o.status.warnings
            ));
            ExitStatus::Success
        }
        Ok(o) => {
            ui.error(format!(
                "Restore `{name}` ended {}: {} errors, {} warnings",
                o.status.phase.as_deref().unwrap_or("?"),
                o.status.errors,
                o.status.warnings
            ));
            ExitStatus::NeedsHuman
        }
        Err(e) => {
            ui.error(e);
            ExitStatus::NeedsHuman
        }
    }
}

/// The preview on stdout: a table (unchanged objects only with `show_unchanged`), or JSON.
fn print_preview(p: &Preview, output: Output, show_unchanged: bool) {
    if output == Output::Json {
        // Streamed: the document of a large backup is megabytes.
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let _ = serde_json::to_writer_pretty(&mut out, p);
        let _ = writeln!(out);
        return;
    }
    let rows: Vec<[String; 5]> = p
        .items
        .iter()
        .filter(|i| show_unchanged || i.action != Action::Unchanged)
        .map(|i| {
            let detail = if i.changes.is_empty() {
                i.reason.clone().unwrap_or_default()
            } else {
                i.changes.join("; ")
            };
            let namespace = match (&i.namespace, &i.from_namespace) {
                (Some(ns), Some(from)) => format!("{ns} (from {from})"),
                (Some(ns), None) => ns.clone(),
                (None, _) => "-".into(),
            };
            [
                i.action.word().to_string(),
                i.kind.clone(),
                namespace,
                i.name.clone(),
                detail,
            ]
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let header = ["ACTION", "KIND", "NAMESPACE", "NAME", "DETAIL"].map(str::to_string);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (w, cell) in widths.iter().zip(row) {
            line.push_str(&format!("{cell:<w$}  ", w = *w));
        }
        line.push_str(&row[4]);
        println!("{}", line.trim_end());
    }
}
