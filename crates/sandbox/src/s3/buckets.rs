//! Which buckets exist and in which region, and the refusals S3 makes on that account, in front
//! of `s3s-fs` (which would create a bucket directory on any PUT and knows no regions):
//!
//! - a request to a bucket that does not exist: `404 NoSuchBucket`;
//! - a request signed for another region than the bucket's: `400 AuthorizationHeaderMalformed`
//!   naming the expected region in `<Region>` and `x-amz-bucket-region`, which is what S3 answers
//!   on the bucket's own endpoint (the sandbox has one endpoint for every region, so S3's other
//!   answer, `301 PermanentRedirect` from another region's endpoint, cannot arise). The AWS CLI
//!   redirects on it, as it does against S3; the Rust SDK reports it;
//! - `CreateBucket` with a location constraint the request's region cannot take:
//!   `IllegalLocationConstraintException`, or `InvalidLocationConstraint` for an explicit
//!   `us-east-1`, whose buckets are created without one.
//!
//! Buckets come from the scenario (the Velero bucket, `spec.buckets`) and from `CreateBucket`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::CreateBucketInput;
use s3s::path::S3Path;
use s3s::{S3Request, S3Result, s3_error};

/// The region of buckets created without a location constraint.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The buckets under the S3 root and their regions.
pub struct Buckets {
    root: PathBuf,
    regions: Mutex<BTreeMap<String, String>>,
    /// The region of a bucket found on disk without a record (a sandbox `--dir` reused).
    fallback: String,
}

impl Buckets {
    pub fn new(root: &Path, fallback: &str) -> Buckets {
        Buckets {
            root: root.to_path_buf(),
            regions: Mutex::new(BTreeMap::new()),
            fallback: fallback.to_string(),
        }
    }

    /// A bucket name that names a directory directly under the root, and nothing else.
    fn plain(bucket: &str) -> bool {
        !bucket.is_empty() && bucket != "." && bucket != ".." && !bucket.contains(['/', '\\'])
    }

    /// The region of `bucket`, or `None` when there is no such bucket.
    pub fn region_of(&self, bucket: &str) -> Option<String> {
        if !Self::plain(bucket) || !self.root.join(bucket).is_dir() {
            return None;
        }
        let regions = self.regions.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            regions
                .get(bucket)
                .cloned()
                .unwrap_or_else(|| self.fallback.clone()),
        )
    }

    /// Creates `bucket` in `region`, as the scenario asks. An existing bucket keeps its region.
    pub fn create(&self, bucket: &str, region: &str) -> std::io::Result<()> {
        if !Self::plain(bucket) {
            return Err(std::io::Error::other(format!(
                "`{bucket}` is not a bucket name"
            )));
        }
        std::fs::create_dir_all(self.root.join(bucket))?;
        self.record(bucket, region);
        Ok(())
    }

    fn record(&self, bucket: &str, region: &str) {
        let mut regions = self.regions.lock().unwrap_or_else(|e| e.into_inner());
        regions
            .entry(bucket.to_string())
            .or_insert_with(|| region.to_string());
    }
}

/// The region a request is signed for: from the `Authorization` header's credential scope, or
/// a presigned URL's `X-Amz-Credential` (`AKID/DATE/REGION/s3/aws4_request`).
pub fn signing_region(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    let scope = |credential: &str| -> Option<String> {
        let mut parts = credential.split('/');
        parts.next()?;
        parts.next()?;
        parts.next().map(str::to_string)
    };
    if let Some(auth) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(at) = auth.find("Credential=")
    {
        let rest = &auth[at + "Credential=".len()..];
        let credential = rest.split([',', ' ']).next().unwrap_or_default();
        return scope(credential);
    }
    let query = query?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("X-Amz-Credential"))
        .and_then(|(_, v)| scope(&v))
}

/// The bucket a path-style request is about (the sandbox's endpoint is an IP address, so
/// every client addresses buckets by path).
pub fn bucket_of(path: &str) -> Option<&str> {
    path.trim_start_matches('/')
        .split('/')
        .next()
        .filter(|b| !b.is_empty())
}

/// S3's answer to a request signed for the wrong region, as S3 words it, or `None` when the
/// request may go on. Checked before authentication, as S3 does: the signing key depends on
/// the region.
pub fn wrong_region(
    buckets: &Buckets,
    method: &http::Method,
    path: &str,
    headers: &http::HeaderMap,
    query: Option<&str>,
) -> Option<axum::response::Response> {
    use axum::response::IntoResponse;
    let bucket = bucket_of(path)?;
    let expected = buckets.region_of(bucket)?;
    let signed = signing_region(headers, query)?;
    if signed == expected {
        return None;
    }
    let status = axum::http::StatusCode::BAD_REQUEST;
    let region_header = [("x-amz-bucket-region", expected.clone())];
    // A HEAD response has no body: the header is all a client gets, as from S3.
    if method == http::Method::HEAD {
        return Some((status, region_header).into_response());
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region '{signed}' is wrong; expecting '{expected}'</Message><Region>{expected}</Region><RequestId>{id}</RequestId></Error>",
        id = request_id()
    );
    Some(
        (
            status,
            [
                ("content-type", "application/xml".to_string()),
                ("x-amz-bucket-region", expected),
            ],
            body,
        )
            .into_response(),
    )
}

fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase()
}

/// The access layer of the sandbox's s3s service: S3's refusals that depend on which buckets
/// exist. Authentication stays with s3s (`SimpleAuth`), which calls this only after it.
pub struct Strict {
    pub buckets: std::sync::Arc<Buckets>,
}

#[async_trait::async_trait]
impl S3Access for Strict {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        let bucket = match cx.s3_path() {
            S3Path::Root => return Ok(()),
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => bucket,
        };
        if cx.s3_op().name() == "CreateBucket" || self.buckets.region_of(bucket).is_some() {
            return Ok(());
        }
        Err(s3_error!(
            NoSuchBucket,
            "The specified bucket does not exist"
        ))
    }

    async fn create_bucket(&self, req: &mut S3Request<CreateBucketInput>) -> S3Result<()> {
        let signed = req
            .region
            .as_ref()
            .map_or(DEFAULT_REGION.to_string(), |r| r.as_str().to_string());
        let constraint = req
            .input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(|c| c.as_str().to_string())
            .filter(|c| !c.is_empty());
        let region = match constraint {
            None if signed != DEFAULT_REGION => {
                return Err(s3_error!(
                    IllegalLocationConstraintException,
                    "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to."
                ));
            }
            None => DEFAULT_REGION.to_string(),
            Some(c) if c == DEFAULT_REGION => {
                return Err(s3_error!(
                    InvalidLocationConstraint,
                    "The specified location-constraint is not valid"
                ));
            }
            Some(c) if signed != DEFAULT_REGION && c != signed => {
                return Err(s3_error!(
                    IllegalLocationConstraintException,
                    "The {} location constraint is incompatible for the region specific endpoint this request was sent to.",
                    c
                ));
            }
            Some(c) => c,
        };
        // An existing bucket keeps its region; s3s-fs answers that it exists.
        if self.buckets.region_of(&req.input.bucket).is_none() {
            self.buckets.record(&req.input.bucket, &region);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_region_comes_from_the_credential_scope() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=abc",
            ),
        );
        assert_eq!(signing_region(&headers, None).as_deref(), Some("eu-west-1"));
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260101%2Fus-west-2%2Fs3%2Faws4_request";
        assert_eq!(
            signing_region(&http::HeaderMap::new(), Some(query)).as_deref(),
            Some("us-west-2")
        );
        assert_eq!(signing_region(&http::HeaderMap::new(), None), None);
    }

    #[test]
    fn buckets_are_plain_names_under_the_root() {
        let dir = tempfile::tempdir().expect("dir");
        let buckets = Buckets::new(dir.path(), "us-east-1");
        assert_eq!(buckets.region_of("state"), None);
        buckets.create("state", "eu-west-1").expect("create");
        assert_eq!(buckets.region_of("state").as_deref(), Some("eu-west-1"));
        assert!(buckets.create("../escape", "eu-west-1").is_err());
        assert_eq!(buckets.region_of(".."), None);
        assert_eq!(bucket_of("/state/runs/x.json"), Some("state"));
        assert_eq!(bucket_of("/"), None);
    }
}
