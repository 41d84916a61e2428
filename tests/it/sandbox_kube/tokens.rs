//! Authentication: bad, expired and foreign tokens are refused; the `aws eks get-token` token
//! is accepted.

use std::process::Command;
use std::time::{Duration, SystemTime};

use eks_upgrade_sandbox::world::SECRET_KEY;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

use super::{api_error, client_with, configmaps, make_token, sandbox};
use crate::common::Timed;

#[test]
fn kube_refuses_bad_expired_and_foreign_tokens() {
    let sb = sandbox();
    let now = SystemTime::now();
    let cases = [
        ("garbage", "not-a-token".to_string()),
        ("wrong cluster", make_token("prod", SECRET_KEY, now)),
        ("wrong secret", make_token("demo", "not-the-secret", now)),
        (
            "expired",
            make_token("demo", SECRET_KEY, now - Duration::from_secs(16 * 60)),
        ),
    ];
    for (what, t) in cases {
        let c = client_with(&sb, Some(&t), false);
        let r = sb.block_on(async { configmaps(&c, "shop").list(&ListParams::default()).await });
        assert_eq!(api_error(r), (401, "Unauthorized".into()), "{what}");
        let v = sb.block_on(c.apiserver_version());
        assert!(
            v.is_err(),
            "{what}: a bad token is refused even for /version"
        );
    }
    // A token signed 14 minutes ago is still good; anonymous callers see only public paths.
    let old = client_with(
        &sb,
        Some(&make_token(
            "demo",
            SECRET_KEY,
            now - Duration::from_secs(14 * 60),
        )),
        false,
    );
    sb.block_on(async { configmaps(&old, "shop").list(&ListParams::default()).await })
        .expect("still valid");
    let anonymous = client_with(&sb, None, false);
    let v = sb
        .block_on(anonymous.apiserver_version())
        .expect("/version is public");
    assert_eq!(v.minor, "33");
    let r = sb.block_on(async {
        configmaps(&anonymous, "shop")
            .list(&ListParams::default())
            .await
    });
    assert_eq!(api_error(r), (403, "Forbidden".into()));
}

#[test]
fn the_aws_cli_token_is_accepted() {
    let sb = sandbox();
    let get_token = |cluster: &str| -> String {
        let out = Command::new("aws")
            .args([
                "--region",
                "us-east-1",
                "eks",
                "get-token",
                "--cluster-name",
                cluster,
                "--output",
                "json",
            ])
            .envs(sb.env())
            .output_timed()
            .unwrap_or_else(|e| panic!("the AWS CLI must be installed for this test: {e}"));
        assert!(out.code == Some(0), "{}", out.stderr);
        let v: Value = serde_json::from_str(&out.stdout).expect("ExecCredential JSON");
        v["status"]["token"].as_str().expect("token").to_string()
    };
    let good = client_with(&sb, Some(&get_token("demo")), false);
    let node_api: Api<DynamicObject> = Api::all_with(
        good,
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Node"), "nodes"),
    );
    let nodes = sb
        .block_on(async { node_api.list(&ListParams::default()).await })
        .expect("nodes with the AWS CLI's token");
    assert_eq!(nodes.items.len(), 3);
    let foreign = client_with(&sb, Some(&get_token("prod")), false);
    let r = sb.block_on(async {
        configmaps(&foreign, "shop")
            .list(&ListParams::default())
            .await
    });
    assert_eq!(api_error(r).0, 401);
}
