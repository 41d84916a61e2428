//! `eks-upgrade backup create | verify | restore`, driven like an operator would, with the real
//! kubectl changing the cluster in between.

use std::process::Command;

use super::External;
use crate::common::Timed;

fn kubectl(sb: &External, args: &[&str]) -> String {
    let mut cmd = Command::new("kubectl");
    cmd.args(args).arg(format!(
        "--cache-dir={}",
        sb.dir.path().join("kube-cache").display()
    ));
    for (k, v) in &sb.env {
        cmd.env(k, v);
    }
    let out = cmd.output_timed().expect("kubectl is installed");
    assert!(out.code == Some(0), "kubectl {args:?}: {}", out.stderr);
    out.stdout
}

#[test]
fn create_verify_and_restore_a_backup_by_hand() {
    let sb = External::from_example("healthy.yaml");
    let create = sb
        .eks_upgrade(&[
            "backup",
            "create",
            "--cluster",
            "demo",
            "--name",
            "manual-1",
            "--include-namespace",
            "shop",
        ])
        .run()
        .code(0);
    assert_eq!(
        create.stdout.trim(),
        "manual-1",
        "the name is the data on stdout"
    );

    // Not verified yet: a restore is refused and nothing is created.
    let refused = sb
        .eks_upgrade(&["backup", "restore", "manual-1", "--cluster", "demo"])
        .run()
        .code(3);
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

    let verify = sb
        .eks_upgrade(&[
            "backup",
            "verify",
            "manual-1",
            "--cluster",
            "demo",
            "--output",
            "json",
        ])
        .run()
        .code(0);
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

    sb.eks_upgrade(&["backup", "restore", "manual-1", "--cluster", "demo"])
        .run()
        .code(0);
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
    sb.eks_upgrade(&["backup", "create", "--cluster", "demo", "--name", "b1"])
        .run()
        .code(0);
    sb.eks_upgrade(&[
        "backup",
        "verify",
        "b1",
        "--cluster",
        "demo",
        "--depth",
        "metadata",
    ])
    .run()
    .code(0);
    let full = sb
        .eks_upgrade(&["backup", "verify", "b1", "--cluster", "demo"])
        .run()
        .code(3);
    assert!(
        full.stdout.contains("backups/b1/b1.tar.gz") && full.stdout.contains("corrupt"),
        "{}",
        full.stdout
    );
    // `--verify` refuses the damaged backup too.
    sb.eks_upgrade(&["backup", "restore", "b1", "--cluster", "demo", "--verify"])
        .run()
        .code(3);
    assert_eq!(
        sb.count(
            "kubernetes",
            "POST /apis/velero.io/v1/namespaces/velero/restores"
        ),
        0
    );
}
