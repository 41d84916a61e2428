//! Where journals live: a local directory (the default, under the XDG state directory) or an S3
//! prefix, for CronJob pods that keep no disk — the next pod resumes from there.

use std::path::PathBuf;

use serde::Serialize;

use super::record::{Journal, RunResult, RunState};
use super::seal::{self, Damage};
use crate::state::{StateError, write_atomic};

/// An S3 SDK error of any operation, kept whole for its chain of causes.
type S3Source = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Local(#[from] StateError),
    #[error("`{url}`: {message}")]
    S3 {
        url: String,
        /// The failure in one line, for people (the cause keeps the rest, for the log).
        message: String,
        #[source]
        source: S3Source,
    },
    /// Not JSON, or not a journal.
    #[error("journal `{location}` is damaged: {source}")]
    Corrupt {
        location: String,
        #[source]
        source: serde_json::Error,
    },
    /// Written by a newer release, or not as eks-upgrade wrote it (no checksum, or a wrong one).
    #[error("journal `{location}` {damage}")]
    Refused {
        location: String,
        #[source]
        damage: Damage,
    },
    #[error("no run `{run_id}` in {store}")]
    NotFound { run_id: String, store: String },
    #[error("`{0}` is not an S3 URL; write `s3://BUCKET/PREFIX`")]
    BadUrl(String),
}

impl StoreError {
    fn damaged(location: String, damage: Damage) -> StoreError {
        match damage {
            Damage::Syntax(source) => StoreError::Corrupt { location, source },
            damage => StoreError::Refused { location, damage },
        }
    }

    /// Whether the journal is there but cannot be trusted: a person must look at it.
    pub fn is_damaged(&self) -> bool {
        matches!(
            self,
            StoreError::Corrupt { .. } | StoreError::Refused { .. }
        )
    }

    /// How to go on, for the damaged kinds.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            StoreError::Refused {
                damage: Damage::TooNew { .. },
                ..
            } => Some(
                "read and resume it with the eks-upgrade release that wrote it, or a newer one",
            ),
            StoreError::Corrupt { .. } | StoreError::Refused { .. } => Some(
                "only eks-upgrade writes journals: put back the previous version of the object or file (S3 versioning, a backup) if there is one; otherwise check the cluster and acknowledge the run (docs/operations.md, \"A damaged journal\")",
            ),
            _ => None,
        }
    }
}

/// A journal file that is there but cannot be used: listed, never skipped, so that a run that
/// stopped mid-upgrade does not vanish from sight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DamagedJournal {
    pub run_id: String,
    /// What is wrong, with where: the error as `resume` would show it.
    pub damaged: String,
    /// The file or S3 object.
    pub location: String,
    /// The cluster it names, if that can still be read; `None` may be any cluster.
    pub cluster: Option<String>,
    pub region: Option<String>,
}

impl DamagedJournal {
    /// Whether this may be a journal of `cluster` in `region`.
    pub fn may_be_of(&self, cluster: &str, region: &str) -> bool {
        self.cluster.as_deref().is_none_or(|c| c == cluster)
            && self.region.as_deref().is_none_or(|r| r == region)
    }
}

/// A line of `eks-upgrade runs`: a run, or a journal that cannot be read.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Listed {
    Run(RunSummary),
    Damaged(DamagedJournal),
}

impl Listed {
    pub fn run_id(&self) -> &str {
        match self {
            Listed::Run(r) => &r.run_id,
            Listed::Damaged(d) => &d.run_id,
        }
    }
}

#[derive(Clone)]
pub enum JournalStore {
    Local {
        dir: PathBuf,
    },
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
    },
}

/// A line of `eks-upgrade runs`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub run_id: String,
    pub workflow: String,
    pub cluster: String,
    pub region: String,
    pub state: RunState,
    pub result: Option<RunResult>,
    pub exit_code: Option<u8>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Journal> for RunSummary {
    fn from(j: &Journal) -> Self {
        RunSummary {
            run_id: j.run_id.clone(),
            workflow: j.workflow_name.clone(),
            cluster: j.cluster.clone(),
            region: j.region.clone(),
            state: j.state.clone(),
            result: j.outcome.as_ref().map(|o| o.result),
            exit_code: j.outcome.as_ref().map(|o| o.exit_code),
            created_at: j.created_at.clone(),
            updated_at: j.updated_at.clone(),
        }
    }
}

/// Splits `s3://bucket/prefix` into bucket and prefix (without slashes at the ends).
pub fn parse_s3_url(url: &str) -> Result<(String, String), StoreError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| StoreError::BadUrl(url.to_string()))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(StoreError::BadUrl(url.to_string()));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

impl JournalStore {
    pub fn describe(&self) -> String {
        match self {
            JournalStore::Local { dir } => dir.join("runs").display().to_string(),
            JournalStore::S3 { bucket, prefix, .. } => {
                format!("s3://{bucket}/{}", Self::s3_key(prefix, ""))
            }
        }
    }

    fn s3_key(prefix: &str, file: &str) -> String {
        if prefix.is_empty() {
            format!("runs/{file}")
        } else {
            format!("{prefix}/runs/{file}")
        }
    }

    /// Where the journal of `run_id` is (or would be): a path or an `s3://` URL.
    pub fn location(&self, run_id: &str) -> String {
        match self {
            JournalStore::Local { dir } => dir
                .join("runs")
                .join(format!("{run_id}.json"))
                .display()
                .to_string(),
            JournalStore::S3 { bucket, prefix, .. } => {
                format!(
                    "s3://{bucket}/{}",
                    Self::s3_key(prefix, &format!("{run_id}.json"))
                )
            }
        }
    }

    pub async fn save(&self, journal: &Journal) -> Result<(), StoreError> {
        let bytes = seal::encode(journal).map_err(|source| StoreError::Corrupt {
            location: self.location(&journal.run_id),
            source,
        })?;
        match self {
            JournalStore::Local { dir } => {
                let path = dir.join("runs").join(format!("{}.json", journal.run_id));
                // A few milliseconds of blocking I/O, before or after a side effect that takes
                // seconds; not worth a thread hop.
                write_atomic(&path, &bytes)?;
            }
            JournalStore::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = Self::s3_key(prefix, &format!("{}.json", journal.run_id));
                // A PutObject replaces the object atomically: readers see the old or the new.
                client
                    .put_object()
                    .bucket(bucket)
                    .key(&key)
                    .content_type("application/json")
                    .body(bytes.into())
                    .send()
                    .await
                    .map_err(|e| StoreError::S3 {
                        url: format!("s3://{bucket}/{key}"),
                        message: crate::errors::sdk("S3", "PutObject", &e),
                        source: Box::new(e),
                    })?;
            }
        }
        #[cfg(feature = "crash-points")]
        super::crash::after_write();
        Ok(())
    }

    /// The stored bytes of a journal, and where they are.
    async fn read(&self, run_id: &str) -> Result<(String, Vec<u8>), StoreError> {
        let not_found = || StoreError::NotFound {
            run_id: run_id.into(),
            store: self.describe(),
        };
        match self {
            JournalStore::Local { dir } => {
                let path = dir.join("runs").join(format!("{run_id}.json"));
                match std::fs::read(&path) {
                    Ok(b) => Ok((path.display().to_string(), b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_found()),
                    Err(source) => Err(StateError::Read { path, source }.into()),
                }
            }
            JournalStore::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = Self::s3_key(prefix, &format!("{run_id}.json"));
                let url = format!("s3://{bucket}/{key}");
                match client.get_object().bucket(bucket).key(&key).send().await {
                    Ok(out) => {
                        let data = out.body.collect().await.map_err(|e| StoreError::S3 {
                            url: url.clone(),
                            message: format!("the object could not be read: {e}"),
                            source: Box::new(e),
                        })?;
                        Ok((url, data.into_bytes().to_vec()))
                    }
                    Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                        Err(not_found())
                    }
                    Err(e) => Err(StoreError::S3 {
                        url,
                        message: crate::errors::sdk("S3", "GetObject", &e),
                        source: Box::new(e),
                    }),
                }
            }
        }
    }

    /// A run's journal, refused when it is damaged, from a newer release, or fails its
    /// checksum.
    pub async fn load(&self, run_id: &str) -> Result<Journal, StoreError> {
        let (location, bytes) = self.read(run_id).await?;
        seal::decode(&bytes).map_err(|damage| StoreError::damaged(location, damage))
    }

    /// Every journal in the store, newest first: the runs, and the journals that cannot be read
    /// or trusted, as such. Fails only when the store itself cannot be listed.
    pub async fn list(&self) -> Result<Vec<Listed>, StoreError> {
        let ids: Vec<String> = match self {
            JournalStore::Local { dir } => match std::fs::read_dir(dir.join("runs")) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()
                            .and_then(|n| n.strip_suffix(".json"))
                            .map(str::to_string)
                    })
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(source) => {
                    return Err(StateError::Read {
                        path: dir.join("runs"),
                        source,
                    }
                    .into());
                }
            },
            JournalStore::S3 {
                client,
                bucket,
                prefix,
            } => {
                let mut ids = Vec::new();
                let mut pages = client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(Self::s3_key(prefix, ""))
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| StoreError::S3 {
                        url: format!("s3://{bucket}/{prefix}"),
                        message: crate::errors::sdk("S3", "ListObjectsV2", &e),
                        source: Box::new(e),
                    })?;
                    for o in page.contents() {
                        if let Some(id) = o
                            .key()
                            .and_then(|k| k.rsplit('/').next())
                            .and_then(|n| n.strip_suffix(".json"))
                        {
                            ids.push(id.to_string());
                        }
                    }
                }
                ids
            }
        };
        let mut runs = Vec::new();
        for id in ids {
            let damaged = |e: StoreError, bytes: &[u8]| {
                let (cluster, region) = seal::salvage(bytes);
                Listed::Damaged(DamagedJournal {
                    location: self.location(&id),
                    damaged: e.to_string(),
                    run_id: id.clone(),
                    cluster,
                    region,
                })
            };
            match self.read(&id).await {
                Ok((location, bytes)) => match seal::decode(&bytes) {
                    Ok(j) => runs.push(Listed::Run(RunSummary::from(&j))),
                    Err(damage) => {
                        runs.push(damaged(StoreError::damaged(location, damage), &bytes))
                    }
                },
                // Deleted since it was listed.
                Err(StoreError::NotFound { .. }) => {}
                // There, but unreadable: as good as damaged, and just as impossible to resume.
                Err(e) => runs.push(damaged(e, &[])),
            }
        }
        runs.sort_by(|a, b| b.run_id().cmp(a.run_id()));
        Ok(runs)
    }

    /// The journals of `cluster` (in `region`) that cannot be read or trusted and that no one
    /// acknowledged: a new run must not start over them, since each may be a run that stopped
    /// mid-upgrade.
    pub async fn unacknowledged_damage(
        &self,
        cluster: &str,
        region: &str,
        acknowledged: &[String],
    ) -> Result<Vec<DamagedJournal>, StoreError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter_map(|l| match l {
                Listed::Damaged(d) => Some(d),
                Listed::Run(_) => None,
            })
            .filter(|d| d.may_be_of(cluster, region) && !acknowledged.contains(&d.run_id))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(run_id: &str, cluster: &str) -> Journal {
        serde_json::from_value(serde_json::json!({
            "journalVersion": 2, "runId": run_id, "createdAt": "t", "updatedAt": "t",
            "workflowName": "w", "workflowPath": "w.yaml", "workflowText": "",
            "cluster": cluster, "region": "us-east-1", "state": { "state": "started" }
        }))
        .expect("a journal")
    }

    #[test]
    fn every_journal_file_is_listed_and_a_damaged_one_as_damaged() {
        let dir = tempfile::tempdir().expect("dir");
        let store = JournalStore::Local {
            dir: dir.path().to_path_buf(),
        };
        let runs = dir.path().join("runs");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            store.save(&journal("r1-good", "demo")).await.expect("save");
            store.save(&journal("r2-cut", "demo")).await.expect("save");
            let cut = std::fs::read(runs.join("r2-cut.json")).expect("read");
            std::fs::write(runs.join("r2-cut.json"), &cut[..cut.len() - 40]).expect("cut");
            // Unreadable as a file, and nothing to tell whose it is.
            std::fs::create_dir(runs.join("r3-dir.json")).expect("dir");
            // What a write killed half-way leaves behind is not a journal.
            std::fs::write(runs.join(".tmpXYZ"), b"{").expect("tmp");

            let listed = store.list().await.expect("list");
            let ids: Vec<&str> = listed.iter().map(Listed::run_id).collect();
            assert_eq!(ids, ["r3-dir", "r2-cut", "r1-good"]);
            let Listed::Damaged(cut) = &listed[1] else {
                panic!("{listed:?}")
            };
            assert_eq!(cut.cluster.as_deref(), Some("demo"));
            assert!(cut.damaged.contains("r2-cut.json` is damaged: "), "{cut:?}");
            let Listed::Damaged(unreadable) = &listed[0] else {
                panic!("{listed:?}")
            };
            assert_eq!(unreadable.cluster, None);
            assert!(unreadable.may_be_of("any", "where"));
            assert!(matches!(
                store.load("r2-cut").await,
                Err(StoreError::Corrupt { .. })
            ));

            let blocking = store
                .unacknowledged_damage("demo", "us-east-1", &[])
                .await
                .expect("list");
            assert_eq!(blocking.len(), 2);
            let blocking = store
                .unacknowledged_damage("demo", "us-east-1", &["r2-cut".into(), "r3-dir".into()])
                .await
                .expect("list");
            assert!(blocking.is_empty());
            let other = store
                .unacknowledged_damage("other", "us-east-1", &["r3-dir".into()])
                .await
                .expect("list");
            assert!(other.is_empty(), "{other:?}");
        });
    }
}
