//! Managed add-ons: updates that change the workload's image and keep its configuration,
//! refusals, degraded add-ons, and the add-on version catalogue.

use aws_sdk_eks::types::{ResolveConflicts, UpdateParamType, UpdateStatus, UpdateType};
use eks_upgrade_sandbox::sim::workloads;
use serde_json::Value;

use super::{client, container_image, fast, finished, param, recorded, service_error};
use crate::common::TestSandbox;

#[test]
fn addon_update_changes_the_workload_image_and_keeps_configuration() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    assert!(container_image(&sb, "daemonsets", "aws-node").ends_with(":v1.19.2-eksbuild.1"));
    sb.block_on(async {
        let c = client(&sb).await;
        let update = c
            .update_addon()
            .cluster_name("demo")
            .addon_name("vpc-cni")
            .addon_version("v1.20.4-eksbuild.1")
            .resolve_conflicts(ResolveConflicts::Preserve)
            .send()
            .await
            .expect("UpdateAddon")
            .update
            .unwrap();
        assert_eq!(update.r#type(), Some(&UpdateType::AddonUpdate));
        assert_eq!(
            param(&update, UpdateParamType::AddonVersion).as_deref(),
            Some("v1.20.4-eksbuild.1")
        );
        assert_eq!(
            param(&update, UpdateParamType::ResolveConflicts).as_deref(),
            Some("PRESERVE")
        );
        assert_eq!(param(&update, UpdateParamType::ConfigurationValues), None);
        let done = finished(&c, update.id().unwrap(), None, Some("vpc-cni")).await;
        assert_eq!(done.status(), Some(&UpdateStatus::Successful));
        let addon = c
            .describe_addon()
            .cluster_name("demo")
            .addon_name("vpc-cni")
            .send()
            .await
            .unwrap()
            .addon
            .unwrap();
        assert_eq!(addon.addon_version(), Some("v1.20.4-eksbuild.1"));
        assert_eq!(addon.status().map(|s| s.as_str()), Some("ACTIVE"));
        assert_eq!(
            addon.configuration_values(),
            Some(r#"{"env":{"ENABLE_PREFIX_DELEGATION":"true"}}"#)
        );
    });
    assert!(container_image(&sb, "daemonsets", "aws-node").ends_with(":v1.20.4-eksbuild.1"));
    assert_eq!(
        recorded(&sb, "UpdateAddon"),
        vec![(
            200,
            "cluster=demo addon=vpc-cni addonVersion=v1.20.4-eksbuild.1".to_string()
        )]
    );
}

#[test]
fn incompatible_or_unknown_addons_are_refused() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c
            .update_addon()
            .cluster_name("demo")
            .addon_name("kube-proxy")
            .addon_version("v1.35.3-eksbuild.2")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 400, "InvalidParameterException");
        assert_eq!(message, "Addon version specified is not supported");
        let err = c
            .describe_addon()
            .cluster_name("demo")
            .addon_name("metrics-server")
            .send()
            .await
            .unwrap_err();
        let message = service_error(&err, 404, "ResourceNotFoundException");
        assert_eq!(message, "No addon: metrics-server found in cluster: demo");
    });
    assert!(container_image(&sb, "daemonsets", "kube-proxy").ends_with(":v1.33.3-eksbuild.2"));
}

#[test]
fn an_addon_fault_leaves_it_degraded_and_its_workload_broken() {
    let sb = TestSandbox::start(Some(&fast(
        "",
        "  faults:\n    addonDegrades: [ { addon: coredns, version: \"1.33\" } ]",
    )));
    sb.block_on(async {
        let c = client(&sb).await;
        let update = c
            .update_addon()
            .cluster_name("demo")
            .addon_name("coredns")
            .addon_version("v1.12.4-eksbuild.1")
            .send()
            .await
            .unwrap()
            .update
            .unwrap();
        finished(&c, update.id().unwrap(), None, Some("coredns")).await;
        let addon = c
            .describe_addon()
            .cluster_name("demo")
            .addon_name("coredns")
            .send()
            .await
            .unwrap()
            .addon
            .unwrap();
        assert_eq!(addon.status().map(|s| s.as_str()), Some("DEGRADED"));
        let issue = &addon.health().unwrap().issues()[0];
        assert_eq!(
            issue.code().map(|c| c.as_str()),
            Some("InsufficientNumberOfReplicas")
        );
        assert_eq!(issue.resource_ids(), ["coredns"]);
    });
    let store = &sb.sandbox.world.store;
    let rt = store.resource("apps", "v1", "deployments").unwrap();
    let coredns = store.get(&rt, Some("kube-system"), "coredns").unwrap();
    assert_eq!(
        coredns
            .pointer("/spec/template/metadata/annotations")
            .and_then(|a| a.get(workloads::BROKEN_ANNOTATION)),
        Some(&Value::from("true"))
    );
    assert!(container_image(&sb, "deployments", "coredns").ends_with(":v1.12.4-eksbuild.1"));
}

#[test]
fn describe_addon_versions_filters_and_orders() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        let out = c
            .describe_addon_versions()
            .kubernetes_version("1.33")
            .addon_name("vpc-cni")
            .send()
            .await
            .expect("DescribeAddonVersions");
        let addon = &out.addons()[0];
        assert_eq!(out.addons().len(), 1);
        let versions: Vec<&str> = addon
            .addon_versions()
            .iter()
            .filter_map(|v| v.addon_version())
            .collect();
        assert_eq!(
            versions,
            [
                "v1.20.4-eksbuild.1",
                "v1.19.6-eksbuild.1",
                "v1.19.2-eksbuild.1",
                "v1.18.6-eksbuild.1"
            ]
        );
        let defaults: Vec<bool> = addon
            .addon_versions()
            .iter()
            .map(|v| {
                assert_eq!(v.compatibilities().len(), 1);
                assert_eq!(v.compatibilities()[0].cluster_version(), Some("1.33"));
                v.compatibilities()[0].default_version()
            })
            .collect();
        assert_eq!(defaults, [true, false, false, false]);

        // kube-proxy versions are tied to one minor each.
        let out = c
            .describe_addon_versions()
            .kubernetes_version("1.34")
            .addon_name("kube-proxy")
            .send()
            .await
            .unwrap();
        let only: Vec<&str> = out.addons()[0]
            .addon_versions()
            .iter()
            .filter_map(|v| v.addon_version())
            .collect();
        assert_eq!(only, ["v1.34.3-eksbuild.2"]);

        let storage = c
            .describe_addon_versions()
            .types("storage")
            .send()
            .await
            .unwrap();
        let names: Vec<&str> = storage
            .addons()
            .iter()
            .filter_map(|a| a.addon_name())
            .collect();
        assert_eq!(names, ["aws-ebs-csi-driver"]);
        // Repeated `types` keys: both filters apply.
        let both = c
            .describe_addon_versions()
            .types("storage")
            .types("networking")
            .send()
            .await
            .unwrap();
        assert_eq!(both.addons().len(), 4);
        // Without a version filter, every supported version is listed per add-on version.
        let coredns = c
            .describe_addon_versions()
            .addon_name("coredns")
            .send()
            .await
            .unwrap();
        let newest = &coredns.addons()[0].addon_versions()[0];
        assert_eq!(newest.addon_version(), Some("v1.12.4-eksbuild.1"));
        assert_eq!(newest.compatibilities().len(), 4);
    });
}
