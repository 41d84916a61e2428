//! The run lock: a `coordination.k8s.io/v1` Lease in the Velero namespace, held and renewed for
//! the whole run, so two runs never upgrade one cluster at once. An expired lease (its holder
//! died) may be taken over; the holder of a resumed run is the same run, so it takes its own
//! lease back at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};

pub const LEASE_NAME: &str = "eks-upgrade";
/// How long a lease lives without renewal; renewals come every third of it.
pub const LEASE_SECONDS: i32 = 60;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another run holds the cluster: `{holder}` (renewed {renewed}); it ends or expires {LEASE_SECONDS}s after its last renewal"
    )]
    Held { holder: String, renewed: String },
    #[error("cannot take the lock (Lease `{namespace}/{LEASE_NAME}`): {message}")]
    Api {
        namespace: String,
        /// The failure in one line, for people (the cause keeps the rest, for the log).
        message: String,
        #[source]
        source: kube::Error,
    },
}

/// Who holds the lock: the run id, and the host it runs on, for people reading `kubectl get lease`.
pub fn holder_identity(run_id: &str) -> String {
    format!("{run_id}@{}", host_name())
}

/// The system's host name (a pod's name in Kubernetes), asked of the system rather than read
/// from `$HOSTNAME`, which shells set but containers often do not export.
fn host_name() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

fn run_of(holder: &str) -> &str {
    holder.split('@').next().unwrap_or(holder)
}

fn expired(lease: &Lease, now: Timestamp) -> bool {
    let Some(spec) = &lease.spec else { return true };
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
    renewed.0.as_second() + duration < now.as_second()
}

fn spec(holder: &str, now: Timestamp, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(LEASE_SECONDS),
        acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

/// The held lock. Renewal runs in the background until [`RunLock::release`] or drop.
pub struct RunLock {
    api: Api<Lease>,
    holder: String,
    renewer: tokio::task::JoinHandle<()>,
    lost: tokio::sync::watch::Receiver<bool>,
}

impl RunLock {
    /// Takes the lock for `run_id`, or explains who has it.
    pub async fn acquire(
        kube: kube::Client,
        namespace: &str,
        run_id: &str,
    ) -> Result<RunLock, LockError> {
        let api: Api<Lease> = Api::namespaced(kube, namespace);
        let holder = holder_identity(run_id);
        let api_err = |source: kube::Error| LockError::Api {
            namespace: namespace.to_string(),
            message: crate::errors::kube(&source),
            source,
        };
        let now = Timestamp::now();
        match api.get_opt(LEASE_NAME).await.map_err(api_err)? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(LEASE_NAME.into()),
                        // The lease lives in Velero's namespace; it must not be backed up, or a
                        // restore would hand the lock back to whoever held it then.
                        labels: Some(
                            [
                                (
                                    "velero.io/exclude-from-backup".to_string(),
                                    "true".to_string(),
                                ),
                                (
                                    "app.kubernetes.io/managed-by".to_string(),
                                    "eks-upgrade".to_string(),
                                ),
                            ]
                            .into(),
                        ),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec(&holder, now, None, 0)),
                };
                match api.create(&PostParams::default(), &lease).await {
                    Ok(_) => {}
                    // Someone created it between our read and our create: they hold it.
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        return Box::pin(Self::acquire(
                            api.clone().into_client(),
                            namespace,
                            run_id,
                        ))
                        .await;
                    }
                    Err(e) => return Err(api_err(e)),
                }
            }
            Some(mut lease) => {
                let current = lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.holder_identity.clone())
                    .unwrap_or_default();
                let ours = !current.is_empty() && run_of(&current) == run_id;
                if !current.is_empty() && !ours && !expired(&lease, now) {
                    let renewed = lease
                        .spec
                        .as_ref()
                        .and_then(|s| s.renew_time.as_ref())
                        .map(|t| t.0.to_string())
                        .unwrap_or_else(|| "never".into());
                    return Err(LockError::Held {
                        holder: current,
                        renewed,
                    });
                }
                let transitions = lease
                    .spec
                    .as_ref()
                    .and_then(|s| s.lease_transitions)
                    .unwrap_or(0)
                    + i32::from(!ours);
                let acquired = if ours {
                    lease.spec.as_ref().and_then(|s| s.acquire_time.clone())
                } else {
                    None
                };
                lease.spec = Some(spec(&holder, now, acquired, transitions));
                // The resourceVersion makes this a compare-and-swap: a racing run gets 409.
                api.replace(LEASE_NAME, &PostParams::default(), &lease)
                    .await
                    .map_err(|e| match e {
                        kube::Error::Api(s) if s.code == 409 => LockError::Held {
                            holder: "a run that took it just now".into(),
                            renewed: "just now".into(),
                        },
                        other => api_err(other),
                    })?;
            }
        }
        let (lost_tx, lost) = tokio::sync::watch::channel(false);
        let renewer = tokio::spawn(renew(api.clone(), holder.clone(), lost_tx));
        Ok(RunLock {
            api,
            holder,
            renewer,
            lost,
        })
    }

    /// Resolves when another holder has taken the lease over.
    pub fn lost(&self) -> tokio::sync::watch::Receiver<bool> {
        self.lost.clone()
    }

    /// Gives the lock up so the next run may start at once.
    pub async fn release(self) {
        self.renewer.abort();
        if let Ok(Some(mut lease)) = self.api.get_opt(LEASE_NAME).await
            && lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.holder.as_str())
        {
            if let Some(s) = lease.spec.as_mut() {
                s.holder_identity = None;
                s.renew_time = None;
            }
            let _ = self
                .api
                .replace(LEASE_NAME, &PostParams::default(), &lease)
                .await;
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

async fn renew(api: Api<Lease>, holder: String, lost: tokio::sync::watch::Sender<bool>) {
    let every = Duration::from_secs((LEASE_SECONDS / 3) as u64);
    loop {
        tokio::time::sleep(every).await;
        let Ok(Some(mut lease)) = api.get_opt(LEASE_NAME).await else {
            continue;
        };
        let current = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default();
        if current != holder {
            let _ = lost.send(true);
            return;
        }
        if let Some(s) = lease.spec.as_mut() {
            s.renew_time = Some(MicroTime(Timestamp::now()));
        }
        // A failed renewal is retried at the next tick; the lease outlives two misses.
        let _ = api
            .replace(LEASE_NAME, &PostParams::default(), &lease)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_names_the_host_the_system_reports() {
        let holder = holder_identity("20260307t020512z-4f2a9c");
        let host = holder
            .strip_prefix("20260307t020512z-4f2a9c@")
            .expect("RUN_ID@HOST");
        assert!(!host.is_empty() && !host.contains(char::is_whitespace));
        #[cfg(target_os = "linux")]
        if let Ok(system) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            assert_eq!(host, system.trim());
        }
    }
}
