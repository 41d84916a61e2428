//! A journal's bytes: its format version and a checksum over its content, so that a journal
//! that was cut short, edited by hand or written by a newer release is refused instead of being
//! trusted.
//!
//! The checksum is SHA-256 over a canonical form of the document without its `checksum` field:
//! compact JSON, object keys sorted, as serde_json writes scalars. It does not depend on the
//! file's indentation or key order, only on its values. It is an integrity check against
//! accidents (a truncated upload, an editor, a disk), not a signature: anyone who can write the
//! journal can also recompute it, which is why a resumed run also checks the journal's facts
//! against EKS (`engine::resume`).
//!
//! Version 1 journals, written before the checksum existed, are still read: a truncated one
//! fails to parse (a pretty-printed object ends with its closing brace), and what a hand edit
//! could do to a run is checked against EKS before a resumed run acts. They are rewritten as the
//! current version, with a checksum, at their next write.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::record::{JOURNAL_VERSION, Journal};

/// The first journal version that carries a checksum.
pub const CHECKSUMMED_SINCE: u32 = 2;

/// Why stored bytes are not a journal this release may use.
#[derive(Debug, thiserror::Error)]
pub enum Damage {
    #[error("is damaged: {0}")]
    Syntax(#[source] serde_json::Error),
    #[error(
        "was written by a newer eks-upgrade: journal version {found}, and this release reads versions up to {JOURNAL_VERSION}"
    )]
    TooNew { found: u64 },
    #[error(
        "has no checksum, which every journal of version {CHECKSUMMED_SINCE} and later carries: it was not written by eks-upgrade as it is"
    )]
    NoChecksum,
    #[error(
        "fails its checksum: its content changed after eks-upgrade wrote it (stored `{stored}`, content `{computed}`)"
    )]
    Mismatch { stored: String, computed: String },
}

/// The journal as it is stored: its fields, then its checksum.
#[derive(Serialize)]
struct Sealed<'a> {
    #[serde(flatten)]
    journal: &'a Journal,
    checksum: String,
}

/// The bytes to store for `journal`: pretty JSON in field order, at the current version, with
/// its checksum last.
pub fn encode(journal: &Journal) -> Result<Vec<u8>, serde_json::Error> {
    let upgraded;
    let journal = if journal.journal_version == JOURNAL_VERSION {
        journal
    } else {
        let mut j = journal.clone();
        j.journal_version = JOURNAL_VERSION;
        upgraded = j;
        &upgraded
    };
    let checksum = checksum(&serde_json::to_value(journal)?);
    serde_json::to_vec_pretty(&Sealed { journal, checksum })
}

/// A journal from stored bytes, after checking its version and checksum.
pub fn decode(bytes: &[u8]) -> Result<Journal, Damage> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(Damage::Syntax)?;
    let version = value.get("journalVersion").and_then(Value::as_u64);
    if let Some(found) = version.filter(|v| *v > u64::from(JOURNAL_VERSION)) {
        return Err(Damage::TooNew { found });
    }
    let stored = value.as_object_mut().and_then(|o| o.remove("checksum"));
    if version.is_some_and(|v| v >= u64::from(CHECKSUMMED_SINCE)) {
        let stored = match stored {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => return Err(Damage::NoChecksum),
        };
        let computed = checksum(&value);
        if stored != computed {
            return Err(Damage::Mismatch { stored, computed });
        }
    }
    if version == Some(0) {
        return Err(Damage::Syntax(serde::de::Error::custom(
            "journal version 0 does not exist",
        )));
    }
    serde_json::from_value(value).map_err(Damage::Syntax)
}

/// `sha256:` and the hex digest of the canonical form of `value`.
pub fn checksum(value: &Value) -> String {
    let mut bytes = Vec::new();
    canonical(value, &mut bytes);
    format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
}

/// Compact JSON with object keys sorted: the same bytes for the same values, whatever order
/// and indentation the file had.
fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                scalar(&Value::String(key.clone()), out);
                out.push(b':');
                if let Some(v) = map.get(key) {
                    canonical(v, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        other => scalar(other, out),
    }
}

fn scalar(value: &Value, out: &mut Vec<u8>) {
    // Writing a string, number, boolean or null into memory cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// The cluster and region a damaged journal names, when they can still be read: from the
/// document if it parses, else from its top-level lines (journals are pretty-printed, so the
/// run's own fields are the only ones indented by two spaces). Used only to tell whose journal
/// it is, never to act on.
pub fn salvage(bytes: &[u8]) -> (Option<String>, Option<String>) {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(bytes) {
        let field = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_string);
        return (field("cluster"), field("region"));
    }
    let text = String::from_utf8_lossy(bytes);
    let field = |k: &str| {
        let prefix = format!("  \"{k}\": ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| serde_json::from_str::<String>(v.trim_end_matches(',')).ok())
    };
    (field("cluster"), field("region"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::RunState;

    fn journal() -> Journal {
        serde_json::from_value(serde_json::json!({
            "journalVersion": JOURNAL_VERSION, "runId": "r", "createdAt": "t", "updatedAt": "t",
            "workflowName": "w", "workflowPath": "w.yaml", "workflowText": "x: \"1\"\n",
            "cluster": "demo", "region": "us-east-1", "hops": ["1.34"],
            "state": { "state": "upgrade", "hop": 1 },
            "facts": { "ratio": 0.1, "big": 18446744073709551615u64, "text": "é\u{1}" }
        }))
        .expect("a journal")
    }

    #[test]
    fn a_sealed_journal_reads_back_and_any_change_is_caught() {
        let bytes = encode(&journal()).expect("encode");
        let text = String::from_utf8(bytes.clone()).expect("UTF-8");
        assert!(text.trim_end().ends_with('}'));
        assert!(text.contains("\n  \"checksum\": \"sha256:"), "{text}");
        let back = decode(&bytes).expect("decode");
        assert_eq!(back.state, RunState::Upgrade { hop: 1 });
        // Indentation and key order do not matter; values do.
        let mut value: Value = serde_json::from_slice(&bytes).expect("JSON");
        let compact = serde_json::to_vec(&value).expect("compact");
        assert!(decode(&compact).is_ok());
        value["hops"] = serde_json::json!(["1.35"]);
        let edited = serde_json::to_vec(&value).expect("edited");
        assert!(matches!(decode(&edited), Err(Damage::Mismatch { .. })));
        if let Some(o) = value.as_object_mut() {
            o.remove("checksum");
        }
        let unsealed = serde_json::to_vec(&value).expect("unsealed");
        assert!(matches!(decode(&unsealed), Err(Damage::NoChecksum)));
        // The same edit in a version 1 journal, which had no checksum, is read (and checked
        // against EKS by a resume).
        value["journalVersion"] = serde_json::json!(1);
        assert!(decode(&serde_json::to_vec(&value).expect("v1")).is_ok());
    }

    #[test]
    fn a_cut_newer_or_impossible_journal_is_refused() {
        let bytes = encode(&journal()).expect("encode");
        for cut in [1, 40, bytes.len() / 2] {
            assert!(
                matches!(decode(&bytes[..bytes.len() - cut]), Err(Damage::Syntax(_))),
                "cut {cut}"
            );
        }
        let mut value: Value = serde_json::from_slice(&bytes).expect("JSON");
        value["journalVersion"] = serde_json::json!(999);
        let newer = serde_json::to_vec(&value).expect("newer");
        assert!(matches!(decode(&newer), Err(Damage::TooNew { found: 999 })));
        value["journalVersion"] = serde_json::json!(0);
        assert!(matches!(
            decode(&serde_json::to_vec(&value).expect("v0")),
            Err(Damage::Syntax(_))
        ));
    }

    #[test]
    fn a_version_1_journal_is_rewritten_at_the_current_version() {
        let mut old = journal();
        old.journal_version = 1;
        let back = decode(&encode(&old).expect("encode")).expect("decode");
        assert_eq!(back.journal_version, JOURNAL_VERSION);
    }

    #[test]
    fn whose_journal_it_was_survives_a_cut() {
        let bytes = encode(&journal()).expect("encode");
        let cut = &bytes[..bytes.len() - 40];
        assert_eq!(
            salvage(cut),
            (Some("demo".into()), Some("us-east-1".into()))
        );
        assert_eq!(salvage(b"\x00garbage"), (None, None));
    }
}
