//! The tamper-evident manifest: files changed in the bucket after verification are refused at
//! restore, by name, whether the restore is `backup restore`, a run's `veleroRestore`, or the
//! same step in a resumed run; and a signed manifest cannot be rewritten without the KMS key.

use serde_json::Value;

use super::preview::backup_and_verify;
use super::{External, running_with_fact, workflow};
use crate::common::{POLL_TIMEOUT, Timed, poll};

const BUCKET: &str = "velero-backups";

fn restores(sb: &External) -> usize {
    sb.count(
        "kubernetes",
        "POST /apis/velero.io/v1/namespaces/velero/restores",
    )
}

#[test]
fn backup_restore_refuses_a_flipped_tarball_byte_and_a_replaced_metadata_file_by_name() {
    let sb = External::from_example("healthy.yaml");
    backup_and_verify(&sb, "b1", &["--include-namespace", "shop"]);
    let s3 = sb.s3();
    let manifest: Value =
        serde_json::from_slice(&s3.get(BUCKET, "backups/b1/eks-upgrade-manifest.json"))
            .expect("a JSON manifest beside the backup");
    assert_eq!(manifest["backup"], "b1");
    let files: Vec<&str> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    assert!(files.contains(&"backups/b1/b1.tar.gz"), "{files:?}");
    assert!(
        files.contains(&"backups/b1/velero-backup.json"),
        "{files:?}"
    );

    let tarball = "backups/b1/b1.tar.gz";
    let original = s3.get(BUCKET, tarball);
    s3.flip_byte(BUCKET, tarball);
    for extra in [&["--dry-run"][..], &[]] {
        let mut args = vec!["backup", "restore", "b1", "--cluster", "demo"];
        args.extend_from_slice(extra);
        let refused = sb.eks_upgrade(&args).run().code(3);
        assert!(
            refused.stderr.contains("refusing to restore `b1`")
                && refused
                    .stderr
                    .contains("`backups/b1/b1.tar.gz` differs from the manifest"),
            "{}",
            refused.stderr
        );
    }
    // Without the preview, the tarball is hashed on its own and refused all the same.
    let refused = sb
        .eks_upgrade(&[
            "backup",
            "restore",
            "b1",
            "--cluster",
            "demo",
            "--no-preview",
        ])
        .run()
        .code(3);
    assert!(
        refused.stderr.contains("`backups/b1/b1.tar.gz`"),
        "{}",
        refused.stderr
    );
    s3.put(BUCKET, tarball, original);

    // A rewritten `velero-backup.json`: still valid JSON, another phase history.
    let key = "backups/b1/velero-backup.json";
    let original = s3.get(BUCKET, key);
    let mut meta: Value = serde_json::from_slice(&original).expect("JSON");
    meta["status"]["warnings"] = serde_json::json!(0);
    meta["metadata"]["annotations"]["tampered"] = serde_json::json!("yes");
    s3.put(BUCKET, key, serde_json::to_vec_pretty(&meta).expect("JSON"));
    let refused = sb
        .eks_upgrade(&["backup", "restore", "b1", "--cluster", "demo"])
        .run()
        .code(3);
    assert!(
        refused
            .stderr
            .contains("`backups/b1/velero-backup.json` differs from the manifest"),
        "{}",
        refused.stderr
    );
    s3.put(BUCKET, key, original);
    // A file Velero would read, added after verification.
    s3.put(
        BUCKET,
        "backups/b1/b1-csi-volumesnapshots.json.gz",
        vec![0x1f, 0x8b],
    );
    let refused = sb
        .eks_upgrade(&["backup", "restore", "b1", "--cluster", "demo", "--dry-run"])
        .run()
        .code(3);
    assert!(
        refused.stderr.contains(
            "`backups/b1/b1-csi-volumesnapshots.json.gz` was not in the backup when it was verified"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(restores(&sb), 0, "nothing was restored");
}

/// `breaks-after-upgrade.yaml` with a slow control-plane update: time to act mid-run.
fn slow_breaking() -> External {
    let text = std::fs::read_to_string(
        crate::common::repo().join("examples/sandbox/breaks-after-upgrade.yaml"),
    )
    .expect("breaks-after-upgrade.yaml");
    External::start(&text.replace(
        "  speed: 600\n",
        "  speed: 600\n  timings: { controlPlaneUpdate: 50m }\n",
    ))
}

fn slow_workflow(sb: &External) -> std::path::PathBuf {
    workflow(sb.dir.path(), "in-place.yaml", |t| {
        t.replace(
            "upgradeControlPlane: { timeout: 60m }",
            "upgradeControlPlane: { timeout: 4h }",
        )
    })
}

/// The run's backup name and its restore step's error.
fn restore_error(sb: &External) -> (String, String) {
    let j = sb.journal();
    let steps = j["steps"].as_array().cloned().unwrap_or_default();
    let backup = steps
        .iter()
        .find(|s| s["key"]["id"] == "backup")
        .and_then(|s| s["facts"]["backup"].as_str())
        .expect("the backup's name")
        .to_string();
    let restore = steps
        .iter()
        .find(|s| s["key"]["id"] == "restore")
        .unwrap_or_else(|| panic!("a restore step: {j}"));
    assert_eq!(restore["status"], "failed", "{restore}");
    assert!(
        restore["facts"]["restore"].is_null(),
        "no Restore was named: {restore}"
    );
    (backup, restore["error"].as_str().unwrap_or("").to_string())
}

#[test]
fn a_run_refuses_to_restore_a_tarball_changed_while_it_upgraded() {
    let sb = slow_breaking();
    let wf = slow_workflow(&sb);
    let mut run = sb.run_workflow(&wf, &[]).spawn();
    poll("the control-plane update to start", POLL_TIMEOUT, || {
        run.check(
            sb.journal_so_far()
                .is_some_and(|j| running_with_fact(&j, "control-plane", "updateId")),
        )
    });
    let backup = sb.journal()["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["key"]["id"] == "backup"))
        .and_then(|s| s["facts"]["backup"].as_str().map(str::to_string))
        .expect("the backup's name");
    let tarball = format!("backups/{backup}/{backup}.tar.gz");
    sb.s3().flip_byte(BUCKET, &tarball);
    let out = run.wait().code(5);
    let (_, error) = restore_error(&sb);
    assert!(
        error.contains("refusing to restore") && error.contains(&format!("`{tarball}`")),
        "{error}\n{}",
        out.stderr
    );
    assert_eq!(restores(&sb), 0, "nothing was restored");
}

#[test]
fn a_resumed_run_checks_the_files_again_before_it_restores() {
    let sb = slow_breaking();
    let wf = slow_workflow(&sb);
    let mut run = sb.run_workflow(&wf, &[]).spawn();
    poll("the control-plane update to start", POLL_TIMEOUT, || {
        run.check(
            sb.journal_so_far()
                .is_some_and(|j| running_with_fact(&j, "control-plane", "updateId")),
        )
    });
    run.kill();
    let j = sb.journal();
    let verify = j["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["key"]["id"] == "verify"))
        .cloned()
        .expect("the verify step");
    let manifest = &verify["facts"]["manifest"];
    assert!(
        manifest["sha256"].as_str().is_some_and(|h| h.len() == 64),
        "the manifest's own SHA-256 is in the journal: {verify}"
    );
    let backup = verify["facts"]["verified"]["backup"]
        .as_str()
        .expect("verified")
        .to_string();
    // Between the two processes, someone replaces the backup's metadata file.
    let s3 = sb.s3();
    let key = format!("backups/{backup}/velero-backup.json");
    let mut meta: Value = serde_json::from_slice(&s3.get(BUCKET, &key)).expect("JSON");
    meta["spec"]["ttl"] = serde_json::json!("1h0m0s");
    s3.put(
        BUCKET,
        &key,
        serde_json::to_vec_pretty(&meta).expect("JSON"),
    );

    sb.eks_upgrade(&["resume", "--yes", "--time-scale", "600", "--ignore-window"])
        .run()
        .code(5);
    let (_, error) = restore_error(&sb);
    assert!(
        error.contains(&format!("`{key}` differs from the manifest")),
        "{error}"
    );
    assert_eq!(restores(&sb), 0, "nothing was restored");
}

#[test]
fn a_signed_manifest_rewritten_without_the_key_is_refused() {
    let sb = External::from_example("healthy.yaml");
    let key = "alias/eks-upgrade-manifests";
    sb.eks_upgrade(&["backup", "create", "--cluster", "demo", "--name", "s1"])
        .run()
        .code(0);
    let verified = sb
        .eks_upgrade(&[
            "backup",
            "verify",
            "s1",
            "--cluster",
            "demo",
            "--sign-with",
            key,
        ])
        .run()
        .code(0);
    assert!(
        verified.stderr.contains("signed by `arn:aws:kms:"),
        "{}",
        verified.stderr
    );
    assert!(sb.count("kms", "Sign") >= 1);

    // Another operator, with no local record of the verification, previews the restore: the
    // signature holds.
    let elsewhere = sb.dir.path().join("elsewhere");
    let restore = |args: &[&str]| {
        let mut all = vec!["backup", "restore", "s1", "--cluster", "demo"];
        all.extend_from_slice(args);
        sb.eks_upgrade(&all)
            .env("EKS_UPGRADE_STATE_DIR", &elsewhere)
    };
    let ok = restore(&["--verify", "--kms-key", key, "--dry-run"])
        .run()
        .code(0);
    assert!(ok.stderr.contains("signed by"), "{}", ok.stderr);

    // Someone with write access to the bucket changes a file and rewrites the manifest to
    // match, without the key.
    let s3 = sb.s3();
    let meta_key = "backups/s1/velero-backup.json";
    let mut meta: Value = serde_json::from_slice(&s3.get(BUCKET, meta_key)).expect("JSON");
    meta["metadata"]["labels"]["tampered"] = serde_json::json!("yes");
    let meta_bytes = serde_json::to_vec_pretty(&meta).expect("JSON");
    let manifest_key = "backups/s1/eks-upgrade-manifest.json";
    let mut manifest: Value =
        serde_json::from_slice(&s3.get(BUCKET, manifest_key)).expect("manifest");
    for f in manifest["files"].as_array_mut().expect("files") {
        if f["key"] == meta_key {
            use sha2::Digest;
            f["sha256"] = serde_json::json!(hex(&sha2::Sha256::digest(&meta_bytes)));
            f["size"] = serde_json::json!(meta_bytes.len());
            f["etag"] = Value::Null;
            f["md5"] = Value::Null;
        }
    }
    s3.put(BUCKET, meta_key, meta_bytes);
    s3.put(
        BUCKET,
        manifest_key,
        serde_json::to_vec_pretty(&manifest).expect("JSON"),
    );

    let refused = restore(&["--verify", "--kms-key", key, "--dry-run"])
        .run()
        .code(3);
    assert!(
        refused.stderr.contains(
            "the signature of the manifest `backups/s1/eks-upgrade-manifest.json` does not hold"
        ),
        "{}",
        refused.stderr
    );
    // The same with a fresh signature by a key of their own: the trusted key did not make it.
    let own = std::process::Command::new("aws")
        .args([
            "kms",
            "sign",
            "--key-id",
            "alias/someone-else",
            "--message-type",
            "DIGEST",
        ])
        .args(["--signing-algorithm", "ECDSA_SHA_256", "--message"])
        .arg(format!(
            "fileb://{}",
            digest_file(&sb, &s3.get(BUCKET, manifest_key)).display()
        ))
        .args(["--query", "[KeyId, Signature]", "--output", "json"])
        .envs(sb.env.iter().map(|(k, v)| (k.clone(), v.clone())))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output_timed()
        .expect("aws kms sign");
    let signed: Value = serde_json::from_str(&own.stdout).expect("aws prints JSON");
    let mut sig: Value =
        serde_json::from_slice(&s3.get(BUCKET, "backups/s1/eks-upgrade-manifest.json.sig"))
            .expect("a signature file");
    sig["keyId"] = signed[0].clone();
    sig["signature"] = signed[1].clone();
    sig["manifestSha256"] = serde_json::json!(hex(&{
        use sha2::Digest;
        sha2::Sha256::digest(s3.get(BUCKET, manifest_key))
    }));
    s3.put(
        BUCKET,
        "backups/s1/eks-upgrade-manifest.json.sig",
        serde_json::to_vec_pretty(&sig).expect("JSON"),
    );
    let refused = restore(&["--verify", "--kms-key", key]).run().code(3);
    assert!(
        refused
            .stderr
            .contains(&format!("KMS key `{key}` did not make it")),
        "{}",
        refused.stderr
    );
    // Where the verification was recorded, the manifest's own SHA-256 catches it first.
    let here = sb
        .eks_upgrade(&["backup", "restore", "s1", "--cluster", "demo", "--dry-run"])
        .run()
        .code(3);
    assert!(
        here.stderr.contains("changed since it was recorded"),
        "{}",
        here.stderr
    );
    assert_eq!(restores(&sb), 0);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest_file(sb: &External, bytes: &[u8]) -> std::path::PathBuf {
    use sha2::Digest;
    let path = sb.dir.path().join("digest.bin");
    std::fs::write(&path, sha2::Sha256::digest(bytes)).expect("write digest");
    path
}
