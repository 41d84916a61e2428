//! AWS KMS on loopback, the few operations the tool's manifest signing uses: `Sign`, `Verify`
//! and `GetPublicKey` (so that a signature can be checked offline too), over KMS's real wire
//! protocol: JSON 1.1 (`POST /`, `X-Amz-Target: TrentService.Sign`,
//! `Content-Type: application/x-amz-json-1.1`), blobs in base64, errors as `__type` and
//! `message` with status 400, as botocore's model (`kms/2014-11-01`) describes them.

pub mod keys;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;

use super::world::{ACCESS_KEY, World};
use keys::{Key, Keys};

const JSON_11: &str = "application/x-amz-json-1.1";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

struct Kms {
    world: Arc<World>,
    keys: Keys,
}

/// An error as KMS answers it.
struct KmsError {
    kind: &'static str,
    message: String,
}

fn error(kind: &'static str, message: impl Into<String>) -> KmsError {
    KmsError {
        kind,
        message: message.into(),
    }
}

pub fn router(world: Arc<World>) -> axum::Router {
    let spec = &world.scenario.spec;
    let keys = Keys::new(&spec.cluster.region, &spec.account);
    let kms = Arc::new(Kms { world, keys });
    axum::Router::new().fallback(handle).with_state(kms)
}

async fn handle(State(kms): State<Arc<Kms>>, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let operation = target
        .strip_prefix("TrentService.")
        .unwrap_or(&target)
        .to_string();
    let result = authorized(&headers).and_then(|()| {
        let input: Value = serde_json::from_slice(&body)
            .map_err(|_| error("SerializationException", "Could not parse the request body"))?;
        match target.as_str() {
            "TrentService.Sign" => sign(&kms.keys, &input),
            "TrentService.Verify" => verify(&kms.keys, &input),
            "TrentService.GetPublicKey" => public_key(&kms.keys, &input),
            _ => Err(error(
                "UnknownOperationException",
                format!("The sandbox does not emulate {target}"),
            )),
        }
    });
    let (status, body) = match result {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            json!({ "__type": e.kind, "message": e.message }),
        ),
    };
    kms.world.requests.push(
        "kms",
        operation,
        status.as_u16(),
        body.get("__type")
            .and_then(Value::as_str)
            .map(str::to_string),
    );
    let mut response = (status, body.to_string()).into_response();
    let h = response.headers_mut();
    h.insert("content-type", HeaderValue::from_static(JSON_11));
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", id);
    }
    response
}

/// A request must be signed (SigV4) with the sandbox's access key for the `kms` service.
fn authorized(headers: &HeaderMap) -> Result<(), KmsError> {
    let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(error(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let credential = auth
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split(',').next())
        .unwrap_or_default();
    let parts: Vec<&str> = credential.split('/').collect();
    if !auth.starts_with("AWS4-HMAC-SHA256")
        || parts.first() != Some(&ACCESS_KEY)
        || parts.get(3) != Some(&"kms")
    {
        return Err(error(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    Ok(())
}

fn text<'a>(input: &'a Value, field: &str) -> Result<&'a str, KmsError> {
    input.get(field).and_then(Value::as_str).ok_or_else(|| {
        error(
            "ValidationException",
            format!("1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null", lower_first(field)),
        )
    })
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

fn blob(input: &Value, field: &str, max: usize) -> Result<Vec<u8>, KmsError> {
    let raw = B64
        .decode(text(input, field)?)
        .map_err(|_| error("SerializationException", format!("{field} is not base64")))?;
    if raw.is_empty() || raw.len() > max {
        return Err(error(
            "ValidationException",
            format!(
                "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length between 1 and {max}",
                lower_first(field)
            ),
        ));
    }
    Ok(raw)
}

/// The key, the algorithm checked against it, and the digest to sign or verify.
fn prepare<'k>(keys: &'k Keys, input: &Value) -> Result<(&'k Key, String, Vec<u8>), KmsError> {
    let key = keys
        .find(text(input, "KeyId")?)
        .map_err(|m| error("NotFoundException", m))?;
    let algorithm = text(input, "SigningAlgorithm")?.to_string();
    let message = blob(input, "Message", 4096)?;
    if key.key_usage() != "SIGN_VERIFY" {
        return Err(error(
            "InvalidKeyUsageException",
            format!(
                "{} key usage is {} which is not valid for {}.",
                key.arn,
                key.key_usage(),
                "signing"
            ),
        ));
    }
    if !key.signing_algorithms().contains(&algorithm.as_str()) {
        return Err(error(
            "InvalidKeyUsageException",
            format!(
                "Signing algorithm {algorithm} is not supported for a key of spec {}. Valid algorithms are: {:?}",
                key.key_spec(),
                key.signing_algorithms()
            ),
        ));
    }
    let digest = match input
        .get("MessageType")
        .and_then(Value::as_str)
        .unwrap_or("RAW")
    {
        "RAW" => sha2::Sha256::digest(&message).to_vec(),
        "DIGEST" if message.len() == 32 => message,
        "DIGEST" => {
            return Err(error(
                "ValidationException",
                format!("Digest is invalid length for algorithm {algorithm}."),
            ));
        }
        other => {
            return Err(error(
                "ValidationException",
                format!(
                    "1 validation error detected: Value '{other}' at 'messageType' failed to satisfy constraint: Member must satisfy enum value set: [RAW, DIGEST, EXTERNAL_MU]"
                ),
            ));
        }
    };
    Ok((key, algorithm, digest))
}

fn sign(keys: &Keys, input: &Value) -> Result<Value, KmsError> {
    let (key, algorithm, digest) = prepare(keys, input)?;
    let signature = key
        .sign_digest(&digest)
        .ok_or_else(|| error("KMSInternalException", "signing failed"))?;
    Ok(
        json!({ "KeyId": key.arn, "Signature": B64.encode(signature), "SigningAlgorithm": algorithm }),
    )
}

fn verify(keys: &Keys, input: &Value) -> Result<Value, KmsError> {
    let (key, algorithm, digest) = prepare(keys, input)?;
    let signature = blob(input, "Signature", 6144)?;
    if !key.verify_digest(&digest, &signature) {
        return Err(error("KMSInvalidSignatureException", ""));
    }
    Ok(json!({ "KeyId": key.arn, "SignatureValid": true, "SigningAlgorithm": algorithm }))
}

fn public_key(keys: &Keys, input: &Value) -> Result<Value, KmsError> {
    let key = keys
        .find(text(input, "KeyId")?)
        .map_err(|m| error("NotFoundException", m))?;
    let Some(der) = key.public_key_der() else {
        return Err(error(
            "UnsupportedOperationException",
            format!(
                "{} key usage is ENCRYPT_DECRYPT which is not valid for GetPublicKey.",
                key.arn
            ),
        ));
    };
    Ok(json!({
        "KeyId": key.arn,
        "PublicKey": B64.encode(der),
        "KeySpec": key.key_spec(),
        "CustomerMasterKeySpec": key.key_spec(),
        "KeyUsage": key.key_usage(),
        "SigningAlgorithms": key.signing_algorithms(),
    }))
}
