//! The sandbox: emulated EKS, Kubernetes API, Velero and S3 on loopback, started in-process.
//!
//! The tool has no sandbox branch in its logic. It reaches the sandbox through the same AWS and
//! Kubernetes calls it makes in production; only endpoints and credentials differ
//! (`AWS_ENDPOINT_URL_EKS`, `AWS_ENDPOINT_URL_EC2`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_KMS`, and the endpoint and CA that EKS
//! `DescribeCluster` returns).

pub mod account;
pub mod ec2;
pub mod eks;
pub mod kms;
pub mod kube;
pub mod route53;
pub mod s3;
pub mod scenario;
pub mod serve;
pub mod sim;
pub mod tls;
pub mod traffic;
pub mod velero;
pub mod world;
pub mod xml;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;

pub use account::Account;
pub use scenario::Scenario;
pub use world::{Endpoints, World};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot start a sandbox server: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Seed(#[from] sim::seed::SeedError),
    #[error("cannot create the bucket `{bucket}`: {message}")]
    Bucket { bucket: String, message: String },
}

/// How to start the sandbox.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where S3 data, the kubeconfig and the AWS config go. Default: a temporary directory,
    /// removed when the sandbox stops.
    pub dir: Option<PathBuf>,
    /// Append every request served to this JSON-lines file.
    pub record: Option<PathBuf>,
}

/// A running sandbox. Dropping it stops every server.
pub struct Sandbox {
    /// The scenario's cluster's world (the account's first cluster).
    pub world: Arc<World>,
    /// The account: shared services and every cluster, created ones included.
    pub account: Arc<Account>,
    /// The scenario's cluster's endpoints.
    pub endpoints: Endpoints,
    pub dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    _servers: Vec<serve::Server>,
    /// Account-wide tasks (the traffic generator); each cluster's own are in the account.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.account.stop_all();
    }
}

/// An S3 client for the sandbox's own S3, as Velero's AWS plugin would configure it.
pub fn s3_client(endpoint: &str, region: &str) -> aws_sdk_s3::Client {
    let credentials = aws_sdk_s3::config::Credentials::new(
        world::ACCESS_KEY,
        world::SECRET_KEY,
        None,
        None,
        "sandbox",
    );
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

impl Sandbox {
    pub async fn start(scenario: Scenario, options: Options) -> Result<Sandbox, SandboxError> {
        let (dir, temp) = match options.dir {
            Some(d) => {
                std::fs::create_dir_all(&d)?;
                (d, None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("eks-upgrade-sandbox-")
                    .tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let region = scenario.spec.cluster.region.clone();
        let shared = world::Shared::new(&scenario, options.record)?;
        let buckets = Arc::new(s3::buckets::Buckets::new(&dir.join("s3"), &region));
        let account = Account::new(scenario.clone(), shared, buckets.clone(), dir.clone());
        let certs = Account::certificates()?;
        let world = World::new(scenario, certs.ca_pem.clone(), &account.shared);
        let blue = account.register(world.clone(), eks::state::Eks::new(world.clone()));

        // S3, EC2, KMS and Route 53 are account-wide; they read the first cluster's world only
        // for its shared parts and its VPC.
        let s3 = serve::serve(
            s3::router(&dir.join("s3"), world.clone(), buckets.clone())?,
            0,
            None,
        )
        .await?;
        let eks = serve::serve(eks::router(account.clone()), 0, None).await?;
        let kms = serve::serve(kms::router(world.clone()), 0, None).await?;
        let ec2 = serve::serve(ec2::router(world.clone()), 0, None).await?;
        let route53 = serve::serve(route53::router(world.clone()), 0, None).await?;
        // Samples are kept ten real minutes: longer than any window a gate asks for.
        let series = Arc::new(traffic::series::Series::new(
            std::time::Duration::from_secs(600),
        ));
        let prometheus = serve::serve(traffic::prometheus::router(series.clone()), 0, None).await?;
        account.set_services(Endpoints {
            eks: format!("http://{}", eks.addr),
            ec2: format!("http://{}", ec2.addr),
            s3: format!("http://{}", s3.addr),
            kms: format!("http://{}", kms.addr),
            route53: format!("http://{}", route53.addr),
            prometheus: format!("http://{}", prometheus.addr),
            kubernetes: String::new(),
        });

        // The scenario's buckets exist from the start, each in its region: the Velero bucket
        // in the cluster's, the others where `spec.buckets` puts them.
        let mut wanted: Vec<(String, String)> = Vec::new();
        if world.scenario.spec.velero.installed {
            wanted.push((world.scenario.spec.velero.bucket.clone(), region.clone()));
        }
        for b in &world.scenario.spec.buckets {
            wanted.push((
                b.name.clone(),
                b.region.clone().unwrap_or_else(|| region.clone()),
            ));
        }
        for (bucket, in_region) in wanted {
            buckets
                .create(&bucket, &in_region)
                .map_err(|e| SandboxError::Bucket {
                    bucket: bucket.clone(),
                    message: e.to_string(),
                })?;
        }
        let endpoints = account.bring_up(&blue, certs.server).await?;

        // The users of the scenario's names, across every cluster of the account.
        let mut tasks = Vec::new();
        if !world.scenario.spec.traffic.is_empty() {
            let speed = world.scenario.spec.speed;
            let zones = account.shared.route53.clone();
            tasks.push(traffic::generator::start(
                world.scenario.spec.traffic.clone(),
                speed,
                Arc::new(move |name: &str, kind: &str| zones.effective(name, kind, speed)),
                Arc::new(traffic::backends::Clusters(account.clone())),
                series,
            ));
        }
        let sandbox = Sandbox {
            world,
            account,
            endpoints,
            dir,
            _temp: temp,
            _servers: vec![s3, eks, ec2, kms, route53, prometheus],
            tasks,
        };
        sandbox.write_client_config()?;
        Ok(sandbox)
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    pub fn aws_config_path(&self) -> PathBuf {
        self.dir.join("aws-config")
    }

    /// The kubeconfig `aws eks update-kubeconfig` would write for the sandbox's cluster: the EKS
    /// endpoint and CA, and a token from `aws eks get-token`.
    pub fn kubeconfig(&self) -> String {
        let cluster = &self.world.scenario.spec.cluster;
        let arn = format!(
            "arn:aws:eks:{}:{}:cluster/{}",
            cluster.region, self.world.scenario.spec.account, cluster.name
        );
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.world.ca_pem);
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: {arn}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
contexts:
- name: {arn}
  context:
    cluster: {arn}
    user: {arn}
current-context: {arn}
preferences: {{}}
users:
- name: {arn}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [--region, {region}, eks, get-token, --cluster-name, {name}, --output, json]
      env:
      - {{name: AWS_ACCESS_KEY_ID, value: {ak}}}
      - {{name: AWS_SECRET_ACCESS_KEY, value: {sk}}}
      - {{name: AWS_CONFIG_FILE, value: {aws_config}}}
      interactiveMode: Never
      provideClusterInfo: false
",
            server = self.endpoints.kubernetes,
            region = cluster.region,
            name = cluster.name,
            ak = world::ACCESS_KEY,
            sk = world::SECRET_KEY,
            aws_config = self.aws_config_path().display(),
        )
    }

    fn write_client_config(&self) -> std::io::Result<()> {
        write_private(&self.kubeconfig_path(), &self.kubeconfig())?;
        // The AWS CLI addresses buckets by host name unless told otherwise; the sandbox's S3 is
        // on a bare IP, so path-style it is.
        write_private(
            &self.aws_config_path(),
            &format!(
                "[default]\nregion = {}\ns3 =\n    addressing_style = path\n",
                self.world.scenario.spec.cluster.region
            ),
        )
    }

    /// The variables that point the real clients at the sandbox, in the order printed:
    /// everything a run from another shell needs, including the sandbox's speed as the run's
    /// time scale. The instance metadata service is switched off: the sandbox's credentials
    /// are in the environment, and nothing run against it may probe 169.254.169.254 for others.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let region = self.world.scenario.spec.cluster.region.clone();
        vec![
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("KUBECONFIG", self.kubeconfig_path().display().to_string()),
            (
                "AWS_CONFIG_FILE",
                self.aws_config_path().display().to_string(),
            ),
            ("AWS_ENDPOINT_URL_EKS", self.endpoints.eks.clone()),
            ("AWS_ENDPOINT_URL_EC2", self.endpoints.ec2.clone()),
            ("AWS_ENDPOINT_URL_S3", self.endpoints.s3.clone()),
            ("AWS_ENDPOINT_URL_KMS", self.endpoints.kms.clone()),
            ("AWS_ENDPOINT_URL_ROUTE_53", self.endpoints.route53.clone()),
            // Not an AWS variable: where the traffic's metrics are, for an error-rate gate.
            ("PROMETHEUS_URL", self.endpoints.prometheus.clone()),
            ("AWS_ACCESS_KEY_ID", world::ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", world::SECRET_KEY.to_string()),
            ("AWS_REGION", region.clone()),
            ("AWS_DEFAULT_REGION", region),
            // `run` takes a time scale of at least 1; a scenario slower than real time runs the
            // workflow's waits as written.
            (
                "EKS_UPGRADE_TIME_SCALE",
                self.world.scenario.spec.speed.max(1.0).to_string(),
            ),
        ]
    }
}

/// Writes a file only its owner can read: kubeconfigs and AWS configs hold credentials.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(contents.as_bytes())
}
