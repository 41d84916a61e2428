//! The tool's S3 code against a second S3 implementation nobody here wrote: the `moto` server
//! from PyPI (`pip install 'moto[server]'`, which `.ci/run` does). A backup Velero wrote to the
//! sandbox is copied to moto and verified there, damage included; and a run keeps its journal in
//! moto while everything else talks to the sandbox.
//!
//! These tests need moto, which a machine with only Rust lacks, so they are ignored by default
//! and reported as such; CI runs them with `cargo test --locked --test it -- --ignored`, and so
//! can anyone with moto installed. Run that way without moto, they fail and say what to install.

use std::net::{TcpListener, TcpStream};
use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;
use eks_upgrade_core::velero::layout::BackupLocation;
use eks_upgrade_core::velero::verify::VerifyDepth;
use eks_upgrade_core::velero::verify::{self, Severity};

use crate::common::{POLL_TIMEOUT, Running, TestSandbox, Timed, poll};
use crate::e2e::{External, workflow};

/// A moto server on a free loopback port, stopped when dropped.
pub struct Moto {
    /// Killed when the test ends.
    _server: Running,
    pub endpoint: String,
}

impl Moto {
    /// Starts `moto_server` and waits until it listens; fails the test, saying what to install,
    /// if moto is missing.
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut server = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .spawn_timed()
            .unwrap_or_else(|e| {
                panic!(
                    "`moto_server` did not start ({e})\nhint: install it with `pip install 'moto[server]'` (as .ci/run does), or run the tests without `--ignored`"
                )
            });
        poll(
            &format!("moto_server to listen on port {port}"),
            POLL_TIMEOUT,
            || {
                if let Some(status) = server.exited() {
                    panic!(
                        "moto_server exited ({status}) before it listened\n--- stderr\n{}",
                        server.stderr_so_far()
                    );
                }
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            },
        );
        Moto {
            _server: server,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        eks_upgrade_sandbox::s3_client(&self.endpoint, "us-east-1")
    }
}

/// Copies every object under `prefix` from one S3 to another.
async fn copy_prefix(
    from: &aws_sdk_s3::Client,
    to: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> usize {
    let listed = from
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list the sandbox bucket");
    let mut copied = 0;
    for object in listed.contents() {
        let key = object.key().expect("a key");
        let body = from
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("get from the sandbox")
            .body
            .collect()
            .await
            .expect("read the body")
            .into_bytes();
        to.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .expect("put into moto");
        copied += 1;
    }
    copied
}

#[test]
#[ignore = "needs the moto server (pip install 'moto[server]'); CI runs it with --ignored"]
fn a_backup_in_moto_verifies_and_its_damage_is_found() {
    let moto = Moto::start();
    let sb = TestSandbox::start(Some(&crate::velero::scenario("{}")));
    let b = crate::velero::backup(&sb, "copied");
    let uid = b["metadata"]["uid"].as_str().map(str::to_string);
    let sandbox_s3 = eks_upgrade_sandbox::s3_client(&sb.sandbox.endpoints.s3, "us-east-1");
    let m = moto.client();
    let loc = BackupLocation {
        bucket: "velero-backups".into(),
        prefix: None,
        name: "copied".into(),
    };
    sb.block_on(async {
        m.create_bucket()
            .bucket("velero-backups")
            .send()
            .await
            .expect("create the bucket in moto");
        let n = copy_prefix(&sandbox_s3, &m, "velero-backups", "backups/copied/").await;
        assert!(n >= 5, "a Velero backup is several files, copied {n}");

        let good = verify::verify(&m, &loc, uid.as_deref(), VerifyDepth::Full, None)
            .await
            .expect("verification runs against moto");
        assert!(good.sound, "{:?}", good.findings);
        assert_eq!(
            good.items_in_tarball,
            b["status"]["progress"]["itemsBackedUp"].as_u64()
        );

        // The ranged reader large backups use, with If-Match on every part, against moto.
        let (tx, mut reader) = eks_upgrade_core::velero::verify::stream::channel();
        let reading = std::thread::spawn(move || {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut out).map(|_| out)
        });
        let sent = eks_upgrade_core::velero::verify::ranged::send(
            &m,
            "velero-backups",
            "backups/copied/copied.tar.gz",
            97,
            &tx,
            |_, _| {},
        )
        .await
        .unwrap_or_else(|e| panic!("ranged read from moto: {e:?}"));
        drop(tx);
        let got = reading.join().expect("reader").expect("read");
        assert_eq!(got.len() as u64, sent);
        assert!(sent > 1000);

        // One byte changed in the middle of the gzip stream.
        let key = "backups/copied/copied.tar.gz";
        let mut tarball = m
            .get_object()
            .bucket("velero-backups")
            .key(key)
            .send()
            .await
            .expect("get the tarball")
            .body
            .collect()
            .await
            .expect("read the tarball")
            .into_bytes()
            .to_vec();
        let middle = tarball.len() / 2;
        tarball[middle] ^= 0x55;
        m.put_object()
            .bucket("velero-backups")
            .key(key)
            .body(ByteStream::from(tarball))
            .send()
            .await
            .expect("put the damaged tarball");
        let damaged = verify::verify(&m, &loc, uid.as_deref(), VerifyDepth::Full, None)
            .await
            .expect("verification runs against moto");
        assert!(!damaged.sound);
        assert!(
            damaged
                .findings
                .iter()
                .any(|f| f.severity == Severity::Error && f.key.contains(key)),
            "{:?}",
            damaged.findings
        );

        m.delete_object()
            .bucket("velero-backups")
            .key("backups/copied/velero-backup.json")
            .send()
            .await
            .expect("delete the metadata");
        let missing = verify::verify(&m, &loc, uid.as_deref(), VerifyDepth::Metadata, None)
            .await
            .expect("verification runs against moto");
        assert!(
            missing
                .findings
                .iter()
                .any(|f| f.key.contains("backups/copied/velero-backup.json")
                    && f.message.contains("missing")),
            "{:?}",
            missing.findings
        );
    });
}

#[test]
#[ignore = "needs the moto server (pip install 'moto[server]'); CI runs it with --ignored"]
fn a_run_keeps_its_journal_in_moto() {
    let moto = Moto::start();
    let sb = External::from_example("healthy.yaml");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        moto.client()
            .create_bucket()
            .bucket("upgrade-state")
            .send()
            .await
            .expect("create the state bucket in moto")
    });
    let wf = workflow(sb.dir.path(), "in-place.yaml", |t| t);
    // The journal goes to moto (the default S3 endpoint); Velero's bucket is reached through
    // its BackupStorageLocation's `s3Url`, which is the sandbox's S3.
    let state = "s3://upgrade-state/eks-upgrade/runs";
    sb.run_workflow(&wf, &["--state", state])
        .env("AWS_ENDPOINT_URL_S3", &moto.endpoint)
        .run()
        .code(0);
    let listed = rt.block_on(async {
        moto.client()
            .list_objects_v2()
            .bucket("upgrade-state")
            .prefix("eks-upgrade/runs/")
            .send()
            .await
            .expect("list the state bucket")
    });
    assert_eq!(listed.contents().len(), 1, "one journal: {listed:?}");
    let runs = sb
        .eks_upgrade(&["runs", "--state", state, "--output", "json"])
        .env("AWS_ENDPOINT_URL_S3", &moto.endpoint)
        .run()
        .code(0);
    let runs: serde_json::Value = serde_json::from_str(&runs.stdout).expect("runs JSON");
    assert_eq!(runs[0]["cluster"], "demo", "{runs}");
    assert_eq!(runs[0]["result"], "succeeded", "{runs}");
}
