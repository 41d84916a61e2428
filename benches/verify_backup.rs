//! Benchmark: full verification of a large Velero backup, streamed from the sandbox's S3,
//! against `aws s3 cp s3://BUCKET/KEY - | gzip -dc | tar -t` on the same server.
//!
//! ```text
//! cargo bench --bench verify_backup -- [--items 50000] [--item-bytes 6000] [--runs 3] [--serve]
//! ```
//!
//! The verifier runs in a child process (this binary with `--child`) under `/usr/bin/time`, so
//! its peak resident memory is measured apart from the S3 server's.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use eks_upgrade_core::velero::layout::{BackupLocation, SIBLINGS};
use eks_upgrade_core::velero::verify;
use eks_upgrade_core::velero::verify::VerifyDepth;
use flate2::Compression;
use flate2::write::GzEncoder;

const BUCKET: &str = "velero-backups";
const NAME: &str = "bench-backup";
const UID: &str = "0b2d4c6e-1111-4222-8333-944455556666";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A pseudo-random but reproducible byte stream, for content gzip cannot squeeze away.
struct Noise(u64);
impl Noise {
    fn fill(&mut self, out: &mut String, len: usize) {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for _ in 0..len {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            out.push(ALPHABET[(self.0 % 64) as usize] as char);
        }
    }
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// Writes a Velero-layout tarball with `items` Secrets of about `item_bytes` each, dual paths.
fn build_tarball(path: &std::path::Path, items: u64, item_bytes: usize) -> serde_json::Value {
    let file = std::fs::File::create(path).expect("create tarball");
    let mut tar = tar::Builder::new(GzEncoder::new(
        std::io::BufWriter::with_capacity(1 << 20, file),
        Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(6);
    header.set_mode(0o755);
    header.set_cksum();
    tar.append_data(&mut header, "metadata/version", &b"1.1.0\n"[..])
        .expect("append");
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut names = Vec::new();
    let mut body = String::with_capacity(item_bytes + 512);
    for i in 0..items {
        let ns = format!("team-{:03}", i % 200);
        let name = format!("secret-{i:06}");
        body.clear();
        body.push_str(&format!(r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"{name}","namespace":"{ns}","uid":"{i:08x}-0000-4000-8000-000000000000","resourceVersion":"{i}"}},"type":"Opaque","data":{{"blob":""#));
        noise.fill(&mut body, item_bytes);
        body.push_str(r#""}}"#);
        for p in [
            format!("resources/secrets/namespaces/{ns}/{name}.json"),
            format!("resources/secrets/v1-preferredversion/namespaces/{ns}/{name}.json"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o755);
            h.set_cksum();
            tar.append_data(&mut h, &p, body.as_bytes())
                .expect("append");
        }
        names.push(format!("{ns}/{name}"));
    }
    let encoder = tar.into_inner().expect("finish tar");
    encoder
        .finish()
        .expect("finish gzip")
        .flush()
        .expect("flush");
    names.sort();
    serde_json::json!({ "v1/Secret": names })
}

fn child(endpoint: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let s3 = eks_upgrade_sandbox::s3_client(endpoint, "us-east-1");
        let loc = BackupLocation {
            bucket: BUCKET.into(),
            prefix: None,
            name: NAME.into(),
        };
        let started = Instant::now();
        let v = verify::verify(&s3, &loc, Some(UID), VerifyDepth::Full, None)
            .await
            .expect("verification runs");
        let secs = started.elapsed().as_secs_f64();
        assert!(
            v.sound,
            "the benchmark backup must verify: {:?}",
            v.findings
        );
        println!(
            "{secs:.3} {} {}",
            v.items_in_tarball.unwrap_or(0),
            v.uncompressed_bytes.unwrap_or(0)
        );
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1]);
    }
    let items = arg("--items", 50_000);
    let item_bytes = arg("--item-bytes", 6_000) as usize;
    let runs = arg("--runs", 3);
    let dir = tempfile::tempdir().expect("scratch dir");
    let tarball = dir.path().join("backup.tar.gz");
    let t = Instant::now();
    let resource_list = build_tarball(&tarball, items, item_bytes);
    let size = std::fs::metadata(&tarball).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "generated {items} items, {:.0} MiB compressed, in {:.1}s",
        size as f64 / 1_048_576.0,
        t.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let scenario_text = "apiVersion: eks-upgrade/v1\nkind: Scenario\nmetadata: { name: bench }\nspec:\n  cluster: { name: bench, region: us-east-1, version: \"1.33\" }\n";
    let scenario =
        eks_upgrade_sandbox::Scenario::parse(std::path::Path::new("bench.yaml"), scenario_text)
            .expect("scenario");
    let sandbox = rt
        .block_on(eks_upgrade_sandbox::Sandbox::start(
            scenario,
            Default::default(),
        ))
        .expect("sandbox");
    let endpoint = sandbox.endpoints.s3.clone();
    rt.block_on(async {
        let s3 = eks_upgrade_sandbox::s3_client(&endpoint, "us-east-1");
        let loc = BackupLocation { bucket: BUCKET.into(), prefix: None, name: NAME.into() };
        let put = |key: String, body: Vec<u8>| {
            let s3 = s3.clone();
            async move { s3.put_object().bucket(BUCKET).key(key).body(body.into()).send().await.expect("put") }
        };
        let meta = serde_json::json!({
            "apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": { "name": NAME, "namespace": "velero", "uid": UID },
            "spec": { "ttl": "720h0m0s" },
            "status": { "version": 1, "formatVersion": "1.1.0", "phase": "Completed", "progress": { "totalItems": items, "itemsBackedUp": items } },
        });
        put(loc.metadata_key(), serde_json::to_vec_pretty(&meta).unwrap_or_default()).await;
        for s in SIBLINGS.iter().filter(|s| s.required || s.suffix == "-logs.gz") {
            let body = match s.suffix {
                "-resource-list.json.gz" => gz(resource_list.to_string().as_bytes()),
                "-results.gz" => gz(br#"{"errors":{},"warnings":{}}"#),
                "-logs.gz" => gz(b"time=now level=info msg=done\n"),
                "-itemoperations.json.gz" => gz(b"[]\n"),
                _ => gz(b"null\n"),
            };
            put(loc.sibling_key(s), body).await;
        }
        let t = Instant::now();
        let body = aws_sdk_s3::primitives::ByteStream::from_path(&tarball).await.expect("stream file");
        s3.put_object().bucket(BUCKET).key(loc.tarball_key()).body(body).send().await.expect("upload tarball");
        eprintln!("uploaded in {:.1}s", t.elapsed().as_secs_f64());
    });

    let exe = std::env::current_exe().expect("own path");
    let key = format!("s3://{BUCKET}/backups/{NAME}/{NAME}.tar.gz");
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_string())
            )
            .unwrap_or_default()
    );
    println!(
        "backup: {items} items (x2 paths), {:.0} MiB compressed",
        size as f64 / 1_048_576.0
    );
    if std::env::args().any(|a| a == "--serve") {
        // For profiling: keep the server up and let a person run the child under a profiler.
        println!("serving; run: {} --child {endpoint}", exe.display());
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
    for run in 1..=runs {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%e %M"])
            .arg(&exe)
            .args(["--child", &endpoint])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .expect("run the verifier");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let rss_kib: f64 = stderr
            .lines()
            .last()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let secs: f64 = stdout
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        println!(
            "run {run}: eks-upgrade verify (full): {secs:.2}s, peak RSS {:.1} MiB",
            rss_kib / 1024.0
        );

        let t = Instant::now();
        let status = Command::new("bash")
            .arg("-c")
            .arg(format!("set -o pipefail; aws --endpoint-url {endpoint} s3 cp {key} - | gzip -dc | tar -t > /dev/null"))
            .envs(sandbox.env())
            .status()
            .expect("run the pipeline");
        println!(
            "run {run}: aws s3 cp | gzip -dc | tar -t: {:.2}s ({status})",
            t.elapsed().as_secs_f64()
        );
    }
}
