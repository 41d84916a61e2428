//! The committed schema, completions, help and version.

use crate::common::{Test, repo};

#[test]
fn committed_schema_matches_the_types() {
    let out = Test::new().arg("schema").run().code(0);
    let committed = std::fs::read_to_string(repo().join("workflows/schema.json"))
        .expect("workflows/schema.json is committed");
    assert!(
        out.stdout == committed,
        "workflows/schema.json is stale; regenerate it with `cargo run -- schema > workflows/schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).expect("schema is JSON");
    assert_eq!(schema["title"], "eks-upgrade workflow");
    assert_eq!(schema["additionalProperties"], false);
    // Every step kind is documented for editors.
    let step = &schema["$defs"]["RawStep"];
    for kind in eks_upgrade_core::steps::STEP_KINDS {
        assert!(
            step["properties"][kind]["description"].is_string(),
            "step kind {kind} has no description"
        );
    }
}

#[test]
fn shipped_workflows_point_editors_at_the_schema() {
    for entry in std::fs::read_dir(repo().join("workflows")).expect("workflows/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("read workflow");
            assert!(
                text.starts_with("# yaml-language-server: $schema=schema.json\n"),
                "{} does not start with the schema modeline",
                path.display()
            );
        }
    }
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = Test::new().args(["completions", shell]).run().code(0);
        assert!(
            out.stdout.contains("validate"),
            "{shell} completions lack `validate`"
        );
    }
    Test::new()
        .args(["completions", "tcsh"])
        .run()
        .code(2)
        .stderr_contains("invalid value 'tcsh'");
}

#[test]
fn help_lists_the_exit_codes_and_version_prints() {
    let out = Test::new().arg("--help").run().code(0);
    for line in ["Exit codes:", "  3 ", "  4 ", "  5 ", "  130 "] {
        assert!(
            out.stdout.contains(line),
            "--help lacks {line:?}:\n{}",
            out.stdout
        );
    }
    let out = Test::new().arg("--version").run().code(0);
    assert_eq!(
        out.stdout.trim(),
        format!("eks-upgrade {}", env!("CARGO_PKG_VERSION"))
    );
    Test::new()
        .arg("frobnicate")
        .run()
        .code(2)
        .stderr_contains("unrecognized subcommand");
    Test::new().run().code(2).stderr_contains("Usage:");
}
