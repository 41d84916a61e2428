//! `eks-upgrade backup create | verify | restore`: the Velero steps for operators, outside a
//! workflow, with the same safety rules (a restore only from a backup verified in S3, whose
//! files still match the manifest written when it was verified).

use crate::cli::args::{ClusterArgs, StateArgs};
use crate::cli::inputs;
use crate::cli::run::{Output, print_json};
use crate::cli::session;
use crate::ui::Ui;
use eks_upgrade_core::cloud::connect::Connection;
use eks_upgrade_core::exit::ExitStatus;
use eks_upgrade_core::state::{VerificationRecord, save_verification, state_dir};
use eks_upgrade_core::types::HumanDuration;
use eks_upgrade_core::velero::backup::BackupSpec;
use eks_upgrade_core::velero::layout::BackupLocation;
use eks_upgrade_core::velero::manifest::sign::{Signing, SigningAlgorithm};
use eks_upgrade_core::velero::manifest::write;
use eks_upgrade_core::velero::verify::VerifyDepth;
use eks_upgrade_core::velero::{backup, location, objects, verify};

pub use super::backup_restore::RestoreArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: BackupCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum BackupCommand {
    /// Create a Velero Backup and wait for it.
    Create(CreateArgs),
    /// Verify a backup's files in S3, independently of the Velero server.
    Verify(VerifyArgs),
    /// Restore a backup that was verified in S3, or preview the restore with `--dry-run`.
    Restore(RestoreArgs),
}

#[derive(Debug, clap::Args)]
pub struct VeleroArgs {
    /// The namespace Velero runs in.
    #[arg(long, default_value = "velero", value_name = "NAMESPACE")]
    pub velero_namespace: String,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The Backup's name. Default: `eks-upgrade-manual-<time>`.
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub velero: VeleroArgs,
    /// The BackupStorageLocation.
    #[arg(long, default_value = "default", value_name = "NAME")]
    pub storage_location: String,
    /// Namespaces to back up (repeatable). Default: all.
    #[arg(long = "include-namespace", value_name = "NAMESPACE")]
    pub include_namespaces: Vec<String>,
    /// Namespaces to leave out (repeatable).
    #[arg(long = "exclude-namespace", value_name = "NAMESPACE")]
    pub exclude_namespaces: Vec<String>,
    /// How long Velero keeps the backup.
    #[arg(long, default_value = "720h", value_name = "DURATION")]
    pub ttl: HumanDuration,
    /// How long to wait for it.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub timeout: HumanDuration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Depth {
    Metadata,
    Full,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The Backup's name.
    pub name: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub velero: VeleroArgs,
    /// `metadata` checks the metadata and sibling files; `full` also streams every item.
    #[arg(long, value_enum, default_value_t = Depth::Full)]
    pub depth: Depth,
    /// `text` for people, `json` (the findings) for machines.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Do not write the manifest of the backup's files (`eks-upgrade-manifest.json`) beside it.
    #[arg(long)]
    pub no_manifest: bool,
    /// Sign the manifest with this asymmetric KMS key (`SIGN_VERIFY`): a key id, key ARN,
    /// `alias/NAME` or alias ARN.
    #[arg(long, value_name = "KMS_KEY", conflicts_with = "no_manifest")]
    pub sign_with: Option<String>,
    /// The signing algorithm for `--sign-with`.
    #[arg(long, value_enum, default_value_t = Algorithm::EcdsaSha256, requires = "sign_with")]
    pub signing_algorithm: Algorithm,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Algorithm {
    /// ECDSA with SHA-256, for `ECC_NIST_P256` keys.
    #[value(name = "ECDSA_SHA_256")]
    EcdsaSha256,
    /// RSASSA-PSS with SHA-256, for RSA keys.
    #[value(name = "RSASSA_PSS_SHA_256")]
    RsassaPssSha256,
}

/// The checks of a `backup` command line, made before any connection.
fn check_args(ui: &Ui, command: &BackupCommand) -> Result<(), ExitStatus> {
    let (cluster, velero, name, namespaces, state) = match command {
        BackupCommand::Create(a) => (
            &a.cluster,
            &a.velero,
            a.name.as_deref().map(|n| (Some("--name"), n)),
            a.include_namespaces
                .iter()
                .map(|n| ("--include-namespace", n.as_str()))
                .chain(
                    a.exclude_namespaces
                        .iter()
                        .map(|n| ("--exclude-namespace", n.as_str())),
                )
                .collect::<Vec<_>>(),
            None,
        ),
        BackupCommand::Verify(a) => (
            &a.cluster,
            &a.velero,
            Some((None, a.name.as_str())),
            Vec::new(),
            Some(&a.state),
        ),
        BackupCommand::Restore(a) => (
            &a.cluster,
            &a.velero,
            Some((None, a.name.as_str())),
            a.include_namespaces
                .iter()
                .map(|n| ("--include-namespace", n.as_str()))
                .chain(
                    a.exclude_namespaces
                        .iter()
                        .map(|n| ("--exclude-namespace", n.as_str())),
                )
                .chain(a.namespace_mapping.iter().flat_map(|(old, new)| {
                    [
                        ("--namespace-mapping", old.as_str()),
                        ("--namespace-mapping", new.as_str()),
                    ]
                }))
                .collect(),
            Some(&a.state),
        ),
    };
    inputs::check(
        ui,
        &[
            &|| inputs::check_cluster(cluster),
            &|| inputs::check_namespace("--velero-namespace", &velero.velero_namespace),
            &|| name.map_or(Ok(()), |(flag, n)| inputs::check_backup_name(flag, n)),
            &|| {
                namespaces
                    .iter()
                    .try_for_each(|(flag, n)| inputs::check_namespace(flag, n))
            },
            &|| state.map_or(Ok(()), inputs::check_state),
        ],
    )
}

pub fn run(ui: &Ui, args: Args) -> ExitStatus {
    if let Err(s) = check_args(ui, &args.command) {
        return s;
    }
    let rt = match session::runtime(ui) {
        Ok(r) => r,
        Err(s) => return s,
    };
    rt.block_on(async {
        match args.command {
            BackupCommand::Create(a) => create(ui, a).await,
            BackupCommand::Verify(a) => verify_cmd(ui, a).await,
            BackupCommand::Restore(a) => super::backup_restore::restore_cmd(ui, a).await,
        }
    })
}

pub async fn connect(ui: &Ui, args: &ClusterArgs) -> Result<Connection, ExitStatus> {
    let quiet = crate::ui::reporter::LogReporter {
        format: crate::ui::reporter::LogFormat::Text,
    };
    let target = session::choose_cluster(ui, args, None, &quiet).await?;
    session::connect(ui, &target).await
}

async fn create(ui: &Ui, args: CreateArgs) -> ExitStatus {
    let conn = match connect(ui, &args.cluster).await {
        Ok(c) => c,
        Err(s) => return s,
    };
    let run_id = format!("manual-{}", chrono::Utc::now().format("%Y%m%dt%H%M%Sz"));
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("eks-upgrade-{run_id}"));
    let spec = BackupSpec {
        included_namespaces: (!args.include_namespaces.is_empty())
            .then(|| args.include_namespaces.clone()),
        excluded_namespaces: args.exclude_namespaces.clone(),
        included_resources: None,
        excluded_resources: Vec::new(),
        label_selector: None,
        snapshot_volumes: None,
        ttl: args.ttl,
        storage_location: args.storage_location.clone(),
    };
    let ns = &args.velero.velero_namespace;
    let object = backup::backup_object(&name, &run_id, &conn.cluster.name, &spec);
    if let Err(e) = backup::create_or_adopt(conn.kube.clone(), ns, &object, &run_id).await {
        ui.error(e);
        return ExitStatus::Stopped;
    }
    ui.info(format!(
        "Backup `{name}` created in `{ns}`; waiting for Velero"
    ));
    let mut last = String::new();
    let outcome = backup::wait(conn.kube.clone(), ns, &name, args.timeout.0, |s| {
        let line = format!(
            "  {} {}/{}",
            s.phase.as_deref().unwrap_or("New"),
            s.items_done.unwrap_or(0),
            s.total_items.unwrap_or(0)
        );
        if line != last {
            eprintln!("{line}");
            last = line;
        }
    })
    .await;
    match outcome {
        Ok(o) if o.completed() => {
            ui.info(format!(
                "{} `{name}`: {} items",
                ui.good("Completed"),
                o.status.items_done.unwrap_or(0)
            ));
            ui.hint(format!(
                "verify it in S3 with `eks-upgrade backup verify {name} --cluster {}`",
                conn.cluster.name
            ));
            println!("{name}");
            ExitStatus::Success
        }
        Ok(o) => {
            ui.error(format!(
                "Backup `{name}` ended {} with {} errors and {} warnings {}",
                o.status.phase.as_deref().unwrap_or("?"),
                o.status.errors,
                o.status.warnings,
                o.status.validation_errors.join("; ")
            ));
            ExitStatus::Stopped
        }
        Err(e) => {
            ui.error(e);
            ExitStatus::Stopped
        }
    }
}

/// A verification, and where it happened.
pub struct Verified {
    pub verification: verify::Verification,
    /// The Backup object's uid.
    pub uid: Option<String>,
    pub s3: aws_sdk_s3::Client,
    pub target: BackupLocation,
}

/// Where the Backup `name` keeps its files, with its uid.
pub async fn locate(
    ui: &Ui,
    conn: &Connection,
    namespace: &str,
    name: &str,
) -> Result<(aws_sdk_s3::Client, BackupLocation, Option<String>), ExitStatus> {
    let api = objects::backups(conn.kube.clone(), namespace);
    let obj = match api.get_opt(name).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            ui.error(format!(
                "Backup `{name}` does not exist in namespace `{namespace}`"
            ));
            return Err(ExitStatus::Usage);
        }
        Err(e) => {
            ui.error(format!(
                "cannot read Backup `{name}`: {}",
                eks_upgrade_core::errors::kube(&e)
            ));
            return Err(ExitStatus::Stopped);
        }
    };
    let status = objects::Status::of(&obj);
    let location_name = obj
        .data
        .pointer("/spec/storageLocation")
        .and_then(|v| v.as_str())
        .unwrap_or("default")
        .to_string();
    let storage = location::get(conn.kube.clone(), namespace, &location_name)
        .await
        .map_err(|e| {
            ui.error(e);
            ExitStatus::Stopped
        })?;
    let s3 = storage.s3_client(&conn.sdk);
    let target = BackupLocation {
        bucket: storage.bucket.clone(),
        prefix: storage.prefix.clone(),
        name: name.to_string(),
    };
    Ok((s3, target, status.uid))
}

/// Verifies `name` and returns the verification with the Backup object's uid.
pub async fn verify_backup(
    ui: &Ui,
    conn: &Connection,
    namespace: &str,
    name: &str,
    depth: VerifyDepth,
) -> Result<Verified, ExitStatus> {
    let (s3, target, uid) = locate(ui, conn, namespace, name).await?;
    ui.info(format!(
        "Verifying `{name}` in {} ({})",
        target.url(&target.dir()),
        if depth == VerifyDepth::Full {
            "full"
        } else {
            "metadata"
        }
    ));
    let verification = verify::verify(&s3, &target, uid.as_deref(), depth, None)
        .await
        .map_err(|e| {
            ui.error(e);
            ExitStatus::Stopped
        })?;
    Ok(Verified {
        verification,
        uid,
        s3,
        target,
    })
}

async fn verify_cmd(ui: &Ui, args: VerifyArgs) -> ExitStatus {
    let conn = match connect(ui, &args.cluster).await {
        Ok(c) => c,
        Err(s) => return s,
    };
    let depth = if args.depth == Depth::Full {
        VerifyDepth::Full
    } else {
        VerifyDepth::Metadata
    };
    let verified =
        match verify_backup(ui, &conn, &args.velero.velero_namespace, &args.name, depth).await {
            Ok(x) => x,
            Err(s) => return s,
        };
    let v = &verified.verification;
    let uid = verified.uid.clone();
    match args.output {
        Output::Json => {
            if print_json(ui, &v) != ExitStatus::Success {
                return ExitStatus::Stopped;
            }
        }
        Output::Text => {
            for f in &v.findings {
                let word = if f.severity == verify::Severity::Error {
                    ui.error_word()
                } else {
                    ui.warn_word()
                };
                println!("{word}: {}: {}", f.key, f.message);
            }
            if v.suppressed_findings > 0 {
                println!("… and {} more findings", v.suppressed_findings);
            }
        }
    }
    if v.sound {
        ui.info(format!(
            "{} `{}`: {} items, {:.1} MiB, in {:.1}s",
            ui.good("Sound"),
            args.name,
            v.items_in_tarball.or(v.items_in_resource_list).unwrap_or(0),
            v.tarball_bytes.unwrap_or(0) as f64 / 1_048_576.0,
            v.duration.as_secs_f64()
        ));
        let mut manifest = None;
        if !args.no_manifest {
            let signing = args.sign_with.as_ref().map(|k| Signing {
                kms_key: k.clone(),
                algorithm: match args.signing_algorithm {
                    Algorithm::EcdsaSha256 => SigningAlgorithm::EcdsaSha256,
                    Algorithm::RsassaPssSha256 => SigningAlgorithm::RsassaPssSha256,
                },
            });
            let kms = signing
                .as_ref()
                .map(|_| aws_sdk_kms::Client::new(&conn.sdk));
            match write::record(
                &verified.s3,
                kms.as_ref(),
                &verified.target,
                v,
                signing.as_ref(),
            )
            .await
            {
                Ok(r) => {
                    ui.info(format!(
                        "{} `{}` (SHA-256 {}){}",
                        if r.created {
                            "Manifest written:"
                        } else {
                            "The files still match the manifest"
                        },
                        r.record.key,
                        r.record.sha256,
                        r.record
                            .signed_by
                            .as_ref()
                            .map(|k| format!(", signed by `{k}`"))
                            .unwrap_or_default()
                    ));
                    manifest = Some(r.record);
                }
                Err(e) => {
                    ui.error(e);
                    ui.hint("allow `s3:PutObject` on `backups/*/eks-upgrade-manifest.json*` (and `kms:Sign` on the key), or pass `--no-manifest`");
                    return ExitStatus::Stopped;
                }
            }
        }
        if depth == VerifyDepth::Full
            && let Some(uid) = uid
        {
            let record = VerificationRecord {
                cluster: conn.cluster.name.clone(),
                region: conn.cluster.region.clone(),
                backup: args.name.clone(),
                uid,
                depth: "full".into(),
                sound: true,
                verified_at: chrono::Utc::now().to_rfc3339(),
                findings: v.findings.len(),
                manifest_sha256: manifest.as_ref().map(|m| m.sha256.clone()),
                manifest_signed_by: manifest.and_then(|m| m.signed_by),
            };
            match state_dir(args.state.state_dir.as_deref())
                .and_then(|d| save_verification(&d, &record))
            {
                Ok(()) => {}
                Err(e) => ui.warn(format!(
                    "the verification could not be recorded for `backup restore`: {e}"
                )),
            }
        }
        ExitStatus::Success
    } else {
        ui.error(format!(
            "`{}` is not sound: {} findings",
            args.name,
            v.findings
                .iter()
                .filter(|f| f.severity == verify::Severity::Error)
                .count()
                + v.suppressed_findings
        ));
        ExitStatus::Stopped
    }
}
