//! Authentication as EKS does it: a bearer token `k8s-aws-v1.<presigned STS URL>`.
//!
//! A real cluster hands the URL to STS with `x-k8s-aws-id: <cluster>` and learns who signed it.
//! The sandbox has no STS, so it does STS's part itself: it knows the only valid credentials
//! (`world::ACCESS_KEY` / `SECRET_KEY`), rebuilds the SigV4 canonical request with its own
//! cluster name in the signed header, and compares signatures. A token for another cluster, a
//! tampered URL, another key or an old signing time is refused with `401 Unauthorized`.
//!
//! Requests without any credentials are `system:anonymous`, which EKS lets read only the
//! public-info endpoints (`/version`, `/healthz`, `/livez`, `/readyz`).

use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::path::percent_decode;
use eks_upgrade_core::cloud::token::{self, CLUSTER_ID_HEADER, TOKEN_LIFETIME, uri_encode};

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    /// Authenticated by an EKS token signed with this access key.
    User(String),
}

/// Why a token was refused. Clients only ever see `Unauthorized`; the reason is for tests and
/// for the sandbox's own diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the Authorization header is not `Bearer <token>`")]
    Scheme,
    #[error(transparent)]
    Token(#[from] token::TokenError),
    #[error("the token is not a presigned https URL of an STS endpoint: {0}")]
    NotSts(String),
    #[error("query parameter `{0}` is not allowed in an EKS token")]
    UnexpectedParameter(String),
    #[error("query parameter `{0}` is repeated")]
    RepeatedParameter(String),
    #[error("query parameter `{0}` is missing")]
    MissingParameter(&'static str),
    #[error("the presigned request is not STS GetCallerIdentity (2011-06-15, AWS4-HMAC-SHA256)")]
    NotGetCallerIdentity,
    #[error("`x-k8s-aws-id` and `host` must be the only signed headers, got `{0}`")]
    SignedHeaders(String),
    #[error("malformed X-Amz-Credential `{0}`")]
    Credential(String),
    #[error("unknown access key `{0}`")]
    AccessKey(String),
    #[error("malformed X-Amz-Date `{0}`")]
    Date(String),
    #[error("the token was signed at {0}, more than 15 minutes ago")]
    Expired(String),
    #[error("the token was signed at {0}, in the future")]
    NotYetValid(String),
    #[error("the signature does not match (wrong cluster, secret key or a modified URL)")]
    Signature,
}

/// What a token must prove.
pub struct Expectation<'a> {
    pub cluster: &'a str,
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub now: SystemTime,
}

/// SHA-256 of the empty string.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// STS allows this much clock skew for a signature from the future.
const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// The parameters aws-iam-authenticator accepts in a token's URL; anything else is refused.
const ALLOWED: [&str; 9] = [
    "Action",
    "Version",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-Security-Token",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
];

/// Authenticates a request from its `Authorization` header.
pub fn authenticate(headers: &HeaderMap, expect: &Expectation<'_>) -> Result<Caller, AuthError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(Caller::Anonymous);
    };
    let value = value.to_str().map_err(|_| AuthError::Scheme)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Scheme)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Scheme);
    }
    verify(token.trim(), expect).map(Caller::User)
}

/// Host names of STS: `sts.amazonaws.com`, `sts.<region>.amazonaws.com`, and `.com.cn`.
fn is_sts_host(host: &str) -> bool {
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"));
    match rest {
        Some("sts") => true,
        Some(r) => r.strip_prefix("sts.").is_some_and(|region| {
            !region.is_empty()
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }),
        None => false,
    }
}

/// Checks a token; returns the access key that signed it.
pub fn verify(token: &str, expect: &Expectation<'_>) -> Result<String, AuthError> {
    let url = token::decode(token)?;
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| AuthError::NotSts(url.clone()))?;
    let (host, path_query) = rest
        .split_once('/')
        .ok_or_else(|| AuthError::NotSts(url.clone()))?;
    let query = path_query
        .strip_prefix('?')
        .ok_or_else(|| AuthError::NotSts(url.clone()))?;
    if !is_sts_host(host) {
        return Err(AuthError::NotSts(url.clone()));
    }

    let mut params: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (percent_decode(k), percent_decode(v)) else {
            return Err(AuthError::NotSts(url.clone()));
        };
        let Some(canonical) = ALLOWED.iter().find(|a| a.eq_ignore_ascii_case(&k)) else {
            return Err(AuthError::UnexpectedParameter(k));
        };
        if params
            .iter()
            .any(|(p, _)| p.eq_ignore_ascii_case(canonical))
        {
            return Err(AuthError::RepeatedParameter(k));
        }
        params.push((k, v));
    }
    let get = |name: &'static str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .ok_or(AuthError::MissingParameter(name))
    };

    if get("Action")? != "GetCallerIdentity"
        || get("Version")? != "2011-06-15"
        || get("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256"
    {
        return Err(AuthError::NotGetCallerIdentity);
    }
    let signed_headers = get("X-Amz-SignedHeaders")?;
    let signed: Vec<&str> = signed_headers.split(';').collect();
    // Only `host` and the cluster id have values the server knows; a signature over any other
    // header could not be checked (STS would need the header too, and EKS does not send it).
    let mut sorted = signed.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted != ["host", CLUSTER_ID_HEADER] || signed != sorted {
        return Err(AuthError::SignedHeaders(signed_headers.to_string()));
    }

    let credential = get("X-Amz-Credential")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, day, region, "sts", "aws4_request"] = scope.as_slice() else {
        return Err(AuthError::Credential(credential.to_string()));
    };
    if *access_key != expect.access_key {
        return Err(AuthError::AccessKey(access_key.to_string()));
    }
    let amz_date = get("X-Amz-Date")?;
    let signed_at = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| AuthError::Date(amz_date.to_string()))?
        .and_utc();
    if !amz_date.starts_with(day) || day.len() != 8 {
        return Err(AuthError::Credential(credential.to_string()));
    }
    let signed_at: SystemTime = signed_at.into();
    if expect
        .now
        .duration_since(signed_at)
        .is_ok_and(|age| age > TOKEN_LIFETIME)
    {
        return Err(AuthError::Expired(amz_date.to_string()));
    }
    if signed_at
        .duration_since(expect.now)
        .is_ok_and(|ahead| ahead > MAX_SKEW)
    {
        return Err(AuthError::NotYetValid(amz_date.to_string()));
    }

    // The SigV4 canonical request of the presigned GET, with the cluster name this server
    // expects as the value of the signed `x-k8s-aws-id` header.
    let mut canonical_query: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    canonical_query.sort();
    let canonical_query = canonical_query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    // The payload hash is that of an empty body: STS, unlike S3, has no unsigned-payload mode.
    let canonical_request = format!(
        "GET\n/\n{canonical_query}\nhost:{host}\n{CLUSTER_ID_HEADER}:{}\n\n{signed_headers}\n{EMPTY_SHA256}",
        expect.cluster
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{day}/{region}/sts/aws4_request\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let key =
        aws_sigv4::sign::v4::generate_signing_key(expect.secret_key, signed_at, region, "sts");
    let expected = aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes());
    if !constant_time_eq(expected.as_bytes(), get("X-Amz-Signature")?.as_bytes()) {
        return Err(AuthError::Signature);
    }
    Ok(access_key.to_string())
}

/// Compares without an early exit, so response time says nothing about how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    const AK: &str = "AKIDEXAMPLE";
    const SK: &str = "secret";

    fn expect(now: SystemTime) -> Expectation<'static> {
        Expectation {
            cluster: "demo",
            access_key: AK,
            secret_key: SK,
            now,
        }
    }

    fn make(cluster: &str, key: &str, secret: &str, at: SystemTime) -> String {
        let creds = Credentials::new(key, secret, None, None, "t");
        token::get_token(&creds, "us-east-1", cluster, at)
            .unwrap()
            .as_str()
            .to_string()
    }

    #[test]
    fn accepts_own_tokens_and_refuses_others() {
        let now = SystemTime::now();
        assert_eq!(
            verify(&make("demo", AK, SK, now), &expect(now)),
            Ok(AK.into())
        );
        let ten_min_ago = now - Duration::from_secs(600);
        assert!(verify(&make("demo", AK, SK, ten_min_ago), &expect(now)).is_ok());
        assert_eq!(
            verify(&make("other", AK, SK, now), &expect(now)),
            Err(AuthError::Signature)
        );
        assert_eq!(
            verify(&make("demo", AK, "wrong", now), &expect(now)),
            Err(AuthError::Signature)
        );
        assert!(matches!(
            verify(&make("demo", "AKIDOTHER", SK, now), &expect(now)),
            Err(AuthError::AccessKey(_))
        ));
        let old = now - Duration::from_secs(16 * 60);
        assert!(matches!(
            verify(&make("demo", AK, SK, old), &expect(now)),
            Err(AuthError::Expired(_))
        ));
        let future = now + Duration::from_secs(10 * 60);
        assert!(matches!(
            verify(&make("demo", AK, SK, future), &expect(now)),
            Err(AuthError::NotYetValid(_))
        ));
    }

    /// A token `aws eks get-token` (AWS CLI 1.45) made for cluster `demo` with the sandbox's keys.
    #[test]
    fn accepts_a_token_from_the_aws_cli() {
        let cli = "k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtZWFzdC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEEyNTYmWC1BbXotQ3JlZGVudGlhbD1BS0lBU0FOREJPWEVYQU1QTEUwMSUyRjIwMjYxMTI0JTJGdXMtZWFzdC0xJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyNjExMjRUMTM0NDExWiZYLUFtei1FeHBpcmVzPTYwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCUzQngtazhzLWF3cy1pZCZYLUFtei1TaWduYXR1cmU9MGIyM2RkMWQ4ZjRmZDE2ZTRlN2EwMjg2NTMzNmFhZjI1ZDViZGEwNGIxYmJlMDkyZGRlNTdiMjhjNzUyMWI1OQ";
        let signed_at = chrono::DateTime::parse_from_rfc3339("2026-11-24T13:44:11Z").unwrap();
        let expect = Expectation {
            cluster: "demo",
            access_key: crate::world::ACCESS_KEY,
            secret_key: crate::world::SECRET_KEY,
            now: SystemTime::from(signed_at) + Duration::from_secs(60),
        };
        assert_eq!(
            verify(cli, &expect),
            Ok(crate::world::ACCESS_KEY.to_string())
        );
        // The same token, presented for another cluster, fails.
        let other = Expectation {
            cluster: "prod",
            ..expect
        };
        assert_eq!(verify(cli, &other), Err(AuthError::Signature));
        // And our own token for the same inputs is byte-identical to the CLI's.
        let creds = Credentials::new(
            crate::world::ACCESS_KEY,
            crate::world::SECRET_KEY,
            None,
            None,
            "t",
        );
        let ours =
            token::get_token(&creds, "us-east-1", "demo", SystemTime::from(signed_at)).unwrap();
        assert_eq!(ours.as_str(), cli);
    }

    #[test]
    fn refuses_malformed_tokens() {
        let now = SystemTime::now();
        let good = make("demo", AK, SK, now);
        let url = token::decode(&good).unwrap();
        let enc = |u: &str| {
            use base64::Engine;
            format!(
                "k8s-aws-v1.{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(u)
            )
        };
        for bad in [
            "".to_string(),
            "k8s-aws-v1.".to_string(),
            "k8s-aws-v1.%%%".to_string(),
            enc("http://sts.amazonaws.com/?Action=GetCallerIdentity"),
            enc(&url.replace("sts.us-east-1", "evil.example")),
            enc(&url.replace("GetCallerIdentity", "AssumeRole")),
            enc(&format!("{url}&Extra=1")),
            enc(&format!("{url}&X-Amz-Date=20200101T000000Z")),
            enc(&url.replace("X-Amz-Date=", "X-Amz-Date=x")),
            enc("https://sts.amazonaws.com/"),
        ] {
            assert!(verify(&bad, &expect(now)).is_err(), "accepted {bad}");
        }
    }
}
