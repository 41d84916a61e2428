//! The small S3 reads verification makes: whole objects with their ETag, and key listings.

use std::collections::BTreeMap;

use super::VerifyError;

pub fn not_found<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E>,
) -> bool {
    e.raw_response().is_some_and(|r| r.status().as_u16() == 404)
        || e.as_service_error()
            .and_then(|s| s.code())
            .is_some_and(|c| c == "NoSuchKey" || c == "NotFound")
}

/// An object read whole, with the ETag it was served with.
pub struct Object {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
}

/// The object at `key`, or `None` when there is none.
pub async fn get(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Object>, VerifyError> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let etag = out.e_tag().map(str::to_string);
            let data = out
                .body
                .collect()
                .await
                .map_err(|e| VerifyError::Interrupted {
                    key: key.into(),
                    message: crate::errors::chain(&e),
                })?;
            Ok(Some(Object {
                bytes: data.into_bytes().to_vec(),
                etag,
            }))
        }
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(VerifyError::S3 {
            key: key.into(),
            message: crate::errors::sdk("S3", "GetObject", &e),
        }),
    }
}

/// Keys and sizes under a prefix.
pub async fn list(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<BTreeMap<String, u64>, VerifyError> {
    let mut keys = BTreeMap::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| VerifyError::S3 {
            key: prefix.into(),
            message: crate::errors::sdk("S3", "ListObjectsV2", &e),
        })?;
        for o in page.contents() {
            if let Some(k) = o.key() {
                keys.insert(
                    k.to_string(),
                    o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                );
            }
        }
    }
    Ok(keys)
}
