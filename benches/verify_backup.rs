//! Benchmark: full verification of large Velero backups of two shapes (see [`corpus`]),
//! streamed from the sandbox's S3, against `aws s3 cp s3://BUCKET/KEY - | gzip -dc | tar -t` on
//! the same server, and against the floor: the same tarball inflated alone with zlib-rs from a
//! local file.
//!
//! ```text
//! cargo bench --bench verify_backup -- [--corpus noise|real|both] [--items 50000]
//!     [--item-bytes 11000] [--real-items 550000] [--runs 3] [--serve]
//! ```
//!
//! The verifier and the floor run in child processes (this binary with `--child` or
//! `--floor`) under `/usr/bin/time`, so their peak resident memory is measured apart from the S3
//! server's.

#[path = "verify_backup/corpus.rs"]
mod corpus;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use corpus::Corpus;
use eks_upgrade_core::velero::layout::{BackupLocation, SIBLINGS};
use eks_upgrade_core::velero::verify;
use eks_upgrade_core::velero::verify::VerifyDepth;
use flate2::Compression;
use flate2::write::GzEncoder;

const BUCKET: &str = "velero-backups";
const UID: &str = "0b2d4c6e-1111-4222-8333-944455556666";

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn num(name: &str, default: u64) -> u64 {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

fn backup_name(c: Corpus) -> String {
    format!("bench-{}", c.word())
}

/// The verifier, in its own process: prints `seconds items uncompressed-bytes`.
fn child(endpoint: &str, name: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let s3 = eks_upgrade_sandbox::s3_client(endpoint, "us-east-1");
        let loc = BackupLocation {
            bucket: BUCKET.into(),
            prefix: None,
            name: name.into(),
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

/// The floor, in its own process: the tarball inflated with zlib-rs (the verifier's decoder,
/// same 256 KiB buffers) from a local file, nothing else. Prints `seconds bytes`.
fn floor(path: &str) {
    let started = Instant::now();
    let file = std::fs::File::open(path).expect("open tarball");
    let mut gz =
        flate2::bufread::GzDecoder::new(std::io::BufReader::with_capacity(256 * 1024, file));
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        match gz.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) => panic!("inflate: {e}"),
        }
    }
    println!("{:.3} {total}", started.elapsed().as_secs_f64());
}

/// Runs `args` under `/usr/bin/time`: the child's first stdout number (its own timing) and its
/// peak RSS in MiB.
fn timed_child(args: &[&str]) -> (f64, f64) {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %M"])
        .arg(&exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
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
    (secs, rss_kib / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

struct Prepared {
    corpus: Corpus,
    tarball: std::path::PathBuf,
    items: u64,
    compressed: u64,
}

struct Row {
    verifier: f64,
    rss: f64,
    pipeline: f64,
    floor: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1], &args[i + 2]);
    }
    if let Some(i) = args.iter().position(|a| a == "--floor") {
        return floor(&args[i + 1]);
    }
    let corpora: Vec<Corpus> = match arg("--corpus").as_deref() {
        Some("noise") => vec![Corpus::Noise],
        Some("real") => vec![Corpus::Real],
        _ => vec![Corpus::Noise, Corpus::Real],
    };
    let runs = num("--runs", 3);
    let dir = tempfile::tempdir().expect("scratch dir");

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

    let mut prepared = Vec::new();
    for &c in &corpora {
        let tarball = dir.path().join(format!("{}.tar.gz", c.word()));
        let t = Instant::now();
        let (resource_list, items) = match c {
            Corpus::Noise => corpus::write(
                &tarball,
                c,
                num("--items", 50_000),
                num("--item-bytes", 11_000) as usize,
            ),
            Corpus::Real => corpus::write(&tarball, c, num("--real-items", 550_000), 0),
        };
        let compressed = std::fs::metadata(&tarball).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "{}: generated {items} items, {:.0} MiB compressed, in {:.1}s",
            c.word(),
            compressed as f64 / 1_048_576.0,
            t.elapsed().as_secs_f64()
        );
        upload(
            &rt,
            &endpoint,
            &backup_name(c),
            &tarball,
            &resource_list,
            items,
        );
        prepared.push(Prepared {
            corpus: c,
            tarball,
            items,
            compressed,
        });
    }

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
    if std::env::args().any(|a| a == "--serve") {
        // For profiling: keep the server up and let a person run the child under a profiler.
        let exe = std::env::current_exe().expect("own path");
        for p in &prepared {
            println!(
                "serving; run: {} --child {endpoint} {}",
                exe.display(),
                backup_name(p.corpus)
            );
        }
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }

    let mut summary = Vec::new();
    for p in &prepared {
        let name = backup_name(p.corpus);
        let key = format!("s3://{BUCKET}/backups/{name}/{name}.tar.gz");
        let mut rows = Vec::new();
        for run in 1..=runs {
            let (verifier, rss) = timed_child(&["--child", &endpoint, &name]);
            let t = Instant::now();
            let status = Command::new("bash")
                .arg("-c")
                .arg(format!("set -o pipefail; aws --endpoint-url {endpoint} s3 cp {key} - | gzip -dc | tar -t > /dev/null"))
                .envs(sandbox.env())
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .status()
                .expect("run the pipeline");
            assert!(status.success(), "the aws pipeline failed: {status}");
            let pipeline = t.elapsed().as_secs_f64();
            let tarball = p.tarball.display().to_string();
            let (floor, _) = timed_child(&["--floor", &tarball]);
            println!(
                "{} run {run}: verifier {verifier:.2}s (peak RSS {rss:.1} MiB), aws s3 cp | gzip -dc | tar -t {pipeline:.2}s, inflate alone {floor:.2}s",
                p.corpus.word()
            );
            rows.push(Row {
                verifier,
                rss,
                pipeline,
                floor,
            });
        }
        summary.push((p, rows));
    }

    println!(
        "\n| corpus | items (×2 paths) | compressed | verifier | peak RSS | `aws s3 cp \\| gzip -dc \\| tar -t` | inflate alone (floor) | vs pipeline | vs floor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (p, rows) in &summary {
        let v = median(rows.iter().map(|r| r.verifier).collect());
        let rss = rows.iter().map(|r| r.rss).fold(0.0, f64::max);
        let a = median(rows.iter().map(|r| r.pipeline).collect());
        let f = median(rows.iter().map(|r| r.floor).collect());
        println!(
            "| {} | {} | {:.0} MiB | {v:.2} s | {rss:.1} MiB | {a:.2} s | {f:.2} s | {:.2}× faster | {:.2}× the floor |",
            p.corpus.word(),
            p.items,
            p.compressed as f64 / 1_048_576.0,
            a / v,
            v / f
        );
    }
}

/// Puts the backup's files in the sandbox's bucket as Velero lays them out.
fn upload(
    rt: &tokio::runtime::Runtime,
    endpoint: &str,
    name: &str,
    tarball: &std::path::Path,
    resource_list: &serde_json::Value,
    items: u64,
) {
    rt.block_on(async {
        let s3 = eks_upgrade_sandbox::s3_client(endpoint, "us-east-1");
        let loc = BackupLocation { bucket: BUCKET.into(), prefix: None, name: name.into() };
        let put = |key: String, body: Vec<u8>| {
            let s3 = s3.clone();
            async move { s3.put_object().bucket(BUCKET).key(key).body(body.into()).send().await.expect("put") }
        };
        let meta = serde_json::json!({
            "apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": { "name": name, "namespace": "velero", "uid": UID },
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
        let body = aws_sdk_s3::primitives::ByteStream::from_path(tarball).await.expect("stream file");
        s3.put_object().bucket(BUCKET).key(loc.tarball_key()).body(body).send().await.expect("upload tarball");
        eprintln!("{name}: uploaded in {:.1}s", t.elapsed().as_secs_f64());
    });
}
