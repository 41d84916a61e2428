//! `restoreToGreen`: restores blue's verified backup into green, through the location
//! `attachBackupLocation` gave green. It is `veleroRestore` pointed at green: the same proof
//! (this run verified the backup in S3), the same check of the bucket's files against the
//! manifest written at verification and the same preview, now read against green. The Backup
//! object on green was made by Velero's sync and has a uid of its own; it is matched by name,
//! and the files checked in S3 are what tie it to the verified backup. A restore that ends
//! `PartiallyFailed` or `Failed` fails the step, naming where Velero reported errors: traffic
//! must not move to a green that lacks part of blue.

use super::kind::{BuildCx, Kind, Placement, PlanCx, Role, TimeScale};
use super::restore::{RawVeleroRestore, RestoreInto, VeleroRestore, VeleroRestoreKind};
use super::{StepCtx, StepResult};
use crate::cloud::eks::EksError;
use crate::format::Validator;
use crate::format::spanned::Spanned;
use crate::format::text::StepRef;
use crate::types::Phase;
use crate::velero::restore::ExistingResourcePolicy;

pub struct RestoreToGreenKind;

impl Kind for RestoreToGreenKind {
    type Raw = RawVeleroRestore;
    type Model = VeleroRestore;

    const DOC: &'static str = "Restores blue's verified backup into green.";
    const TITLE: &'static str = "Restore into green";
    const PLACEMENT: Placement = Placement {
        sections: &[Phase::Upgrade],
        why: "green is built and filled in `upgrade`, after green exists",
    };
    const MUTATES: bool = true;
    const ROLES: &'static [Role] = &[Role::RestoresBackup, Role::RestoresIntoGreen];
    const EXAMPLE: &'static str = "{ backup: backup, excludedNamespaces: [kube-system] }";

    fn build(
        raw: &Spanned<RawVeleroRestore>,
        v: &mut Validator<'_>,
        cx: &BuildCx<'_>,
    ) -> Option<VeleroRestore> {
        VeleroRestoreKind::build(raw, v, cx)
    }

    fn backup_ref(raw: &RawVeleroRestore) -> Option<&Spanned<StepRef>> {
        Some(&raw.backup)
    }

    fn backup(step: &VeleroRestore) -> Option<&str> {
        Some(&step.backup)
    }

    async fn plan(step: &VeleroRestore, _: &mut PlanCx<'_>) -> Result<Vec<String>, EksError> {
        let mut scope = Vec::new();
        if let Some(ns) = &step.spec.included_namespaces {
            scope.push(format!("namespaces {}", quoted(ns)));
        }
        if !step.spec.excluded_namespaces.is_empty() {
            scope.push(format!("except {}", quoted(&step.spec.excluded_namespaces)));
        }
        Ok(vec![format!(
            "green: restores the verified backup of `{}`{} (existing objects: {}), after checking its files against the manifest{}",
            step.backup,
            if scope.is_empty() {
                String::new()
            } else {
                format!(" ({})", scope.join(", "))
            },
            if step.spec.existing_resource_policy == ExistingResourcePolicy::Update {
                "update"
            } else {
                "keep"
            },
            if step.preview {
                " and previewing the changes against green"
            } else {
                ""
            }
        )])
    }

    async fn run(step: &VeleroRestore, ctx: &StepCtx<'_>) -> StepResult {
        let green = ctx.green_cluster().await?;
        let conn = ctx.green().await?;
        super::restore::restore_into(
            step,
            ctx,
            RestoreInto::Green {
                conn,
                name: &green.name,
            },
        )
        .await
    }

    fn scale_time(step: &mut VeleroRestore, scale: &TimeScale) {
        VeleroRestoreKind::scale_time(step, scale);
    }

    fn typical_minutes(_: &VeleroRestore) -> u64 {
        10
    }
}

/// `` `shop`, `payments` ``
fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
