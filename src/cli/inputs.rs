//! Checks of what the command line gives, made before anything else: a run must not find out
//! after an hour that its report cannot be written, nor send a malformed name to AWS. Each
//! problem is one `error:` line saying what is wrong and one `hint:` line saying how to fix it,
//! and the command exits 2 having touched nothing (not even a file: writability is tested with
//! a temporary file that is gone again).

use std::path::{Path, PathBuf};

use crate::cli::args::{ClusterArgs, RunArgs, StateArgs};
use crate::ui::Ui;
use eks_upgrade_core::exit::ExitStatus;
use eks_upgrade_core::journal::store::parse_s3_url;
use eks_upgrade_core::types::names;

/// One thing wrong on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub error: String,
    pub hint: String,
}

impl Problem {
    fn new(error: impl Into<String>, hint: impl Into<String>) -> Self {
        Problem {
            error: error.into(),
            hint: hint.into(),
        }
    }

    /// Shows the problem and gives the exit status of a usage error.
    pub fn report(self, ui: &Ui) -> ExitStatus {
        ui.error(self.error);
        ui.hint(self.hint);
        ExitStatus::Usage
    }
}

/// Runs the checks in order and stops at the first problem, shown on `ui`.
pub fn check(ui: &Ui, checks: &[&dyn Fn() -> Result<(), Problem>]) -> Result<(), ExitStatus> {
    for c in checks {
        c().map_err(|p| p.report(ui))?;
    }
    Ok(())
}

/// The format a report file is written in, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Json,
    Markdown,
}

/// The format `path` asks for: `.json` or `.md` (any case); anything else is an error rather
/// than a silent JSON file with a misleading name.
pub fn report_format(path: &Path) -> Result<ReportFormat, Problem> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("json") => Ok(ReportFormat::Json),
        Some("md") => Ok(ReportFormat::Markdown),
        Some(other) => Err(Problem::new(
            format!(
                "`--report {}`: `.{other}` is not a report format",
                path.display()
            ),
            "end the file name in `.json` for the JSON report or `.md` for the Markdown one",
        )),
        None => Err(Problem::new(
            format!(
                "`--report {}`: the file name has no extension to say its format",
                path.display()
            ),
            "end the file name in `.json` for the JSON report or `.md` for the Markdown one",
        )),
    }
}

/// Whether a report can be written at `path` when the run ends: its format is known, it is
/// not a directory, and the directory it goes in (or the nearest one that exists, since the
/// report creates the rest) takes a new file.
pub fn check_report(path: &Path) -> Result<(), Problem> {
    let shown = path.display();
    if path.as_os_str().is_empty() {
        return Err(Problem::new(
            "`--report` is empty",
            "name a file such as `--report report.json`",
        ));
    }
    if path.is_dir() {
        return Err(Problem::new(
            format!("`--report {shown}` is a directory"),
            format!("name a file inside it, such as `--report {shown}/report.json`"),
        ));
    }
    report_format(path)?;
    let mut dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // The report creates missing directories; the first one that exists must take them.
    while !dir.exists() {
        match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => dir = p.to_path_buf(),
            _ => dir = PathBuf::from("."),
        }
        if dir == Path::new(".") {
            break;
        }
    }
    if !dir.is_dir() {
        return Err(Problem::new(
            format!(
                "`--report {shown}` cannot be written: `{}` is not a directory",
                dir.display()
            ),
            "name a file in a directory that exists, or a path whose directories can be created",
        ));
    }
    // A temporary file tells what permission bits, read-only mounts and ACLs all decide; it is
    // removed when dropped, so a run stopped later leaves nothing behind.
    if let Err(e) = tempfile::Builder::new()
        .prefix(".eks-upgrade-report-check-")
        .tempfile_in(&dir)
    {
        return Err(Problem::new(
            format!(
                "`--report {shown}` cannot be written: cannot create a file in `{}`: {}",
                dir.display(),
                e.kind()
            ),
            "choose a directory this user can write to, or fix its permissions",
        ));
    }
    Ok(())
}

/// `--time-scale` (or `EKS_UPGRADE_TIME_SCALE`): a finite factor of at least 1.
pub fn check_time_scale(scale: f64) -> Result<(), Problem> {
    if scale.is_finite() && scale >= 1.0 {
        return Ok(());
    }
    Err(Problem::new(
        format!(
            "`--time-scale {scale}` is not a speed-up: the factor must be a finite number of at least 1"
        ),
        "leave it out (or pass `--time-scale 1`) against a real cluster; a sandbox rehearsal uses the sandbox's speed, which `eks-upgrade sandbox` exports as `EKS_UPGRADE_TIME_SCALE`",
    ))
}

/// A flag that was given but is empty: `--cluster ""`.
fn not_empty(flag: &str, value: Option<&str>, example: &str) -> Result<(), Problem> {
    match value {
        Some(v) if v.trim().is_empty() => Err(Problem::new(
            format!("`{flag}` is empty"),
            format!("pass a value, such as `{flag} {example}`, or leave the flag out"),
        )),
        _ => Ok(()),
    }
}

/// `--cluster`, `--region`, `--profile` and `--kube-context`: present values are well formed.
pub fn check_cluster(args: &ClusterArgs) -> Result<(), Problem> {
    not_empty("--cluster", args.cluster.as_deref(), "prod")?;
    not_empty("--region", args.region.as_deref(), "eu-west-1")?;
    not_empty("--profile", args.profile.as_deref(), "prod")?;
    not_empty("--kube-context", args.kube_context.as_deref(), "prod")?;
    if let Some(name) = &args.cluster
        && let Err(p) = names::eks_cluster_name(name)
    {
        return Err(Problem::new(
            format!("`--cluster {name}` is not a valid EKS cluster name"),
            p.rule,
        ));
    }
    if let Some(region) = &args.region
        && let Err(p) = names::aws_region(region)
    {
        return Err(Problem::new(
            format!("`--region {region}` is not an AWS region"),
            p.rule,
        ));
    }
    Ok(())
}

/// `--profile` alone (`resume`).
pub fn check_profile(profile: Option<&str>) -> Result<(), Problem> {
    not_empty("--profile", profile, "prod")
}

/// `--state s3://BUCKET/PREFIX` and `--state-dir`.
pub fn check_state(args: &StateArgs) -> Result<(), Problem> {
    if let Some(dir) = &args.state_dir
        && dir.as_os_str().is_empty()
    {
        return Err(Problem::new(
            "`--state-dir` is empty",
            "name a directory, or leave the flag out for `$XDG_STATE_HOME/eks-upgrade`",
        ));
    }
    let Some(url) = &args.state else {
        return Ok(());
    };
    let hint = "write `--state s3://BUCKET/PREFIX` (or set `EKS_UPGRADE_STATE`), such as `s3://acme-eks-upgrade/state/prod`";
    if url.trim().is_empty() {
        return Err(Problem::new("`--state` is empty", hint));
    }
    let (bucket, _) = parse_s3_url(url).map_err(|e| Problem::new(e.to_string(), hint))?;
    names::s3_bucket(&bucket).map_err(|p| {
        Problem::new(
            format!(
                "`--state {url}`: `{bucket}` is not a valid S3 bucket name{}",
                p.why.map(|w| format!(": {w}")).unwrap_or_default()
            ),
            p.rule,
        )
    })
}

/// `--report` and `--time-scale` of `run` and `resume`.
pub fn check_run(args: &RunArgs) -> Result<(), Problem> {
    check_time_scale(args.time_scale)?;
    args.report.iter().try_for_each(|r| check_report(r))
}

/// A Backup's name on the command line: `backup verify NAME` (`flag` is `None`) or
/// `backup create --name NAME`.
pub fn check_backup_name(flag: Option<&str>, name: &str) -> Result<(), Problem> {
    if name.is_empty() {
        return Err(Problem::new(
            match flag {
                Some(f) => format!("`{f}` is empty"),
                None => "the backup name is empty".to_string(),
            },
            "name the Velero Backup, as `velero backup get` or `kubectl get backups -n velero` lists it",
        ));
    }
    names::k8s_object(name).map_err(|p| {
        Problem::new(
            format!(
                "{} is not a valid Backup name{}",
                match flag {
                    Some(f) => format!("`{f} {name}`"),
                    None => format!("backup name `{name}`"),
                },
                p.why.map(|w| format!(": {w}")).unwrap_or_default()
            ),
            p.rule,
        )
    })
}

/// A Kubernetes namespace given on the command line (`--velero-namespace`, `--include-namespace`).
pub fn check_namespace(flag: &str, ns: &str) -> Result<(), Problem> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        return Ok(());
    }
    Err(Problem::new(
        if ns.is_empty() {
            format!("`{flag}` is empty")
        } else {
            format!("`{flag} {ns}` is not a valid namespace name")
        },
        "namespace names are at most 63 lowercase letters, digits and `-`, starting and ending with a letter or digit",
    ))
}

/// A run id given on the command line. Run ids name journal files, so anything that could
/// reach outside the store (`/`, `..`) is refused before it is used as a path.
pub fn check_run_id(id: &str) -> Result<(), Problem> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        return Ok(());
    }
    Err(Problem::new(
        if id.is_empty() {
            "the run id is empty".to_string()
        } else {
            format!("`{id}` is not a run id")
        },
        "`eks-upgrade runs` lists the runs with their ids, such as `20260307t020512z-4f2a9c`",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_formats_come_from_the_extension() {
        assert_eq!(report_format(Path::new("r.json")), Ok(ReportFormat::Json));
        assert_eq!(
            report_format(Path::new("a/r.MD")),
            Ok(ReportFormat::Markdown)
        );
        assert!(report_format(Path::new("r.txt")).is_err());
        assert!(report_format(Path::new("report")).is_err());
    }

    #[test]
    fn time_scales_are_finite_and_at_least_one() {
        for good in [1.0, 1.5, 600.0] {
            assert!(check_time_scale(good).is_ok(), "{good}");
        }
        for bad in [0.0, -1.0, 0.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(check_time_scale(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_report_in_a_missing_directory_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("new/deeper/report.json");
        assert_eq!(check_report(&path), Ok(()));
        assert!(!dir.path().join("new").exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).map(|d| d.count()).ok(),
            Some(0)
        );
    }

    #[test]
    fn run_ids_cannot_leave_the_store() {
        assert!(check_run_id("20260307t020512z-4f2a9c").is_ok());
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(check_run_id(bad).is_err(), "{bad}");
        }
    }
}
