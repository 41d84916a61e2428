//! `eks-upgrade backup create | verify | restore`, driven like an operator would, with the real
//! kubectl changing the cluster in between.

use std::process::{Command, Stdio};

use super::{External, wait};

fn kubectl(sb: &External, args: &[&str]) -> String {
    let mut cmd = Command::new("kubectl");
    cmd.args(args).arg(format!(
        "--cache-dir={}",
        sb.dir.path().join("kube-cache").display()
    ));
    for (k, v) in &sb.env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("kubectl is installed");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn create_verify_and_restore_a_backup_by_hand() {
    let sb = External::from_example("healthy.yaml");
    let create = wait(
        sb.command(&[
            "backup",
            "create",
            "--cluster",
            "demo",
            "--name",
            "manual-1",
            "--include-namespace",
            "shop",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("create"),
    );
    create.code(0);
    assert_eq!(
        create.stdout.trim(),
        "manual-1",
        "the name is the data on stdout"
    );

    // Not verified yet: a restore is refused and nothing is created.
    let refused = wait(
        sb.command(&["backup", "restore", "manual-1", "--cluster", "demo"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("restore"),
    );
    refused.code(3);
    assert!(
        refused.stderr.contains("has not been verified in S3"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        sb.count(
            "kubernetes",
            "POST /apis/velero.io/v1/namespaces/velero/restores"
        ),
        0
    );

    let verify = wait(
        sb.command(&[
            "backup",
            "verify",
            "manual-1",
            "--cluster",
            "demo",
            "--output",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("verify"),
    );
    verify.code(0);
    let v: serde_json::Value = serde_json::from_str(&verify.stdout).expect("JSON findings");
    assert_eq!(v["sound"], true);
    assert!(v["itemsInTarball"].as_u64().is_some_and(|n| n > 3));

    // Drift: one object deleted, one changed.
    kubectl(&sb, &["-n", "shop", "delete", "configmap", "web-config"]);
    kubectl(
        &sb,
        &[
            "-n",
            "shop",
            "patch",
            "secret",
            "db-credentials",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"password":"Y2hhbmdlZA=="}}"#,
        ],
    );

    let restore = wait(
        sb.command(&["backup", "restore", "manual-1", "--cluster", "demo"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("restore"),
    );
    restore.code(0);
    assert!(
        kubectl(
            &sb,
            &[
                "-n",
                "shop",
                "get",
                "configmap",
                "web-config",
                "-o",
                "jsonpath={.data.LOG_LEVEL}"
            ]
        ) == "info",
        "the deleted ConfigMap is back"
    );
    assert_eq!(
        kubectl(
            &sb,
            &[
                "-n",
                "shop",
                "get",
                "secret",
                "db-credentials",
                "-o",
                "jsonpath={.data.password}"
            ]
        ),
        "c2FuZGJveC1vbmx5",
        "the changed Secret is reverted"
    );
}

#[test]
fn verify_reports_a_damaged_backup_with_exit_3_and_its_findings() {
    let sb = External::from_example("corrupted-backup.yaml");
    wait(
        sb.command(&["backup", "create", "--cluster", "demo", "--name", "b1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("create"),
    )
    .code(0);
    let meta = wait(
        sb.command(&[
            "backup",
            "verify",
            "b1",
            "--cluster",
            "demo",
            "--depth",
            "metadata",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("verify"),
    );
    meta.code(0);
    let full = wait(
        sb.command(&["backup", "verify", "b1", "--cluster", "demo"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("verify"),
    );
    full.code(3);
    assert!(
        full.stdout.contains("backups/b1/b1.tar.gz") && full.stdout.contains("corrupt"),
        "{}",
        full.stdout
    );
    // `--verify` refuses the damaged backup too.
    let restore = wait(
        sb.command(&["backup", "restore", "b1", "--cluster", "demo", "--verify"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("restore"),
    );
    restore.code(3);
    assert_eq!(
        sb.count(
            "kubernetes",
            "POST /apis/velero.io/v1/namespaces/velero/restores"
        ),
        0
    );
}
