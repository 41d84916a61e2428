//! From a BackupStorageLocation to an S3 client that reads its bucket: bucket, prefix, region,
//! a custom endpoint (`s3Url`, for MinIO and friends) and path-style addressing.

use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;

use super::objects;

#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("BackupStorageLocation `{name}` was not found in namespace `{namespace}`")]
    NotFound { name: String, namespace: String },
    #[error("cannot read BackupStorageLocation `{name}`: {message}")]
    Read { name: String, message: String },
    #[error(
        "BackupStorageLocation `{name}` uses provider `{provider}`; only S3 (`aws`) locations can be verified"
    )]
    Provider { name: String, provider: String },
    #[error("BackupStorageLocation `{name}` has no bucket")]
    NoBucket { name: String },
}

/// Where a location's objects live, as the AWS plugin reads its config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageLocation {
    pub name: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub region: Option<String>,
    pub s3_url: Option<String>,
    pub force_path_style: bool,
    /// `Available` or `Unavailable`, as Velero last validated it.
    pub phase: Option<String>,
}

impl StorageLocation {
    pub fn from_object(obj: &DynamicObject) -> Result<Self, LocationError> {
        let name = obj.metadata.name.clone().unwrap_or_default();
        let text = |ptr: &str| {
            obj.data
                .pointer(ptr)
                .and_then(Value::as_str)
                .map(str::to_string)
                .filter(|s| !s.is_empty())
        };
        let provider = text("/spec/provider").unwrap_or_default();
        // The AWS plugin registers as `aws` or `velero.io/aws`.
        if provider != "aws" && provider != "velero.io/aws" {
            return Err(LocationError::Provider { name, provider });
        }
        let bucket = text("/spec/objectStorage/bucket")
            .ok_or_else(|| LocationError::NoBucket { name: name.clone() })?;
        Ok(StorageLocation {
            bucket,
            prefix: text("/spec/objectStorage/prefix"),
            region: text("/spec/config/region"),
            s3_url: text("/spec/config/s3Url"),
            force_path_style: text("/spec/config/s3ForcePathStyle")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            phase: text("/status/phase"),
            name,
        })
    }

    /// An S3 client for this location: the tool's own AWS credentials, the location's region
    /// and endpoint. Path-style addressing is used with a custom endpoint whatever the location
    /// says, because virtual-host addressing needs DNS for every bucket name.
    pub fn s3_client(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
        let mut builder = aws_sdk_s3::config::Builder::from(sdk);
        if let Some(region) = &self.region {
            builder = builder.region(aws_sdk_s3::config::Region::new(region.clone()));
        }
        if let Some(url) = &self.s3_url {
            builder = builder.endpoint_url(url).force_path_style(true);
        } else if self.force_path_style || sdk.endpoint_url().is_some() {
            builder = builder.force_path_style(true);
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }
}

pub async fn get(
    client: kube::Client,
    namespace: &str,
    name: &str,
) -> Result<StorageLocation, LocationError> {
    let api = objects::storage_locations(client, namespace);
    match api.get_opt(name).await {
        Ok(Some(obj)) => StorageLocation::from_object(&obj),
        Ok(None) => Err(LocationError::NotFound {
            name: name.into(),
            namespace: namespace.into(),
        }),
        Err(e) => Err(LocationError::Read {
            name: name.into(),
            message: crate::errors::kube(&e),
        }),
    }
}
