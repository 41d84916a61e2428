//! Running in production: the container image (`Dockerfile`), the Kubernetes manifests
//! (`examples/kubernetes/`), the Argo fleet template (`examples/argo/`), the IAM policy
//! (`examples/iam/policy.json`) and the scheduled entry point (`helpers/scheduled-run.sh`),
//! each checked against what the code does rather than against a list kept by hand.

mod docker;
mod iam;
mod manifests;
mod rbac;
mod scheduled;

use std::path::Path;

use serde_json::Value;

use crate::common::repo;

/// A repository file's text.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Every YAML document of a manifest file, as JSON values (comments and empty documents gone).
pub fn documents(path: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(&read(path))
        .unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The one document of `kind` in a manifest file.
pub fn document(path: &str, kind: &str) -> Value {
    let mut found: Vec<Value> = documents(path)
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "{path} should hold exactly one {kind}");
    found.remove(0)
}

/// The CronJob's container.
pub fn cronjob_container() -> Value {
    let cronjob = document("examples/kubernetes/cronjob.yaml", "CronJob");
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0].clone()
}

/// A container's `args` as strings.
pub fn args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .expect("the container has args")
        .iter()
        .map(|a| a.as_str().expect("string args").to_string())
        .collect()
}

/// The value following `flag` in an argument list.
pub fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// Rust sources of the tool itself, without the sandbox (which emulates AWS and Kubernetes and
/// is never part of what runs against a real account), as (path relative to the repository,
/// text without comment lines).
pub fn tool_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = repo();
    let mut files = Vec::new();
    // The binary's sources and the core library's; the sandbox crate is the emulator.
    walk(&root.join("src"), &mut files);
    walk(&root.join("crates/core/src"), &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let rel = p
                .strip_prefix(&root)
                .ok()?
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).ok()?;
            // Doc comments hold examples (`get_token(…)` in cloud/token.rs); only code counts.
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| format!("{l}\n"))
                .collect();
            Some((rel, code))
        })
        .collect()
}
