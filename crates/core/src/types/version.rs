//! Kubernetes `MAJOR.MINOR` versions, compared numerically.
//!
//! EKS speaks only in minor versions ("1.33"), so that is the whole type: a patch level or a
//! `v` prefix is a mistake worth pointing out rather than silently dropping.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Kubernetes minor version such as `1.33`. Ordering is numeric: `1.9 < 1.10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

/// Why a string is not a `MAJOR.MINOR` version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("`{0}` is not a version: expected `MAJOR.MINOR`, such as `1.33`")]
    Malformed(String),
    #[error("`{0}` has a patch level; EKS versions are `MAJOR.MINOR`")]
    HasPatch(String),
    #[error("`{0}` has a `v` prefix; write the bare number")]
    HasPrefix(String),
}

impl VersionError {
    /// The corrected spelling, when the mistake is one we can see through.
    pub fn suggestion(&self) -> Option<String> {
        match self {
            VersionError::Malformed(_) => None,
            VersionError::HasPatch(s) => {
                let mut parts = s.trim_start_matches('v').splitn(3, '.');
                Some(format!("{}.{}", parts.next()?, parts.next()?))
            }
            VersionError::HasPrefix(s) => Some(s.trim_start_matches(['v', 'V']).to_string()),
        }
    }
}

impl Version {
    pub const fn new(major: u32, minor: u32) -> Self {
        Version { major, minor }
    }

    /// The next minor version (`1.33` → `1.34`).
    pub fn next_minor(self) -> Version {
        Version::new(self.major, self.minor.saturating_add(1))
    }

    /// The previous minor version, if there is one.
    pub fn prev_minor(self) -> Option<Version> {
        self.minor
            .checked_sub(1)
            .map(|m| Version::new(self.major, m))
    }

    /// Minor versions between `self` and `other` (positive when `other` is newer). Versions with
    /// different majors are not comparable this way; Kubernetes has only ever had major 1.
    pub fn minor_distance(self, other: Version) -> Option<i64> {
        (self.major == other.major).then(|| i64::from(other.minor) - i64::from(self.minor))
    }

    /// The minor versions after `self` up to and including `target`, in order: what an upgrade
    /// passes through even when it does not stop at each (a blue/green run creates its new
    /// cluster at `target` directly, but removed-API checks must still cover every minor on
    /// the way). Empty when `target` is not newer or has another major.
    pub fn path_to(self, target: Version) -> Vec<Version> {
        if target.major != self.major || target <= self {
            return Vec::new();
        }
        (self.minor + 1..=target.minor)
            .map(|m| Version::new(self.major, m))
            .collect()
    }
}

/// The minor version inside a kubelet, add-on or image version: `v1.32.3-eks-1b2c3d4`,
/// `v1.33.0-eksbuild.2`, `1.32`, or an image reference whose tag is one
/// (`registry:5000/kube-proxy:v1.31.0`). Lenient on purpose: these strings come from clusters,
/// not from users, and only their minor version matters.
pub fn minor_of(text: &str) -> Option<Version> {
    let tag = text.trim().rsplit(':').next()?.trim_start_matches('v');
    let mut parts = tag.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some(Version::new(major, minor))
}

fn parse_number(s: &str) -> Option<u32> {
    // Reject signs, spaces and empty parts, which `u32::from_str` would partly accept.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if let Some(rest) = trimmed.strip_prefix(['v', 'V']) {
            return match rest.parse::<Version>() {
                Ok(_) => Err(VersionError::HasPrefix(trimmed.to_string())),
                Err(VersionError::HasPatch(_)) => Err(VersionError::HasPatch(trimmed.to_string())),
                Err(_) => Err(VersionError::Malformed(trimmed.to_string())),
            };
        }
        let parts: Vec<&str> = trimmed.split('.').collect();
        let numbers: Option<Vec<u32>> = parts.iter().map(|p| parse_number(p)).collect();
        match (parts.len(), numbers) {
            (2, Some(n)) => Ok(Version::new(n[0], n[1])),
            (3, Some(_)) => Err(VersionError::HasPatch(trimmed.to_string())),
            _ => Err(VersionError::Malformed(trimmed.to_string())),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_to_a_target_names_every_minor_after_the_start() {
        let v = |m| Version::new(1, m);
        assert_eq!(v(33).path_to(v(35)), vec![v(34), v(35)]);
        assert_eq!(v(33).path_to(v(34)), vec![v(34)]);
        assert_eq!(v(9).path_to(v(11)), vec![v(10), v(11)]);
        assert!(v(33).path_to(v(33)).is_empty());
        assert!(v(33).path_to(v(32)).is_empty());
        assert!(v(33).path_to(Version::new(2, 1)).is_empty());
    }

    #[test]
    fn finds_the_minor_in_kubelet_addon_and_image_versions() {
        assert_eq!(minor_of("v1.32.3-eks-1b2c3d4"), Some(Version::new(1, 32)));
        assert_eq!(minor_of("v1.33.0-eksbuild.2"), Some(Version::new(1, 33)));
        assert_eq!(minor_of("1.34"), Some(Version::new(1, 34)));
        assert_eq!(
            minor_of("registry:5000/kube-proxy:v1.31.0-minimal-eksbuild.1"),
            Some(Version::new(1, 31))
        );
        assert_eq!(minor_of("latest"), None);
        assert_eq!(minor_of("registry/kube-proxy:latest"), None);
    }

    #[test]
    fn compares_numerically() {
        let v19: Version = "1.9".parse().unwrap();
        let v110: Version = "1.10".parse().unwrap();
        assert!(v19 < v110);
        assert_eq!(v19.next_minor(), v110);
        assert_eq!(v110.prev_minor(), Some(v19));
        assert_eq!(v19.minor_distance(Version::new(1, 12)), Some(3));
    }

    #[test]
    fn rejects_and_explains() {
        assert_eq!(
            "1.33.2".parse::<Version>(),
            Err(VersionError::HasPatch("1.33.2".into()))
        );
        assert_eq!(
            VersionError::HasPatch("1.33.2".into())
                .suggestion()
                .as_deref(),
            Some("1.33")
        );
        assert_eq!(
            "v1.33".parse::<Version>(),
            Err(VersionError::HasPrefix("v1.33".into()))
        );
        assert_eq!(
            VersionError::HasPrefix("v1.33".into())
                .suggestion()
                .as_deref(),
            Some("1.33")
        );
        for bad in [
            "", "1", "1.", ".1", "1.x", "-1.2", "1.+2", "01.2", "1 .2", "1.2.3.4",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?} should not parse");
        }
        assert!("99999999999.1".parse::<Version>().is_err());
    }
}
