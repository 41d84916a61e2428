//! The bearer token Amazon EKS accepts, made exactly as `aws eks get-token` makes it.
//!
//! # Format
//!
//! ```text
//! k8s-aws-v1.<base64url, no padding, of a presigned URL>
//! ```
//!
//! The URL is an STS `GetCallerIdentity` request presigned with SigV4 in the query string:
//!
//! ```text
//! https://sts.<region>.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15
//!     &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=<key>/<date>/<region>/sts/aws4_request
//!     &X-Amz-Date=<yyyymmddThhmmssZ>&X-Amz-Expires=60
//!     &X-Amz-SignedHeaders=host;x-k8s-aws-id&X-Amz-Signature=<hex>
//! ```
//!
//! The header `x-k8s-aws-id: <cluster name>` is part of the signature but not of the URL. EKS
//! (through aws-iam-authenticator) replays the URL against STS with that header set to its own
//! cluster name, so a token made for one cluster is useless against another, and STS tells EKS
//! which IAM identity signed it. The token never contains the secret key.
//!
//! # Lifetime
//!
//! EKS accepts a token for 15 minutes after its `X-Amz-Date`, whatever `X-Amz-Expires` says.
//! Like the AWS CLI, [`EksToken::expires_at`] reports 14 minutes so a holder renews with a minute
//! to spare; a long-running client should call [`get_token`] again once
//! [`EksToken::needs_refresh`] says so (no network call is involved: presigning is local).
//!
//! # Use
//!
//! ```no_run
//! # fn demo(creds: aws_credential_types::Credentials) -> Result<(), eks_upgrade_core::cloud::token::TokenError> {
//! use std::time::SystemTime;
//! let token = eks_upgrade_core::cloud::token::get_token(&creds, "eu-west-1", "prod", SystemTime::now())?;
//! // Authorization: Bearer <token.as_str()>
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;

/// What every EKS token starts with.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The signed header that binds a token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// `X-Amz-Expires` of the presigned URL, as the AWS CLI sets it. EKS does not use it to expire
/// tokens; it only has to be present and signed.
pub const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);
/// How long after its signing time EKS accepts a token.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// When holders should consider a token expired: a minute before EKS does, as the AWS CLI reports
/// `expirationTimestamp`.
pub const TOKEN_VALIDITY: Duration = Duration::from_secs(14 * 60);
/// The STS query the URL presigns.
pub const STS_QUERY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// A token and when it should be replaced.
#[derive(Clone, PartialEq, Eq)]
pub struct EksToken {
    token: String,
    issued_at: SystemTime,
    expires_at: SystemTime,
}

impl EksToken {
    /// The value for `Authorization: Bearer …`.
    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// The signing time (`X-Amz-Date`).
    pub fn issued_at(&self) -> SystemTime {
        self.issued_at
    }

    /// When to stop using the token: 14 minutes after signing, one minute before EKS refuses it.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// Whether a new token should be made before the next request at `now`.
    pub fn needs_refresh(&self, now: SystemTime) -> bool {
        now >= self.expires_at
    }

    /// The presigned URL inside the token (it carries no secret; the signature is bound to the
    /// time and the cluster).
    pub fn presigned_url(&self) -> Option<String> {
        decode(&self.token).ok()
    }
}

// The token is a credential for 15 minutes: keep it out of logs and panics.
impl fmt::Debug for EksToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EksToken")
            .field("token", &"k8s-aws-v1.<redacted>")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("`{0}` is not an AWS region name")]
    Region(String),
    #[error(
        "`{0}` is not an EKS cluster name (1 to 100 letters, digits, `-` or `_`, starting with a letter or digit)"
    )]
    ClusterName(String),
    #[error("cannot presign the STS GetCallerIdentity request: {0}")]
    Sign(String),
    #[error("not an EKS token: it does not start with `{TOKEN_PREFIX}`")]
    Prefix,
    #[error("not an EKS token: the part after `{TOKEN_PREFIX}` is not base64url text")]
    Encoding,
}

/// The STS endpoint host the AWS CLI presigns for in `region` (regional endpoints; China regions
/// live under `amazonaws.com.cn`).
pub fn sts_host(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("sts.{region}.{suffix}")
}

fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// EKS's own rule for cluster names; anything else could not be a header value we sign.
fn valid_cluster_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() <= 100
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Makes the token for `cluster` in `region`, signed with `credentials` at time `now`.
///
/// Nothing is sent anywhere: a token is a presigned URL, checked later by EKS. Pass the time
/// explicitly so callers (and tests) control expiry; production code passes `SystemTime::now()`.
/// Temporary credentials work: their session token goes into the URL as `X-Amz-Security-Token`,
/// as the AWS CLI does.
pub fn get_token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<EksToken, TokenError> {
    if !valid_region(region) {
        return Err(TokenError::Region(region.to_string()));
    }
    if !valid_cluster_name(cluster) {
        return Err(TokenError::ClusterName(cluster.to_string()));
    }
    let host = sts_host(region);
    let base = format!("https://{host}/?{STS_QUERY}");

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRES);
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| TokenError::Sign(e.to_string()))?
        .into();
    // The payload hash is that of an empty body, as botocore and the Go SDK presign it for STS.
    // (`UNSIGNED-PAYLOAD` is S3's convention for presigned URLs; STS refuses it.)
    let request = SignableRequest::new(
        "GET",
        base.as_str(),
        [("host", host.as_str()), (CLUSTER_ID_HEADER, cluster)].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| TokenError::Sign(e.to_string()))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| TokenError::Sign(e.to_string()))?
        .into_parts();

    let mut url = base;
    for (name, value) in instructions.params() {
        url.push('&');
        url.push_str(&uri_encode(name));
        url.push('=');
        url.push_str(&uri_encode(value));
    }
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url.as_bytes())
    );
    Ok(EksToken {
        token,
        issued_at: now,
        expires_at: now + TOKEN_VALIDITY,
    })
}

/// The presigned URL inside a token, not verified. Padding is tolerated: some clients add it.
pub fn decode(token: &str) -> Result<String, TokenError> {
    let body = token.strip_prefix(TOKEN_PREFIX).ok_or(TokenError::Prefix)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body.trim_end_matches('='))
        .map_err(|_| TokenError::Encoding)?;
    String::from_utf8(bytes).map_err(|_| TokenError::Encoding)
}

/// SigV4's URI encoding: every byte except the unreserved `A-Z a-z 0-9 - _ . ~` becomes `%XX`
/// (uppercase hex). Query values in a canonical request must be encoded exactly this way.
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        )
    }

    #[test]
    fn token_has_the_cli_shape() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
        let token = get_token(&creds(), "eu-west-1", "prod", at).unwrap();
        assert!(token.as_str().starts_with(TOKEN_PREFIX));
        assert!(!token.as_str().contains('='));
        let url = token.presigned_url().unwrap();
        assert!(url.starts_with(
            "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
        ));
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20260101%2Feu-west-1%2Fsts%2Faws4_request",
            "X-Amz-Date=20260101T000000Z",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} missing from {url}");
        }
        assert_eq!(token.expires_at(), at + TOKEN_VALIDITY);
        assert!(!token.needs_refresh(at));
        assert!(token.needs_refresh(at + TOKEN_VALIDITY));
        assert!(!format!("{token:?}").contains(&token.as_str()[12..]));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let now = SystemTime::now();
        assert!(matches!(
            get_token(&creds(), "", "prod", now),
            Err(TokenError::Region(_))
        ));
        assert!(matches!(
            get_token(&creds(), "us-east-1", "a\nb", now),
            Err(TokenError::ClusterName(_))
        ));
        assert_eq!(decode("Bearer x"), Err(TokenError::Prefix));
        assert_eq!(decode("k8s-aws-v1.!!!"), Err(TokenError::Encoding));
        assert_eq!(uri_encode("a/b;c d~"), "a%2Fb%3Bc%20d~");
    }
}
