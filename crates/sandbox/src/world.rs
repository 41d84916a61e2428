//! The state of one emulated cluster (its scenario, Kubernetes object store and control-plane
//! version) and the account-wide parts every cluster points at: injected API faults, Route 53
//! and the record of every request served ([`Shared`]).

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use tokio::sync::broadcast;

use super::kube::store::Store;
use super::scenario::{ApiFault, Scenario};
use eks_upgrade_core::types::Version;

/// Static credentials the sandbox's AWS endpoints accept (and print for clients to use).
pub const ACCESS_KEY: &str = "AKIASANDBOXEXAMPLE01";
pub const SECRET_KEY: &str = "sandbox/secret/not/a/real/key/0000000000";

/// Where the services listen, once they do.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    pub eks: String,
    pub ec2: String,
    pub s3: String,
    pub kms: String,
    pub route53: String,
    /// The Prometheus-compatible query API over the sandbox's traffic counters.
    pub prometheus: String,
    pub kubernetes: String,
}

/// Something that happened in the emulated cluster that other parts react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorldEvent {
    /// The control plane now runs this version (an upgrade or a rollback completed).
    ControlPlaneVersion(Version),
    /// A managed node group now runs this version (its update completed).
    NodegroupVersion(Version),
}

/// One request as a service saw it. Tests read these to prove what the tool did and did not do.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub at: String,
    /// `eks`, `ec2`, `kubernetes`, `s3`, `kms` or `route53`.
    pub service: &'static str,
    /// The EKS operation name, or `METHOD path` for the other services.
    pub operation: String,
    pub status: u16,
    /// For EKS writes: the cluster, node group or add-on and the version asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The cluster the request was about: the one whose Kubernetes API served it, or the EKS
    /// path's (or CreateCluster body's) `name`. None for account-wide requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// The request record, kept in memory and optionally appended to a JSON-lines file.
pub struct RequestLog {
    records: Mutex<Vec<RequestRecord>>,
    file: Option<Mutex<std::fs::File>>,
}

impl RequestLog {
    pub fn new(path: Option<PathBuf>) -> std::io::Result<Self> {
        let file = path
            .map(|p| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
            })
            .transpose()?
            .map(Mutex::new);
        Ok(RequestLog {
            records: Mutex::new(Vec::new()),
            file,
        })
    }

    /// Records an account-wide request (S3, EC2, KMS, Route 53): no cluster.
    pub fn push(
        &self,
        service: &'static str,
        operation: impl Into<String>,
        status: u16,
        detail: Option<String>,
    ) {
        self.push_for(None, service, operation, status, detail);
    }

    /// Records a request about one cluster.
    pub fn push_for(
        &self,
        cluster: Option<&str>,
        service: &'static str,
        operation: impl Into<String>,
        status: u16,
        detail: Option<String>,
    ) {
        let record = RequestRecord {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            service,
            operation: operation.into(),
            status,
            detail,
            cluster: cluster.filter(|c| !c.is_empty()).map(str::to_string),
        };
        if let Some(file) = &self.file
            && let Ok(line) = serde_json::to_string(&record)
            && let Ok(mut f) = file.lock()
        {
            // The record is evidence for tests; a write failure must not break the emulation.
            let _ = writeln!(f, "{line}");
        }
        if let Ok(mut records) = self.records.lock() {
            records.push(record);
        }
    }

    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Errors injected in front of operations, each for a limited number of requests.
pub struct ApiFaults {
    remaining: Mutex<Vec<(ApiFault, u32)>>,
}

/// An injected failure: the HTTP status and the error code to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectedFault {
    pub status: u16,
    /// `ThrottlingException`, `ServiceUnavailableException` or `ServerException` for EKS;
    /// Kubernetes and S3 use their own names for the same statuses.
    pub kind: &'static str,
}

impl ApiFaults {
    pub fn new(faults: &[ApiFault]) -> Self {
        ApiFaults {
            remaining: Mutex::new(faults.iter().map(|f| (f.clone(), f.count)).collect()),
        }
    }

    /// Consumes one injected failure for `service` and `operation`, if any is left. For
    /// Kubernetes and S3, `operation` is `METHOD path` and a fault matches by prefix.
    pub fn take(&self, service: &str, operation: &str) -> Option<InjectedFault> {
        let mut remaining = self.remaining.lock().ok()?;
        let (fault, left) = remaining.iter_mut().find(|(f, left)| {
            *left > 0
                && f.service == service
                && (f.operation == operation
                    || (service != "eks" && operation.starts_with(&f.operation)))
        })?;
        *left -= 1;
        Some(match fault.fault.as_str() {
            "throttle" => InjectedFault {
                status: 429,
                kind: "ThrottlingException",
            },
            "unavailable" => InjectedFault {
                status: 503,
                kind: "ServiceUnavailableException",
            },
            _ => InjectedFault {
                status: 500,
                kind: "ServerException",
            },
        })
    }
}

/// What every cluster of the account shares: one request record, one set of injected API faults
/// (from the first scenario's `faults.api`), and one Route 53.
#[derive(Clone)]
pub struct Shared {
    pub requests: Arc<RequestLog>,
    pub api_faults: Arc<ApiFaults>,
    pub route53: Arc<super::route53::zones::Zones>,
}

impl Shared {
    pub fn new(scenario: &Scenario, record: Option<PathBuf>) -> std::io::Result<Shared> {
        let propagation = scenario.real(scenario.spec.timings.dns_propagation);
        Ok(Shared {
            requests: Arc::new(RequestLog::new(record)?),
            api_faults: Arc::new(ApiFaults::new(&scenario.spec.faults.api)),
            route53: Arc::new(super::route53::zones::Zones::new(
                &scenario
                    .spec
                    .route53
                    .resolved(&scenario.spec.cluster.name, &scenario.spec.cluster.region),
                propagation,
            )),
        })
    }
}

/// One cluster's world: its scenario, object store and events, and the account's shared parts.
pub struct World {
    pub scenario: Scenario,
    pub store: Arc<Store>,
    pub requests: Arc<RequestLog>,
    pub api_faults: Arc<ApiFaults>,
    /// Route 53's hosted zones and changes (account-wide).
    pub route53: Arc<super::route53::zones::Zones>,
    control_plane_version: RwLock<Version>,
    events: broadcast::Sender<WorldEvent>,
    /// PEM of the CA that signed the Kubernetes API's certificate.
    pub ca_pem: String,
    endpoints: RwLock<Option<Endpoints>>,
}

impl World {
    pub fn new(scenario: Scenario, ca_pem: String, shared: &Shared) -> Arc<World> {
        let (events, _) = broadcast::channel(1024);
        Arc::new(World {
            route53: shared.route53.clone(),
            control_plane_version: RwLock::new(scenario.spec.cluster.version),
            api_faults: shared.api_faults.clone(),
            scenario,
            store: Arc::new(Store::new()),
            requests: shared.requests.clone(),
            events,
            ca_pem,
            endpoints: RwLock::new(None),
        })
    }

    /// The cluster's name, which its Kubernetes API's requests are recorded under.
    pub fn cluster_name(&self) -> &str {
        &self.scenario.spec.cluster.name
    }

    /// The Kubernetes version the API server reports.
    pub fn control_plane_version(&self) -> Version {
        *self
            .control_plane_version
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the EKS emulator when an update or rollback completes.
    pub fn set_control_plane_version(&self, version: Version) {
        *self
            .control_plane_version
            .write()
            .unwrap_or_else(|e| e.into_inner()) = version;
        let _ = self.events.send(WorldEvent::ControlPlaneVersion(version));
    }

    /// Called by the EKS emulator when a node group's update completes.
    pub fn nodegroup_reached(&self, version: Version) {
        let _ = self.events.send(WorldEvent::NodegroupVersion(version));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<WorldEvent> {
        self.events.subscribe()
    }

    pub fn set_endpoints(&self, endpoints: Endpoints) {
        *self.endpoints.write().unwrap_or_else(|e| e.into_inner()) = Some(endpoints);
    }

    pub fn endpoints(&self) -> Option<Endpoints> {
        self.endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Converts an emulated duration into real time.
    pub fn real(&self, emulated: std::time::Duration) -> std::time::Duration {
        self.scenario
            .real(eks_upgrade_core::types::HumanDuration(emulated))
    }
}
