//! The emulated AWS account: the services every cluster shares (the request record, injected
//! API faults, Route 53, S3 buckets) and the registry of its EKS clusters, each with a runtime of
//! its own (a [`World`], its EKS state, its Kubernetes API listener with its own CA, and its
//! simulator, Velero and Karpenter tasks).
//!
//! The scenario's cluster is the first entry; CreateCluster adds more, DeleteCluster removes
//! them (any of them, the first included).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use tokio::task::JoinHandle;

use crate::eks::state::Eks;
use crate::scenario::Scenario;
use crate::world::{Endpoints, Shared, World};
use crate::{SandboxError, kube, s3, serve, sim, tls, velero};

/// The account: shared services and the clusters, by name.
pub struct Account {
    /// The scenario as loaded; its cluster is the account's first.
    pub scenario: Scenario,
    pub shared: Shared,
    pub buckets: Arc<s3::buckets::Buckets>,
    pub dir: PathBuf,
    /// The account-wide endpoints (`kubernetes` empty: each cluster has its own).
    services: RwLock<Option<Endpoints>>,
    /// Every cluster EKS lists, CREATING and DELETING ones included.
    clusters: RwLock<BTreeMap<String, Arc<ClusterRuntime>>>,
}

/// One cluster: its world and EKS state, and what runs for it once it is up.
pub struct ClusterRuntime {
    pub world: Arc<World>,
    pub(crate) eks: Arc<Eks>,
    kube: Mutex<Option<serve::Server>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl ClusterRuntime {
    /// The cluster's status as EKS reports it (`CREATING`, `ACTIVE`, `DELETING`, `FAILED`…).
    pub fn status(&self) -> &'static str {
        self.eks.lock().cluster.status
    }

    /// Stops the cluster's Kubernetes API and its controllers.
    pub fn stop(&self) {
        if let Some(server) = self.kube.lock().unwrap_or_else(|e| e.into_inner()).take() {
            server.stop();
        }
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

impl Account {
    pub fn new(
        scenario: Scenario,
        shared: Shared,
        buckets: Arc<s3::buckets::Buckets>,
        dir: PathBuf,
    ) -> Arc<Account> {
        Arc::new(Account {
            scenario,
            shared,
            buckets,
            dir,
            services: RwLock::new(None),
            clusters: RwLock::new(BTreeMap::new()),
        })
    }

    pub fn set_services(&self, endpoints: Endpoints) {
        *self.services.write().unwrap_or_else(|e| e.into_inner()) = Some(endpoints);
    }

    /// The account-wide endpoints, once the services listen.
    pub fn services(&self) -> Option<Endpoints> {
        self.services
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn cluster(&self, name: &str) -> Option<Arc<ClusterRuntime>> {
        self.clusters
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub(crate) fn eks(&self, name: &str) -> Option<Arc<Eks>> {
        self.cluster(name).map(|c| c.eks.clone())
    }

    /// The clusters' names, sorted as ListClusters returns them.
    pub fn names(&self) -> Vec<String> {
        self.clusters
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.clusters
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a cluster with this world and EKS state. Nothing runs for it until [`bring_up`].
    ///
    /// [`bring_up`]: Account::bring_up
    pub(crate) fn register(&self, world: Arc<World>, eks: Arc<Eks>) -> Arc<ClusterRuntime> {
        let runtime = Arc::new(ClusterRuntime {
            world,
            eks,
            kube: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
        });
        self.clusters
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(runtime.world.cluster_name().to_string(), runtime.clone());
        runtime
    }

    /// Starts what a running cluster has: its Kubernetes API on its own port with its own
    /// certificate, its objects, and its simulator, Velero and Karpenter. Returns the cluster's
    /// endpoints (the account's with its own `kubernetes`).
    pub(crate) async fn bring_up(
        &self,
        runtime: &ClusterRuntime,
        server_tls: Arc<rustls::ServerConfig>,
    ) -> Result<Endpoints, SandboxError> {
        let world = &runtime.world;
        sim::seed::register_types(&world.store, &world.scenario)
            .map_err(sim::seed::SeedError::from)?;
        let kube = serve::serve(kube::api::router(world.clone()), 0, Some(server_tls)).await?;
        let mut endpoints = self.services().unwrap_or_default();
        endpoints.kubernetes = format!("https://{}", kube.addr);
        *runtime.kube.lock().unwrap_or_else(|e| e.into_inner()) = Some(kube);
        sim::seed::seed(&world.store, &world.scenario, &endpoints.s3)?;
        world.set_endpoints(endpoints.clone());

        let spec = &world.scenario.spec;
        let mut tasks = vec![sim::start(world.clone())];
        if spec.velero.installed {
            let s3 = crate::s3_client(&endpoints.s3, &spec.cluster.region);
            tasks.push(velero::start(world.clone(), s3));
        }
        if spec.karpenter.is_some() {
            tasks.push(sim::karpenter::start(world.clone()));
        }
        runtime
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(tasks);
        Ok(endpoints)
    }

    /// A fresh CA and server certificate for a cluster's Kubernetes API.
    pub(crate) fn certificates() -> Result<tls::Certificates, SandboxError> {
        Ok(tls::generate()?)
    }

    /// Removes a cluster: its API stops answering and its controllers stop.
    pub fn remove(&self, name: &str) {
        let removed = self
            .clusters
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        if let Some(runtime) = removed {
            runtime.stop();
        }
    }

    /// Stops every cluster (the sandbox is stopping).
    pub fn stop_all(&self) {
        let clusters: Vec<Arc<ClusterRuntime>> = self
            .clusters
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for c in clusters {
            c.stop();
        }
    }
}
