//! What `plan`, `run`, `resume`, `check` and the `backup` commands share: loading the workflow,
//! choosing the face, connecting, and opening the journal store — each failure turned into a
//! message and an exit code in one place.

use std::path::Path;

use crate::cli::args::{ClusterArgs, StateArgs};
use crate::ui::Ui;
use crate::ui::reporter::Reporter;
use eks_upgrade_core::cloud::connect::{self, ConnectError, Connection, Target as ConnectTarget};
use eks_upgrade_core::exit::ExitStatus;
use eks_upgrade_core::journal::store::{JournalStore, parse_s3_url};
use eks_upgrade_core::workflow::{self, Target, Workflow};

pub fn runtime(ui: &Ui) -> Result<tokio::runtime::Runtime, ExitStatus> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            ui.error(format!("cannot start the async runtime: {e}"));
            ExitStatus::Usage
        })
}

pub fn load_workflow(ui: &Ui, path: &Path) -> Result<Workflow, ExitStatus> {
    workflow::load(path).map_err(|e| {
        ui.diagnostic(&workflow::render(&e, ui.diagnostic_style()));
        ExitStatus::Usage
    })
}

/// Parses `--target`.
pub fn parse_target(ui: &Ui, text: Option<&str>) -> Result<Option<Target>, ExitStatus> {
    let Some(t) = text else { return Ok(None) };
    match t {
        "next" => Ok(Some(Target::Next)),
        "latest" => Ok(Some(Target::Latest)),
        v => v.parse().map(|v| Some(Target::Version(v))).map_err(
            |e: eks_upgrade_core::types::version::VersionError| {
                ui.error(format!("`--target {t}`: {e}"));
                if let Some(s) = e.suggestion() {
                    ui.hint(format!("use `--target {s}`"));
                }
                ExitStatus::Usage
            },
        ),
    }
}

/// The cluster to act on: `--cluster`, else the workflow's, else (interactively) a choice
/// from ListClusters.
pub async fn choose_cluster(
    ui: &Ui,
    args: &ClusterArgs,
    workflow: Option<&Workflow>,
    reporter: &dyn Reporter,
) -> Result<ConnectTarget, ExitStatus> {
    let region = args
        .region
        .clone()
        .or_else(|| workflow.and_then(|w| w.cluster.region.clone()));
    let name = args
        .cluster
        .clone()
        .or_else(|| workflow.and_then(|w| w.cluster.name.clone()));
    let name = match name {
        Some(n) => n,
        None if reporter.interactive() => {
            let sdk = connect::load_sdk(region.as_deref(), args.profile.as_deref())
                .await
                .map_err(|e| connect_failed(ui, &e))?;
            let names = connect::list_clusters(&aws_sdk_eks::Client::new(&sdk))
                .await
                .map_err(|e| connect_failed(ui, &e))?;
            if names.is_empty() {
                ui.error("no EKS clusters are visible to these credentials in this region");
                return Err(ExitStatus::Usage);
            }
            let i = reporter.select("Which cluster?", &names, 0).map_err(|e| {
                ui.error(e);
                ExitStatus::Usage
            })?;
            names[i].clone()
        }
        None => {
            ui.error("no cluster named: pass `--cluster NAME` or set `spec.cluster.name` in the workflow");
            return Err(ExitStatus::Usage);
        }
    };
    Ok(ConnectTarget {
        cluster: name,
        region,
        profile: args.profile.clone(),
        kube_context: args.kube_context.clone(),
    })
}

pub fn connect_failed(ui: &Ui, e: &ConnectError) -> ExitStatus {
    ui.error(e);
    if let Some(h) = e.hint() {
        ui.hint(h);
    }
    // Naming a cluster, region or profile that does not exist, or giving no credentials at all,
    // is a usage error; the rest is the environment answering, and nothing was changed.
    if e.is_usage() {
        ExitStatus::Usage
    } else {
        ExitStatus::Stopped
    }
}

pub async fn connect(ui: &Ui, target: &ConnectTarget) -> Result<Connection, ExitStatus> {
    connect::connect(target)
        .await
        .map_err(|e| connect_failed(ui, &e))
}

/// The journal store: `--state s3://…`, else the local state directory.
pub fn open_store(
    ui: &Ui,
    args: &StateArgs,
    sdk: Option<&aws_config::SdkConfig>,
) -> Result<JournalStore, ExitStatus> {
    if let Some(url) = &args.state {
        let (bucket, prefix) = parse_s3_url(url).map_err(|e| {
            ui.error(e);
            ExitStatus::Usage
        })?;
        let Some(sdk) = sdk else {
            ui.error("an S3 journal needs AWS credentials and a region");
            return Err(ExitStatus::Usage);
        };
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(
                sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some(),
            )
            .build();
        return Ok(JournalStore::S3 {
            client: aws_sdk_s3::Client::from_conf(config),
            bucket,
            prefix,
        });
    }
    let dir = eks_upgrade_core::state::state_dir(args.state_dir.as_deref()).map_err(|e| {
        ui.error(e);
        ExitStatus::Usage
    })?;
    Ok(JournalStore::Local { dir })
}

/// How to fix an S3 journal store that refused, from S3's error code in the message.
pub fn journal_hint(message: &str) -> Option<String> {
    if message.contains("NoSuchBucket") {
        Some("create the bucket (`aws s3 mb s3://BUCKET --region REGION`), or fix the bucket in `--state`".into())
    } else if message.contains("AuthorizationHeaderMalformed")
        || message.contains("PermanentRedirect")
    {
        Some("the bucket is in another region: keep the state bucket in the cluster's region, or set `AWS_REGION` to the bucket's for `runs` and `resume`".into())
    } else if message.contains("AccessDenied") {
        Some(
            "the credentials may not read or write that bucket: see `examples/iam/policy.json`"
                .into(),
        )
    } else {
        None
    }
}
