//! Injected throttling answers 429 with `Retry-After`; hostile requests get Status errors, not
//! panics.

use std::time::SystemTime;

use eks_upgrade_sandbox::world::SECRET_KEY;
use serde_json::{Value, json};

use super::{client_with, make_token, sandbox};

#[test]
fn injected_throttling_answers_429_with_retry_after() {
    let sb = sandbox();
    let c = client_with(
        &sb,
        Some(&make_token("demo", SECRET_KEY, SystemTime::now())),
        false,
    );
    let req = || {
        axum::http::Request::builder()
            .uri("/api/v1/namespaces/faulty/configmaps")
            .body(kube::client::Body::from(Vec::new()))
            .expect("request")
    };
    let first = sb.block_on(c.send(req())).expect("response");
    assert_eq!(first.status().as_u16(), 429);
    assert_eq!(
        first
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let second = sb.block_on(c.send(req())).expect("response");
    assert_eq!(
        second.status().as_u16(),
        200,
        "the fault was for one request only"
    );
    let statuses: Vec<u16> = sb
        .sandbox
        .world
        .requests
        .snapshot()
        .iter()
        .filter(|r| r.operation == "GET /api/v1/namespaces/faulty/configmaps")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 200]);
}

#[test]
fn hostile_requests_get_status_errors_not_panics() {
    let sb = sandbox();
    // No retries: a 504 is the answer under test, not something to wait out.
    let c = client_with(
        &sb,
        Some(&make_token("demo", SECRET_KEY, SystemTime::now())),
        false,
    );
    let send = |method: &str, uri: &str, content_type: &str, body: Vec<u8>| -> (u16, Value) {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", content_type)
            .body(kube::client::Body::from(body))
            .expect("request");
        sb.block_on(async {
            let resp = c.send(req).await.expect("response");
            let code = resp.status().as_u16();
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .expect("body")
                .to_bytes();
            (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        })
    };
    let cm = "/api/v1/namespaces/shop/configmaps";
    let (code, body) = send("POST", cm, "application/json", b"{not json".to_vec());
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(
        send("POST", cm, "application/json", b"[1,2]".to_vec()).0,
        400
    );
    assert_eq!(
        send(
            "POST",
            cm,
            "application/vnd.kubernetes.protobuf",
            vec![0, 1]
        )
        .0,
        400,
        "malformed protobuf"
    );
    assert_eq!(send("POST", cm, "application/cbor", vec![0xa0]).0, 415);
    assert_eq!(
        send("POST", cm, "application/json", vec![b' '; 4 * 1024 * 1024]).0,
        413
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        send("POST", cm, "application/json", deep.into_bytes()).0,
        400
    );
    assert_eq!(
        send(
            "PATCH",
            &format!("{cm}/web-config"),
            "text/plain",
            b"{}".to_vec()
        )
        .0,
        415
    );
    assert_eq!(
        send(
            "PATCH",
            &format!("{cm}/web-config"),
            "application/json-patch+json",
            b"{}".to_vec()
        )
        .0,
        400
    );
    assert_eq!(send("GET", "/apis/../../etc/passwd", "", Vec::new()).0, 404);
    assert_eq!(send("GET", "/api/v1/nodes/x/y/z/w", "", Vec::new()).0, 404);
    assert_eq!(
        send("GET", "/api/v1/namespaces/shop/nodes", "", Vec::new()).0,
        404
    );
    assert_eq!(
        send("GET", &format!("{cm}?limit=-5"), "", Vec::new()).0,
        200
    );
    assert_eq!(
        send(
            "GET",
            &format!("{cm}?limit=99999999999999999999"),
            "",
            Vec::new()
        )
        .0,
        400
    );
    assert_eq!(
        send(
            "GET",
            &format!("{cm}?watch=true&resourceVersion=abc"),
            "",
            Vec::new()
        )
        .0,
        400
    );
    assert_eq!(
        send(
            "GET",
            &format!("{cm}?resourceVersion=999999999"),
            "",
            Vec::new()
        )
        .0,
        504
    );
    assert_eq!(
        send("PUT", "/version", "application/json", b"{}".to_vec()).0,
        405
    );
    assert_eq!(
        send(
            "DELETE",
            &format!("{cm}/web-config"),
            "application/json",
            b"{oops".to_vec()
        )
        .0,
        400
    );
    assert_eq!(send("GET", "/openapi/v2", "", Vec::new()).0, 404);
    for health in ["/healthz", "/livez", "/readyz", "/readyz/ping"] {
        assert_eq!(send("GET", health, "", Vec::new()).0, 200, "{health}");
    }
    // Server-side apply takes YAML as well as JSON, and needs a field manager.
    let yaml =
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n".to_vec();
    let applied = send(
        "PATCH",
        &format!("{cm}/from-yaml?fieldManager=t"),
        "application/apply-patch+yaml",
        yaml.clone(),
    );
    assert_eq!((applied.0, &applied.1["data"]["a"]), (201, &json!("b")));
    assert_eq!(
        send(
            "PATCH",
            &format!("{cm}/from-yaml"),
            "application/apply-patch+yaml",
            yaml
        )
        .0,
        400
    );

    // Discovery and OpenAPI, as kubectl reads them.
    let (_, apis) = send("GET", "/apis", "", Vec::new());
    assert!(
        apis["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["name"] == "velero.io")
    );
    let (_, core) = send("GET", "/api/v1", "", Vec::new());
    let resources = core["resources"].as_array().expect("resources");
    assert!(
        resources
            .iter()
            .any(|r| r["name"] == "pods/status" && r["verbs"] == json!(["get", "patch", "update"]))
    );
    assert!(resources.iter().any(|r| r["name"] == "nodes"
        && r["namespaced"] == false
        && r["shortNames"] == json!(["no"])));
    let (_, index) = send("GET", "/openapi/v3", "", Vec::new());
    let url = index["paths"]["apis/velero.io/v1"]["serverRelativeURL"]
        .as_str()
        .expect("velero GV")
        .to_string();
    let (code, doc) = send("GET", &url, "", Vec::new());
    assert_eq!(code, 200);
    let patch = &doc["paths"]["/apis/velero.io/v1/namespaces/{namespace}/backups/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "velero.io", "version": "v1", "kind": "Backup"})
    );
    assert!(
        patch["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
    );
}
