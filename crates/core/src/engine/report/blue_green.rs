//! The blue/green part of the report: both clusters, the DNS weights over time (each change
//! with its Route 53 id, so `aws route53 get-change` can confirm it), whether traffic was
//! switched back, and what became of blue — with the exact commands that delete it when it was
//! kept, and those that delete green when the run stopped or switched back.

use std::fmt::Write;

use schemars::JsonSchema;
use serde::Serialize;

use crate::journal::{Journal, RunResult};
use crate::steps::green::{self, GREEN, TRAFFIC, WeightPoint};
use crate::steps::retire_blue::{RETIRE, Retire};
use crate::steps::test_green;

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenReport {
    pub blue: String,
    pub green: Option<GreenReport>,
    /// Every weight change, in order.
    pub traffic: Vec<WeightPoint>,
    /// Whether traffic had moved to green and was put back on blue.
    pub switched_back: bool,
    /// `keep` or `delete`, when the run got that far.
    pub retire: Option<String>,
    /// The commands that delete blue (kept) or were run to delete it.
    pub retire_commands: Vec<String>,
    /// How the restore into green ended.
    pub restore: Option<String>,
    /// The compatibility test run on green, with the end of each pod's log.
    pub compatibility: Option<Compatibility>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Compatibility {
    /// `namespace/name` of the Job on green.
    pub job: String,
    pub succeeded: bool,
    pub reason: Option<String>,
    pub pods: Vec<PodLog>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodLog {
    pub name: String,
    pub phase: Option<String>,
    /// The last lines of its log, or why they could not be read.
    pub log: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GreenReport {
    pub name: String,
    pub arn: String,
    pub version: String,
    /// `created` by this run, or `adopted`.
    pub origin: String,
}

impl BlueGreenReport {
    /// The section, when the run is a blue/green one (it recorded green or a weight change).
    pub fn of(j: &Journal) -> Option<BlueGreenReport> {
        let green = j.get(&GREEN);
        let points = j.get(&TRAFFIC).unwrap_or_default();
        let retirement = j.steps.iter().find_map(|s| s.get(&RETIRE));
        if green.is_none() && points.is_empty() && retirement.is_none() {
            return None;
        }
        let switched_back = green::moved(&points) && points.last().is_some_and(|p| p.green == 0);
        let restore = j
            .steps
            .iter()
            .find(|s| s.kind == "restoreToGreen")
            .and_then(|s| s.error.clone().or_else(|| s.summary.clone()));
        let compatibility = j
            .steps
            .iter()
            .find_map(|s| s.get(&test_green::JOB_RESULT))
            .map(|r| Compatibility {
                job: format!("{}/{}", r.namespace, r.name),
                succeeded: r.succeeded,
                reason: r.reason.or(r.message),
                pods: r
                    .pods
                    .into_iter()
                    .map(|p| PodLog {
                        name: p.name,
                        phase: p.phase,
                        log: p
                            .logs
                            .or_else(|| p.error.map(|e| format!("(log not read: {e})")))
                            .unwrap_or_default(),
                    })
                    .collect(),
            });
        Some(BlueGreenReport {
            blue: j.cluster.clone(),
            green: green.map(|g| GreenReport {
                name: g.name,
                arn: g.arn,
                version: g.version.to_string(),
                origin: if g.created { "created" } else { "adopted" }.into(),
            }),
            traffic: points,
            switched_back,
            retire: retirement.as_ref().map(|r| {
                match r.decision {
                    Retire::Keep => "keep",
                    Retire::Delete => "delete",
                }
                .into()
            }),
            retire_commands: retirement.map(|r| r.commands).unwrap_or_default(),
            restore,
            compatibility,
        })
    }

    /// What a person does next, in place of the in-place run's advice.
    pub fn next_steps(&self, result: Option<RunResult>, region: &str) -> Vec<String> {
        let green = self.green.as_ref().map(|g| g.name.as_str());
        let delete_green = green.map(|g| {
            format!("when green `{g}` is no longer needed, delete its node groups (`aws eks list-nodegroups --region {region} --cluster-name {g}`, then `aws eks delete-nodegroup` for each) and then the cluster (`aws eks delete-cluster --region {region} --name {g}`)")
        });
        let mut out = Vec::new();
        match result {
            Some(RunResult::Succeeded) => {
                out.push("check the applications on green with their own dashboards".into());
                match self.retire.as_deref() {
                    Some("keep") => out.push(format!("blue `{}` is kept with no traffic, as the way back; delete it when you no longer need it with the commands under \"Blue\" above", self.blue)),
                    Some(_) => {}
                    None => out.push(format!("blue `{}` still runs", self.blue)),
                }
            }
            Some(RunResult::Stopped | RunResult::OutsideWindow) => {
                out.push(format!("blue `{}` and DNS were not changed; fix what stopped the run, then run it again (a green cluster of the same name is reused only by `adoptGreen`)", self.blue));
                out.extend(delete_green);
            }
            Some(RunResult::Restored) => {
                out.push(format!("every request goes to blue `{}` again; find out on green why the step failed before trying again", self.blue));
                out.extend(delete_green);
            }
            Some(RunResult::NeedsHuman) => {
                out.push("a person must take over: check the weights with `aws route53 list-resource-record-sets` and put them back on blue if they are not".into());
                out.extend(delete_green);
            }
            Some(RunResult::NothingToDo) | None => {}
        }
        out
    }

    pub fn markdown(&self, out: &mut String) {
        let _ = writeln!(out, "## Blue/green\n");
        let _ = writeln!(out, "- Blue: `{}`", self.blue);
        match &self.green {
            Some(g) => {
                let _ = writeln!(out, "- Green: `{}` at {} ({})", g.name, g.version, g.origin);
            }
            None => {
                let _ = writeln!(out, "- Green: none was made");
            }
        }
        if let Some(r) = &self.restore {
            let _ = writeln!(out, "- Restore into green: {r}");
        }
        if self.switched_back {
            let _ = writeln!(out, "- Traffic was switched back to blue in one change");
        }
        let _ = writeln!(out);
        if !self.traffic.is_empty() {
            let _ = writeln!(
                out,
                "### Weights over time\n\n| At | Blue | Green | Change | Status | Why |\n|---|---|---|---|---|---|"
            );
            for p in &self.traffic {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    p.at,
                    p.blue,
                    p.green,
                    p.change_id
                        .as_deref()
                        .map(|c| format!("`{c}`"))
                        .unwrap_or_else(|| "—".into()),
                    p.status,
                    p.why.replace('|', "\\|")
                );
            }
            let _ = writeln!(out);
        }
        if let Some(c) = &self.compatibility {
            let _ = writeln!(
                out,
                "### Compatibility test\n\nJob `{}` on green: {}{}\n",
                c.job,
                if c.succeeded { "succeeded" } else { "failed" },
                c.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
            for p in &c.pods {
                // A fence longer than any run of backticks in the log, which is not ours.
                let longest = p.log.split(|ch| ch != '`').map(str::len).max().unwrap_or(0);
                let fence = "`".repeat(longest.max(2) + 1);
                let _ = writeln!(
                    out,
                    "Pod `{}` ({}):\n\n{fence}text\n{}\n{fence}\n",
                    p.name,
                    p.phase.as_deref().unwrap_or("unknown"),
                    p.log.trim_end()
                );
            }
        }
        if let Some(decision) = &self.retire {
            let _ = writeln!(out, "### Blue\n");
            let what = if decision == "keep" {
                "kept with no traffic; these commands delete it"
            } else {
                "deleted by the run, with the equivalent of"
            };
            let _ = writeln!(out, "Blue `{}` is {what}:\n\n```sh", self.blue);
            for c in &self.retire_commands {
                let _ = writeln!(out, "{c}");
            }
            let _ = writeln!(out, "```\n");
        }
    }
}
