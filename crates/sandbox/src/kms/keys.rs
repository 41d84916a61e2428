//! The sandbox's KMS keys: two asymmetric `ECC_NIST_P256` signing keys with real key material
//! (ECDSA signatures that any ECDSA implementation verifies against the public key), and one
//! symmetric key that refuses to sign, as a real `ENCRYPT_DECRYPT` key does.

use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::EncodePublicKey;

/// The alias of the key manifests are signed with in tests and the demo.
pub const SIGNING_ALIAS: &str = "alias/eks-upgrade-manifests";
/// A second signing key: a valid signature, but not the one asked for.
pub const OTHER_ALIAS: &str = "alias/someone-else";
/// A symmetric key (what an S3 bucket's SSE-KMS uses): it cannot sign.
pub const SYMMETRIC_ALIAS: &str = "alias/velero-bucket";

pub enum Material {
    EccP256(Box<SigningKey>),
    Symmetric,
}

pub struct Key {
    pub id: String,
    pub arn: String,
    pub alias: &'static str,
    pub material: Material,
}

impl Key {
    pub fn key_spec(&self) -> &'static str {
        match self.material {
            Material::EccP256(_) => "ECC_NIST_P256",
            Material::Symmetric => "SYMMETRIC_DEFAULT",
        }
    }

    pub fn key_usage(&self) -> &'static str {
        match self.material {
            Material::EccP256(_) => "SIGN_VERIFY",
            Material::Symmetric => "ENCRYPT_DECRYPT",
        }
    }

    /// The signing algorithms the key supports.
    pub fn signing_algorithms(&self) -> &'static [&'static str] {
        match self.material {
            Material::EccP256(_) => &["ECDSA_SHA_256"],
            Material::Symmetric => &[],
        }
    }

    /// A DER (X9.62) ECDSA signature of a SHA-256 digest.
    pub fn sign_digest(&self, digest: &[u8]) -> Option<Vec<u8>> {
        match &self.material {
            Material::EccP256(k) => {
                let sig: DerSignature = k.sign_prehash(digest).ok()?;
                Some(sig.as_bytes().to_vec())
            }
            Material::Symmetric => None,
        }
    }

    pub fn verify_digest(&self, digest: &[u8], der: &[u8]) -> bool {
        match &self.material {
            Material::EccP256(k) => DerSignature::try_from(der)
                .is_ok_and(|sig| k.verifying_key().verify_prehash(digest, &sig).is_ok()),
            Material::Symmetric => false,
        }
    }

    /// The public key as DER `SubjectPublicKeyInfo`, as `GetPublicKey` returns it.
    pub fn public_key_der(&self) -> Option<Vec<u8>> {
        match &self.material {
            Material::EccP256(k) => k
                .verifying_key()
                .to_public_key_der()
                .ok()
                .map(|d| d.as_bytes().to_vec()),
            Material::Symmetric => None,
        }
    }
}

/// A new P-256 key from the operating system's randomness (two v4 UUIDs are 244 random bits;
/// the sandbox's keys protect nothing, they only have to be real keys).
fn random_p256() -> SigningKey {
    loop {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        if let Ok(k) = SigningKey::from_bytes(&bytes.into()) {
            return k;
        }
    }
}

pub struct Keys {
    pub keys: Vec<Key>,
    region: String,
    account: String,
}

impl Keys {
    pub fn new(region: &str, account: &str) -> Keys {
        let make = |alias: &'static str, material: Material| {
            let id = uuid::Uuid::new_v4().to_string();
            Key {
                arn: format!("arn:aws:kms:{region}:{account}:key/{id}"),
                id,
                alias,
                material,
            }
        };
        Keys {
            keys: vec![
                make(SIGNING_ALIAS, Material::EccP256(Box::new(random_p256()))),
                make(OTHER_ALIAS, Material::EccP256(Box::new(random_p256()))),
                make(SYMMETRIC_ALIAS, Material::Symmetric),
            ],
            region: region.to_string(),
            account: account.to_string(),
        }
    }

    /// A key by key id, key ARN, alias name or alias ARN, as every KMS operation accepts.
    pub fn find(&self, key_id: &str) -> Result<&Key, String> {
        let alias_arn = format!("arn:aws:kms:{}:{}:", self.region, self.account);
        let by_alias = key_id
            .strip_prefix(&alias_arn)
            .filter(|rest| rest.starts_with("alias/"))
            .unwrap_or(key_id);
        if by_alias.starts_with("alias/") {
            return self
                .keys
                .iter()
                .find(|k| k.alias == by_alias)
                .ok_or_else(|| format!("Alias '{alias_arn}{by_alias}' is not found."));
        }
        self.keys
            .iter()
            .find(|k| k.id == key_id || k.arn == key_id)
            .ok_or_else(|| {
                let arn = if key_id.starts_with("arn:") {
                    key_id.to_string()
                } else {
                    format!("{alias_arn}key/{key_id}")
                };
                format!("Key '{arn}' does not exist")
            })
    }
}
