//! What the steps of a blue/green run share while it runs: which cluster is green (a run fact
//! written by the step that creates or adopts it), the connection to green (made once, when a
//! step first needs it), and the DNS weights over time (a run fact every weight change appends
//! to, which recovery and the report read).

use serde::{Deserialize, Serialize};

use crate::cloud::connect::Connection;
use crate::journal::Fact;
use crate::journal::handle::JournalHandle;
use crate::journal::store::StoreError;
use crate::types::Version;

/// The green cluster of the run, recorded by `createGreen` or `adoptGreen` once it exists.
pub const GREEN: Fact<GreenCluster> = Fact::new("green");

/// Every weight change of the run, in order.
pub const TRAFFIC: Fact<Vec<WeightPoint>> = Fact::new("traffic");

/// The connection to green, made at most once per process: a resumed run makes its own.
pub type GreenSlot = tokio::sync::OnceCell<Connection>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GreenCluster {
    pub name: String,
    pub arn: String,
    pub version: Version,
    /// Whether this run created it (`createGreen`) rather than adopting one that existed.
    pub created: bool,
}

/// One weight change: what was asked, of which change, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeightPoint {
    /// When the change was submitted (RFC 3339, as the journal writes times).
    pub at: String,
    /// The step that made it.
    pub step: String,
    pub blue: i64,
    pub green: i64,
    /// Route 53's change id; `None` when a resumed run found the weights already applied by
    /// a change it had not recorded.
    pub change_id: Option<String>,
    /// `PENDING` when submitted, `INSYNC` once Route 53 said so.
    pub status: String,
    /// Why the weights moved: a stage of the shift, or the switch back after a failure.
    pub why: String,
}

/// The weight changes recorded so far.
pub async fn traffic(journal: &JournalHandle) -> Vec<WeightPoint> {
    journal.run_fact(&TRAFFIC).await.unwrap_or_default()
}

/// Whether green has ever been asked to take traffic: what decides between "blue untouched"
/// (exit 3) and "switched back" (exit 4) after a failure.
pub fn moved(points: &[WeightPoint]) -> bool {
    points.iter().any(|p| p.green > 0)
}

/// Appends a weight change, or updates the one with the same change id (its status went
/// `INSYNC`), durably.
pub async fn record_point(journal: &JournalHandle, point: WeightPoint) -> Result<(), StoreError> {
    let mut points = traffic(journal).await;
    match points
        .iter_mut()
        .find(|p| p.change_id.is_some() && p.change_id == point.change_id)
    {
        Some(existing) => existing.status = point.status,
        None => points.push(point),
    }
    journal.record_run_fact(&TRAFFIC, &points).await
}

/// The record type the tool moves: weighted CNAME sets (alias records are not supported yet).
pub const RECORD_TYPE: &str = "CNAME";

/// The weights blue's and green's sets have now, as Route 53 answers (`None` for a set that
/// does not exist): what recovery and a resumed run trust over the journal.
pub async fn dns_weights(
    conn: &Connection,
    traffic: &super::blue_green::Traffic,
) -> Result<Weights, crate::cloud::route53::Route53Error> {
    let (_, sets) = super::traffic::read_sets(conn, traffic).await?;
    Ok(super::traffic::split_of(&sets, traffic).into())
}

/// Blue's and green's weights as read; `None` for a set that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    pub blue: Option<i64>,
    pub green: Option<i64>,
}

impl Weights {
    /// Whether every request goes to blue.
    pub fn all_blue(self) -> bool {
        self.blue.unwrap_or(0) > 0 && self.green.unwrap_or(0) == 0
    }
}

impl std::fmt::Display for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |w: Option<i64>| w.map_or("no set".to_string(), |w| w.to_string());
        write!(f, "blue {}/green {}", show(self.blue), show(self.green))
    }
}

/// One change of a `--change-batch` for the `aws` CLI: `action` on `set` of `record`, at
/// `weight`.
pub fn change_json(
    action: &str,
    record: &str,
    set: &crate::cloud::route53::Weighted,
    weight: i64,
) -> serde_json::Value {
    serde_json::json!({
        "Action": action,
        "ResourceRecordSet": {
            "Name": crate::cloud::route53::fqdn(record),
            "Type": RECORD_TYPE,
            "SetIdentifier": set.set_identifier,
            "Weight": weight,
            "TTL": set.ttl,
            "ResourceRecords": set.values.iter().map(|v| serde_json::json!({ "Value": v })).collect::<Vec<_>>(),
        }
    })
}

/// `text` as one shell word, for commands printed for a person to paste.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The one command that puts every request on blue now (blue 100, green 0, in one batch), for
/// a person when the run cannot: after an interrupt, or when recovery itself failed.
pub async fn switch_back_command(
    conn: &Connection,
    traffic: &super::blue_green::Traffic,
) -> Result<String, crate::cloud::route53::Route53Error> {
    let (zone, sets) = super::traffic::read_sets(conn, traffic).await?;
    let changes: Vec<serde_json::Value> = [(&traffic.blue_set, 100), (&traffic.green_set, 0)]
        .into_iter()
        .filter_map(|(id, weight)| {
            let set = sets.iter().find(|s| &s.set_identifier == id)?;
            Some(change_json("UPSERT", &traffic.record, set, weight))
        })
        .collect();
    let batch = serde_json::json!({ "Comment": "eks-upgrade: every request back to blue", "Changes": changes });
    Ok(format!(
        "aws route53 change-resource-record-sets --hosted-zone-id {zone} --change-batch {}",
        shell_quote(&batch.to_string())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(green: i64, id: &str) -> WeightPoint {
        WeightPoint {
            at: crate::journal::now(),
            step: "shift".into(),
            blue: 100 - green,
            green,
            change_id: Some(id.into()),
            status: "PENDING".into(),
            why: "stage".into(),
        }
    }

    #[test]
    fn traffic_moved_once_green_had_any_weight() {
        assert!(!moved(&[]));
        assert!(!moved(&[point(0, "a")]));
        assert!(moved(&[point(0, "a"), point(10, "b")]));
    }
}
