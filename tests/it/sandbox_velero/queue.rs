//! Velero 1.18's backup queue: `Queued` (with `status.queuePosition`) and `ReadyToStart`
//! before `InProgress`, positions that close up as backups leave the queue, one backup at a
//! time, and `velero.holdQueued` keeping backups queued a while.

use std::path::Path;

use eks_upgrade_sandbox::Scenario;
use serde_json::json;

use super::{NS, create, finished, get, keys};
use crate::common::TestSandbox;

const QUEUED: &str = r#"
apiVersion: eks-upgrade/v1
kind: Scenario
metadata: { name: velero-queue }
spec:
  cluster: { name: demo, region: us-east-1, version: "1.33" }
  nodegroups: [ { name: general, nodes: 2 } ]
  workloads:
    - { kind: Deployment, namespace: shop, name: web, replicas: 2 }
  velero: { version: "1.18", holdQueued: 10m }
"#;

#[test]
fn backups_wait_in_velero_1_18s_queue() {
    let sb = TestSandbox::start(Some(QUEUED));
    let mut changes = sb.sandbox.world.store.subscribe();
    create(
        &sb,
        "backups",
        "first",
        json!({ "includedNamespaces": ["shop"] }),
    );
    create(
        &sb,
        "backups",
        "second",
        json!({ "includedNamespaces": ["*"] }),
    );
    let first = finished(&sb, "backups", "first");
    let second = finished(&sb, "backups", "second");
    assert_eq!(first["status"]["phase"], "Completed");
    assert_eq!(second["status"]["phase"], "Completed");
    assert!(first["status"].get("queuePosition").is_none(), "{first}");

    // (backup, phase, queuePosition) in the order the store saw them.
    let mut seen: Vec<(String, String, Option<u64>)> = Vec::new();
    while let Ok(change) = changes.try_recv() {
        if change.resource.plural != "backups" {
            continue;
        }
        let entry = (
            change.name().to_string(),
            change.object["status"]["phase"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            change.object["status"]["queuePosition"].as_u64(),
        );
        if seen.last() != Some(&entry) {
            seen.push(entry);
        }
    }
    let phases = |name: &str| {
        let mut out: Vec<&str> = Vec::new();
        for (n, phase, _) in &seen {
            if n == name && out.last() != Some(&phase.as_str()) {
                out.push(phase);
            }
        }
        out
    };
    let expected = [
        "",
        "Queued",
        "ReadyToStart",
        "InProgress",
        "Finalizing",
        "Completed",
    ];
    assert_eq!(phases("first"), expected, "{seen:?}");
    assert_eq!(phases("second"), expected, "{seen:?}");
    let positions = |name: &str| -> Vec<u64> {
        let mut out = Vec::new();
        for (n, phase, pos) in &seen {
            if let (true, "Queued", Some(p)) = (n == name, phase.as_str(), pos)
                && out.last() != Some(p)
            {
                out.push(*p);
            }
        }
        out
    };
    assert_eq!(positions("first"), [1], "{seen:?}");
    // Second in line, then first once `first` left the queue.
    assert_eq!(positions("second"), [2, 1], "{seen:?}");
    // One at a time: `second` starts after `first` completed (their namespaces overlap).
    let at = |name: &str, phase: &str| {
        seen.iter()
            .position(|(n, p, _)| n == name && p == phase)
            .expect("seen")
    };
    assert!(
        at("second", "InProgress") > at("first", "Completed"),
        "{seen:?}"
    );

    // Velero 1.18 writes no CSI snapshot classes file.
    let files = keys(&sb, "backups/first/");
    assert!(files.contains("backups/first/first.tar.gz"), "{files:?}");
    assert!(
        !files
            .iter()
            .any(|k| k.contains("csi-volumesnapshotclasses")),
        "{files:?}"
    );
    let server = get(&sb, "apps", "deployments", Some(NS), "velero").expect("velero");
    assert_eq!(
        server["spec"]["template"]["spec"]["containers"][0]["image"],
        "velero/velero:v1.18.1"
    );
}

#[test]
fn holding_backups_queued_needs_velero_1_18() {
    let text = QUEUED.replace("version: \"1.18\", ", "");
    let err = Scenario::parse(Path::new("queue.yaml"), &text).expect_err("refused");
    let shown = eks_upgrade_core::workflow::render(&err, eks_upgrade_core::workflow::Style::Plain);
    assert!(shown.contains("`velero.holdQueued` needs"), "{shown}");
}
