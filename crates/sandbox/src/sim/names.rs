//! Names and identifiers that look like the real ones: node host names, pod suffixes, image
//! references. Deterministic per input, so scenarios and snapshots are stable.

/// A stable hash of text, for names derived from other names.
pub fn hash(text: &str) -> u64 {
    // FNV-1a: tiny, stable across Rust versions (unlike `DefaultHasher`).
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A Kubernetes-style random-looking suffix (`7d9f5`), derived from `seed`.
pub fn suffix(seed: &str, len: usize) -> String {
    let mut h = hash(seed);
    (0..len)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            if h == 0 {
                h = hash(&format!("{seed}{len}"));
            }
            c
        })
        .collect()
}

/// An EC2 private DNS name such as `ip-10-0-12-34.ec2.internal`.
pub fn node_name(region: &str, seed: &str) -> String {
    let h = hash(seed);
    let (b, c, d) = ((h >> 8) % 4, (h >> 16) % 250 + 1, (h >> 24) % 250 + 2);
    let domain = if region == "us-east-1" {
        "ec2.internal".to_string()
    } else {
        format!("{region}.compute.internal")
    };
    format!("ip-10-0-{}-{d}.{domain}", b * 64 + c % 64)
}

/// An EC2 instance id such as `i-0a1b2c3d4e5f60718`, which Auto Mode uses as the node name.
pub fn instance_id(seed: &str) -> String {
    format!("i-0{:016x}", hash(seed))
}

/// The host name Fargate gives the node of one pod: `fargate-ip-10-0-12-34.ec2.internal`.
pub fn fargate_node_name(region: &str, seed: &str) -> String {
    format!("fargate-{}", node_name(region, seed))
}

/// The kubelet version string EKS AMIs report for a Kubernetes minor.
pub fn kubelet_version(version: eks_upgrade_core::types::Version) -> String {
    format!(
        "v{}.{}.5-eks-{}",
        version.major,
        version.minor,
        &suffix(&version.to_string(), 7)
    )
}

/// The registry EKS add-on images come from in a region.
pub fn ecr(region: &str) -> String {
    format!("602401143452.dkr.ecr.{region}.amazonaws.com")
}
