//! The step kinds of the catalog. Each kind is one file, implementing [`Kind`]; the list below is
//! the only other place that names it, and everything that has to know every kind — the step
//! mapping of the file format and its schema, validation, plans, time scaling and dispatch — is
//! derived from that list.
//!
//! A step runs with a [`StepCtx`] and either succeeds with a one-line summary or fails with a
//! reason. Every step records what it is about to do and what it did in the journal, so that a
//! resumed run re-attaches instead of repeating.

mod context;
pub mod kind;

pub mod addons;
pub mod adopt_green;
pub mod approval;
pub mod attach_location;
pub mod backup;
pub mod blue_green;
pub mod control_plane;
pub mod create_green;
pub mod eksctl;
pub mod green;
pub mod health;
pub mod node_pools;
pub mod nodegroups;
pub mod notify;
pub mod preflight;
pub mod readiness;
pub mod restore;
pub mod restore_green;
pub mod retire_blue;
pub mod rollback;
pub mod rollback_addons;
pub mod rollback_nodegroups;
pub mod soak;
pub mod switch_back;
pub mod test_green;
pub mod traffic;
pub mod verify;
pub mod wait_green;

use futures::future::BoxFuture;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

pub use context::{Cause, Context, StepCtx, StepError, StepResult, object_name};
pub use kind::{BuildCx, Kind, Placement, PlanCx, Projection, Role, TimeScale};

use crate::cloud::eks::EksError;
use crate::format::Validator;
use crate::format::spanned::{Loc, Spanned};
use crate::format::text::StepRef;

/// Declares the kinds: `Variant(module::Kind) = "yamlKey"`, in catalog order.
macro_rules! step_kinds {
    ($($variant:ident($kind:ty) = $key:literal;)+) => {
        /// One step: an `id` and exactly one step kind.
        #[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        #[schemars(transform = exactly_one_kind)]
        #[allow(non_snake_case)]
        pub struct RawStep {
            /// A unique id, used in plans, logs, the journal and references such as `backup: backup`.
            pub id: Spanned<String>,
            /// A human title for progress and reports. Default: derived from the kind.
            pub name: Option<String>,
            $(
                #[serde(rename = $key)]
                #[schemars(description = <$kind as Kind>::DOC)]
                pub $variant: Option<Spanned<<$kind as Kind>::Raw>>,
            )+
        }

        /// What a step does, validated.
        #[derive(Debug, Clone, Serialize)]
        pub enum StepKind {
            $(
                #[serde(rename = $key)]
                $variant(<$kind as Kind>::Model),
            )+
        }

        /// The YAML keys that name a step kind, in catalog order.
        pub const STEP_KINDS: &[&str] = &[$($key),+];

        /// A kind without its options: how the journal and the report name what a step was.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum KindName {
            $($variant,)+
        }

        impl KindName {
            /// The YAML key, as the journal records it.
            pub fn key(self) -> &'static str {
                match self {
                    $(KindName::$variant => $key,)+
                }
            }
        }

        impl RawStep {
            /// The kinds set on this step, by YAML key, with their locations. More than one is
            /// a problem the validator reports.
            pub fn kinds(&self) -> Vec<(&'static str, Loc)> {
                let mut out = Vec::new();
                $(
                    if let Some(s) = &self.$variant {
                        out.push(($key, s.loc));
                    }
                )+
                out
            }

            /// Builds the first kind set on the step.
            pub fn build(&self, v: &mut Validator<'_>, cx: &BuildCx<'_>) -> Option<StepKind> {
                $(
                    if let Some(s) = &self.$variant {
                        return <$kind as Kind>::build(s, v, cx).map(StepKind::$variant);
                    }
                )+
                None
            }

            /// The backup step the step names, with its location.
            pub fn backup_ref(&self) -> Option<&Spanned<StepRef>> {
                $(
                    if let Some(s) = &self.$variant {
                        return <$kind as Kind>::backup_ref(&s.value);
                    }
                )+
                None
            }
        }

        impl StepKind {
            /// The YAML key of the kind.
            pub fn key(&self) -> &'static str {
                self.name().key()
            }

            pub fn name(&self) -> KindName {
                match self {
                    $(StepKind::$variant(_) => KindName::$variant,)+
                }
            }

            pub fn title(&self) -> &'static str {
                match self {
                    $(StepKind::$variant(_) => <$kind as Kind>::TITLE,)+
                }
            }

            /// Whether the step changes the cluster (as opposed to reading it or talking to
            /// people).
            pub fn mutates_cluster(&self) -> bool {
                match self {
                    $(StepKind::$variant(_) => <$kind as Kind>::MUTATES,)+
                }
            }

            pub fn roles(&self) -> &'static [Role] {
                match self {
                    $(StepKind::$variant(_) => <$kind as Kind>::ROLES,)+
                }
            }

            /// Whether the step acts on green rather than blue.
            pub fn on_green(&self) -> bool {
                match self {
                    $(StepKind::$variant(s) => <$kind as Kind>::on_green(s),)+
                }
            }

            /// Whether the step may only run after an `approval` step in its section.
            pub fn needs_approval(&self) -> bool {
                match self {
                    $(StepKind::$variant(s) => <$kind as Kind>::needs_approval(s),)+
                }
            }

            /// The id of the backup step this step names (`verifyBackup`, `veleroRestore`).
            pub fn backup(&self) -> Option<&str> {
                match self {
                    $(StepKind::$variant(s) => <$kind as Kind>::backup(s),)+
                }
            }

            /// Runs the step.
            pub fn run<'a>(&'a self, ctx: &'a StepCtx<'a>) -> BoxFuture<'a, StepResult> {
                match self {
                    $(StepKind::$variant(s) => Box::pin(<$kind as Kind>::run(s, ctx)),)+
                }
            }

            /// What the step would change.
            pub async fn plan(&self, cx: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
                match self {
                    $(StepKind::$variant(s) => <$kind as Kind>::plan(s, cx).await,)+
                }
            }

            pub fn scale_time(&mut self, scale: &TimeScale) {
                match self {
                    $(StepKind::$variant(s) => <$kind as Kind>::scale_time(s, scale),)+
                }
            }

            pub fn typical_minutes(&self) -> u64 {
                match self {
                    $(StepKind::$variant(s) => <$kind as Kind>::typical_minutes(s),)+
                }
            }
        }

        /// Where a kind may appear, by YAML key.
        pub fn placement(key: &str) -> Option<Placement> {
            match key {
                $($key => Some(<$kind as Kind>::PLACEMENT),)+
                _ => None,
            }
        }

        /// What a kind does for the structure rules, by YAML key: empty for an unknown key.
        pub fn roles(key: &str) -> &'static [Role] {
            match key {
                $($key => <$kind as Kind>::ROLES,)+
                _ => &[],
            }
        }

        /// Every kind's YAML key with its minimal example, for tests and documentation.
        pub fn examples() -> Vec<(&'static str, &'static str)> {
            vec![$(($key, <$kind as Kind>::EXAMPLE)),+]
        }
    };
}

step_kinds! {
    Preflight(preflight::PreflightKind) = "preflight";
    VeleroBackup(backup::VeleroBackupKind) = "veleroBackup";
    VerifyBackup(verify::VerifyBackupKind) = "verifyBackup";
    Approval(approval::ApprovalKind) = "approval";
    UpgradeControlPlane(control_plane::UpgradeControlPlaneKind) = "upgradeControlPlane";
    UpgradeAddons(addons::UpgradeAddonsKind) = "upgradeAddons";
    UpgradeNodegroups(nodegroups::UpgradeNodegroupsKind) = "upgradeNodegroups";
    ConvergeNodePools(node_pools::ConvergeNodePoolsKind) = "convergeNodePools";
    Eksctl(eksctl::EksctlKind) = "eksctl";
    CreateGreen(create_green::CreateGreenKind) = "createGreen";
    AdoptGreen(adopt_green::AdoptGreenKind) = "adoptGreen";
    WaitGreen(wait_green::WaitGreenKind) = "waitGreen";
    HealthCheck(health::HealthCheckKind) = "healthCheck";
    Soak(soak::SoakKind) = "soak";
    ShiftTraffic(traffic::ShiftTrafficKind) = "shiftTraffic";
    VeleroRestore(restore::VeleroRestoreKind) = "veleroRestore";
    RollbackNodegroups(rollback_nodegroups::RollbackNodegroupsKind) = "rollbackNodegroups";
    RollbackAddons(rollback_addons::RollbackAddonsKind) = "rollbackAddons";
    RollbackControlPlane(rollback::RollbackControlPlaneKind) = "rollbackControlPlane";
    SwitchBack(switch_back::SwitchBackKind) = "switchBack";
    AttachBackupLocation(attach_location::AttachBackupLocationKind) = "attachBackupLocation";
    RestoreToGreen(restore_green::RestoreToGreenKind) = "restoreToGreen";
    TestGreen(test_green::TestGreenKind) = "testGreen";
    RetireBlue(retire_blue::RetireBlueKind) = "retireBlue";
    Notify(notify::NotifyKind) = "notify";
}

/// The schema of a step says what the structural check cannot see in its properties alone:
/// exactly one kind is set.
fn exactly_one_kind(schema: &mut Schema) {
    let one_of: Vec<serde_json::Value> = STEP_KINDS
        .iter()
        .map(|k| serde_json::json!({ "required": [k] }))
        .collect();
    schema.insert("oneOf".into(), one_of.into());
}

/// A step of the workflow: its id, its optional title and what it does.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub id: String,
    pub name: Option<String>,
    #[serde(flatten)]
    pub kind: StepKind,
}

impl Step {
    /// The title shown in progress output and reports.
    pub fn title(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.kind.title().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list is the only place a kind is named: every key is unique, has a placement, and
    /// its model reports the same key back.
    #[test]
    fn every_kind_in_the_list_is_complete() {
        let mut seen = std::collections::BTreeSet::new();
        for key in STEP_KINDS {
            assert!(seen.insert(*key), "`{key}` is listed twice");
            let placement = placement(key).unwrap_or_else(|| panic!("`{key}` has no placement"));
            assert!(!placement.sections.is_empty(), "`{key}` is allowed nowhere");
            assert!(
                placement.sections.len() == 4 || !placement.why.is_empty(),
                "`{key}` is restricted without saying why"
            );
        }
        assert_eq!(examples().len(), STEP_KINDS.len());
    }

    /// `roles(key)` answers what the kind's model says, so tests that only know keys (the
    /// kind-list test of the integration suite) see the same roles the validator does.
    #[test]
    fn roles_by_key_match_the_kinds() {
        assert!(roles("upgradeControlPlane").contains(&Role::MovesControlPlane));
        assert!(roles("veleroBackup").contains(&Role::CreatesBackup));
        assert!(roles("veleroRestore").contains(&Role::RestoresBackup));
        assert!(roles("approval").is_empty());
        assert!(roles("noSuchKind").is_empty());
        for key in STEP_KINDS {
            for role in roles(key) {
                assert!(
                    !(role.is_green() && Role::IN_PLACE.contains(role)),
                    "`{key}` has a role that is both green and in-place"
                );
            }
        }
    }
}
