//! Blue/green runs end to end: green made beside blue, blue's verified backup restored into
//! it, traffic moved by DNS weights and switched back in one change when something fails. The
//! sandbox's request record (filtered by cluster) proves what changed on which side.

mod create;
mod restore;
mod story;
mod traffic;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::repo;

/// The shipped blue/green workflow with edits, written into `dir`.
pub fn bg_workflow(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let text =
        std::fs::read_to_string(repo().join("workflows/blue-green.yaml")).expect("blue-green.yaml");
    let path = dir.join("blue-green.yaml");
    // The sandbox offers up to 1.36; the tests build green at 1.35, named `demo-1-35`.
    let text = text.replace("target: latest", "target: \"1.35\"");
    std::fs::write(&path, edit(text)).expect("write workflow");
    path
}

/// The weight changes a journal recorded, as (blue, green, change id).
pub fn journal_points(journal: &Value) -> Vec<(i64, i64, Option<String>)> {
    journal["facts"]["traffic"]
        .as_array()
        .map(|p| {
            p.iter()
                .map(|x| {
                    (
                        x["blue"].as_i64().unwrap_or(-1),
                        x["green"].as_i64().unwrap_or(-1),
                        x["changeId"].as_str().map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
