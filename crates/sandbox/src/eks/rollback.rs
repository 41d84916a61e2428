//! Version rollback (`VersionRollback`): the prerequisites nothing bypasses, then the
//! rollback-readiness insights, refreshed at the request, that only `force` skips.
//!
//! The prerequisites: an in-place upgrade to the current version that the user started (not an
//! automatic one), at most 7 days ago in emulated time, not followed by another upgrade; one
//! minor back; and a target still supported under the cluster's upgrade policy.

use std::time::Duration;

use super::errors::{EksError, ErrorKind};
use super::insights;
use super::rollback_insights;
use super::state::{Eks, ROLLBACK_WINDOW, State};
use super::versions::{self, Support};
use eks_upgrade_core::types::{HumanDuration, Version};

/// The version a rollback would return to, while one is possible: within 7 days of an
/// in-place upgrade the user started.
pub fn window_target(eks: &Eks, state: &State) -> Option<Version> {
    let last = state.cluster.last_upgrade.filter(|l| !l.automatic)?;
    let age = eks.emulated_now() - last.at;
    if age > ROLLBACK_WINDOW.as_secs_f64() {
        return None;
    }
    state.cluster.version.prev_minor()
}

/// Checks a rollback request. The prerequisites come first and `force` does not touch them;
/// then the insights are refreshed, and any in ERROR refuses the rollback unless `force`.
pub fn check(
    eks: &Eks,
    state: &mut State,
    name: &str,
    target: Version,
    force: bool,
) -> Result<(), EksError> {
    let current = state.cluster.version;
    let refused = |why: String| {
        EksError::invalid_request(format!(
            "Cluster {name} cannot be rolled back from {current} to {target}: {why}"
        ))
        .cluster(name)
    };
    let Some(last) = state.cluster.last_upgrade else {
        // Without an earlier upgrade this is an ordinary downgrade, which EKS has always refused.
        return Err(EksError::invalid_parameter(format!(
            "Unsupported Kubernetes minor version update from {current} to {target}"
        ))
        .cluster(name));
    };
    if last.automatic {
        return Err(refused(
            "the last upgrade was an automatic upgrade by EKS; only in-place upgrades you started can be rolled back".into(),
        ));
    }
    let age = Duration::from_secs_f64((eks.emulated_now() - last.at).max(0.0));
    if age > ROLLBACK_WINDOW {
        return Err(refused(format!(
            "rollback is available for 7 days after an in-place upgrade, and the last upgrade completed {} ago",
            HumanDuration(Duration::from_secs(age.as_secs()))
        )));
    }
    match versions::find(&eks.world.scenario, target).map(|v| versions::support(&v)) {
        None | Some(Support::Unsupported) => {
            return Err(refused(format!(
                "Kubernetes {target} is no longer supported"
            )));
        }
        Some(Support::Extended) if eks.world.scenario.spec.cluster.support_type != "EXTENDED" => {
            return Err(refused(format!(
                "Kubernetes {target} is in extended support and the cluster's upgrade policy is STANDARD"
            )));
        }
        _ => {}
    }
    // EKS refreshes stale insights itself when a rollback is requested, forced or not.
    rollback_insights::refresh(eks, state);
    let blocking = insights::errors(eks, state, "ROLLBACK_READINESS", target);
    if !force && !blocking.is_empty() {
        return Err(blocked(name, &blocking));
    }
    Ok(())
}

/// The refusal of a rollback that insights in ERROR block, naming them.
pub fn blocked(name: &str, insights: &[String]) -> EksError {
    EksError::new(
        ErrorKind::InvalidState,
        format!(
            "Rollback readiness issues detected: {}. Call the EKS ListInsights API with the ROLLBACK_READINESS category to view rollback blocking issues detected by EKS. Pass the force flag to override rollback readiness errors and proceed with rollback.",
            insights.join(", ")
        ),
    )
    .cluster(name)
}
