//! Helm 3 release Secrets: `sh.helm.release.v1.NAME.vREVISION`, type `helm.sh/release.v1`,
//! labelled `owner=helm, name=NAME, status=STATUS, version=REVISION`. The `release` data field
//! is the release JSON, gzipped (older Helm versions skip that) and base64-encoded by Helm —
//! on top of the base64 the Kubernetes API adds, which the client already undid. Only the
//! deployed revision matters: superseded revisions describe what is no longer installed.

use std::io::Read;

use base64::Engine as _;
use serde::Deserialize;

use super::{Removals, Source, finding, gone_finding};
use crate::checks::{Finding, Severity};

/// The label selector for deployed releases, so superseded revisions are not even read.
pub const SELECTOR: &str = "owner=helm,status=deployed";

/// A decompressed release larger than this is refused: no real chart renders 64 MiB of YAML,
/// and a gzip bomb in a Secret must not take the tool's memory with it.
const MAX_RELEASE_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HelmError {
    #[error("the `release` field is not base64: {0}")]
    Base64(String),
    #[error("the release does not decompress: {0}")]
    Gzip(String),
    #[error("the release is larger than {} MiB decompressed", MAX_RELEASE_BYTES >> 20)]
    TooLarge,
    #[error("the release is not Helm's JSON: {0}")]
    Json(String),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Release {
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    pub version: u64,
    #[serde(default)]
    pub info: Info,
    #[serde(default)]
    pub manifest: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Info {
    #[serde(default)]
    pub status: String,
}

/// Decodes the `release` field of a release Secret (as bytes, after the API's base64).
pub fn decode(field: &[u8]) -> Result<Release, HelmError> {
    // Helm writes standard base64 without line breaks; tolerate trailing whitespace.
    let text: Vec<u8> = field
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|e| HelmError::Base64(e.to_string()))?;
    let json = if raw.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(MAX_RELEASE_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| HelmError::Gzip(e.to_string()))?;
        if out.len() as u64 > MAX_RELEASE_BYTES {
            return Err(HelmError::TooLarge);
        }
        out
    } else {
        raw
    };
    serde_json::from_slice(&json).map_err(|e| HelmError::Json(e.to_string()))
}

/// What a manifest document declares about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestObject {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

/// The objects of a rendered multi-document manifest. Helm renders plain block YAML, so the
/// top-level keys are the lines that start in column 0 — a block scalar's content is always
/// indented — which lets thousands of releases be scanned without building YAML trees.
pub fn objects(manifest: &str) -> Vec<ManifestObject> {
    let mut out = Vec::new();
    let mut current = ManifestObject::default();
    let mut in_metadata = false;
    let mut metadata_indent: Option<usize> = None;
    let flush = |obj: &mut ManifestObject, out: &mut Vec<ManifestObject>| {
        if !obj.api_version.is_empty() && !obj.kind.is_empty() {
            out.push(std::mem::take(obj));
        } else {
            *obj = ManifestObject::default();
        }
    };
    for line in manifest.lines() {
        if line == "---" || line.starts_with("--- ") || line.starts_with("---\t") {
            flush(&mut current, &mut out);
            in_metadata = false;
            continue;
        }
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent == 0 {
            in_metadata = false;
            if let Some(v) = line.strip_prefix("apiVersion:") {
                current.api_version = scalar(v);
            } else if let Some(v) = line.strip_prefix("kind:") {
                current.kind = scalar(v);
            } else if line.trim_end() == "metadata:" {
                in_metadata = true;
                metadata_indent = None;
            }
            continue;
        }
        if in_metadata {
            let level = *metadata_indent.get_or_insert(indent);
            if indent != level {
                continue;
            }
            let key_value = &line[indent..];
            if let Some(v) = key_value.strip_prefix("name:") {
                current.name = scalar(v);
            } else if let Some(v) = key_value.strip_prefix("namespace:") {
                current.namespace = Some(scalar(v)).filter(|s| !s.is_empty());
            }
        }
    }
    flush(&mut current, &mut out);
    out
}

/// A plain or quoted scalar after `key:`, without a trailing comment.
fn scalar(text: &str) -> String {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix('"').and_then(|s| s.split('"').next()) {
        return inner.to_string();
    }
    if let Some(inner) = t.strip_prefix('\'').and_then(|s| s.split('\'').next()) {
        return inner.to_string();
    }
    t.split(" #").next().unwrap_or("").trim().to_string()
}

/// Findings for one release Secret: removed APIs in its manifest, or why it could not be read.
pub fn check(
    secret_namespace: &str,
    secret_name: &str,
    field: Option<&[u8]>,
    removals: &Removals,
) -> Vec<Finding> {
    let unreadable = |why: String| {
        vec![
            Finding::new(
                "API003",
                Severity::Warning,
                format!("Secret {secret_namespace}/{secret_name}"),
                format!("cannot read this Helm release, so its manifest was not checked for removed APIs: {why}"),
                "check the release with `helm get manifest`, or delete the Secret if the release is gone",
            )
            .at(Some(secret_namespace), secret_name),
        ]
    };
    let Some(field) = field else {
        return unreadable("the Secret has no `release` field".into());
    };
    let release = match decode(field) {
        Ok(r) => r,
        Err(e) => return unreadable(e.to_string()),
    };
    // The label said deployed; the release itself is the authority.
    if release.info.status != "deployed" {
        return Vec::new();
    }
    let release_ns = if release.namespace.is_empty() {
        secret_namespace.to_string()
    } else {
        release.namespace.clone()
    };
    let source = || Source::Helm {
        release: format!("{release_ns}/{}", release.name),
        revision: release.version,
    };
    objects(&release.manifest)
        .into_iter()
        .filter_map(|obj| {
            // A cluster-scoped object has no namespace of its own; Helm's default applies only
            // to namespaced ones, which the manifest cannot tell apart, so the release's stays.
            let ns = obj.namespace.clone().unwrap_or_else(|| release_ns.clone());
            if let Some(api) = removals.by_kind(&obj.api_version, &obj.kind) {
                return Some(finding(api, source(), Some(&ns), &obj.name));
            }
            let api = removals.gone_by_kind(&obj.api_version, &obj.kind)?;
            Some(gone_finding(api, source(), Some(&ns), &obj.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn encode(json: &str, gzip: bool) -> Vec<u8> {
        let bytes = if gzip {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(json.as_bytes()).expect("gzip");
            e.finish().expect("gzip")
        } else {
            json.as_bytes().to_vec()
        };
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into_bytes()
    }

    const MANIFEST: &str = "---\n# Source: chart/templates/fs.yaml\napiVersion: flowcontrol.apiserver.k8s.io/v1beta3\nkind: FlowSchema\nmetadata:\n  name: \"tenant\"\n  labels:\n    name: not-this\nspec:\n  x: |\n    apiVersion: v9\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  namespace: other # moved\n  name: web\n";

    #[test]
    fn decodes_gzipped_and_plain_releases() {
        let json = serde_json::json!({
            "name": "web", "namespace": "shop", "version": 3,
            "info": {"status": "deployed"}, "manifest": MANIFEST
        })
        .to_string();
        for gzip in [true, false] {
            let r = decode(&encode(&json, gzip)).expect("decodes");
            assert_eq!((r.name.as_str(), r.version), ("web", 3));
            assert_eq!(r.info.status, "deployed");
        }
        assert!(matches!(decode(b"%%%"), Err(HelmError::Base64(_))));
    }

    #[test]
    fn reads_the_objects_of_a_manifest() {
        let objs = objects(MANIFEST);
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].kind, "FlowSchema");
        assert_eq!(objs[0].name, "tenant");
        assert_eq!(objs[1].name, "web");
        assert_eq!(objs[1].namespace.as_deref(), Some("other"));
    }

    #[test]
    fn superseded_releases_and_garbage_are_handled() {
        let table = crate::checks::removed::table().expect("table");
        let removals = Removals::between(
            table,
            crate::types::Version::new(1, 31),
            &[crate::types::Version::new(1, 32)],
        );
        let make = |status: &str| {
            serde_json::json!({
                "name": "web", "namespace": "shop", "version": 2,
                "info": {"status": status}, "manifest": MANIFEST
            })
            .to_string()
        };
        let found = check(
            "shop",
            "s",
            Some(&encode(&make("deployed"), true)),
            &removals,
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object, "FlowSchema shop/tenant");
        assert!(
            found[0]
                .message
                .contains("Helm release `shop/web` revision 2")
        );
        assert!(
            check(
                "shop",
                "s",
                Some(&encode(&make("superseded"), true)),
                &removals
            )
            .is_empty()
        );
        let bad = check("shop", "s", Some(b"bm90IGpzb24="), &removals);
        assert_eq!(bad[0].severity, Severity::Warning);
    }

    #[test]
    fn a_release_holding_an_api_removed_before_the_current_version_warns() {
        let table = crate::checks::removed::table().expect("table");
        let removals = Removals::between(
            table,
            crate::types::Version::new(1, 33),
            &[crate::types::Version::new(1, 34)],
        );
        let manifest = "---\napiVersion: policy/v1beta1\nkind: PodSecurityPolicy\nmetadata:\n  name: restricted\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";
        let json = serde_json::json!({
            "name": "legacy", "namespace": "shop", "version": 4,
            "info": {"status": "deployed"}, "manifest": manifest
        })
        .to_string();
        let found = check("shop", "s", Some(&encode(&json, true)), &removals);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].code, "API004");
        assert_eq!(found[0].severity, Severity::Warning);
        assert_eq!(found[0].source.as_deref(), Some("helm:shop/legacy@4"));
        assert!(
            found[0]
                .message
                .contains("`policy/v1beta1` PodSecurityPolicy")
        );
        assert!(
            found[0]
                .remedy
                .contains("helm mapkubeapis legacy --namespace shop")
        );
    }
}
