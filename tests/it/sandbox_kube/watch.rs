//! kube-rs watches: from a resource version, the runtime watcher in both modes, and 410 Gone
//! for a compacted version.

use std::time::Duration;

use eks_upgrade_sandbox::kube::store::Subresource;
use futures::{StreamExt, TryStreamExt};
use kube::api::{
    DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use serde_json::json;

use super::{client, configmaps, obj, rt, sandbox};

#[test]
fn kube_watch_from_a_resource_version() {
    let sb = sandbox();
    let c = client(&sb);
    let api = configmaps(&c, "shop");
    sb.block_on(async {
        let rv = api
            .list(&ListParams::default())
            .await
            .expect("list")
            .metadata
            .resource_version
            .expect("rv");
        api.create(
            &PostParams::default(),
            &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w1"}})),
        )
        .await
        .expect("create");
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"x": "1"}})),
        )
        .await
        .expect("patch");
        api.delete("w1", &DeleteParams::default())
            .await
            .expect("delete");

        let events: Vec<WatchEvent<DynamicObject>> = api
            .watch(&WatchParams::default().timeout(2), &rv)
            .await
            .expect("watch")
            .try_collect()
            .await
            .expect("events");
        let kinds: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("w1") => {
                    Some("ADDED".into())
                }
                WatchEvent::Modified(o) if o.metadata.name.as_deref() == Some("w1") => {
                    Some("MODIFIED".into())
                }
                WatchEvent::Deleted(o) if o.metadata.name.as_deref() == Some("w1") => {
                    Some("DELETED".into())
                }
                WatchEvent::Error(s) => Some(format!("ERROR {}", s.code)),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
        // Bookmarks were allowed (kube-rs asks for them): one closes the stream.
        assert!(
            matches!(events.last(), Some(WatchEvent::Bookmark(_))),
            "{events:?}"
        );

        // From "0": the current objects first, as ADDED; then live changes, with selectors.
        let mut stream = api
            .watch(&WatchParams::default().labels("app=web").timeout(30), "0")
            .await
            .expect("watch")
            .boxed();
        match stream.try_next().await.expect("event") {
            Some(WatchEvent::Added(o)) => {
                assert_eq!(o.metadata.name.as_deref(), Some("web-config"))
            }
            other => panic!("expected the synthetic ADDED, got {other:?}"),
        }
        api.patch(
            "web-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await
        .expect("relabel");
        match stream.try_next().await.expect("event") {
            Some(WatchEvent::Deleted(o)) => {
                assert_eq!(o.metadata.name.as_deref(), Some("web-config"))
            }
            other => panic!("an object leaving the selector is DELETED, got {other:?}"),
        }
    });
}

#[test]
fn kube_runtime_watcher_lists_then_follows_in_both_modes() {
    use kube::runtime::watcher::{self, Event};
    let sb = sandbox();
    let c = client(&sb);
    let api = configmaps(&c, "shop");
    for (mode, config) in [
        ("list then watch", watcher::Config::default()),
        (
            "streaming list",
            watcher::Config::default().streaming_lists(),
        ),
    ] {
        sb.block_on(async {
            let mut events = watcher::watcher(api.clone(), config).boxed();
            let mut initial = Vec::new();
            loop {
                match tokio::time::timeout(Duration::from_secs(30), events.try_next()).await {
                    Ok(Ok(Some(Event::Init))) => {}
                    Ok(Ok(Some(Event::InitApply(o)))) => initial.extend(o.metadata.name),
                    Ok(Ok(Some(Event::InitDone))) => break,
                    other => panic!("{mode}: unexpected {other:?}"),
                }
            }
            assert!(
                initial.iter().any(|n| n == "web-config"),
                "{mode}: {initial:?}"
            );
            let name = format!("new-{}", mode.len());
            api.create(
                &PostParams::default(),
                &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})),
            )
            .await
            .expect("create");
            loop {
                match tokio::time::timeout(Duration::from_secs(30), events.try_next()).await {
                    Ok(Ok(Some(Event::Apply(o))))
                        if o.metadata.name.as_deref() == Some(name.as_str()) =>
                    {
                        break;
                    }
                    Ok(Ok(Some(_))) => {}
                    other => panic!("{mode}: unexpected {other:?}"),
                }
            }
        });
    }
}

#[test]
fn kube_watch_from_a_compacted_version_is_410() {
    let sb = sandbox();
    let store = sb.sandbox.world.store.clone();
    let cm_rt = rt(&sb, "", "configmaps");
    for i in 0..20_100 {
        store
            .patch(
                &cm_rt,
                Some("shop"),
                "web-config",
                &json!({"data": {"i": i.to_string()}}),
                Subresource::Main,
            )
            .expect("patch");
    }
    let c = client(&sb);
    let api = configmaps(&c, "shop");
    sb.block_on(async {
        let events: Vec<WatchEvent<DynamicObject>> = api
            .watch(&WatchParams::default().timeout(5), "2")
            .await
            .expect("a too-old watch is still a 200 stream")
            .try_collect()
            .await
            .expect("events");
        match events.as_slice() {
            [WatchEvent::Error(s)] => {
                assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
                assert!(
                    s.message.starts_with("too old resource version: 2"),
                    "{}",
                    s.message
                );
            }
            other => panic!("expected one ERROR event, got {other:?}"),
        }
    });
}
