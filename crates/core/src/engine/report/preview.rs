//! The restore's preview in the report: in JSON every object, in Markdown the counts and the
//! first few objects of each kind of change, so that a page stays readable for a backup of
//! tens of thousands of objects.

use std::collections::BTreeMap;
use std::fmt::Write;

use schemars::JsonSchema;
use serde::Serialize;

use crate::velero::preview::{Action, Preview, PreviewItem};

/// Objects named per action in Markdown.
pub const SHOWN: usize = 10;

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestorePreviewReport {
    pub backup: Option<String>,
    pub existing_resource_policy: Option<String>,
    /// `create`, `update`, `unchanged`, `skip`, `unknown` → objects.
    pub counts: BTreeMap<String, u64>,
    /// Every object the restore was to create, update or skip, or could not judge, and why
    /// (unchanged objects are only counted).
    pub items: Vec<PreviewItem>,
    /// Why there is no preview, when it could not be made.
    pub error: Option<String>,
}

impl RestorePreviewReport {
    pub fn of(preview: Option<Preview>, error: Option<String>) -> Option<Self> {
        match (preview, error) {
            (Some(p), _) => Some(RestorePreviewReport {
                backup: Some(p.backup.clone()),
                existing_resource_policy: Some(p.existing_resource_policy.clone()),
                counts: Action::ALL
                    .iter()
                    .map(|a| (a.word().to_string(), p.count(*a)))
                    .collect(),
                items: p.items,
                error: None,
            }),
            (None, Some(e)) => Some(RestorePreviewReport {
                backup: None,
                existing_resource_policy: None,
                counts: BTreeMap::new(),
                items: Vec::new(),
                error: Some(e),
            }),
            (None, None) => None,
        }
    }

    pub fn markdown(&self, out: &mut String) {
        let _ = writeln!(out, "## What the restore changed\n");
        if let Some(e) = &self.error {
            let _ = writeln!(out, "No preview: {e}\n");
            return;
        }
        let _ = writeln!(
            out,
            "Previewed just before the restore of `{}` (existing objects: `{}`).\n",
            self.backup.as_deref().unwrap_or(""),
            self.existing_resource_policy.as_deref().unwrap_or("none")
        );
        let _ = writeln!(out, "| Action | Objects |\n|---|---|");
        for a in Action::ALL {
            let _ = writeln!(
                out,
                "| {} | {} |",
                a.word(),
                self.counts.get(a.word()).copied().unwrap_or(0)
            );
        }
        let _ = writeln!(out);
        for a in [
            Action::Update,
            Action::Create,
            Action::Skip,
            Action::Unknown,
        ] {
            let all: Vec<&PreviewItem> = self.items.iter().filter(|i| i.action == a).collect();
            if all.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{}:\n", heading(a));
            for i in all.iter().take(SHOWN) {
                let mut line = format!("- {}", i.object().replace('|', "\\|"));
                if let Some(from) = &i.from_namespace {
                    let _ = write!(line, " (from `{from}`)");
                }
                if !i.changes.is_empty() {
                    let _ = write!(line, ": {}", i.changes.join("; "));
                } else if let Some(why) = &i.reason {
                    let _ = write!(line, ": {why}");
                }
                let _ = writeln!(out, "{line}");
            }
            if all.len() > SHOWN {
                let _ = writeln!(
                    out,
                    "- … and {} more (every object is in the JSON report)",
                    all.len() - SHOWN
                );
            }
            let _ = writeln!(out);
        }
    }
}

fn heading(a: Action) -> &'static str {
    match a {
        Action::Update => "Updated to the backed-up state",
        Action::Create => "Created",
        Action::Skip => "Skipped",
        Action::Unknown => "Not compared",
        Action::Unchanged => "Unchanged",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::velero::preview::PreviewStats;

    fn preview(updates: usize) -> Preview {
        let mut items: Vec<PreviewItem> = (0..updates)
            .map(|i| {
                let mut item = PreviewItem::new(
                    Action::Update,
                    "v1",
                    "ConfigMap",
                    Some("shop"),
                    &format!("c{i:02}"),
                    Some("it exists and differs".into()),
                );
                item.changes = vec![format!("data.k: \"{i}\" → \"x\"")];
                item
            })
            .collect();
        items.push(PreviewItem::new(
            Action::Skip,
            "v1",
            "Node",
            None,
            "n1",
            Some("Velero never restores `nodes`".into()),
        ));
        Preview {
            backup: "b1".into(),
            existing_resource_policy: "update".into(),
            namespace_mapping: BTreeMap::new(),
            counts: [
                (Action::Update, updates as u64),
                (Action::Skip, 1),
                (Action::Unchanged, 40),
            ]
            .into_iter()
            .collect(),
            items,
            stats: PreviewStats::default(),
        }
    }

    #[test]
    fn markdown_counts_every_action_and_names_the_first_objects_of_each() {
        let report = RestorePreviewReport::of(Some(preview(SHOWN + 3)), None).expect("a report");
        assert_eq!(report.counts["unchanged"], 40);
        assert_eq!(report.counts["create"], 0);
        let mut out = String::new();
        report.markdown(&mut out);
        assert!(out.contains("| update | 13 |"), "{out}");
        assert!(out.contains("| unchanged | 40 |"), "{out}");
        assert!(
            out.contains("- ConfigMap shop/c00: data.k: \"0\" → \"x\""),
            "{out}"
        );
        assert!(
            !out.contains("c10"),
            "only the first {SHOWN} are named: {out}"
        );
        assert!(out.contains("- … and 3 more"), "{out}");
        assert!(
            out.contains("- Node n1: Velero never restores `nodes`"),
            "{out}"
        );
    }

    #[test]
    fn a_preview_that_could_not_be_made_says_why_and_no_preview_says_nothing() {
        let report = RestorePreviewReport::of(None, Some("cannot list `deployments.apps`".into()))
            .expect("a report");
        let mut out = String::new();
        report.markdown(&mut out);
        assert!(
            out.contains("No preview: cannot list `deployments.apps`"),
            "{out}"
        );
        assert!(RestorePreviewReport::of(None, None).is_none());
    }
}
