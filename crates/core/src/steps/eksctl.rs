//! `eksctl`: for clusters whose configuration eksctl owns. Sets `metadata.version` of the
//! ClusterConfig to the hop's version — changing that one value and keeping every other byte,
//! comments included — then runs `eksctl upgrade cluster --config-file FILE --approve` (and, when
//! asked, `eksctl upgrade nodegroup` and `eksctl update addon`), streaming eksctl's output into the
//! step's log and failing on a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::control_plane::PER_HOP;
use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::{Context, StepCtx, StepError, StepResult};
use crate::cloud::eks::EksError;
use crate::cloud::{connect, eks};
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::DurationText;
use crate::journal::Fact;
use crate::types::{HumanDuration, Version};

/// The version written into the ClusterConfig file.
pub const CONFIG_VERSION: Fact<String> = Fact::new("configVersion");

/// Defaults of the step's options.
pub mod defaults {
    use std::time::Duration;

    pub const CONFIG_FILE: &str = "helpers/eksctl.yaml";
    pub const BINARY: &str = "eksctl";
    pub const TIMEOUT: Duration = Duration::from_secs(90 * 60);
}

/// Options for the eksctl-driven upgrade.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawEksctl {
    /// The ClusterConfig file whose `metadata.version` is set to each hop's version.
    /// Default: `helpers/eksctl.yaml`. Relative paths start from the directory the tool runs in.
    pub config_file: Option<Spanned<String>>,
    /// The eksctl executable. Default: `eksctl` from `PATH`.
    pub binary: Option<Spanned<String>>,
    /// Also run `eksctl upgrade nodegroup` for each managed node group. Default: `false`.
    pub upgrade_nodegroups: Option<bool>,
    /// Also run `eksctl update addon`. Default: `false`.
    pub update_addons: Option<bool>,
    /// How long each eksctl command may take. Default: `90m`.
    pub timeout: Option<Spanned<DurationText>>,
}

/// A validated `eksctl` step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Eksctl {
    /// As written; relative paths start from the directory the tool runs in.
    pub config_file: PathBuf,
    pub binary: String,
    pub upgrade_nodegroups: bool,
    pub update_addons: bool,
    pub timeout: HumanDuration,
}

pub struct EksctlKind;

impl Kind for EksctlKind {
    type Raw = RawEksctl;
    type Model = Eksctl;

    const DOC: &'static str =
        "Drives `eksctl` with a ClusterConfig file instead of calling EKS directly.";
    const TITLE: &'static str = "Upgrade with eksctl";
    const PLACEMENT: Placement = PER_HOP;
    const MUTATES: bool = true;
    // eksctl owns the whole cluster: the checks treat it as moving add-ons and node groups
    // with every hop, as an eksctl-driven upgrade usually does.
    const ROLES: &'static [Role] = &[
        Role::MovesControlPlane,
        Role::UpgradesAddons,
        Role::UpgradesNodes,
    ];
    const EXAMPLE: &'static str = "{ configFile: helpers/eksctl.yaml }";

    fn build(raw: &Spanned<RawEksctl>, v: &mut Validator<'_>, _: &BuildCx<'_>) -> Option<Eksctl> {
        let e = &raw.value;
        for (field, value) in [("configFile", &e.config_file), ("binary", &e.binary)] {
            if let Some(x) = value.as_ref().filter(|x| x.value.trim().is_empty()) {
                v.problem(
                    x.loc,
                    format!("`{field}` is empty"),
                    "empty",
                    "give a path, or leave the field out for the default",
                );
            }
        }
        Some(Eksctl {
            config_file: e
                .config_file
                .as_ref()
                .map_or_else(|| defaults::CONFIG_FILE.into(), |f| f.value.clone().into()),
            binary: e
                .binary
                .as_ref()
                .map_or_else(|| defaults::BINARY.to_string(), |b| b.value.clone()),
            upgrade_nodegroups: e.upgrade_nodegroups.unwrap_or(false),
            update_addons: e.update_addons.unwrap_or(false),
            timeout: v.positive("timeout", e.timeout.as_ref(), defaults::TIMEOUT),
        })
    }

    async fn plan(step: &Eksctl, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let file = step.config_file.display();
        Ok(vec![
            format!(
                "sets `metadata.version` in `{file}` to {}",
                cx.hop.map(|h| h.to_string()).unwrap_or_default()
            ),
            format!(
                "runs `{} upgrade cluster --config-file {file} --approve`",
                step.binary
            ),
        ])
    }

    async fn run(step: &Eksctl, ctx: &StepCtx<'_>) -> StepResult {
        run(step, ctx).await
    }

    fn scale_time(step: &mut Eksctl, scale: &TimeScale) {
        scale.timeout(&mut step.timeout);
    }

    fn typical_minutes(_: &Eksctl) -> u64 {
        40
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("the file has no top-level `metadata:` mapping")]
    NoMetadata,
}

/// Sets `metadata.version` to `version` in ClusterConfig text. Only the value changes: its
/// quoting style, any comment after it and every other line stay as they were. A missing
/// `version` is added as the first key of `metadata`.
pub fn set_version(text: &str, version: Version) -> Result<String, EditError> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let meta = lines
        .iter()
        .position(|l| l.trim_end().starts_with("metadata:") && !l.starts_with([' ', '\t']))
        .ok_or(EditError::NoMetadata)?;
    let mut indent: Option<usize> = None;
    for (i, line) in lines.iter().enumerate().skip(meta + 1) {
        let content = line.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let this = content.len() - trimmed.len();
        if this == 0 {
            break;
        }
        let block = *indent.get_or_insert(this);
        if this != block {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("version:") {
            let value_start = content.len() - rest.len();
            let after = rest.trim_start();
            let lead = &content[value_start..value_start + (rest.len() - after.len())];
            let (old, tail) = split_value(after);
            let quote = old.chars().next().filter(|c| *c == '"' || *c == '\'');
            let new_value = match quote {
                Some(q) => format!("{q}{version}{q}"),
                // An unquoted 1.30 would read as the number 1.3: always quote a new value.
                None => format!("\"{version}\""),
            };
            let ending = &line[content.len()..];
            let mut out = String::with_capacity(text.len() + 4);
            for l in &lines[..i] {
                out.push_str(l);
            }
            out.push_str(&content[..value_start]);
            out.push_str(lead);
            out.push_str(&new_value);
            out.push_str(tail);
            out.push_str(ending);
            for l in &lines[i + 1..] {
                out.push_str(l);
            }
            return Ok(out);
        }
    }
    let pad = " ".repeat(indent.unwrap_or(2));
    let mut out = String::with_capacity(text.len() + 24);
    for (i, l) in lines.iter().enumerate() {
        out.push_str(l);
        if i == meta {
            if !l.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("{pad}version: \"{version}\"\n"));
        }
    }
    Ok(out)
}

/// Splits a scalar value from what follows it (spaces and a `# comment`).
fn split_value(s: &str) -> (&str, &str) {
    if let Some(q) = s.chars().next().filter(|c| *c == '"' || *c == '\'')
        && let Some(end) = s[1..].find(q)
    {
        return s.split_at(end + 2);
    }
    match s.find(" #") {
        Some(i) => {
            let value = s[..i].trim_end();
            (value, &s[value.len()..])
        }
        None => {
            let value = s.trim_end();
            (value, &s[value.len()..])
        }
    }
}

async fn run_command(ctx: &StepCtx<'_>, step: &Eksctl, args: &[String]) -> Result<(), StepError> {
    let shown = format!("{} {}", step.binary, args.join(" "));
    ctx.progress(&format!("running `{shown}`"), None, None);
    let mut child = tokio::process::Command::new(&step.binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            StepError::Failed(format!(
                "cannot run `{}`: {e}; set `binary:` on the step to eksctl's path",
                step.binary
            ))
        })?;
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(StepError::Failed("cannot read eksctl's output".into()));
    };
    let mut out = BufReader::new(out).lines();
    let mut err = BufReader::new(err).lines();
    let mut last = String::new();
    let stream = async {
        let (mut out_done, mut err_done) = (false, false);
        while !(out_done && err_done) {
            tokio::select! {
                line = out.next_line(), if !out_done => match line {
                    Ok(Some(l)) => { ctx.log(&format!("eksctl: {l}")); last = l; }
                    _ => out_done = true,
                },
                line = err.next_line(), if !err_done => match line {
                    Ok(Some(l)) => { ctx.log(&format!("eksctl: {l}")); last = l; }
                    _ => err_done = true,
                },
            }
        }
        child.wait().await
    };
    let status = tokio::time::timeout(step.timeout.0, stream)
        .await
        .map_err(|_| {
            StepError::Failed(format!("`{shown}` did not finish within {}", step.timeout))
        })?
        .context(|| format!("`{shown}` could not be waited for"))?;
    if status.success() {
        Ok(())
    } else {
        Err(StepError::Failed(format!(
            "`{shown}` exited with {status}{}",
            if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            }
        )))
    }
}

async fn run(step: &Eksctl, ctx: &StepCtx<'_>) -> StepResult {
    let hop = ctx.hop()?;
    let path: &Path = &step.config_file;
    let text =
        std::fs::read_to_string(path).context(|| format!("cannot read `{}`", path.display()))?;
    let edited = set_version(&text, hop).context(|| format!("`{}`", path.display()))?;
    if edited != text {
        crate::state::write_atomic(path, edited.as_bytes()).cause()?;
        ctx.record(&CONFIG_VERSION, &hop.to_string()).await?;
    }
    let file = path.display().to_string();
    let current = connect::describe_cluster(&ctx.conn.eks, ctx.cluster(), &ctx.conn.cluster.region)
        .await
        .cause()?;
    if current.version < hop {
        run_command(
            ctx,
            step,
            &[
                "upgrade".into(),
                "cluster".into(),
                "--config-file".into(),
                file.clone(),
                "--approve".into(),
            ],
        )
        .await?;
    }
    let mut done = vec![format!("cluster → {hop}")];
    let mut moved = Vec::new();
    if step.upgrade_nodegroups {
        let groups = eks::nodegroups(&ctx.conn.eks, ctx.cluster())
            .await
            .cause()?;
        for g in groups.iter().filter(|g| g.version.is_none_or(|v| v < hop)) {
            run_command(
                ctx,
                step,
                &[
                    "upgrade".into(),
                    "nodegroup".into(),
                    "--cluster".into(),
                    ctx.cluster().to_string(),
                    "--name".into(),
                    g.name.clone(),
                    "--kubernetes-version".into(),
                    hop.to_string(),
                    "--wait".into(),
                ],
            )
            .await?;
            done.push(format!("node group {}", g.name));
            moved.push(g.name.clone());
        }
    }
    if step.update_addons {
        run_command(
            ctx,
            step,
            &[
                "update".into(),
                "addon".into(),
                "--config-file".into(),
                file.clone(),
                "--wait".into(),
            ],
        )
        .await?;
        done.push("add-ons".into());
    }
    let claimed = Claims {
        nodegroups: if step.upgrade_nodegroups { &moved } else { &[] },
        addons: step.update_addons,
    };
    verify(ctx, hop, &claimed).await?;
    Ok(format!(
        "eksctl upgraded {} (`{file}` now says {hop})",
        done.join(", ")
    ))
}

/// What eksctl claims to have moved to the hop, besides the control plane.
struct Claims<'a> {
    /// The node groups it was told to upgrade.
    nodegroups: &'a [String],
    /// Whether it was told to update the add-ons.
    addons: bool,
}

/// eksctl exiting 0 is its word, not EKS's: reads back what EKS shows and fails naming every
/// difference. The control plane must be at the hop, each node group eksctl upgraded too, and
/// every add-on at a version EKS lists as compatible with the hop.
async fn verify(ctx: &StepCtx<'_>, hop: Version, claims: &Claims<'_>) -> Result<(), StepError> {
    ctx.progress("checking what EKS shows after eksctl", None, None);
    let eks_client = &ctx.conn.eks;
    let mut differences = Vec::new();
    let cluster = connect::describe_cluster(eks_client, ctx.cluster(), &ctx.conn.cluster.region)
        .await
        .cause()?;
    if cluster.version != hop {
        differences.push(format!(
            "the control plane is at {}, not {hop}",
            cluster.version
        ));
    }
    for name in claims.nodegroups {
        let group = eks::nodegroup(eks_client, ctx.cluster(), name).await?;
        match group.version {
            Some(v) if v == hop => {}
            Some(v) => differences.push(format!("node group `{name}` is at {v}, not {hop}")),
            None => differences.push(format!("node group `{name}` reports no version")),
        }
    }
    if claims.addons {
        for addon in eks::addons(eks_client, ctx.cluster()).await? {
            let valid = eks::addon_versions(eks_client, &addon.name, hop).await?;
            if !valid.iter().any(|v| v.version == addon.version) {
                differences.push(format!(
                    "add-on `{}` is at `{}`, which EKS does not list for {hop}",
                    addon.name, addon.version
                ));
            }
        }
    }
    if differences.is_empty() {
        return Ok(());
    }
    Err(StepError::Failed(format!(
        "eksctl exited 0, but EKS shows {}",
        differences.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(m: u32) -> Version {
        Version::new(1, m)
    }

    #[test]
    fn changes_only_the_version_value() {
        let before = "# top\nmetadata:\n  name: demo   # the name\n  version: \"1.33\"   # cp\n  region: us-east-1\nvpc:\n  version: keep\n";
        let after = set_version(before, v(34)).unwrap();
        assert_eq!(after, before.replace("\"1.33\"", "\"1.34\""));
        let single = "metadata:\n  version: '1.33'\n";
        assert_eq!(
            set_version(single, v(34)).unwrap(),
            "metadata:\n  version: '1.34'\n"
        );
        // Unquoted stays a string after the edit.
        assert_eq!(
            set_version("metadata:\n  version: 1.33 # x\n", v(34)).unwrap(),
            "metadata:\n  version: \"1.34\" # x\n"
        );
        // CRLF line endings survive.
        assert_eq!(
            set_version("metadata:\r\n  version: \"1.9\"\r\n", v(10)).unwrap(),
            "metadata:\r\n  version: \"1.10\"\r\n"
        );
        // A nested `version` elsewhere is not touched; a missing one is added.
        assert_eq!(
            set_version("metadata:\n  name: x\n  tags:\n    version: a\n", v(34)).unwrap(),
            "metadata:\n  version: \"1.34\"\n  name: x\n  tags:\n    version: a\n"
        );
        assert_eq!(
            set_version("kind: ClusterConfig\n", v(34)),
            Err(EditError::NoMetadata)
        );
    }
}
