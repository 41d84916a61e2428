//! Where journals live: a local directory (the default, under the XDG state directory) or an S3
//! prefix, for CronJob pods that keep no disk — the next pod resumes from there.

use std::path::PathBuf;

use serde::Serialize;

use super::record::{Journal, RunResult, RunState};
use crate::state::{StateError, write_atomic};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Local(#[from] StateError),
    #[error("`{url}`: {message}")]
    S3 { url: String, message: String },
    #[error("journal `{location}` is damaged: {message}")]
    Corrupt { location: String, message: String },
    #[error("no run `{run_id}` in {store}")]
    NotFound { run_id: String, store: String },
    #[error("`{0}` is not an S3 URL; write `s3://BUCKET/PREFIX`")]
    BadUrl(String),
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

    pub async fn save(&self, journal: &Journal) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(journal).map_err(|e| StoreError::Corrupt {
            location: journal.run_id.clone(),
            message: e.to_string(),
        })?;
        match self {
            JournalStore::Local { dir } => {
                let path = dir.join("runs").join(format!("{}.json", journal.run_id));
                // A few milliseconds of blocking I/O, before or after a side effect that takes
                // seconds; not worth a thread hop.
                write_atomic(&path, &bytes)?;
                Ok(())
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
                    .map(|_| ())
                    .map_err(|e| StoreError::S3 {
                        url: format!("s3://{bucket}/{key}"),
                        message: crate::errors::sdk("S3", "PutObject", &e),
                    })
            }
        }
    }

    pub async fn load(&self, run_id: &str) -> Result<Journal, StoreError> {
        let (location, bytes) = match self {
            JournalStore::Local { dir } => {
                let path = dir.join("runs").join(format!("{run_id}.json"));
                match std::fs::read(&path) {
                    Ok(b) => (path.display().to_string(), b),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(StoreError::NotFound {
                            run_id: run_id.into(),
                            store: self.describe(),
                        });
                    }
                    Err(source) => return Err(StateError::Read { path, source }.into()),
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
                            message: e.to_string(),
                        })?;
                        (url, data.into_bytes().to_vec())
                    }
                    Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                        return Err(StoreError::NotFound {
                            run_id: run_id.into(),
                            store: self.describe(),
                        });
                    }
                    Err(e) => {
                        return Err(StoreError::S3 {
                            url,
                            message: crate::errors::sdk("S3", "GetObject", &e),
                        });
                    }
                }
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            location,
            message: e.to_string(),
        })
    }

    /// Every run, newest first.
    pub async fn list(&self) -> Result<Vec<RunSummary>, StoreError> {
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
            // A damaged journal must not hide the others.
            if let Ok(j) = self.load(&id).await {
                runs.push(RunSummary::from(&j));
            }
        }
        runs.sort_by(|a, b| b.run_id.cmp(&a.run_id));
        Ok(runs)
    }
}
