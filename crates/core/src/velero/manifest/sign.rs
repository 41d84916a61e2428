//! Signing the manifest with an asymmetric KMS key (`kms:Sign`) and checking the signature
//! (`kms:Verify`). The signature is over the SHA-256 of the manifest's exact bytes (message type
//! `DIGEST`) and lives in its own object beside the manifest, so the manifest needs no
//! canonical form: what is signed is what is stored.
//!
//! A check always names the key it trusts, from the workflow or the command line, never the key
//! id written in the signature file: anyone with write access to the bucket can write a file
//! naming a key of their own.

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ManifestError;
use crate::velero::digest::sha256_hex;

/// The signing algorithms the tool uses: both hash with SHA-256, which KMS skips because the
/// tool sends the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum SigningAlgorithm {
    /// ECDSA on a `ECC_NIST_P256` key (default).
    #[default]
    #[serde(rename = "ECDSA_SHA_256")]
    EcdsaSha256,
    /// RSASSA-PSS on an `RSA_2048`, `RSA_3072` or `RSA_4096` key.
    #[serde(rename = "RSASSA_PSS_SHA_256")]
    RsassaPssSha256,
}

impl SigningAlgorithm {
    fn spec(self) -> SigningAlgorithmSpec {
        match self {
            SigningAlgorithm::EcdsaSha256 => SigningAlgorithmSpec::EcdsaSha256,
            SigningAlgorithm::RsassaPssSha256 => SigningAlgorithmSpec::RsassaPssSha256,
        }
    }
}

/// Which key signs manifests, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signing {
    /// A key id, key ARN, alias name (`alias/NAME`) or alias ARN.
    pub kms_key: String,
    pub algorithm: SigningAlgorithm,
}

/// The signature object written beside the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureFile {
    /// The key ARN KMS reported when it signed.
    pub key_id: String,
    pub signing_algorithm: SigningAlgorithm,
    /// SHA-256 of the manifest's bytes, lower-case hex: what was signed.
    pub manifest_sha256: String,
    /// The signature, base64 (DER for ECDSA).
    pub signature: String,
    pub signed_at: String,
}

/// Signs the manifest's bytes with `signing`.
pub async fn sign(
    kms: &aws_sdk_kms::Client,
    manifest_key: &str,
    manifest: &[u8],
    signing: &Signing,
) -> Result<SignatureFile, ManifestError> {
    let digest = sha2_digest(manifest);
    let out = kms
        .sign()
        .key_id(&signing.kms_key)
        .message(Blob::new(digest.to_vec()))
        .message_type(MessageType::Digest)
        .signing_algorithm(signing.algorithm.spec())
        .send()
        .await
        .map_err(|e| ManifestError::Sign {
            key: manifest_key.to_string(),
            kms_key: signing.kms_key.clone(),
            message: crate::errors::sdk("KMS", "Sign", &e),
            source: Some(Box::new(e)),
        })?;
    let signature = out.signature().ok_or_else(|| ManifestError::Sign {
        key: manifest_key.to_string(),
        kms_key: signing.kms_key.clone(),
        message: "the answer holds no signature".into(),
        source: None,
    })?;
    Ok(SignatureFile {
        key_id: out
            .key_id()
            .map(str::to_string)
            .unwrap_or_else(|| signing.kms_key.clone()),
        signing_algorithm: signing.algorithm,
        manifest_sha256: sha256_hex(manifest),
        signature: base64::engine::general_purpose::STANDARD.encode(signature.as_ref()),
        signed_at: chrono::Utc::now().to_rfc3339(),
    })
}

fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Checks that `signature` is `trusted_key`'s signature of the manifest's bytes. Returns the
/// key ARN KMS reports.
pub async fn verify(
    kms: &aws_sdk_kms::Client,
    manifest_key: &str,
    manifest: &[u8],
    signature: &SignatureFile,
    trusted_key: &str,
) -> Result<String, ManifestError> {
    let bad = |message: String| ManifestError::Signature {
        key: manifest_key.to_string(),
        message,
    };
    if signature.manifest_sha256 != sha256_hex(manifest) {
        return Err(bad(
            "the signature was made for other bytes than the manifest holds".into(),
        ));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(signature.signature.as_bytes())
        .map_err(|e| bad(format!("the signature is not base64: {e}")))?;
    let out = kms
        .verify()
        .key_id(trusted_key)
        .message(Blob::new(sha2_digest(manifest).to_vec()))
        .message_type(MessageType::Digest)
        .signature(Blob::new(raw))
        .signing_algorithm(signature.signing_algorithm.spec())
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error().and_then(|s| s.code()) == Some("KMSInvalidSignatureException")
            {
                bad(format!(
                    "KMS key `{trusted_key}` did not make it (the manifest was rewritten, or signed with another key)"
                ))
            } else {
                ManifestError::Verify {
                    key: manifest_key.to_string(),
                    kms_key: trusted_key.to_string(),
                    message: crate::errors::sdk("KMS", "Verify", &e),
                    source: Box::new(e),
                }
            }
        })?;
    if !out.signature_valid() {
        return Err(bad(format!("KMS key `{trusted_key}` did not make it")));
    }
    Ok(out.key_id().unwrap_or(trusted_key).to_string())
}
