//! DescribeCluster, the version catalogue, unknown clusters and paginated list operations.

use aws_sdk_eks::types::VersionStatus;
use base64::Engine;

use super::{DEPRECATED_1_34, client, fast, recorded, service_error};
use crate::common::TestSandbox;

#[test]
fn describe_cluster_returns_the_sandbox_kubernetes_endpoint_and_ca() {
    let sb = TestSandbox::start(Some(&fast(", supportType: STANDARD", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        let cluster = c
            .describe_cluster()
            .name("demo")
            .send()
            .await
            .expect("DescribeCluster")
            .cluster
            .expect("cluster");
        assert_eq!(cluster.name(), Some("demo"));
        assert_eq!(
            cluster.arn(),
            Some("arn:aws:eks:us-east-1:111122223333:cluster/demo")
        );
        assert_eq!(
            cluster.endpoint(),
            Some(sb.sandbox.endpoints.kubernetes.as_str())
        );
        let ca = cluster
            .certificate_authority()
            .and_then(|c| c.data())
            .expect("CA data");
        let pem = base64::engine::general_purpose::STANDARD
            .decode(ca)
            .expect("base64");
        assert_eq!(String::from_utf8(pem).unwrap(), sb.sandbox.world.ca_pem);
        assert_eq!(cluster.version(), Some("1.33"));
        assert_eq!(cluster.platform_version(), Some("eks.41"));
        assert_eq!(cluster.status().map(|s| s.as_str()), Some("ACTIVE"));
        assert_eq!(
            cluster
                .upgrade_policy()
                .and_then(|u| u.support_type())
                .map(|s| s.as_str()),
            Some("STANDARD")
        );
        assert!(cluster.created_at().expect("createdAt").secs() > 1_600_000_000);
        assert!(
            cluster
                .resources_vpc_config()
                .and_then(|v| v.vpc_id())
                .is_some_and(|v| v.starts_with("vpc-"))
        );
        assert!(cluster.tags().is_some());
        let clusters = c.list_clusters().send().await.expect("ListClusters");
        assert_eq!(clusters.clusters(), ["demo"]);
    });
    assert_eq!(
        recorded(&sb, "DescribeCluster"),
        vec![(200, "cluster=demo".to_string())]
    );
}

#[test]
fn unknown_cluster_is_resource_not_found() {
    let sb = TestSandbox::start(Some(&fast("", "")));
    sb.block_on(async {
        let c = client(&sb).await;
        let err = c.describe_cluster().name("nope").send().await.unwrap_err();
        let message = service_error(&err, 404, "ResourceNotFoundException");
        assert_eq!(message, "No cluster found for name: nope.");
        assert!(err.into_service_error().is_resource_not_found_exception());

        let err = c
            .update_cluster_version()
            .name("nope")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        assert!(err.into_service_error().is_resource_not_found_exception());
        let err = c
            .list_nodegroups()
            .cluster_name("nope")
            .send()
            .await
            .unwrap_err();
        assert!(err.into_service_error().is_resource_not_found_exception());
    });
}

#[test]
fn list_operations_paginate() {
    let sb = TestSandbox::start(Some(&fast("", DEPRECATED_1_34)));
    sb.block_on(async {
        let c = client(&sb).await;
        let first = c
            .list_nodegroups()
            .cluster_name("demo")
            .max_results(1)
            .send()
            .await
            .unwrap();
        assert_eq!(first.nodegroups(), ["general"]);
        let token = first.next_token().expect("a second page").to_string();
        let second = c
            .list_nodegroups()
            .cluster_name("demo")
            .max_results(1)
            .next_token(token)
            .send()
            .await
            .unwrap();
        assert_eq!(second.nodegroups(), ["system"]);
        assert_eq!(second.next_token(), None);

        let addons: Vec<String> = c
            .list_addons()
            .cluster_name("demo")
            .max_results(1)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        assert_eq!(
            addons,
            ["aws-ebs-csi-driver", "coredns", "kube-proxy", "vpc-cni"]
        );
        let catalogue = c
            .describe_addon_versions()
            .max_results(1)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        assert_eq!(catalogue.len(), 4);
        let insights = c
            .list_insights()
            .cluster_name("demo")
            .max_results(1)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        assert_eq!(insights.len(), 1);

        let err = c
            .list_nodegroups()
            .cluster_name("demo")
            .max_results(101)
            .send()
            .await
            .unwrap_err();
        service_error(&err, 400, "InvalidParameterException");
        let err = c
            .list_nodegroups()
            .cluster_name("demo")
            .next_token("not-a-token")
            .send()
            .await
            .unwrap_err();
        service_error(&err, 400, "InvalidParameterException");
    });
}

#[test]
fn describe_cluster_versions_computes_status_and_filters() {
    let versions = r#"  versions:
    - { version: "1.30", releaseDate: "2020-01-01", endOfStandardSupport: "2020-06-01", endOfExtendedSupport: "2021-01-01", platformVersion: eks.9 }
    - { version: "1.31", releaseDate: "2020-01-01", endOfStandardSupport: "2020-06-01", endOfExtendedSupport: "2099-01-01", platformVersion: eks.8 }
    - { version: "1.32", releaseDate: "2021-01-01", endOfStandardSupport: "2099-01-01", endOfExtendedSupport: "2099-06-01", platformVersion: eks.7, default: true }
    - { version: "1.33", releaseDate: "2022-01-01", endOfStandardSupport: "2099-01-01", endOfExtendedSupport: "2099-06-01", platformVersion: eks.6 }
    - { version: "1.34", releaseDate: "2098-01-01", endOfStandardSupport: "2099-01-01", endOfExtendedSupport: "2099-06-01", platformVersion: eks.5 }"#;
    let sb = TestSandbox::start(Some(&fast("", versions)));
    sb.block_on(async {
        let c = client(&sb).await;
        let listed = |out: &aws_sdk_eks::operation::describe_cluster_versions::DescribeClusterVersionsOutput| {
            out.cluster_versions()
                .iter()
                .map(|v| (v.cluster_version().unwrap().to_string(), v.version_status().cloned()))
                .collect::<Vec<_>>()
        };
        let all = c.describe_cluster_versions().send().await.unwrap();
        assert_eq!(
            listed(&all),
            vec![
                ("1.33".to_string(), Some(VersionStatus::StandardSupport)),
                ("1.32".to_string(), Some(VersionStatus::StandardSupport)),
                ("1.31".to_string(), Some(VersionStatus::ExtendedSupport)),
            ],
            "unreleased and unsupported versions are not offered"
        );
        let with_old = c.describe_cluster_versions().include_all(true).send().await.unwrap();
        assert_eq!(with_old.cluster_versions().len(), 4);
        assert_eq!(
            with_old.cluster_versions()[3].version_status(),
            Some(&VersionStatus::Unsupported)
        );
        let default = c.describe_cluster_versions().default_only(true).send().await.unwrap();
        assert_eq!(default.cluster_versions().len(), 1);
        assert!(default.cluster_versions()[0].default_version());
        assert_eq!(default.cluster_versions()[0].default_platform_version(), Some("eks.7"));
        let extended = c
            .describe_cluster_versions()
            .version_status(VersionStatus::ExtendedSupport)
            .send()
            .await
            .unwrap();
        assert_eq!(listed(&extended), vec![("1.31".to_string(), Some(VersionStatus::ExtendedSupport))]);
        let picked = c
            .describe_cluster_versions()
            .cluster_versions("1.31")
            .cluster_versions("1.33")
            .send()
            .await
            .unwrap();
        assert_eq!(picked.cluster_versions().len(), 2);
        let paged = c
            .describe_cluster_versions()
            .max_results(1)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        assert_eq!(paged.len(), 3);

        // 1.34 is not released yet: not a target.
        let err = c
            .update_cluster_version()
            .name("demo")
            .version("1.34")
            .send()
            .await
            .unwrap_err();
        service_error(&err, 400, "InvalidParameterException");
    });
}
