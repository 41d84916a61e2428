//! The EKS writes on the wire: the real SDK against a stub on loopback that records each
//! request and answers from a routine, so what green is created with is checked as EKS would
//! receive it.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::cloud::green_copy::{LaunchTemplateRef, TaintSpec};
use crate::cloud::stub::{eks, stub};

/// Runs `f` with a bound on how long the stub may take.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the stub answered in time")
}

fn cluster_request() -> ClusterRequest {
    ClusterRequest {
        name: "demo-1-35".into(),
        version: Version::new(1, 35),
        role_arn: "arn:aws:iam::1:role/eks".into(),
        subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
        security_group_ids: vec!["sg-extra".into()],
        endpoint_public_access: true,
        endpoint_private_access: false,
        public_access_cidrs: vec!["203.0.113.0/24".into()],
        service_ipv4_cidr: Some("10.100.0.0/16".into()),
        ip_family: Some("ipv4".into()),
        enabled_log_types: vec!["api".into(), "audit".into()],
        authentication_mode: Some("API".into()),
        support_type: Some("STANDARD".into()),
        encryption_key_arn: Some("arn:aws:kms:eu-west-1:1:key/k".into()),
        auto_mode: None,
        tags: [("eks-upgrade/run-id".to_string(), "run-1".to_string())]
            .into_iter()
            .collect(),
        client_request_token: "tok-1".into(),
    }
}

#[tokio::test]
async fn create_cluster_sends_blues_settings_and_the_token() {
    let stub = stub(|_, _| {
        (
            200,
            json!({"cluster": {"name": "demo-1-35", "arn": "arn:aws:eks:eu-west-1:1:cluster/demo-1-35",
                "status": "CREATING", "tags": {"eks-upgrade/run-id": "run-1"}}}),
        )
    })
    .await;
    let made = bounded(create_cluster(&eks(&stub.url), &cluster_request()))
        .await
        .unwrap();
    assert_eq!(made.status, "CREATING");
    assert_eq!(
        made.tags.get("eks-upgrade/run-id").map(String::as_str),
        Some("run-1")
    );
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/clusters")
    );
    let b = &seen[0].body;
    assert_eq!(b["name"], "demo-1-35");
    assert_eq!(b["version"], "1.35");
    assert_eq!(b["roleArn"], "arn:aws:iam::1:role/eks");
    assert_eq!(b["clientRequestToken"], "tok-1");
    assert_eq!(
        b["resourcesVpcConfig"]["subnetIds"],
        json!(["subnet-a", "subnet-b"])
    );
    assert_eq!(
        b["resourcesVpcConfig"]["securityGroupIds"],
        json!(["sg-extra"])
    );
    assert_eq!(b["resourcesVpcConfig"]["endpointPublicAccess"], true);
    assert_eq!(b["resourcesVpcConfig"]["endpointPrivateAccess"], false);
    assert_eq!(
        b["resourcesVpcConfig"]["publicAccessCidrs"],
        json!(["203.0.113.0/24"])
    );
    assert_eq!(
        b["kubernetesNetworkConfig"]["serviceIpv4Cidr"],
        "10.100.0.0/16"
    );
    assert_eq!(b["kubernetesNetworkConfig"]["ipFamily"], "ipv4");
    assert_eq!(
        b["logging"]["clusterLogging"],
        json!([{"types": ["api", "audit"], "enabled": true}])
    );
    assert_eq!(b["accessConfig"]["authenticationMode"], "API");
    assert_eq!(
        b["accessConfig"]["bootstrapClusterCreatorAdminPermissions"],
        true
    );
    assert_eq!(b["upgradePolicy"]["supportType"], "STANDARD");
    assert_eq!(
        b["encryptionConfig"][0]["provider"]["keyArn"],
        "arn:aws:kms:eu-west-1:1:key/k"
    );
    assert_eq!(b["tags"], json!({"eks-upgrade/run-id": "run-1"}));
    assert!(b.get("computeConfig").is_none());
}

#[tokio::test]
async fn an_existing_name_is_resource_in_use_with_eks_words() {
    let stub = stub(|_, _| {
        (
            409,
            json!({"__type": "ResourceInUseException",
                "message": "Cluster already exists with name: demo-1-35"}),
        )
    })
    .await;
    let err = bounded(create_cluster(&eks(&stub.url), &cluster_request()))
        .await
        .unwrap_err();
    assert!(err.is("ResourceInUseException"), "{err}");
    assert!(
        err.to_string()
            .contains("Cluster already exists with name: demo-1-35"),
        "{err}"
    );
}

#[tokio::test]
async fn a_node_group_is_sent_with_its_ami_taints_labels_template_and_token() {
    let stub = stub(|_, _| {
        (
            200,
            json!({"nodegroup": {"nodegroupName": "general", "status": "CREATING"}}),
        )
    })
    .await;
    let r = NodegroupRequest {
        name: "general".into(),
        version: Some(Version::new(1, 35)),
        node_role: "arn:aws:iam::1:role/nodes".into(),
        subnets: vec!["subnet-a".into()],
        instance_types: vec!["m6i.large".into()],
        ami_type: Some("AL2023_x86_64_STANDARD".into()),
        capacity_type: Some("ON_DEMAND".into()),
        min_size: Some(1),
        max_size: Some(5),
        desired_size: Some(3),
        disk_size: None,
        labels: [("tier".to_string(), "web".to_string())]
            .into_iter()
            .collect(),
        taints: vec![TaintSpec {
            key: "dedicated".into(),
            value: Some("web".into()),
            effect: "NO_SCHEDULE".into(),
        }],
        max_unavailable: Some(1),
        max_unavailable_percentage: None,
        launch_template: Some(LaunchTemplateRef {
            id: Some("lt-1".into()),
            name: None,
            version: Some("3".into()),
        }),
        ssh_key: None,
        remote_access_security_groups: vec![],
        tags: Default::default(),
        client_request_token: "ng-tok".into(),
    };
    bounded(create_nodegroup(&eks(&stub.url), "demo-1-35", &r))
        .await
        .unwrap();
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen[0].path, "/clusters/demo-1-35/node-groups");
    let b = &seen[0].body;
    assert_eq!(b["nodegroupName"], "general");
    assert_eq!(b["version"], "1.35");
    assert_eq!(b["amiType"], "AL2023_x86_64_STANDARD");
    assert_eq!(b["capacityType"], "ON_DEMAND");
    assert_eq!(
        b["scalingConfig"],
        json!({"minSize": 1, "maxSize": 5, "desiredSize": 3})
    );
    assert_eq!(b["labels"], json!({"tier": "web"}));
    assert_eq!(
        b["taints"],
        json!([{"key": "dedicated", "value": "web", "effect": "NO_SCHEDULE"}])
    );
    assert_eq!(b["updateConfig"], json!({"maxUnavailable": 1}));
    assert_eq!(b["launchTemplate"], json!({"id": "lt-1", "version": "3"}));
    assert_eq!(b["clientRequestToken"], "ng-tok");
    assert!(b.get("diskSize").is_none() && b.get("remoteAccess").is_none());
}

#[tokio::test]
async fn the_default_addon_version_is_the_one_eks_marks_default_for_the_version() {
    let stub = stub(|_, _| {
        (
            200,
            json!({"addons": [{"addonName": "vpc-cni", "addonVersions": [
                {"addonVersion": "v1.20.2-eksbuild.1", "compatibilities": [{"clusterVersion": "1.35", "defaultVersion": false}]},
                {"addonVersion": "v1.20.1-eksbuild.1", "compatibilities": [{"clusterVersion": "1.35", "defaultVersion": true}]},
                {"addonVersion": "v1.19.0-eksbuild.1", "compatibilities": [{"clusterVersion": "1.34", "defaultVersion": true}]}
            ]}]}),
        )
    })
    .await;
    let client = eks(&stub.url);
    let version = bounded(default_addon_version(
        &client,
        "vpc-cni",
        Version::new(1, 35),
    ))
    .await
    .unwrap();
    assert_eq!(version.as_deref(), Some("v1.20.1-eksbuild.1"));
    let none = bounded(default_addon_version(
        &client,
        "vpc-cni",
        Version::new(1, 36),
    ))
    .await
    .unwrap();
    assert_eq!(none, None);
    let seen = stub.seen.lock().unwrap().clone();
    assert!(
        seen[0].path.contains("kubernetesVersion=1.35"),
        "{}",
        seen[0].path
    );
}

#[tokio::test]
async fn an_addon_overwrites_what_a_new_cluster_bootstrapped() {
    let stub = stub(|_, _| {
        (
            200,
            json!({"addon": {"addonName": "vpc-cni", "status": "CREATING"}}),
        )
    })
    .await;
    let r = AddonRequest {
        name: "vpc-cni".into(),
        version: Some("v1.20.1-eksbuild.1".into()),
        configuration_values: Some(r#"{"env":{"A":"1"}}"#.into()),
        service_account_role_arn: Some("arn:aws:iam::1:role/cni".into()),
    };
    bounded(create_addon(&eks(&stub.url), "demo-1-35", &r, "addon-tok"))
        .await
        .unwrap();
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen[0].path, "/clusters/demo-1-35/addons");
    let b = &seen[0].body;
    assert_eq!(b["addonName"], "vpc-cni");
    assert_eq!(b["addonVersion"], "v1.20.1-eksbuild.1");
    assert_eq!(b["resolveConflicts"], "OVERWRITE");
    assert_eq!(b["configurationValues"], r#"{"env":{"A":"1"}}"#);
    assert_eq!(b["serviceAccountRoleArn"], "arn:aws:iam::1:role/cni");
    assert_eq!(b["clientRequestToken"], "addon-tok");
}

#[tokio::test]
async fn access_entries_are_read_whole_and_an_existing_one_is_not_an_error() {
    let stub = stub(|method, path| match (method, path) {
        ("GET", p) if p.starts_with("/clusters/demo/access-entries/") && p.ends_with("/access-policies") => (
            200,
            json!({"clusterName": "demo", "principalArn": "arn:aws:iam::1:role/ops",
                "associatedAccessPolicies": [{"policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy",
                    "accessScope": {"type": "namespace", "namespaces": ["shop"]}}]}),
        ),
        ("GET", p) if p.starts_with("/clusters/demo/access-entries/") => (
            200,
            json!({"accessEntry": {"clusterName": "demo", "principalArn": "arn:aws:iam::1:role/ops",
                "type": "STANDARD", "kubernetesGroups": ["viewers"]}}),
        ),
        ("GET", _) => (200, json!({"accessEntries": ["arn:aws:iam::1:role/ops"]})),
        ("POST", p) if p.ends_with("/access-entries") => (
            409,
            json!({"__type": "ResourceInUseException", "message": "The specified access entry resource is already in use on this cluster."}),
        ),
        _ => (200, json!({"clusterName": "green", "principalArn": "arn:aws:iam::1:role/ops"})),
    })
    .await;
    let client = eks(&stub.url);
    let entries = bounded(access_entries(&client, "demo")).await.unwrap();
    assert_eq!(entries.len(), 1);
    let (entry, policies) = &entries[0];
    assert_eq!(entry.kubernetes_groups(), ["viewers"]);
    assert_eq!(
        policies[0].access_scope().map(|s| s.namespaces()),
        Some(&["shop".to_string()][..])
    );

    let requests = crate::cloud::green_copy::access_entry_requests(&entries, None);
    let created = bounded(create_access_entry(&client, "green", &requests[0]))
        .await
        .unwrap();
    assert!(!created, "an existing entry is reported, not an error");
    bounded(associate_access_policy(
        &client,
        "green",
        &requests[0].principal_arn,
        &requests[0].policies[0],
    ))
    .await
    .unwrap();
    let seen = stub.seen.lock().unwrap().clone();
    let associate = seen.last().unwrap();
    assert_eq!(associate.method, "POST");
    assert!(
        associate.path.ends_with("/access-policies"),
        "{}",
        associate.path
    );
    assert_eq!(
        associate.body["accessScope"],
        json!({"type": "namespace", "namespaces": ["shop"]})
    );
}

#[tokio::test]
async fn describe_says_none_for_a_cluster_that_does_not_exist() {
    let stub = stub(|_, _| {
        (
            404,
            json!({"__type": "ResourceNotFoundException", "message": "No cluster found for name: green."}),
        )
    })
    .await;
    let found = bounded(describe(&eks(&stub.url), "green")).await.unwrap();
    assert!(found.is_none());
}
