//! The emulator's side of the bucket: the S3 calls Velero's AWS plugin makes (PutObject or a
//! multipart upload, GetObject, HeadObject, ListObjectsV2 with and without a delimiter,
//! DeleteObject), all through the sandbox's real S3 server.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

/// What `manager.Uploader` uses: parts of 5 MiB, the S3 minimum for all but the last.
pub const PART_SIZE: usize = 5 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("key {key} does not exist")]
    NotFound { key: String },
    /// Phrased as the AWS plugin's errors reach Velero's logs.
    #[error("rpc error: code = Unknown desc = {message}")]
    Failed { message: String },
}

/// No single S3 call may hold a controller longer than this: a wedged request fails the
/// backup or restore instead of stopping every later one (they run one at a time).
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

async fn timed<T>(
    call: impl std::future::Future<Output = Result<T, ObjectError>>,
) -> Result<T, ObjectError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(ObjectError::Failed {
                message: format!("S3 request timed out after {CALL_TIMEOUT:?}"),
            })
        })
}

fn failed(e: impl std::error::Error) -> ObjectError {
    ObjectError::Failed {
        message: DisplayErrorContext(&e).to_string(),
    }
}

/// One bucket, through one S3 client.
#[derive(Clone)]
pub struct Bucket {
    pub client: aws_sdk_s3::Client,
    pub name: String,
}

impl Bucket {
    pub fn new(client: aws_sdk_s3::Client, name: &str) -> Bucket {
        Bucket {
            client,
            name: name.to_string(),
        }
    }

    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        timed(async move {
            self.client
                .put_object()
                .bucket(&self.name)
                .key(key)
                .body(ByteStream::from(body))
                .send()
                .await
                .map(|_| ())
                .map_err(failed)
        })
        .await
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        timed(async move {
            let out = self
                .client
                .get_object()
                .bucket(&self.name)
                .key(key)
                .send()
                .await
                .map_err(|e| {
                    if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                        ObjectError::NotFound {
                            key: key.to_string(),
                        }
                    } else {
                        failed(e)
                    }
                })?;
            let data = out.body.collect().await.map_err(failed)?;
            Ok(data.into_bytes().to_vec())
        })
        .await
    }

    /// `ObjectExists`: HeadObject, with 404 meaning "no" rather than an error.
    pub async fn exists(&self, key: &str) -> Result<bool, ObjectError> {
        timed(async move {
            match self
                .client
                .head_object()
                .bucket(&self.name)
                .key(key)
                .send()
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
                Err(e) => Err(failed(e)),
            }
        })
        .await
    }

    /// `ListCommonPrefixes(bucket, prefix, "/")`.
    pub async fn common_prefixes(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        timed(async move {
            let mut out = Vec::new();
            let mut token = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.name)
                    .prefix(prefix)
                    .delimiter("/")
                    .set_continuation_token(token)
                    .send()
                    .await
                    .map_err(failed)?;
                out.extend(
                    page.common_prefixes()
                        .iter()
                        .filter_map(|p| p.prefix().map(str::to_string)),
                );
                match page.next_continuation_token() {
                    Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                    _ => break,
                }
            }
            Ok(out)
        })
        .await
    }

    /// Every key under `prefix`.
    pub async fn keys(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        timed(async move {
            let mut out = Vec::new();
            let mut token = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.name)
                    .prefix(prefix)
                    .set_continuation_token(token)
                    .send()
                    .await
                    .map_err(failed)?;
                out.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_string)),
                );
                match page.next_continuation_token() {
                    Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                    _ => break,
                }
            }
            Ok(out)
        })
        .await
    }

    pub async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        timed(async move {
            self.client
                .delete_object()
                .bucket(&self.name)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(failed)
        })
        .await
    }
}

/// An object uploaded while it is being produced: parts go up as they fill, and the object only
/// becomes visible at [`StreamUpload::complete`], so it can appear in the bucket in Velero's upload
/// order even though its bytes left earlier. Small objects never start a multipart upload.
pub struct StreamUpload {
    bucket: Bucket,
    key: String,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    /// The last bytes, kept when no part was ever sent (a plain PutObject then).
    tail: Vec<u8>,
}

impl StreamUpload {
    pub fn new(bucket: &Bucket, key: &str) -> StreamUpload {
        StreamUpload {
            bucket: bucket.clone(),
            key: key.to_string(),
            upload_id: None,
            parts: Vec::new(),
            tail: Vec::new(),
        }
    }

    /// Sends one part, starting the multipart upload on the first.
    pub async fn part(&mut self, bytes: Vec<u8>) -> Result<(), ObjectError> {
        timed(async move {
            let client = &self.bucket.client;
            let upload_id = match &self.upload_id {
                Some(id) => id.clone(),
                None => {
                    let created = client
                        .create_multipart_upload()
                        .bucket(&self.bucket.name)
                        .key(&self.key)
                        .send()
                        .await
                        .map_err(failed)?;
                    let id = created.upload_id().unwrap_or_default().to_string();
                    if id.is_empty() {
                        return Err(ObjectError::Failed {
                            message: "CreateMultipartUpload returned no upload id".into(),
                        });
                    }
                    self.upload_id = Some(id.clone());
                    id
                }
            };
            let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
            let sent = client
                .upload_part()
                .bucket(&self.bucket.name)
                .key(&self.key)
                .upload_id(&upload_id)
                .part_number(number)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(failed)?;
            self.parts.push(
                CompletedPart::builder()
                    .set_e_tag(sent.e_tag().map(str::to_string))
                    .part_number(number)
                    .build(),
            );
            Ok(())
        })
        .await
    }

    /// The final bytes: a last part if a multipart upload is under way, else kept for a PUT.
    pub async fn finish(&mut self, bytes: Vec<u8>) -> Result<(), ObjectError> {
        if self.upload_id.is_some() {
            if !bytes.is_empty() {
                self.part(bytes).await?;
            }
        } else {
            self.tail = bytes;
        }
        Ok(())
    }

    /// Makes the object visible.
    pub async fn complete(self) -> Result<(), ObjectError> {
        let Some(upload_id) = self.upload_id.clone() else {
            return self.bucket.put(&self.key, self.tail).await;
        };
        let result = self
            .bucket
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket.name)
            .key(&self.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let message = format!(
                    "{}: {}",
                    e.code().unwrap_or("error"),
                    DisplayErrorContext(&e)
                );
                self.abort().await;
                Err(ObjectError::Failed { message })
            }
        }
    }

    /// Drops the parts sent so far; best effort, as an abandoned upload only costs storage.
    pub async fn abort(self) {
        if let Some(id) = &self.upload_id {
            let _ = self
                .bucket
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket.name)
                .key(&self.key)
                .upload_id(id)
                .send()
                .await;
        }
    }
}
