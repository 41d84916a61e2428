//! The report for people and tickets: the run at a glance, what failed and why, what recovery
//! did in order, what could not be reversed, the cluster at the end, every step, and what to do
//! next.

use std::fmt::Write;

use super::RunReport;

/// The report for people.
pub fn markdown(r: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Upgrade report: `{}` ({})\n", r.cluster, r.region);
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(
        out,
        "| Result | **{}** (exit code {}) |",
        r.result,
        r.exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "—".into())
    );
    let _ = writeln!(out, "| Run | `{}` |", r.run_id);
    let _ = writeln!(out, "| Workflow | `{}` |", r.workflow);
    let path: Vec<&str> = r
        .start_version
        .iter()
        .map(String::as_str)
        .chain(r.hops.iter().map(String::as_str))
        .collect();
    let _ = writeln!(out, "| Versions | {} |", path.join(" → "));
    let _ = writeln!(
        out,
        "| Hops completed | {} |",
        if r.completed_hops.is_empty() {
            "none".to_string()
        } else {
            r.completed_hops.join(", ")
        }
    );
    if let Some(hop) = &r.failed_hop {
        let _ = writeln!(out, "| Hop failed | {hop} |");
    }
    let _ = writeln!(out, "| Started | {} |", r.started_at);
    let _ = writeln!(out, "| Last update | {} |\n", r.updated_at);
    let _ = writeln!(out, "{}\n", r.message);
    if let (Some(step), Some(why)) = (&r.failed_step, &r.failure) {
        let _ = writeln!(out, "## What failed\n\n`{step}`: {why}\n");
        for p in &r.health_problems {
            let _ = writeln!(out, "- {p}");
        }
        if !r.health_problems.is_empty() {
            let _ = writeln!(out);
        }
    }
    if let Some(bg) = &r.blue_green {
        bg.markdown(&mut out);
    }
    if !r.recovery.is_empty() || r.restored.is_some() || r.control_plane_rollback.is_some() {
        let _ = writeln!(out, "## Recovery, in order\n");
        for (i, x) in r.recovery.iter().enumerate() {
            let _ = writeln!(out, "{}. {x}", i + 1);
        }
        if r.recovery.is_empty() {
            if let Some(x) = &r.restored {
                let _ = writeln!(out, "- Velero restore: {x}");
            }
            if let Some(x) = &r.control_plane_rollback {
                let _ = writeln!(out, "- Control plane: {x}");
            }
        }
        let _ = writeln!(out);
    }
    if let Some(p) = &r.restore_preview {
        p.markdown(&mut out);
    }
    if !r.rollback_readiness.is_empty() {
        let _ = writeln!(out, "## Rollback readiness (EKS insights)\n");
        for x in &r.rollback_readiness {
            let _ = writeln!(out, "- {x}");
        }
        let _ = writeln!(out);
    }
    if !r.not_rolled_back.is_empty() {
        let _ = writeln!(out, "## Not rolled back\n");
        for x in &r.not_rolled_back {
            let _ = writeln!(out, "- {x}");
        }
        let _ = writeln!(out);
    }
    if !r.backups.is_empty() {
        let _ = writeln!(out, "## Backups\n");
        for b in &r.backups {
            let _ = writeln!(
                out,
                "- `{}`{} — {}",
                b.name,
                b.uid
                    .as_ref()
                    .map(|u| format!(" (uid {u})"))
                    .unwrap_or_default(),
                if b.verified {
                    "verified in S3"
                } else {
                    "not verified"
                }
            );
        }
        let _ = writeln!(out);
    }
    if let Some(s) = &r.cluster_state {
        let _ = writeln!(out, "## Cluster state at the end\n");
        let _ = writeln!(
            out,
            "- Control plane: {}",
            s.control_plane.as_deref().unwrap_or("unknown")
        );
        for n in &s.nodegroups {
            let _ = writeln!(
                out,
                "- Node group `{}`: {} ({})",
                n.name, n.version, n.status
            );
        }
        for a in &s.addons {
            let _ = writeln!(out, "- Add-on `{}`: {} ({})", a.name, a.version, a.status);
        }
        for k in &s.kubelets {
            let _ = writeln!(
                out,
                "- Kubelets: {} {} of {} at {}",
                k.nodes,
                if k.nodes == 1 { "node" } else { "nodes" },
                k.owner(),
                k.version
            );
        }
        if let Some(kp) = &s.kube_proxy {
            let _ = writeln!(out, "- kube-proxy: {kp}");
        }
        for u in &s.unsupported {
            let _ = writeln!(out, "- **Error:** {u}");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "## Steps\n\n| Step | Hop | Status | Time | Summary |\n|---|---|---|---|---|"
    );
    for s in &r.steps {
        let summary = s
            .error
            .as_ref()
            .or(s.summary.as_ref())
            .map(|x| x.replace('|', "\\|"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| `{}.{}` | {} | {} | {} | {} |",
            s.phase,
            s.id,
            s.hop.as_deref().unwrap_or(""),
            s.status,
            s.duration_seconds
                .map(|d| format!("{d:.1}s"))
                .unwrap_or_default(),
            summary
        );
    }
    let _ = writeln!(out, "\n## Next steps\n");
    for n in &r.next_steps {
        let _ = writeln!(out, "- {n}");
    }
    out
}
