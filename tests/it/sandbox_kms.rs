//! The sandbox's KMS against clients nobody here wrote: the real `aws kms sign`, `verify` and
//! `get-public-key`, and `openssl`, which checks the emulator's ECDSA signature against the public
//! key on its own.

use std::process::Command;

use serde_json::Value;

use crate::common::{TestSandbox, Timed};

/// `aws kms ARGS --output json`: the exit code, the parsed stdout (if any) and stderr.
fn aws_kms(sb: &TestSandbox, dir: &std::path::Path, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new("aws")
        .arg("kms")
        .args(args)
        .args(["--output", "json"])
        .current_dir(dir)
        .envs(sb.env())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output_timed()
        .expect("the `aws` CLI must be installed for the KMS fidelity tests");
    let parsed = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (out.code.unwrap_or(-1), parsed, out.stderr)
}

#[test]
fn aws_cli_signs_and_verifies_and_openssl_agrees() {
    let sb = TestSandbox::start(None);
    let dir = tempfile::tempdir().expect("scratch dir");
    let d = dir.path();
    std::fs::write(d.join("message"), b"the manifest bytes").expect("write message");
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(b"the manifest bytes")
    };
    std::fs::write(d.join("digest"), digest).expect("write digest");

    let alias = "alias/eks-upgrade-manifests";
    let (code, signed, err) = aws_kms(
        &sb,
        d,
        &[
            "sign",
            "--key-id",
            alias,
            "--message",
            "fileb://digest",
            "--message-type",
            "DIGEST",
            "--signing-algorithm",
            "ECDSA_SHA_256",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(signed["SigningAlgorithm"], "ECDSA_SHA_256");
    let arn = signed["KeyId"].as_str().expect("a key ARN").to_string();
    assert!(arn.starts_with("arn:aws:kms:us-east-1:"), "{arn}");
    let signature = signed["Signature"]
        .as_str()
        .expect("a signature")
        .to_string();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    // The CLI prints blobs in base64 and takes them raw from `fileb://`.
    std::fs::write(
        d.join("signature.der"),
        b64.decode(&signature).expect("base64"),
    )
    .expect("write signature");
    let signature = "fileb://signature.der".to_string();

    // The CLI verifies the digest, and the RAW message: the same message to KMS.
    for (message, kind) in [("fileb://digest", "DIGEST"), ("fileb://message", "RAW")] {
        let (code, verified, err) = aws_kms(
            &sb,
            d,
            &[
                "verify",
                "--key-id",
                &arn,
                "--message",
                message,
                "--message-type",
                kind,
                "--signature",
                &signature,
                "--signing-algorithm",
                "ECDSA_SHA_256",
            ],
        );
        assert_eq!(code, 0, "{kind}: {err}");
        assert_eq!(verified["SignatureValid"], true);
    }

    // Another key's check, and a changed message, fail as KMS fails them.
    let (code, _, err) = aws_kms(
        &sb,
        d,
        &[
            "verify",
            "--key-id",
            "alias/someone-else",
            "--message",
            "fileb://digest",
            "--message-type",
            "DIGEST",
            "--signature",
            &signature,
            "--signing-algorithm",
            "ECDSA_SHA_256",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("KMSInvalidSignatureException"), "{err}");
    std::fs::write(d.join("other"), b"another manifest").expect("write");
    let (code, _, err) = aws_kms(
        &sb,
        d,
        &[
            "verify",
            "--key-id",
            alias,
            "--message",
            "fileb://other",
            "--signature",
            &signature,
            "--signing-algorithm",
            "ECDSA_SHA_256",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("KMSInvalidSignatureException"), "{err}");

    // Errors the tool must recognise: a missing alias, a key that cannot sign, a digest of the
    // wrong length, an algorithm the key does not support.
    for (key, message, algorithm, want) in [
        (
            "alias/nope",
            "fileb://digest",
            "ECDSA_SHA_256",
            "NotFoundException",
        ),
        (
            "alias/velero-bucket",
            "fileb://digest",
            "ECDSA_SHA_256",
            "InvalidKeyUsageException",
        ),
        (
            alias,
            "fileb://message",
            "ECDSA_SHA_256",
            "ValidationException",
        ),
        (
            alias,
            "fileb://digest",
            "RSASSA_PSS_SHA_256",
            "InvalidKeyUsageException",
        ),
    ] {
        let (code, _, err) = aws_kms(
            &sb,
            d,
            &[
                "sign",
                "--key-id",
                key,
                "--message",
                message,
                "--message-type",
                "DIGEST",
                "--signing-algorithm",
                algorithm,
            ],
        );
        assert_ne!(code, 0, "{key} {algorithm}");
        assert!(err.contains(want), "{key} {algorithm}: {err}");
    }

    // openssl checks the signature against the public key, without KMS.
    let (code, public, err) = aws_kms(&sb, d, &["get-public-key", "--key-id", alias]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(public["KeySpec"], "ECC_NIST_P256");
    assert_eq!(public["KeyUsage"], "SIGN_VERIFY");
    let der = b64
        .decode(public["PublicKey"].as_str().expect("a public key"))
        .expect("base64");
    std::fs::write(d.join("public.der"), der).expect("write key");
    let out = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-keyform",
            "DER",
            "-verify",
            "public.der",
            "-signature",
            "signature.der",
            "message",
        ])
        .current_dir(d)
        .output_timed()
        .expect("openssl is installed");
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Verified OK"), "{}", out.stdout);

    let kms: Vec<_> = sb
        .sandbox
        .world
        .requests
        .snapshot()
        .into_iter()
        .filter(|r| r.service == "kms")
        .collect();
    assert!(
        kms.iter().any(|r| r.operation == "Sign" && r.status == 200),
        "{kms:?}"
    );
}
