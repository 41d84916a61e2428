use super::*;

#[test]
fn classifies_velero_paths() {
    assert_eq!(
        classify("resources/deployments.apps/namespaces/shop/web.json"),
        Some(Place::Unversioned {
            twin: "deployments.apps/shop/web".into(),
            namespace: Some("shop"),
            name: "web"
        })
    );
    assert_eq!(
        classify("resources/namespaces/v1-preferredversion/cluster/shop.json"),
        Some(Place::Preferred {
            twin: "namespaces//shop".into(),
            namespace: None,
            name: "shop"
        })
    );
    assert_eq!(
        classify("resources/hpa.autoscaling/v2beta2/namespaces/a/b.json"),
        Some(Place::Versioned {
            namespace: Some("a"),
            name: "b"
        })
    );
    for bad in [
        "resources/x/cluster/.json",
        "resources//cluster/a.json",
        "resources/x/cluster/a.yaml",
        "other/a.json",
        "resources/x/namespaces/a.json",
    ] {
        assert_eq!(classify(bad), None, "{bad}");
    }
}

/// The text check says what `Path::components` would: only normal parts are safe.
#[test]
fn safe_paths_are_those_made_only_of_normal_parts() {
    use std::path::{Component, Path};
    let by_components = |p: &str| {
        !p.is_empty()
            && Path::new(p)
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
    };
    for p in [
        "../etc/passwd",
        "/etc/passwd",
        "resources/a/cluster/b.json",
        "resources/a/../b.json",
        "resources/a/./b.json",
        "resources//a/b.json",
        "./resources/a.json",
        ".",
        "./",
        "..",
        "a/..",
        "a/.",
        "",
        "/",
        "a/",
        "...",
        "a/.../b",
        ".hidden/x",
    ] {
        assert_eq!(safe_path(p), by_components(p), "{p:?}");
    }
}

/// A gzip'd tarball in Velero's layout: `metadata/version`, then each `(path, bytes)`.
fn tarball(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, data).expect("append");
    };
    add("metadata/version", b"1.1.0\n");
    for (path, data) in entries {
        add(path, data);
    }
    let raw = tar.into_inner().expect("finish tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).expect("gzip");
    gz.finish().expect("finish gzip")
}

fn findings_for(entries: &[(&str, &[u8])]) -> Vec<String> {
    let mut findings = Findings::default();
    let bytes = tarball(entries);
    let summary = check(
        &bytes[..],
        "b.tar.gz",
        "1.1.0",
        Tally::new(None),
        &mut findings,
    );
    assert!(summary.transport_error.is_none());
    findings
        .items
        .iter()
        .map(|f| format!("{} | {}", f.key, f.message))
        .collect()
}

/// Each way an item can disagree with itself or its path is named, at the item's path, and a
/// sound item next to them is not.
#[test]
fn items_are_checked_for_form_and_against_their_path() {
    let good: &[u8] = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"ns"},"data":{"k":"v"}}"#;
    let found = findings_for(&[
        ("resources/configmaps/namespaces/ns/a.json", good),
        ("resources/configmaps/v1-preferredversion/namespaces/ns/a.json", good),
        (
            "resources/configmaps/namespaces/ns/broken.json",
            b"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\n\"data\":{\"k\":\"v\"",
        ),
        (
            "resources/configmaps/namespaces/ns/typed.json",
            br#"{"apiVersion":"v1","kind":7,"metadata":{"name":"typed","namespace":"ns"}}"#,
        ),
        (
            "resources/configmaps/namespaces/ns/renamed.json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other","namespace":"ns"}}"#,
        ),
        (
            "resources/configmaps/namespaces/elsewhere/moved.json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"moved","namespace":"ns"}}"#,
        ),
        (
            "resources/configmaps/namespaces/ns/kindless.json",
            br#"{"apiVersion":"v1","metadata":{"name":"kindless","namespace":"ns"}}"#,
        ),
    ]);
    let at = |name: &str| format!("b.tar.gz:resources/configmaps/namespaces/{name}.json | ");
    let expected = [
        format!(
            "{}the item is not valid JSON: EOF while parsing an object or array at line 2 column 16",
            at("ns/broken")
        ),
        format!(
            "{}the item is not a Kubernetes object: `kind` must be a string at line 1 column 27",
            at("ns/typed")
        ),
        format!(
            "{}the item's `metadata.name` is \"other\", but its path says `renamed`",
            at("ns/renamed")
        ),
        format!(
            "{}the item's `metadata.namespace` is \"ns\", but its path says \"elsewhere\"",
            at("elsewhere/moved")
        ),
        format!(
            "{}the item has no `apiVersion` or `kind`",
            at("ns/kindless")
        ),
    ];
    // The twin of each unpaired item is reported missing too; only the item findings matter here.
    let items: Vec<&String> = found
        .iter()
        .filter(|f| !f.contains("has no `-preferredversion` copy"))
        .collect();
    assert_eq!(
        items,
        expected.iter().collect::<Vec<_>>(),
        "all findings: {found:#?}"
    );
    assert!(!found.iter().any(|f| f.contains("ns/a.json")), "{found:#?}");
}
