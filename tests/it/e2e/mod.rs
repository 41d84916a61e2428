//! End to end: the real `eks-upgrade` binary against a sandbox running in another process
//! (`eks-upgrade sandbox`), exactly as an operator or a CronJob would use them. The sandbox's
//! request record proves what the tool did and did not do.

mod backup;
mod blue_green;
mod crash;
mod extras;
mod faults;
mod interactive;
mod journal;
mod karpenter;
mod manifest;
mod preview;
mod recovery;
mod resume;
mod runs;
mod upgrade;
mod watch;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Output, POLL_TIMEOUT, Running, Test, Timed, poll, repo};

pub const BIN: &str = env!("CARGO_BIN_EXE_eks-upgrade");

/// A sandbox in its own process, stopped when dropped.
pub struct External {
    /// Declared first: dropped (killed) before the directory it works in is removed.
    _sandbox: Running,
    pub env: Vec<(String, String)>,
    pub record: PathBuf,
    pub dir: tempfile::TempDir,
}

impl External {
    /// Starts `eks-upgrade sandbox` with scenario text and waits for `# sandbox ready`.
    pub fn start(scenario: &str) -> External {
        let dir = tempfile::tempdir().expect("scratch dir");
        let path = dir.path().join("scenario.yaml");
        std::fs::write(&path, scenario).expect("write scenario");
        let record = dir.path().join("record.jsonl");
        let mut sandbox = Test::new()
            .args(["sandbox", "--scenario"])
            .arg(&path)
            .arg("--record")
            .arg(&record)
            .arg("--dir")
            .arg(dir.path().join("sandbox"))
            .spawn();
        let env = poll(
            "the sandbox to print `# sandbox ready`",
            POLL_TIMEOUT,
            || {
                let stdout = sandbox.stdout_so_far();
                if let Some(status) = sandbox.exited() {
                    panic!(
                        "the sandbox exited ({status}) before it was ready\n--- stdout\n{stdout}\n--- stderr\n{}",
                        sandbox.stderr_so_far()
                    );
                }
                let mut env = Vec::new();
                for line in stdout.lines() {
                    if line == "# sandbox ready" {
                        return Ok(env);
                    }
                    if let Some((k, v)) =
                        line.strip_prefix("export ").and_then(|l| l.split_once('='))
                    {
                        env.push((k.to_string(), v.trim_matches('\'').to_string()));
                    }
                }
                Err(format!(
                    "stdout:\n{stdout}\nstderr:\n{}",
                    sandbox.stderr_so_far()
                ))
            },
        );
        assert!(
            env.iter().any(|(k, _)| k == "AWS_ENDPOINT_URL_EKS"),
            "the sandbox printed no endpoints"
        );
        External {
            _sandbox: sandbox,
            env,
            record,
            dir,
        }
    }

    /// A scenario file of the repository with its `speed` and timings adjusted.
    pub fn from_example(name: &str) -> External {
        let text =
            std::fs::read_to_string(repo().join("examples/sandbox").join(name)).expect("scenario");
        External::start(&text)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `eks-upgrade ARGS` with the sandbox's environment and the test's state directory, run
    /// from the repository root.
    pub fn eks_upgrade(&self, args: &[&str]) -> Test {
        Test::new()
            .args(args)
            .current_dir(repo())
            .env("EKS_UPGRADE_STATE_DIR", self.state_dir())
            .env_remove("AWS_PROFILE")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
    }

    /// `eks-upgrade run WORKFLOW` unattended against the cluster `demo`, time-scaled to the
    /// sandbox and regardless of the window, plus `extra` arguments.
    pub fn run_workflow(&self, workflow: &Path, extra: &[&str]) -> Test {
        let mut args = vec![
            "run",
            workflow.to_str().unwrap_or(""),
            "--cluster",
            "demo",
            "--yes",
            "--time-scale",
            "600",
            "--ignore-window",
        ];
        args.extend_from_slice(extra);
        self.eks_upgrade(&args)
    }

    /// Runs a workflow unattended, time-scaled to the sandbox, and waits for it.
    pub fn run(&self, workflow: &Path, extra: &[&str]) -> Output {
        self.run_workflow(workflow, extra).run()
    }

    /// The request record, as JSON values.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// How many successful requests of an operation the sandbox served.
    pub fn count(&self, service: &str, operation: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| {
                r["service"] == service
                    && r["operation"]
                        .as_str()
                        .is_some_and(|o| o.starts_with(operation))
                    && r["status"].as_u64().is_some_and(|s| s < 300)
            })
            .count()
    }

    /// The requests from index `from` on that changed something: EKS, EC2 and Route 53 calls
    /// other than `Describe*`, `List*` and `Get*`, and
    /// Kubernetes and S3 requests other than reads.
    pub fn writes_since(&self, from: usize) -> Vec<Value> {
        self.requests()
            .into_iter()
            .skip(from)
            .filter(|r| {
                let op = r["operation"].as_str().unwrap_or("");
                if r["service"] == "eks" || r["service"] == "ec2" || r["service"] == "route53" {
                    !(op.starts_with("Describe") || op.starts_with("List") || op.starts_with("Get"))
                } else {
                    !(op.starts_with("GET ") || op.starts_with("HEAD "))
                }
            })
            .collect()
    }

    /// The path of the only run's journal. A process killed mid-write leaves its temporary file
    /// (`.tmpXXXX`) beside the journals; only `*.json` files are journals.
    pub fn journal_path(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.state_dir().join("runs"))
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "json"))
    }

    /// The journal of the only run in the state directory.
    pub fn journal(&self) -> Value {
        let path = self.journal_path().expect("a journal");
        serde_json::from_str(&std::fs::read_to_string(path).expect("read journal"))
            .expect("journal JSON")
    }

    /// The journal of the only run in the state directory, if it is there and complete.
    pub fn journal_so_far(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.journal_path()?).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// A reader of the sandbox's S3, for journals kept there.
    pub fn s3(&self) -> SandboxS3 {
        let var = |name: &str| {
            self.env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("the sandbox printed no `{name}`"))
        };
        SandboxS3 {
            client: eks_upgrade_sandbox::s3_client(&var("AWS_ENDPOINT_URL_S3"), &var("AWS_REGION")),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
        }
    }

    /// The control-plane version, asked of the sandbox with the real AWS CLI.
    pub fn cluster_version(&self, cluster: &str) -> String {
        let mut cmd = std::process::Command::new("aws");
        cmd.args([
            "eks",
            "describe-cluster",
            "--name",
            cluster,
            "--query",
            "cluster.version",
            "--output",
            "text",
        ]);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output_timed().expect("the aws CLI is installed");
        out.stdout.trim().to_string()
    }
}

/// The sandbox's S3 as a test sees it: a client and a runtime to drive it.
pub struct SandboxS3 {
    client: aws_sdk_s3::Client,
    runtime: tokio::runtime::Runtime,
}

impl SandboxS3 {
    /// Creates a bucket, as an operator would for run journals: a bucket of their own, since
    /// Velero marks a location `Unavailable` when its bucket root holds folders it did not make.
    pub fn create_bucket(&self, bucket: &str) {
        // As against S3: outside us-east-1 a bucket is created with its region as the location
        // constraint, or S3 (and the sandbox) refuses.
        let mut request = self.client.create_bucket().bucket(bucket);
        let region = self.client.config().region().map(|r| r.to_string());
        if let Some(r) = region.filter(|r| r != "us-east-1") {
            request = request.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                        r.as_str(),
                    ))
                    .build(),
            );
        }
        self.runtime.block_on(request.send()).unwrap_or_else(|e| {
            panic!(
                "create bucket `{bucket}`: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        });
    }

    /// The key and bytes of the only journal under `s3://BUCKET/PREFIX/runs/`.
    pub fn journal_object(&self, bucket: &str, prefix: &str) -> Option<(String, Vec<u8>)> {
        self.runtime.block_on(async {
            let listed = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(format!("{prefix}/runs/"))
                .send()
                .await
                .ok()?;
            let key = listed
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .find(|k| k.ends_with(".json"))?
                .to_string();
            let body = self
                .client
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .ok()?
                .body
                .collect()
                .await
                .ok()?
                .into_bytes();
            Some((key, body.to_vec()))
        })
    }

    /// Replaces an object, as a damaged upload or a person would.
    pub fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        self.runtime
            .block_on(
                self.client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(bytes.into())
                    .send(),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "put `{bucket}/{key}`: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            });
    }

    /// An object's bytes.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.runtime.block_on(async {
            self.client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "get `{key}`: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    )
                })
                .body
                .collect()
                .await
                .expect("read the object")
                .into_bytes()
                .to_vec()
        })
    }

    /// Flips one byte in the middle of an object.
    pub fn flip_byte(&self, bucket: &str, key: &str) {
        let mut bytes = self.get(bucket, key);
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        self.put(bucket, key, bytes);
    }

    /// The journal of the only run under `s3://BUCKET/PREFIX/runs/`, if it is there and
    /// complete.
    pub fn journal(&self, bucket: &str, prefix: &str) -> Option<Value> {
        self.runtime.block_on(async {
            let listed = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(format!("{prefix}/runs/"))
                .send()
                .await
                .ok()?;
            let key = listed
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .find(|k| k.ends_with(".json"))?;
            let body = self
                .client
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .ok()?
                .body
                .collect()
                .await
                .ok()?
                .into_bytes();
            serde_json::from_slice(&body).ok()
        })
    }
}

/// Whether a journal shows `step` running with `fact` recorded: the point a run waits at.
pub fn running_with_fact(journal: &Value, step: &str, fact: &str) -> bool {
    journal["steps"].as_array().is_some_and(|s| {
        s.iter().any(|x| {
            x["key"]["id"] == step && x["status"] == "running" && x["facts"][fact].is_string()
        })
    })
}

/// A workflow file for tests: the shipped in-place workflow with edits.
pub fn workflow(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text =
        std::fs::read_to_string(repo().join("workflows/in-place.yaml")).expect("in-place.yaml");
    let path = dir.join(name);
    std::fs::write(&path, edit(text)).expect("write workflow");
    path
}

/// Replaces run ids, update ids, times and durations, so snapshots hold still.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut l = line.to_string();
        for (pattern, replacement) in [
            (r"\d{8}t\d{6}z-[0-9a-f]{6}", "RUN"),
            (
                r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "UUID",
            ),
            (
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
                "TIME",
            ),
            (r"\d+\.\d+s\b", "N.Ns"),
            (r"\(\d+s\)", "(Ns)"),
            (r"\d+ checks", "N checks"),
            (r"after \d+s", "after Ns"),
            (r"/tmp/[^\s`']+", "TMP"),
        ] {
            l = regex_lite::Regex::new(pattern)
                .map(|r| r.replace_all(&l, replacement).into_owned())
                .unwrap_or(l);
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}
