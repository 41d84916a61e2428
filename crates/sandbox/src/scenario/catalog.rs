//! The built-in catalogues: the EKS versions with their real support dates, and the usual
//! add-ons with their version lines.

use super::{AddonCatalogEntry, AddonVersionSpec, VersionSpec};
use eks_upgrade_core::types::Version;

/// EKS versions with their real release and support dates (EKS user guide, via endoflife.date).
pub fn builtin_versions() -> Vec<VersionSpec> {
    let rows: [(u32, &str, &str, &str, u32); 8] = [
        (29, "2024-01-23", "2025-03-23", "2026-03-23", 60),
        (30, "2024-05-23", "2025-07-23", "2026-07-23", 72),
        (31, "2024-09-26", "2025-11-26", "2026-11-26", 64),
        (32, "2025-01-23", "2026-03-23", "2027-03-23", 48),
        (33, "2025-05-28", "2026-07-29", "2027-07-29", 41),
        (34, "2025-10-06", "2026-12-02", "2027-12-02", 27),
        (35, "2026-01-28", "2027-03-27", "2028-03-27", 17),
        (36, "2026-06-02", "2027-08-02", "2028-08-02", 6),
    ];
    rows.iter()
        .map(
            |(minor, release, standard, extended, platform)| VersionSpec {
                version: Version::new(1, *minor),
                release_date: release.to_string(),
                end_of_standard_support: standard.to_string(),
                end_of_extended_support: extended.to_string(),
                platform_version: Some(format!("eks.{platform}")),
                default: *minor == 35,
            },
        )
        .collect()
}

/// The usual EKS add-ons with one version line per Kubernetes minor. vpc-cni and the EBS CSI
/// driver move independently of Kubernetes; coredns and kube-proxy follow it.
pub fn builtin_addon_catalog() -> Vec<AddonCatalogEntry> {
    let minors = 29..=36u32;
    let v = |m: u32| Version::new(1, m);
    let all: Vec<Version> = minors.clone().map(v).collect();
    let kube_proxy = AddonCatalogEntry {
        name: "kube-proxy".into(),
        r#type: "networking".into(),
        versions: minors
            .clone()
            .rev()
            .map(|m| AddonVersionSpec {
                version: format!("v1.{m}.3-eksbuild.2"),
                compatible: vec![v(m)],
                default_for: vec![v(m)],
            })
            .collect(),
    };
    let coredns_lines: [(&str, &[u32]); 3] = [
        ("v1.12.4-eksbuild.1", &[33, 34, 35, 36]),
        ("v1.11.4-eksbuild.2", &[31, 32, 33, 34]),
        ("v1.11.1-eksbuild.9", &[29, 30, 31, 32]),
    ];
    let coredns = AddonCatalogEntry {
        name: "coredns".into(),
        r#type: "networking".into(),
        versions: coredns_lines
            .iter()
            .map(|(ver, ms)| AddonVersionSpec {
                version: ver.to_string(),
                compatible: ms.iter().map(|m| v(*m)).collect(),
                default_for: ms
                    .iter()
                    .filter(|m| match *ver {
                        "v1.12.4-eksbuild.1" => **m >= 33,
                        "v1.11.4-eksbuild.2" => (31..=32).contains(*m),
                        _ => **m <= 30,
                    })
                    .map(|m| v(*m))
                    .collect(),
            })
            .collect(),
    };
    // vpc-cni: one minor at a time; newer lines support every version in the catalogue.
    let vpc_cni = AddonCatalogEntry {
        name: "vpc-cni".into(),
        r#type: "networking".into(),
        versions: [
            "v1.20.4-eksbuild.1",
            "v1.19.6-eksbuild.1",
            "v1.19.2-eksbuild.1",
            "v1.18.6-eksbuild.1",
        ]
        .iter()
        .enumerate()
        .map(|(i, ver)| AddonVersionSpec {
            version: ver.to_string(),
            compatible: all.clone(),
            default_for: if i == 0 { all.clone() } else { Vec::new() },
        })
        .collect(),
    };
    let ebs = AddonCatalogEntry {
        name: "aws-ebs-csi-driver".into(),
        r#type: "storage".into(),
        versions: ["v1.45.0-eksbuild.2", "v1.41.0-eksbuild.1"]
            .iter()
            .enumerate()
            .map(|(i, ver)| AddonVersionSpec {
                version: ver.to_string(),
                compatible: all.clone(),
                default_for: if i == 0 { all.clone() } else { Vec::new() },
            })
            .collect(),
    };
    vec![vpc_cni, coredns, kube_proxy, ebs]
}
