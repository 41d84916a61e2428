//! kube-rs on objects: CRUD on dynamic objects, paged lists, label and field selectors, Status
//! errors, and the status subresource.

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::json;

use super::{api_error, client, configmaps, dynamic, obj, rt, sandbox};

#[test]
fn kube_crud_on_dynamic_objects() {
    let sb = sandbox();
    let c = client(&sb);
    let api = configmaps(&c, "shop");
    sb.block_on(async {
        let created = api
            .create(
                &PostParams::default(),
                &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1", "labels": {"a": "1"}}, "data": {"k": "v"}})),
            )
            .await
            .expect("create");
        assert!(created.metadata.uid.is_some());
        let rv1 = created.metadata.resource_version.clone().expect("rv");

        let dry = api
            .create(
                &PostParams { dry_run: true, ..Default::default() },
                &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}})),
            )
            .await
            .expect("dry-run create");
        assert_eq!(dry.metadata.name.as_deref(), Some("dry"));
        assert_eq!(api_error(api.get("dry").await).0, 404);

        let got = api.get("c1").await.expect("get");
        assert_eq!(got.data["data"]["k"], "v");

        let mut changed = got.clone();
        changed.data["data"]["k"] = json!("w");
        let replaced = api.replace("c1", &PostParams::default(), &changed).await.expect("replace");
        assert_ne!(replaced.metadata.resource_version.as_deref(), Some(rv1.as_str()));
        assert_eq!(replaced.data["data"]["k"], "w");

        let merged = api
            .patch("c1", &PatchParams::default(), &Patch::Merge(json!({"data": {"m": "1", "k": null}})))
            .await
            .expect("merge patch");
        assert_eq!(merged.data["data"], json!({"m": "1"}));

        let ops: json_patch::Patch = serde_json::from_value(json!([
            {"op": "add", "path": "/data/j", "value": "2"},
            {"op": "test", "path": "/data/m", "value": "1"},
        ]))
        .expect("json patch");
        let jp = api
            .patch("c1", &PatchParams::default(), &Patch::Json::<()>(ops))
            .await
            .expect("json patch");
        assert_eq!(jp.data["data"], json!({"m": "1", "j": "2"}));
        let failing: json_patch::Patch =
            serde_json::from_value(json!([{"op": "test", "path": "/data/m", "value": "nope"}])).expect("patch");
        assert_eq!(api_error(api.patch("c1", &PatchParams::default(), &Patch::Json::<()>(failing)).await).0, 422);

        let applied = api
            .patch(
                "c2",
                &PatchParams::apply("eks-upgrade").force(),
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2"}, "data": {"x": "1"}})),
            )
            .await
            .expect("apply creates");
        assert_eq!(applied.data["data"]["x"], "1");
        let reapplied = api
            .patch(
                "c2",
                &PatchParams::apply("eks-upgrade").force(),
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2"}, "data": {"y": "2"}})),
            )
            .await
            .expect("apply merges");
        assert_eq!(reapplied.data["data"]["y"], "2");

        let deleted = api.delete("c1", &DeleteParams::default()).await.expect("delete");
        assert!(deleted.left().is_some_and(|o| o.metadata.name.as_deref() == Some("c1")));
        assert_eq!(api_error(api.get("c1").await), (404, "NotFound".to_string()));

        for n in ["batch-1", "batch-2"] {
            api.create(
                &PostParams::default(),
                &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "labels": {"batch": "yes"}}})),
            )
            .await
            .expect("create");
        }
        let gone = api
            .delete_collection(&DeleteParams::default(), &ListParams::default().labels("batch=yes"))
            .await
            .expect("deletecollection");
        assert_eq!(gone.left().map(|l| l.items.len()), Some(2));
        assert!(api.list(&ListParams::default().labels("batch=yes")).await.expect("list").items.is_empty());

        // Cluster-scoped objects and custom resources go through the same paths.
        let ns_api: Api<DynamicObject> = Api::all_with(
            c.clone(),
            &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Namespace"), "namespaces"),
        );
        let ns = ns_api
            .create(&PostParams::default(), &obj(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})))
            .await
            .expect("namespace");
        assert_eq!(ns.data["status"]["phase"], "Active");
        let widgets = dynamic(&c, ("example.com", "v1", "Widget"), "widgets", "team-a");
        widgets
            .create(&PostParams::default(), &obj(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}})))
            .await
            .expect("custom resource");
        // Custom resources refuse strategic merge patches and unconditional updates.
        let smp = widgets
            .patch("w", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"size": 2}})))
            .await;
        assert_eq!(api_error(smp).0, 415);
        let mut w = widgets.get("w").await.expect("get widget");
        w.metadata.resource_version = None;
        assert_eq!(api_error(widgets.replace("w", &PostParams::default(), &w).await).0, 422);
    });
}

#[test]
fn kube_lists_page_by_page_with_continue_tokens() {
    let sb = sandbox();
    let store = sb.sandbox.world.store.clone();
    let ns_rt = rt(&sb, "", "namespaces");
    let cm_rt = rt(&sb, "", "configmaps");
    store
        .create(&ns_rt, None, json!({"metadata": {"name": "bulk"}}))
        .expect("namespace");
    for i in 0..1234 {
        store
            .create(
                &cm_rt,
                Some("bulk"),
                json!({"metadata": {"name": format!("cm-{i:05}"), "labels": {"parity": if i % 2 == 0 { "even" } else { "odd" }}}}),
            )
            .expect("create");
    }
    let c = client(&sb);
    let api = configmaps(&c, "bulk");
    sb.block_on(async {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        let mut first_rv = None;
        loop {
            let mut lp = ListParams::default().limit(100);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let page = api.list(&lp).await.expect("page");
            assert!(page.items.len() <= 100);
            pages += 1;
            let rv = page.metadata.resource_version.clone();
            assert_eq!(
                *first_rv.get_or_insert(rv.clone()),
                rv,
                "every page reports the first page's version"
            );
            names.extend(page.items.iter().filter_map(|o| o.metadata.name.clone()));
            match page.metadata.continue_ {
                Some(t) if !t.is_empty() => {
                    assert_eq!(
                        page.metadata.remaining_item_count,
                        Some((1234 - names.len()) as i64)
                    );
                    token = Some(t)
                }
                _ => break,
            }
        }
        assert_eq!(pages, 13);
        assert_eq!(names.len(), 1234);
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted, names,
            "pages are in order and never repeat an object"
        );

        // Filtered pages, an unlimited list, a huge limit, and a bad token.
        let odd = api
            .list(&ListParams::default().labels("parity=odd").limit(1000))
            .await
            .expect("odd");
        assert_eq!(odd.items.len(), 617);
        let all = api.list(&ListParams::default()).await.expect("all");
        assert_eq!(all.items.len(), 1234);
        let huge = api
            .list(&ListParams::default().limit(u32::MAX))
            .await
            .expect("huge");
        assert_eq!(huge.items.len(), 1234);
        assert_eq!(
            api_error(
                api.list(&ListParams::default().continue_token("garbage"))
                    .await
            )
            .0,
            400
        );
    });
}

#[test]
fn kube_label_and_field_selectors() {
    let sb = sandbox();
    let c = client(&sb);
    let api = configmaps(&c, "shop");
    sb.block_on(async {
        for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
            api.create(
                &PostParams::default(),
                &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"tier": tier}}})),
            )
            .await
            .expect("create");
        }
        let names = |l: kube::core::ObjectList<DynamicObject>| {
            l.items.into_iter().filter_map(|o| o.metadata.name).collect::<Vec<_>>()
        };
        assert_eq!(names(api.list(&ListParams::default().labels("tier=front")).await.expect("eq")), ["a", "c"]);
        assert_eq!(names(api.list(&ListParams::default().labels("tier in (back),tier!=front")).await.expect("set")), ["b"]);
        assert_eq!(names(api.list(&ListParams::default().fields("metadata.name=c")).await.expect("field")), ["c"]);
        assert_eq!(names(api.list(&ListParams::default().labels("tier").fields("metadata.name!=a")).await.expect("both")), ["b", "c"]);
        assert_eq!(api_error(api.list(&ListParams::default().fields("data.x=1")).await).0, 400);
        assert_eq!(api_error(api.list(&ListParams::default().labels("a in x")).await).0, 400);

        let pods = dynamic(&c, ("", "v1", "Pod"), "pods", "shop");
        let running = pods.list(&ListParams::default().fields("status.phase=Running")).await.expect("pods");
        assert_eq!(running.items.len(), 3, "the simulator runs 2 web and 1 api pods");
    });
}

#[test]
fn kube_status_errors_carry_code_and_reason() {
    let sb = sandbox();
    let c = client(&sb);
    let api = configmaps(&c, "shop");
    sb.block_on(async {
        assert_eq!(api_error(api.get("missing").await), (404, "NotFound".into()));
        let dup = api
            .create(&PostParams::default(), &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"}})))
            .await;
        assert_eq!(api_error(dup), (409, "AlreadyExists".into()));
        let mut stale = api.get("web-config").await.expect("get");
        api.patch("web-config", &PatchParams::default(), &Patch::Merge(json!({"data": {"x": "1"}})))
            .await
            .expect("patch");
        stale.data["data"] = json!({"y": "2"});
        assert_eq!(api_error(api.replace("web-config", &PostParams::default(), &stale).await), (409, "Conflict".into()));
        let bad = api
            .create(&PostParams::default(), &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})))
            .await;
        assert_eq!(api_error(bad), (422, "Invalid".into()));
        let nowhere = configmaps(&c, "no-such-namespace")
            .create(&PostParams::default(), &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})))
            .await;
        assert_eq!(api_error(nowhere), (404, "NotFound".into()));
        let unknown = dynamic(&c, ("nope.io", "v1", "Thing"), "things", "shop");
        assert_eq!(api_error(unknown.list(&ListParams::default()).await).0, 404);
    });
}

#[test]
fn kube_status_subresource_is_separate() {
    let sb = sandbox();
    let c = client(&sb);
    let pvcs = dynamic(
        &c,
        ("", "v1", "PersistentVolumeClaim"),
        "persistentvolumeclaims",
        "shop",
    );
    sb.block_on(async {
        let created = pvcs
            .create(
                &PostParams::default(),
                &obj(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"]}, "status": {"phase": "Bound"}})),
            )
            .await
            .expect("create");
        assert!(created.data.get("status").is_none(), "create ignores status");
        let st = pvcs
            .patch_status("data", &PatchParams::default(), &Patch::Merge(json!({"spec": {"volumeName": "x"}, "status": {"phase": "Pending"}})))
            .await
            .expect("patch status");
        assert_eq!(st.data["status"]["phase"], "Pending");
        assert!(st.data["spec"].get("volumeName").is_none(), "/status does not change spec");
        let main = pvcs
            .patch("data", &PatchParams::default(), &Patch::Merge(json!({"spec": {"volumeName": "y"}, "status": {"phase": "Lost"}})))
            .await
            .expect("patch main");
        assert_eq!(main.data["status"]["phase"], "Pending", "the main resource does not change status");
        assert_eq!(main.data["spec"]["volumeName"], "y");
        assert_eq!(main.metadata.generation, Some(2));
        let got = pvcs.get_status("data").await.expect("get status");
        assert_eq!(got.data["status"]["phase"], "Pending");
    });
}
