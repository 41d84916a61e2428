//! The tool's calls that build green (`cloud::eks_create` with requests from
//! `cloud::green_copy`) against the sandbox's EKS over the real SDK: green is built from blue's
//! own description, EKS accepts every request the tool makes, and a retried request makes
//! nothing twice.

use aws_sdk_eks::types::ClusterStatus;
use eks_upgrade_core::cloud::{eks_create, green_copy};
use eks_upgrade_core::types::Version;

use super::client;
use super::lifecycle::account;
use crate::common::{POLL_TIMEOUT, poll_async};

const GREEN: &str = "demo-1-34";

#[test]
fn green_is_built_from_blues_description_with_the_calls_the_tool_makes() {
    let sb = account("");
    let c = sb.block_on(client(&sb));
    let v134 = Version::new(1, 34);
    sb.block_on(async {
        let blue = c
            .describe_cluster()
            .name("demo")
            .send()
            .await
            .expect("DescribeCluster")
            .cluster
            .expect("blue");
        let request = green_copy::cluster_request(&blue, GREEN, v134, "run-1", "token-1")
            .expect("green's request from blue");
        let first = eks_create::create_cluster(&c, &request)
            .await
            .expect("CreateCluster");
        // A retried step sends the same token: the same cluster, not a second one.
        let again = eks_create::create_cluster(&c, &request)
            .await
            .expect("the retry");
        assert_eq!(first.arn, again.arn);
        assert_eq!(
            first.tags.get("eks-upgrade/run-id").map(String::as_str),
            Some("run-1")
        );
        assert_eq!(
            first.tags.get("eks-upgrade/blue").map(String::as_str),
            Some("demo")
        );
        let listed = c.list_clusters().send().await.expect("ListClusters");
        assert_eq!(listed.clusters(), ["demo", GREEN]);

        poll_async("green to be ACTIVE", POLL_TIMEOUT, async || {
            let green = eks_create::describe(&c, GREEN)
                .await
                .expect("DescribeCluster")?;
            (green.status() == Some(&ClusterStatus::Active)).then_some(())
        })
        .await;
        let green = eks_create::describe(&c, GREEN)
            .await
            .expect("DescribeCluster")
            .expect("green exists");
        assert_eq!(green.version(), Some("1.34"));
        assert_eq!(green.role_arn(), blue.role_arn());
        assert_eq!(
            green.resources_vpc_config().map(|v| v.subnet_ids()),
            blue.resources_vpc_config().map(|v| v.subnet_ids())
        );
        assert!(
            eks_create::describe(&c, "nope")
                .await
                .expect("a read")
                .is_none()
        );

        // Blue's node groups, at green's version.
        let groups = c
            .list_nodegroups()
            .cluster_name("demo")
            .send()
            .await
            .expect("ListNodegroups");
        for name in groups.nodegroups() {
            let ng = c
                .describe_nodegroup()
                .cluster_name("demo")
                .nodegroup_name(name)
                .send()
                .await
                .expect("DescribeNodegroup")
                .nodegroup
                .expect("a node group");
            let r =
                green_copy::nodegroup_request(&ng, v134, "run-1", "demo", &format!("ng-{name}"))
                    .expect("green's node group from blue's");
            eks_create::create_nodegroup(&c, GREEN, &r)
                .await
                .expect("CreateNodegroup");
        }
        let green_groups = c
            .list_nodegroups()
            .cluster_name(GREEN)
            .send()
            .await
            .expect("ListNodegroups");
        assert_eq!(green_groups.nodegroups(), groups.nodegroups());

        // Blue's add-ons at the defaults for 1.34, their configuration kept.
        for addon in eks_upgrade_core::cloud::eks::addons(&c, "demo")
            .await
            .expect("blue's add-ons")
        {
            let default = eks_create::default_addon_version(&c, &addon.name, v134)
                .await
                .expect("DescribeAddonVersions")
                .expect("a default for 1.34");
            let r = green_copy::addon_request(&addon, Some(&default));
            eks_create::create_addon(&c, GREEN, &r, &format!("addon-{}", addon.name))
                .await
                .expect("CreateAddon");
            let created = c
                .describe_addon()
                .cluster_name(GREEN)
                .addon_name(&addon.name)
                .send()
                .await
                .expect("DescribeAddon")
                .addon
                .expect("green's add-on");
            assert_eq!(created.addon_version(), Some(default.as_str()));
            assert_eq!(
                created.configuration_values().map(str::to_string),
                addon.configuration_values
            );
        }

        // Blue's people get their entries on green; EKS's own entries are left to EKS.
        // A team's role with a namespace-scoped view policy on blue, beside the creator's.
        let team = "arn:aws:iam::111122223333:role/shop-team";
        c.create_access_entry()
            .cluster_name("demo")
            .principal_arn(team)
            .send()
            .await
            .expect("CreateAccessEntry on blue");
        c.associate_access_policy()
            .cluster_name("demo")
            .principal_arn(team)
            .policy_arn("arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy")
            .access_scope(
                aws_sdk_eks::types::AccessScope::builder()
                    .r#type(aws_sdk_eks::types::AccessScopeType::Namespace)
                    .namespaces("shop")
                    .build(),
            )
            .send()
            .await
            .expect("AssociateAccessPolicy on blue");
        let entries = eks_create::access_entries(&c, "demo")
            .await
            .expect("blue's entries");
        // The creator (the sandbox's caller) already administers green: EKS made its entry.
        let caller = "arn:aws:iam::111122223333:role/sandbox-admin";
        let copied = green_copy::access_entry_requests(&entries, Some(caller));
        assert_eq!(
            copied
                .iter()
                .map(|r| r.principal_arn.as_str())
                .collect::<Vec<_>>(),
            [team]
        );
        for r in copied {
            let made = eks_create::create_access_entry(&c, GREEN, &r)
                .await
                .expect("CreateAccessEntry");
            for p in &r.policies {
                eks_create::associate_access_policy(&c, GREEN, &r.principal_arn, p)
                    .await
                    .expect("AssociateAccessPolicy");
            }
            assert!(made, "{} was new on green", r.principal_arn);
            // Again (a resumed step): already there is not an error.
            assert!(
                !eks_create::create_access_entry(&c, GREEN, &r)
                    .await
                    .expect("a second time")
            );
        }
        let green_entries = eks_create::access_entries(&c, GREEN)
            .await
            .expect("green's entries");
        for (entry, policies) in &entries {
            if entry.r#type() != Some("STANDARD") {
                continue;
            }
            let (_, copied) = green_entries
                .iter()
                .find(|(e, _)| e.principal_arn() == entry.principal_arn())
                .unwrap_or_else(|| panic!("{:?} copied", entry.principal_arn()));
            let arns = |ps: &[aws_sdk_eks::types::AssociatedAccessPolicy]| {
                ps.iter()
                    .filter_map(|p| p.policy_arn().map(str::to_string))
                    .collect::<Vec<_>>()
            };
            assert_eq!(arns(copied), arns(policies));
        }
    });
}
