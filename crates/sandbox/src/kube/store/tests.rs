use serde_json::json;

use super::*;

fn store() -> (Store, Arc<ResourceType>, Arc<ResourceType>) {
    let s = Store::new();
    let ns = s.register(ResourceType::new(
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
    ));
    let cm = s.register(ResourceType::new("", "v1", "ConfigMap", "configmaps", true));
    s.create(&ns, None, json!({"metadata": {"name": "a"}}))
        .unwrap();
    (s, ns, cm)
}

#[test]
fn create_get_update_delete_with_versions() {
    let (s, _, cm) = store();
    let created = s
        .create(
            &cm,
            Some("a"),
            json!({"metadata": {"name": "x"}, "data": {"k": "v"}}),
        )
        .unwrap();
    assert_eq!(created["metadata"]["namespace"], "a");
    let rv1 = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(matches!(
        s.create(&cm, Some("a"), json!({"metadata": {"name": "x"}})),
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        s.create(&cm, Some("nope"), json!({"metadata": {"name": "x"}})),
        Err(StoreError::NotFound { .. })
    ));
    let patched = s
        .patch(
            &cm,
            Some("a"),
            "x",
            &json!({"data": {"k": null, "n": "1"}}),
            Subresource::Main,
        )
        .unwrap();
    assert_eq!(patched["data"], json!({"n": "1"}));
    let stale = json!({"metadata": {"name": "x", "resourceVersion": rv1}, "data": {}});
    assert!(matches!(
        s.replace(&cm, Some("a"), "x", stale, Subresource::Main),
        Err(StoreError::Conflict { .. })
    ));
    s.delete(&cm, Some("a"), "x").unwrap();
    assert!(s.get(&cm, Some("a"), "x").is_err());
}

#[test]
fn status_subresource_separates_writes() {
    let s = Store::new();
    let b =
        s.register(ResourceType::new("velero.io", "v1", "Backup", "backups", false).with_status());
    s.create(
        &b,
        None,
        json!({"metadata": {"name": "b"}, "spec": {"ttl": "1h"}}),
    )
    .unwrap();
    let o = s
        .patch(
            &b,
            None,
            "b",
            &json!({"spec": {"ttl": "2h"}, "status": {"phase": "X"}}),
            Subresource::Main,
        )
        .unwrap();
    assert_eq!(o["spec"]["ttl"], "2h");
    assert!(o.get("status").is_none());
    assert_eq!(o["metadata"]["generation"], 2);
    let o = s
        .patch(
            &b,
            None,
            "b",
            &json!({"spec": {"ttl": "3h"}, "status": {"phase": "Done"}}),
            Subresource::Status,
        )
        .unwrap();
    assert_eq!(o["spec"]["ttl"], "2h");
    assert_eq!(o["status"]["phase"], "Done");
}

#[test]
fn watch_replays_and_expires() {
    let (s, _, cm) = store();
    let start = s.resource_version();
    s.create(&cm, Some("a"), json!({"metadata": {"name": "x"}}))
        .unwrap();
    let (backlog, _rx) = s.watch_from(start).unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].kind, ChangeKind::Added);
    for i in 0..HISTORY + 5 {
        s.patch(
            &cm,
            Some("a"),
            "x",
            &json!({"data": {"i": i.to_string()}}),
            Subresource::Main,
        )
        .unwrap();
    }
    assert!(matches!(s.watch_from(start), Err(StoreError::Gone { .. })));
}
