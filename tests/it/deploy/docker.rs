//! The Dockerfile, read as Docker reads it and checked against Cargo.toml, the sources and the
//! manifests that run the image. No Docker engine is needed.

use std::path::{Component, Path, PathBuf};

use super::{cronjob_container, document, read};
use crate::common::repo;

/// One instruction, continuation lines joined, with the index of its build stage.
#[derive(Debug)]
struct Instruction {
    stage: usize,
    keyword: String,
    args: String,
}

fn instructions() -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut stage = 0;
    let mut pending = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        // Comment lines end nothing, even inside a continued instruction.
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let text = std::mem::take(&mut pending);
        let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((&text, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" && !out.is_empty() {
            stage += 1;
        }
        out.push(Instruction {
            stage,
            keyword,
            args: args.trim().to_string(),
        });
    }
    out
}

fn in_stage<'a>(all: &'a [Instruction], stage: usize, keyword: &str) -> Vec<&'a Instruction> {
    all.iter()
        .filter(|i| i.stage == stage && i.keyword == keyword)
        .collect()
}

fn last_stage(all: &[Instruction]) -> usize {
    all.iter().map(|i| i.stage).max().unwrap_or(0)
}

/// `COPY [--from=X] SRC... DEST`: (from, sources, destination).
fn copy_parts(i: &Instruction) -> (Option<String>, Vec<String>, String) {
    let mut words: Vec<String> = i.args.split_whitespace().map(str::to_string).collect();
    let from = words
        .iter()
        .position(|w| w.starts_with("--from="))
        .map(|p| words.remove(p).trim_start_matches("--from=").to_string());
    words.retain(|w| !w.starts_with("--"));
    let dest = words.pop().expect("COPY has a destination");
    (from, words, dest)
}

/// A value of Cargo.toml's `[section]`, by simple line reading (the manifest is plain TOML).
fn manifest_values(section: &str, key: &str) -> Vec<String> {
    let mut current = String::new();
    let mut out = Vec::new();
    for line in read("Cargo.toml").lines() {
        let line = line.trim();
        if line.starts_with('[') {
            current = line.to_string();
            continue;
        }
        if current == section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            out.push(v.trim().trim_matches('"').to_string());
        }
    }
    out
}

/// `[workspace] members = [...]`, by simple line reading.
fn workspace_members() -> Vec<String> {
    manifest_values("[workspace]", "members")
        .iter()
        .flat_map(|v| {
            v.trim_matches(['[', ']'])
                .split(',')
                .map(|m| m.trim().trim_matches('"').to_string())
                .filter(|m| !m.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn feature_names() -> Vec<String> {
    let mut in_features = false;
    let mut out = Vec::new();
    for line in read("Cargo.toml").lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_features = line == "[features]";
        } else if in_features && let Some((k, _)) = line.split_once('=') {
            out.push(k.trim().to_string());
        }
    }
    out
}

/// The binaries Cargo builds: the `[[bin]]` targets, or the package's own name for
/// `src/main.rs`.
fn binaries() -> Vec<String> {
    let mut bins = manifest_values("[[bin]]", "name");
    if repo().join("src/main.rs").exists() {
        bins.extend(manifest_values("[package]", "name"));
    }
    bins
}

#[test]
fn the_image_builds_the_crates_binary_and_runs_it() {
    let all = instructions();
    let bins = binaries();
    let build = in_stage(&all, 0, "RUN")
        .into_iter()
        .find(|i| i.args.contains("cargo build"))
        .expect("the first stage runs `cargo build`");
    let words: Vec<&str> = build.args.split_whitespace().collect();
    for flag in ["--release", "--locked"] {
        assert!(words.contains(&flag), "`cargo build` lacks {flag}");
    }
    let bin = words
        .iter()
        .position(|w| *w == "--bin")
        .and_then(|p| words.get(p + 1))
        .expect("`cargo build --bin NAME`");
    assert!(
        bins.iter().any(|b| b == bin),
        "`{bin}` is not one of {bins:?}"
    );
    let features = feature_names();
    for (p, w) in words.iter().enumerate() {
        if *w == "--features" || *w == "-F" {
            for f in words.get(p + 1).copied().unwrap_or("").split(',') {
                assert!(features.iter().any(|x| x == f), "unknown feature `{f}`");
            }
        }
    }

    // The toolchain image is at least the crate's declared rust-version.
    let from = &in_stage(&all, 0, "FROM")[0].args;
    let (image, stage_name) = from.split_once(" AS ").expect("`FROM … AS build`");
    let tag = image
        .strip_prefix("rust:")
        .expect("the official Rust image");
    let version = |s: &str| -> (u32, u32) {
        let mut parts = s.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    };
    let declared = manifest_values("[workspace.package]", "rust-version");
    assert!(
        version(tag) >= version(&declared[0]),
        "{tag} < {declared:?}"
    );

    // The binary leaves the build stage and is the final stage's entry point.
    let built = format!("target/release/{bin}");
    assert!(
        build.args.contains(&built),
        "the build step copies out {built}"
    );
    let out = build
        .args
        .split_whitespace()
        .skip_while(|w| *w != built)
        .nth(1)
        .expect("where the binary is copied to");
    let last = last_stage(&all);
    let installed = in_stage(&all, last, "COPY")
        .into_iter()
        .map(copy_parts)
        .find(|(from, srcs, _)| from.as_deref() == Some(stage_name.trim()) && srcs == &[out])
        .map(|(_, _, dest)| dest)
        .expect("the final stage copies the binary from the build stage");
    let entrypoint: Vec<String> = serde_json::from_str(&in_stage(&all, last, "ENTRYPOINT")[0].args)
        .expect("ENTRYPOINT in exec form");
    assert_eq!(entrypoint, std::slice::from_ref(&installed));
    assert!(installed.ends_with(&format!("/{bin}")), "{installed}");
}

/// `a/b/../c` → `a/c`, for paths relative to the repository.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Every file the build reads besides the sources: the workspace members' manifests (Cargo loads
/// every member, built or not), the bench targets Cargo.toml declares and the files the sources
/// embed.
fn files_the_build_reads() -> Vec<String> {
    let mut needed = vec!["Cargo.toml".to_string(), "Cargo.lock".to_string()];
    let members = workspace_members();
    assert!(!members.is_empty(), "Cargo.toml declares workspace members");
    for member in &members {
        needed.push(format!("{member}/Cargo.toml"));
    }
    for bench in manifest_values("[[bench]]", "name") {
        needed.push(format!("benches/{bench}.rs"));
    }
    // Cargo loads every crate `[patch]` points at, even one the image's build never compiles.
    let path = regex_lite::Regex::new(r#"path\s*=\s*"([^"]+)""#).expect("regex");
    let mut in_patch = false;
    for line in read("Cargo.toml").lines().map(str::trim) {
        if line.starts_with('[') {
            in_patch = line.starts_with("[patch");
        } else if in_patch && let Some(cap) = path.captures(line) {
            needed.push(format!("{}/Cargo.toml", &cap[1]));
            needed.push(format!("{}/src/lib.rs", &cap[1]));
        }
    }
    let include =
        regex_lite::Regex::new(r#"include_(?:str|bytes)!\(\s*"([^"]+)"\s*\)"#).expect("regex");
    let mut stack = vec![repo().join("src")];
    stack.extend(members.iter().map(|m| repo().join(m).join("src")));
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for cap in include.captures_iter(&text) {
                let rel = path
                    .parent()
                    .and_then(|p| p.strip_prefix(repo()).ok())
                    .expect("under the repository")
                    .join(&cap[1]);
                needed.push(normalize(&rel).to_string_lossy().replace('\\', "/"));
            }
        }
    }
    needed.sort();
    needed.dedup();
    needed
}

fn covered(path: &str, sources: &[String]) -> bool {
    sources.iter().any(|s| {
        let s = s.trim_end_matches('/');
        path == s || path.starts_with(&format!("{s}/"))
    })
}

#[test]
fn the_build_context_holds_every_file_the_build_reads() {
    let all = instructions();
    let build_sources: Vec<String> = in_stage(&all, 0, "COPY")
        .into_iter()
        .map(copy_parts)
        .filter(|(from, _, _)| from.is_none())
        .flat_map(|(_, srcs, _)| srcs)
        .collect();
    let needed = files_the_build_reads();
    assert!(
        needed.iter().any(|p| p.starts_with("examples/")),
        "{needed:?}"
    );
    for path in &needed {
        assert!(repo().join(path).is_file(), "{path} does not exist");
        assert!(
            covered(path, &build_sources),
            "the build reads {path}, but the build stage copies only {build_sources:?}"
        );
    }

    // .dockerignore is an allow-list; every COPY source of every stage must be on it.
    let ignore = read(".dockerignore");
    let mut lines = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    assert_eq!(
        lines.next(),
        Some("*"),
        ".dockerignore starts by excluding everything"
    );
    let allowed: Vec<String> = lines
        .filter_map(|l| l.strip_prefix('!'))
        .map(str::to_string)
        .collect();
    for i in all.iter().filter(|i| i.keyword == "COPY") {
        let (from, srcs, _) = copy_parts(i);
        if from.is_some() {
            continue;
        }
        for s in srcs {
            assert!(repo().join(&s).exists(), "COPY {s}: no such path");
            assert!(
                covered(&s, &allowed),
                "COPY {s}, but .dockerignore leaves it out"
            );
        }
    }
}

#[test]
fn the_image_user_and_helper_are_those_the_manifests_use() {
    let all = instructions();
    let last = last_stage(&all);
    let user = &in_stage(&all, last, "USER")
        .last()
        .expect("the final stage sets USER")
        .args;
    let uid: i64 = user
        .split(':')
        .next()
        .and_then(|u| u.parse().ok())
        .expect("numeric USER");
    assert_ne!(uid, 0, "the image must not run as root");

    let cronjob = document("examples/kubernetes/cronjob.yaml", "CronJob");
    let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], uid);
    let fleet = document("examples/argo/fleet-upgrade.yaml", "WorkflowTemplate");
    let templates = fleet["spec"]["templates"].as_array().expect("templates");
    let argo_containers: Vec<&serde_json::Value> = templates
        .iter()
        .filter(|t| t["container"].is_object())
        .map(|t| &t["container"])
        .collect();
    for c in &argo_containers {
        assert_eq!(c["securityContext"]["runAsUser"], uid, "{c}");
    }

    // The helper the manifests start is where the image puts helpers/.
    let workdir = in_stage(&all, last, "WORKDIR")
        .last()
        .expect("WORKDIR")
        .args
        .clone();
    let helpers = in_stage(&all, last, "COPY")
        .into_iter()
        .map(copy_parts)
        .find(|(from, srcs, _)| from.is_none() && srcs == &["helpers"])
        .map(|(_, _, dest)| dest)
        .expect("the image copies helpers/");
    let in_image = normalize(&Path::new(&workdir).join(helpers).join("scheduled-run.sh"));
    let expected = in_image.to_string_lossy().to_string();
    assert_eq!(cronjob_container()["command"][0], expected.as_str());
    let upgrade = templates
        .iter()
        .find(|t| t["name"] == "eks-upgrade")
        .expect("the eks-upgrade template");
    assert_eq!(upgrade["container"]["command"][0], expected.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(repo().join("helpers/scheduled-run.sh"))
            .expect("helpers/scheduled-run.sh")
            .permissions()
            .mode();
        assert_ne!(mode & 0o111, 0, "helpers/scheduled-run.sh is executable");
    }
}
