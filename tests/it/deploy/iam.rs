//! `examples/iam/policy.json` against the AWS operations the code calls; Route 53's, which only
//! a blue/green run makes, against `examples/iam/blue-green.json` (added to the role for such
//! runs, so that an in-place run's role can change no DNS).
//!
//! The operations are found, not listed: the operation names of the exact `aws-sdk-eks`,
//! `aws-sdk-ec2`, `aws-sdk-s3`, `aws-sdk-kms` and `aws-sdk-route53` versions in Cargo.lock (one directory per operation under the crate's
//! `src/operation/`, located with `cargo metadata`) are searched for as method calls in the
//! tool's sources (`src/` and `crates/core/src/`; the sandbox crate is not searched). Each one
//! found must be allowed by the policy on the resource it acts on, and every action the policy
//! allows must be one found.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use eks_upgrade_core::types::glob::matches as glob;
use serde_json::Value;

use super::{cronjob_container, flag_value, read, tool_sources};
use crate::common::{Timed, repo};

/// The host's target triple: `cargo metadata --offline` can only resolve the dependencies of
/// platforms whose crates were downloaded, which the build did for this one.
fn host() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output_timed()
        .expect("run `rustc -vV`");
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc names its host")
        .to_string()
}

/// The operation names (snake_case, as the fluent client methods are named) of an SDK crate.
fn sdk_operations(krate: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host()])
        .arg("--manifest-path")
        .arg(repo().join("Cargo.toml"))
        .output_timed()
        .expect("run `cargo metadata`");
    assert!(out.code == Some(0), "cargo metadata: {}", out.stderr);
    let meta: Value = serde_json::from_str(&out.stdout).expect("cargo metadata JSON");
    let manifest = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == krate)
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| panic!("{krate} is a dependency"));
    let dir = PathBuf::from(manifest)
        .parent()
        .expect("crate directory")
        .join("src/operation");
    let ops: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    assert!(
        ops.len() > 50,
        "{krate}: only {} operations found",
        ops.len()
    );
    ops
}

/// `list_objects_v2` → `ListObjectsV2`: the API operation name.
fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// An AWS operation the code calls, and the files that call it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub service: &'static str,
    pub operation: String,
    pub files: Vec<String>,
}

/// Every EKS, EC2, S3 and KMS operation called as a method (`.describe_cluster(`) in the tool's
/// sources.
pub fn code_operations() -> Vec<Call> {
    let sources = tool_sources();
    let mut calls = Vec::new();
    for (service, krate) in [
        ("eks", "aws-sdk-eks"),
        ("ec2", "aws-sdk-ec2"),
        ("s3", "aws-sdk-s3"),
        ("kms", "aws-sdk-kms"),
        ("route53", "aws-sdk-route53"),
    ] {
        for op in sdk_operations(krate) {
            let needle = regex_lite::Regex::new(&format!(r"\.\s*{op}\s*\(")).expect("regex");
            let files: Vec<String> = sources
                .iter()
                .filter(|(_, code)| needle.is_match(code))
                .map(|(path, _)| path.clone())
                .collect();
            if !files.is_empty() {
                calls.push(Call {
                    service,
                    operation: camel(&op),
                    files,
                });
            }
        }
    }
    calls
}

/// The EKS resource type each action is authorized on, from the Service Authorization
/// Reference ("Actions, resources, and condition keys for Amazon EKS"); `*` for actions without
/// resource-level permissions. An action missing here fails the test: look it up and add it.
fn eks_resource(action: &str) -> &'static str {
    match action {
        "ListClusters" | "DescribeClusterVersions" | "DescribeAddonVersions" => "*",
        "DescribeCluster"
        | "UpdateClusterVersion"
        | "ListNodegroups"
        | "ListAddons"
        | "ListUpdates"
        | "DescribeUpdate"
        | "ListInsights"
        | "DescribeInsight"
        | "StartInsightsRefresh"
        | "DescribeInsightsRefresh" => "cluster",
        // Blue/green's: green is made beside blue, so these act on a cluster of another name.
        "CreateCluster"
        | "DeleteCluster"
        | "CreateNodegroup"
        | "CreateAddon"
        | "CreateAccessEntry"
        | "ListAccessEntries"
        | "ListFargateProfiles" => "cluster",
        "DescribeNodegroup" | "UpdateNodegroupVersion" | "DeleteNodegroup" => "nodegroup",
        "DescribeAddon" | "UpdateAddon" => "addon",
        "DescribeAccessEntry" | "AssociateAccessPolicy" | "ListAssociatedAccessPolicies" => {
            "access-entry"
        }
        other => panic!("eks:{other}: add its resource type to eks_resource()"),
    }
}

/// The KMS actions the tool may call: signing and checking manifests, on the key that signs
/// them. An action missing here fails the test: look up its resource type and add it.
fn kms_resource(action: &str) -> &'static str {
    match action {
        "Sign" | "Verify" => "arn:aws:kms:REGION:ACCOUNT_ID:key/MANIFEST_KEY_ID",
        other => panic!("kms:{other}: add its resource type to kms_resource()"),
    }
}

/// The EC2 actions the tool may call: read-only ones without resource-level permissions
/// (Service Authorization Reference, "Actions, resources, and condition keys for Amazon EC2":
/// `DescribeSubnets` lists no resource type). Another EC2 call fails the test until it is
/// looked up and added here.
fn ec2_resource(action: &str) -> &'static str {
    match action {
        "DescribeSubnets" => "*",
        other => panic!("ec2:{other}: add its resource type to ec2_resource()"),
    }
}

/// The Route 53 resource each action is authorized on (Service Authorization Reference,
/// "Actions, resources, and condition keys for Amazon Route 53"): `ListHostedZonesByName` has
/// no resource type, record sets are authorized on their hosted zone, `GetChange` on the change.
fn route53_resource(action: &str) -> &'static str {
    match action {
        "ListHostedZonesByName" => "*",
        "ListResourceRecordSets" | "ChangeResourceRecordSets" => {
            "arn:aws:route53:::hostedzone/ZONE_ID"
        }
        "GetChange" => "arn:aws:route53:::change/C2682N5HXP0BZ4",
        other => panic!("route53:{other}: add its resource type to route53_resource()"),
    }
}

/// Every need is allowed by `policy` (named `file`), and `policy` allows nothing else.
fn exactly(file: &str, policy: &Value, needs: &[Need]) {
    let missing: Vec<String> = needs
        .iter()
        .filter(|n| !allowed(policy, n))
        .map(|n| format!("{} on {} ({})", n.action, n.resource, n.why))
        .collect();
    assert!(
        missing.is_empty(),
        "{file} does not allow:\n{}",
        missing.join("\n")
    );
    let needed: BTreeSet<&str> = needs.iter().map(|n| n.action.as_str()).collect();
    let unused: Vec<String> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| strings(&s["Action"]))
        .filter(|a| !needed.contains(a.as_str()))
        .collect();
    assert!(
        unused.is_empty(),
        "{file} allows actions the code never calls: {unused:?}"
    );
}

/// The IAM action of an S3 operation, and whether it acts on the bucket (else on objects).
fn s3_action(operation: &str) -> (&'static str, bool) {
    match operation {
        "GetObject" | "HeadObject" | "GetObjectAttributes" => ("s3:GetObject", false),
        "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => {
            ("s3:PutObject", false)
        }
        "DeleteObject" | "DeleteObjects" => ("s3:DeleteObject", false),
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => ("s3:ListBucket", true),
        "GetBucketLocation" => ("s3:GetBucketLocation", true),
        other => panic!("S3 {other}: add its IAM action to s3_action()"),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// What the code needs: an action on a sample resource, with the request's `s3:prefix`.
#[derive(Debug)]
struct Need {
    action: String,
    resource: String,
    prefix: Option<String>,
    why: String,
}

fn allowed(policy: &Value, need: &Need) -> bool {
    policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .any(|s| {
            s["Effect"] == "Allow"
                && strings(&s["Action"]).iter().any(|a| glob(a, &need.action))
                && strings(&s["Resource"])
                    .iter()
                    .any(|r| glob(r, &need.resource))
                && match s["Condition"].as_object() {
                    None => true,
                    Some(c) => c.iter().all(|(op, keys)| {
                        assert_eq!(
                            op, "StringLike",
                            "only StringLike conditions are evaluated here"
                        );
                        keys.as_object()
                            .expect("condition keys")
                            .iter()
                            .all(|(k, v)| {
                                assert_eq!(k, "s3:prefix", "only s3:prefix is evaluated here");
                                need.prefix
                                    .as_deref()
                                    .is_some_and(|p| strings(v).iter().any(|pat| glob(pat, p)))
                            })
                    }),
                }
        })
}

#[test]
fn the_policy_allows_exactly_the_aws_operations_the_code_calls() {
    let policy: Value =
        serde_json::from_str(&read("examples/iam/policy.json")).expect("policy.json is JSON");
    let calls = code_operations();
    let eks_arn = |kind: &str| match kind {
        "*" => "*".to_string(),
        "cluster" => "arn:aws:eks:REGION:ACCOUNT_ID:cluster/CLUSTER_NAME".to_string(),
        "nodegroup" => "arn:aws:eks:REGION:ACCOUNT_ID:nodegroup/CLUSTER_NAME/general/4ec8".into(),
        "access-entry" => {
            "arn:aws:eks:REGION:ACCOUNT_ID:access-entry/CLUSTER_NAME/role/ACCOUNT_ID/admin/1ec8"
                .into()
        }
        _ => "arn:aws:eks:REGION:ACCOUNT_ID:addon/CLUSTER_NAME/vpc-cni/8ec8".to_string(),
    };
    // Green, named after blue and the target version (`CLUSTER_NAME-1-35`).
    let green_arn = |kind: &str| eks_arn(kind).replacen("CLUSTER_NAME", "CLUSTER_NAME-1-35", 1);
    // EKS calls made only to build or retire a green cluster belong to blue/green's policy.
    let blue_green_only = |call: &Call| {
        call.files
            .iter()
            .all(|f| f.starts_with("crates/core/src/cloud/eks_create/"))
    };
    // Journals go where the CronJob's `--state` says (the S3 layout is PREFIX/runs/ID.json).
    let state = flag_value(&super::args(&cronjob_container()), "--state")
        .expect("the CronJob passes --state")
        .to_string();
    let (state_bucket, state_prefix) =
        eks_upgrade_core::journal::store::parse_s3_url(&state).expect("an s3:// URL");
    let state_prefix = state_prefix.replace("CLUSTER_NAME", "prod");

    let mut needs = Vec::new();
    let mut dns_needs = Vec::new();
    for call in &calls {
        let why = format!(
            "{}:{} in {}",
            call.service,
            call.operation,
            call.files.join(", ")
        );
        match call.service {
            "eks" if blue_green_only(call) => dns_needs.push(Need {
                action: format!("eks:{}", call.operation),
                resource: green_arn(eks_resource(&call.operation)),
                prefix: None,
                why,
            }),
            "eks" => needs.push(Need {
                action: format!("eks:{}", call.operation),
                resource: eks_arn(eks_resource(&call.operation)),
                prefix: None,
                why,
            }),
            "kms" => needs.push(Need {
                action: format!("kms:{}", call.operation),
                resource: kms_resource(&call.operation).to_string(),
                prefix: None,
                why,
            }),
            "ec2" => needs.push(Need {
                action: format!("ec2:{}", call.operation),
                resource: ec2_resource(&call.operation).to_string(),
                prefix: None,
                why,
            }),
            "route53" => dns_needs.push(Need {
                action: format!("route53:{}", call.operation),
                resource: route53_resource(&call.operation).to_string(),
                prefix: None,
                why,
            }),
            _ => {
                let (action, on_bucket) = s3_action(&call.operation);
                for file in &call.files {
                    // Which bucket a file's S3 client reads, and which object: the journal store,
                    // the Velero backup location, or the manifest the tool writes beside a
                    // backup. Another file with S3 calls must be classified here.
                    let (bucket, key_prefix, object) = if file == "crates/core/src/journal/store.rs"
                    {
                        (
                            state_bucket.clone(),
                            format!("{state_prefix}/runs/"),
                            "x.json",
                        )
                    } else if file == "crates/core/src/velero/manifest/write.rs" {
                        (
                            "VELERO_BUCKET".to_string(),
                            "backups/pre-upgrade/".to_string(),
                            "eks-upgrade-manifest.json",
                        )
                    } else if file.starts_with("crates/core/src/velero/") {
                        (
                            "VELERO_BUCKET".to_string(),
                            "backups/pre-upgrade/".to_string(),
                            "x.json",
                        )
                    } else {
                        panic!("{file} calls S3 {}: which bucket is it?", call.operation)
                    };
                    needs.push(Need {
                        action: action.to_string(),
                        resource: if on_bucket {
                            format!("arn:aws:s3:::{bucket}")
                        } else {
                            format!("arn:aws:s3:::{bucket}/{key_prefix}{object}")
                        },
                        prefix: on_bucket.then(|| key_prefix.clone()),
                        why: why.clone(),
                    });
                }
            }
        }
    }
    // The Kubernetes bearer token is a presigned STS GetCallerIdentity (no SDK call).
    let presigns = tool_sources()
        .iter()
        .any(|(_, code)| code.contains("Action=GetCallerIdentity"));
    assert!(presigns, "cloud/token.rs presigns GetCallerIdentity");
    needs.push(Need {
        action: "sts:GetCallerIdentity".into(),
        resource: "*".into(),
        prefix: None,
        why: "the EKS token (crates/core/src/cloud/token.rs)".into(),
    });

    let missing: Vec<String> = needs
        .iter()
        .filter(|n| !allowed(&policy, n))
        .map(|n| format!("{} on {} ({})", n.action, n.resource, n.why))
        .collect();
    assert!(
        missing.is_empty(),
        "policy.json does not allow:\n{}",
        missing.join("\n")
    );

    // Least privilege: nothing the code does not call, no wildcards in actions, and actions
    // with resource-level permissions never on "*".
    let needed: BTreeSet<&str> = needs.iter().map(|n| n.action.as_str()).collect();
    let mut unused = BTreeMap::new();
    for s in policy["Statement"].as_array().expect("statements") {
        assert!(
            s.get("NotAction").is_none() && s.get("NotResource").is_none(),
            "{s}"
        );
        for a in strings(&s["Action"]) {
            assert!(!a.contains('*') && !a.contains('?'), "wildcard action {a}");
            if !needed.contains(a.as_str()) {
                unused.insert(a.clone(), s["Sid"].clone());
            }
            let scoped = a
                .strip_prefix("eks:")
                .is_some_and(|op| eks_resource(op) != "*");
            if scoped || a.starts_with("s3:") {
                assert!(
                    !strings(&s["Resource"]).contains(&"*".to_string()),
                    "{a} on *"
                );
            }
        }
    }
    assert!(
        unused.is_empty(),
        "policy.json allows actions the code never calls: {unused:?}"
    );
    // The code deletes nothing in S3: backups are never deleted, journals are overwritten.
    assert!(!needed.contains("s3:DeleteObject"));

    // The DNS switch of a blue/green run, in its own policy.
    assert!(
        !dns_needs.is_empty(),
        "crates/core/src/cloud/route53.rs calls Route 53"
    );
    // What EKS checks besides the operation's own action when green is created (the Service
    // Authorization Reference's dependent actions): the roles green is given, and its tags.
    for (action, resource, why) in [
        (
            "iam:PassRole",
            "arn:aws:iam::ACCOUNT_ID:role/CLUSTER_ROLE_NAME".to_string(),
            "CreateCluster passes blue's cluster role to green",
        ),
        (
            "iam:PassRole",
            "arn:aws:iam::ACCOUNT_ID:role/NODE_ROLE_NAME".to_string(),
            "CreateNodegroup passes blue's node role to green's groups",
        ),
        (
            "eks:TagResource",
            green_arn("cluster"),
            "CreateCluster, CreateNodegroup and CreateAccessEntry tag what they create",
        ),
    ] {
        dns_needs.push(Need {
            action: action.into(),
            resource,
            prefix: None,
            why: why.into(),
        });
    }
    let dns: Value = serde_json::from_str(&read("examples/iam/blue-green.json"))
        .expect("blue-green.json is JSON");
    exactly("blue-green.json", &dns, &dns_needs);
    for s in dns["Statement"].as_array().expect("statements") {
        for a in strings(&s["Action"]) {
            let scoped = match a.split_once(':') {
                Some(("route53", op)) => route53_resource(op) != "*",
                Some(("eks", op)) => op == "TagResource" || eks_resource(op) != "*",
                _ => true,
            };
            if scoped {
                assert!(
                    !strings(&s["Resource"]).contains(&"*".to_string()),
                    "{a} on *"
                );
            }
        }
    }
}

#[test]
fn the_operation_search_finds_known_calls_and_nothing_from_the_sandbox() {
    let calls = code_operations();
    let find = |op: &str| calls.iter().find(|c| c.operation == op);
    let describe = find("DescribeCluster").expect("DescribeCluster is called");
    assert!(
        describe
            .files
            .iter()
            .any(|f| f == "crates/core/src/cloud/connect.rs")
    );
    assert!(find("PutObject").is_some_and(|c| c.files
        == [
            "crates/core/src/journal/store.rs",
            "crates/core/src/velero/manifest/write.rs"
        ]));
    assert!(find("Sign").is_some_and(|c| c.service == "kms"));
    assert!(
        find("DescribeSubnets")
            .is_some_and(|c| c.service == "ec2" && c.files == ["crates/core/src/cloud/ec2.rs"]),
        "the free-IP check's EC2 call is found"
    );
    assert_eq!(camel("list_objects_v2"), "ListObjectsV2");
    assert_eq!(
        camel("describe_cluster_versions"),
        "DescribeClusterVersions"
    );
    for c in &calls {
        assert!(
            c.files.iter().all(|f| !f.starts_with("crates/sandbox/")),
            "{c:?}"
        );
    }
    assert!(glob(
        "arn:aws:s3:::b/eks-upgrade/*",
        "arn:aws:s3:::b/eks-upgrade/x/runs/1.json"
    ));
    assert!(!glob(
        "arn:aws:s3:::b/eks-upgrade/*",
        "arn:aws:s3:::b/other/1.json"
    ));
    assert!(glob("a?c*", "abcdef") && !glob("a?c", "abcd"));
}
