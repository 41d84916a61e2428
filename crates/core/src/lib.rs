//! eks-upgrade-core: everything a run does, from loading a workflow to the report, with no
//! terminal and no emulator in it. The binary (`eks-upgrade`) draws the terminal and parses the
//! command line; `eks-upgrade-sandbox` is the emulated world the tests and the demo run against.
//!
//! Modules, from the bottom up (a module uses only those listed before it):
//! `types`, `errors` → `format` → `state`, `exit` → `journal` → `events` → `cloud` → `velero` →
//! `checks` → `steps` → `workflow` → `engine`.

pub mod checks;
pub mod cloud;
pub mod engine;
pub mod errors;
pub mod events;
pub mod exit;
pub mod format;
pub mod journal;
pub mod state;
pub mod steps;
pub mod types;
pub mod velero;
pub mod workflow;

#[cfg(test)]
mod layers {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// The modules from the bottom up: each may use only those before it. The order is the
    /// architecture (see `docs/architecture.md`); a use that breaks it is an import cycle in the
    /// making.
    const ORDER: &[&str] = &[
        "types", "errors", "format", "state", "exit", "journal", "events", "cloud", "velero",
        "checks", "steps", "workflow", "engine",
    ];

    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Top-level module → the top-level modules its code names through `crate::`.
    fn uses() -> BTreeMap<String, BTreeSet<String>> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in files {
            let rel = file.strip_prefix(&src).expect("under src");
            let first = rel.components().next().expect("a component");
            let module = first
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&file).expect("read source");
            let used = out.entry(module.clone()).or_default();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (at, _) in line.match_indices("crate::") {
                    let rest = &line[at + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != module {
                        used.insert(name);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_module_uses_only_the_layers_below_it() {
        let uses = uses();
        for module in uses.keys() {
            assert!(
                ORDER.contains(&module.as_str()),
                "`{module}` is not placed in the layer order; add it to ORDER"
            );
        }
        let mut wrong = Vec::new();
        for (module, used) in &uses {
            let at = ORDER.iter().position(|m| m == module).unwrap_or(0);
            for u in used {
                match ORDER.iter().position(|m| m == u) {
                    Some(p) if p < at => {}
                    _ => wrong.push(format!("`{module}` uses `{u}`")),
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "uses against the layer order:\n{}",
            wrong.join("\n")
        );
    }
}
