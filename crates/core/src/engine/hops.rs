//! From where the cluster is to where the run should end: the list of hops, one minor version
//! each, checked against the versions EKS offers.

use crate::types::Version;
use crate::workflow::Target;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HopError {
    #[error("the cluster runs {current}; {target} would be a downgrade, which EKS does not allow")]
    Downgrade { current: Version, target: Version },
    #[error("{target} has a different major version than the cluster's {current}")]
    Major { current: Version, target: Version },
    #[error("{}", if missing == target { format!("EKS does not offer {target}") } else { format!("EKS does not offer {missing}, which the upgrade from {current} to {target} would pass through") })]
    NotOffered {
        current: Version,
        target: Version,
        missing: Version,
    },
    #[error("the cluster runs {current}, the newest version EKS offers")]
    NothingNewer { current: Version },
}

impl HopError {
    pub fn hint(&self) -> String {
        match self {
            HopError::Downgrade { .. } => "EKS can roll a control plane back one minor version within 7 days of an upgrade; that is a recovery step, not a target".into(),
            HopError::Major { .. } | HopError::NotOffered { .. } => "`eks-upgrade plan` lists the versions EKS offers for the cluster; choose one of them".into(),
            HopError::NothingNewer { .. } => "there is nothing to upgrade to yet".into(),
        }
    }
}

/// The version `target` names from `current`: refused when it is another major, older, or
/// (for `latest`) not newer than the cluster.
fn target_version(
    current: Version,
    target: Target,
    offered: &[Version],
) -> Result<Version, HopError> {
    let newest = offered
        .iter()
        .copied()
        .filter(|v| v.major == current.major)
        .max();
    let target = match target {
        Target::Version(v) => v,
        Target::Next => current.next_minor(),
        Target::Latest => match newest {
            Some(v) if v > current => v,
            _ => return Err(HopError::NothingNewer { current }),
        },
    };
    if target.major != current.major {
        return Err(HopError::Major { current, target });
    }
    if target < current {
        return Err(HopError::Downgrade { current, target });
    }
    Ok(target)
}

/// The hop versions from `current` to `target`, in order. Empty when the cluster is already
/// at the target.
pub fn resolve(
    current: Version,
    target: Target,
    offered: &[Version],
) -> Result<Vec<Version>, HopError> {
    let target = target_version(current, target, offered)?;
    let mut hops = Vec::new();
    let mut v = current;
    while v < target {
        v = v.next_minor();
        if !offered.contains(&v) {
            return Err(HopError::NotOffered {
                current,
                target,
                missing: v,
            });
        }
        hops.push(v);
    }
    Ok(hops)
}

/// The single hop of a blue/green run: the new cluster is created at the target directly, so
/// only the target itself must be offered (the minors between are never run). Downgrades,
/// another major and a cluster already at the newest version are refused as by [`resolve`];
/// empty when the cluster is already at the target.
pub fn jump(
    current: Version,
    target: Target,
    offered: &[Version],
) -> Result<Vec<Version>, HopError> {
    let target = target_version(current, target, offered)?;
    if target == current {
        return Ok(Vec::new());
    }
    if !offered.contains(&target) {
        return Err(HopError::NotOffered {
            current,
            target,
            missing: target,
        });
    }
    Ok(vec![target])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_goes_straight_to_the_target_and_needs_only_it_offered() {
        let offered: Vec<Version> = (30..=36).map(v).collect();
        assert_eq!(
            jump(v(33), Target::Version(v(35)), &offered),
            Ok(vec![v(35)])
        );
        assert_eq!(jump(v(33), Target::Next, &offered), Ok(vec![v(34)]));
        assert_eq!(jump(v(33), Target::Latest, &offered), Ok(vec![v(36)]));
        assert_eq!(jump(v(33), Target::Version(v(33)), &offered), Ok(vec![]));
        // The minors between need not be offered: green is created at the target.
        assert_eq!(
            jump(v(33), Target::Version(v(35)), &[v(33), v(35)]),
            Ok(vec![v(35)])
        );
        assert_eq!(
            jump(v(33), Target::Version(v(36)), &[v(33), v(35)]),
            Err(HopError::NotOffered {
                current: v(33),
                target: v(36),
                missing: v(36)
            })
        );
        assert!(matches!(
            jump(v(33), Target::Version(v(32)), &offered),
            Err(HopError::Downgrade { .. })
        ));
        assert!(matches!(
            jump(v(33), Target::Version(Version::new(2, 0)), &offered),
            Err(HopError::Major { .. })
        ));
        assert!(matches!(
            jump(v(36), Target::Latest, &offered),
            Err(HopError::NothingNewer { .. })
        ));
    }

    fn v(m: u32) -> Version {
        Version::new(1, m)
    }

    #[test]
    fn hops_one_minor_at_a_time() {
        let offered: Vec<Version> = (30..=36).map(v).collect();
        assert_eq!(
            resolve(v(32), Target::Version(v(35)), &offered),
            Ok(vec![v(33), v(34), v(35)])
        );
        assert_eq!(resolve(v(33), Target::Next, &offered), Ok(vec![v(34)]));
        assert_eq!(
            resolve(v(33), Target::Latest, &offered),
            Ok(vec![v(34), v(35), v(36)])
        );
        assert_eq!(resolve(v(33), Target::Version(v(33)), &offered), Ok(vec![]));
        assert!(matches!(
            resolve(v(33), Target::Version(v(32)), &offered),
            Err(HopError::Downgrade { .. })
        ));
        assert!(matches!(
            resolve(v(36), Target::Next, &offered),
            Err(HopError::NotOffered { .. })
        ));
        assert!(matches!(
            resolve(v(36), Target::Latest, &offered),
            Err(HopError::NothingNewer { .. })
        ));
        assert!(matches!(
            resolve(v(33), Target::Version(Version::new(2, 0)), &offered),
            Err(HopError::Major { .. })
        ));
        let gap = [v(33), v(35)];
        assert_eq!(
            resolve(v(33), Target::Version(v(35)), &gap),
            Err(HopError::NotOffered {
                current: v(33),
                target: v(35),
                missing: v(34)
            })
        );
        // 1.9 → 1.10 is one hop, not a downgrade.
        assert_eq!(resolve(v(9), Target::Next, &[v(9), v(10)]), Ok(vec![v(10)]));
    }
}
