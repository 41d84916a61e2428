//! Karpenter NodePool disruption budgets (`spec.disruption.budgets`): how many of a pool's nodes
//! Karpenter will disrupt right now for one reason. It follows Karpenter's own arithmetic
//! (`GetAllowedDisruptionsByReason` and the disruption controller) so a pre-flight check can
//! predict whether Karpenter will replace drifted nodes during an upgrade or hold them back.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::types::cron::{CronError, Schedule};

/// One entry of `spec.disruption.budgets`, as in the NodePool JSON.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// A count (`5`) or a percentage of the pool's nodes (`10%`); the CRD defaults it to `10%`.
    #[serde(default = "default_nodes")]
    pub nodes: String,
    /// The disruption reasons limited (`Underutilized`, `Empty`, `Drifted`); absent means all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
    /// A cron schedule (UTC) at whose firings the budget comes into force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// How long the budget stays in force after each firing: `1h`, `30m`, `1h30m`, `10m0s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

fn default_nodes() -> String {
    "10%".into()
}

/// The budget Karpenter's CRD fills in when a NodePool gives none.
impl Default for Budget {
    fn default() -> Budget {
        Budget {
            nodes: default_nodes(),
            reasons: None,
            schedule: None,
            duration: None,
        }
    }
}

/// Why a budget cannot be evaluated; Karpenter then allows no disruptions at all.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error(
        "`nodes` value `{0}` is neither a count such as `5` nor a percentage from `0%` to `100%`"
    )]
    Nodes(String),
    #[error("`duration` value `{0}` is not hours and minutes such as `1h`, `30m` or `1h30m`")]
    Duration(String),
    #[error("`duration` is set without a `schedule`")]
    DurationWithoutSchedule,
    #[error("`schedule` value `{text}` is not a valid cron schedule")]
    Schedule {
        text: String,
        #[source]
        source: CronError,
    },
}

/// The disruptions Karpenter allows a pool for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    /// Nodes that may still be disrupted: never more than the pool has, minus those already
    /// being disrupted, and 0 when a budget is invalid.
    pub nodes: usize,
    /// The budget (index into the list given) that set the result; `None` when no budget in
    /// force applies, so only the pool's size limits.
    pub limiting: Option<usize>,
    /// The first budget that could not be evaluated, with the reason.
    pub invalid: Option<(usize, String)>,
}

impl Budget {
    /// An absent `reasons` list means every reason; a present but empty one matches none,
    /// because Karpenter tests the list against `nil`, and an empty JSON list is not `nil`.
    pub fn applies_to(&self, reason: &str) -> bool {
        self.reasons
            .as_ref()
            .is_none_or(|r| r.iter().any(|x| x == reason))
    }

    /// Whether the budget is in force at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> Result<bool, BudgetError> {
        let (text, duration) = match (&self.schedule, &self.duration) {
            (None, None) => return Ok(true),
            // Karpenter parses an empty schedule here, which fails.
            (None, Some(_)) => return Err(BudgetError::DurationWithoutSchedule),
            (Some(text), duration) => (text, duration),
        };
        let schedule = Schedule::parse(text).map_err(|source| BudgetError::Schedule {
            text: text.clone(),
            source,
        })?;
        // The CRD requires both fields; Karpenter's code reads a missing duration as zero.
        let duration = duration.as_deref().map(parse_duration).transpose()?;
        // robfig's `Next` returns the zero time when it finds no firing, and Karpenter reads
        // "the next firing is not after now" as active: a schedule that never fires is always
        // in force.
        Ok(!schedule.can_fire() || schedule.active(now, duration.unwrap_or(Duration::zero())))
    }

    /// The nodes this budget allows out of `num_nodes` at `now`, or `None` when it is not in
    /// force. `nodes` is only read when the budget is in force, as in Karpenter.
    pub fn allows(
        &self,
        num_nodes: usize,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, BudgetError> {
        if !self.is_active(now)? {
            return Ok(None);
        }
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let bad = || BudgetError::Nodes(self.nodes.clone());
        // The CRD pattern: `^((100|[0-9]{1,2})%|[0-9]+)$`.
        match self.nodes.strip_suffix('%') {
            Some(p) if digits(p) && (p.len() <= 2 || p == "100") => {
                let percent = p.parse::<u128>().map_err(|_| bad())?;
                // Rounded up, like a PodDisruptionBudget's `maxUnavailable`, so a small pool
                // with `10%` can still lose one node at a time.
                let scaled = (percent * num_nodes as u128).div_ceil(100);
                Ok(Some(usize::try_from(scaled).map_err(|_| bad())?))
            }
            Some(_) => Err(bad()),
            None if digits(&self.nodes) => Ok(Some(self.nodes.parse().map_err(|_| bad())?)),
            None => Err(bad()),
        }
    }
}

/// Parses a budget `duration` in the forms Karpenter's CRD admits: `Nh`, `Nm` or `NhMm`,
/// optionally followed by the `0s` Go's duration printer appends.
pub fn parse_duration(text: &str) -> Result<Duration, BudgetError> {
    let bad = || BudgetError::Duration(text.into());
    let number = |s: &str| {
        let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        digits
            .then(|| s.parse::<i64>().ok())
            .flatten()
            .ok_or_else(bad)
    };
    let rest = text
        .strip_suffix("0s")
        .filter(|r| !r.is_empty())
        .unwrap_or(text);
    let (hours, rest) = match rest.split_once('h') {
        Some((h, rest)) => (number(h)?, rest),
        None => (0, rest),
    };
    let minutes = match rest {
        "" if text.contains('h') => 0,
        _ => number(rest.strip_suffix('m').ok_or_else(bad)?)?,
    };
    // Go durations are nanoseconds in an i64; anything longer fails to decode in Karpenter.
    const GO_MAX_MINUTES: i64 = i64::MAX / 60_000_000_000;
    let total = hours.checked_mul(60).and_then(|h| h.checked_add(minutes));
    total
        .filter(|m| *m <= GO_MAX_MINUTES)
        .map(Duration::minutes)
        .ok_or_else(bad)
}

impl Allowance {
    /// The budget that set this allowance, for a person: ``budgets[0] `nodes: "0"` `` (with its
    /// schedule), or why none could be read.
    pub fn describe(&self, budgets: &[Budget]) -> String {
        if let Some((i, why)) = &self.invalid {
            return format!("`budgets[{i}]` is invalid ({why}), and Karpenter then allows none");
        }
        match self.limiting.and_then(|i| budgets.get(i).map(|b| (i, b))) {
            Some((i, b)) => format!(
                "`budgets[{i}]` `nodes: \"{}\"`{}",
                b.nodes,
                b.schedule
                    .as_ref()
                    .map(|s| format!(" (schedule `{s}`)"))
                    .unwrap_or_default()
            ),
            None if budgets.is_empty() => "the default budget `nodes: \"10%\"`".to_string(),
            None => "its budgets, with the nodes already being replaced".to_string(),
        }
    }
}

/// The disruptions Karpenter allows for `reason` in a pool of `num_nodes` of which `disrupting`
/// are already NotReady or being deleted. An empty `budgets` means the CRD default (`10%`),
/// which is what an absent field becomes; Karpenter itself reads a list stored empty as no limit.
pub fn allowed(
    budgets: &[Budget],
    reason: &str,
    num_nodes: usize,
    disrupting: usize,
    now: DateTime<Utc>,
) -> Allowance {
    let default = [Budget::default()];
    let budgets = if budgets.is_empty() {
        &default[..]
    } else {
        budgets
    };
    let mut least: Option<(usize, usize)> = None;
    for (i, budget) in budgets.iter().enumerate() {
        match budget.allows(num_nodes, now) {
            // Karpenter fails closed on any broken budget, even one for another reason.
            Err(e) => {
                let invalid = Some((i, describe(&e)));
                return Allowance {
                    nodes: 0,
                    limiting: Some(i),
                    invalid,
                };
            }
            Ok(Some(n)) if budget.applies_to(reason) && least.is_none_or(|(m, _)| n < m) => {
                least = Some((n, i));
            }
            Ok(_) => {}
        }
    }
    // Karpenter's "unlimited" is a huge number; no more nodes than the pool has can go.
    let cap = least.map_or(num_nodes, |(n, _)| n.min(num_nodes));
    Allowance {
        nodes: cap.saturating_sub(disrupting),
        limiting: least.map(|(_, i)| i),
        invalid: None,
    }
}

/// An error with its causes, on one line.
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out = format!("{out}: {c}");
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("test time").to_utc()
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Case {
        name: String,
        budgets: Vec<Budget>,
        reason: String,
        num_nodes: usize,
        disrupting: usize,
        now: String,
        allowed: usize,
    }

    #[test]
    fn shared_case_table() {
        let cases: Vec<Case> = serde_json::from_str(include_str!("karpenter_budget_cases.json"))
            .expect("case table parses");
        assert!(cases.len() >= 12, "only {} cases", cases.len());
        let mut failures = Vec::new();
        for c in &cases {
            let got = allowed(&c.budgets, &c.reason, c.num_nodes, c.disrupting, t(&c.now));
            if got.nodes != c.allowed {
                failures.push(format!(
                    "{}: allowed {} but the table says {} ({got:?})",
                    c.name, got.nodes, c.allowed
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn reports_the_limiting_and_the_invalid_budget() {
        let now = t("2025-06-02T12:00:00Z");
        let b = |nodes: &str| Budget {
            nodes: nodes.into(),
            ..Budget::default()
        };
        let got = allowed(&[b("20%"), b("3"), b("3")], "Drifted", 20, 0, now);
        assert_eq!(
            got,
            Allowance {
                nodes: 3,
                limiting: Some(1),
                invalid: None
            }
        );
        let other = Budget {
            reasons: Some(vec!["Empty".into()]),
            ..b("0")
        };
        assert_eq!(allowed(&[other], "Drifted", 4, 1, now).limiting, None);
        let sunday = Budget {
            schedule: Some("0 0 * * 7".into()),
            duration: Some("1h".into()),
            ..b("1")
        };
        let got = allowed(&[b("5"), sunday], "Drifted", 20, 0, now);
        let (index, message) = got.invalid.expect("the bad schedule is reported");
        assert_eq!((got.nodes, index), (0, 1));
        assert_eq!(
            message,
            "`schedule` value `0 0 * * 7` is not a valid cron schedule: day of week `7` in cron schedule: 7 is outside 0-6"
        );
        let got = allowed(&[b("1O")], "Drifted", 20, 0, now);
        assert!(
            got.invalid
                .is_some_and(|(_, m)| m.contains("`nodes` value `1O`"))
        );
    }

    #[test]
    fn budgets_read_from_nodepool_json() {
        let json = r#"[{}, {"nodes": "0", "reasons": [], "schedule": "@daily", "duration": "1h"}]"#;
        let budgets: Vec<Budget> = serde_json::from_str(json).expect("budgets parse");
        assert_eq!(budgets[0], Budget::default());
        assert_eq!(budgets[1].reasons, Some(vec![]));
        // An empty reasons list limits nothing, so the `0` budget at midnight does not apply.
        assert!(!budgets[1].applies_to("Drifted"));
        assert_eq!(
            allowed(&budgets, "Drifted", 30, 0, t("2025-06-02T00:30:00Z")).nodes,
            3
        );
        let out = serde_json::to_string(&Budget::default()).expect("serializes");
        assert_eq!(out, r#"{"nodes":"10%"}"#);
    }

    #[test]
    fn go_durations() {
        for (text, minutes) in [
            ("1h", 60),
            ("30m", 30),
            ("1h30m", 90),
            ("10m0s", 10),
            ("2h0s", 120),
            ("0m", 0),
        ] {
            assert_eq!(
                parse_duration(text).expect(text),
                Duration::minutes(minutes),
                "{text}"
            );
        }
        for text in [
            "",
            "0s",
            "90s",
            "1.5h",
            "1m30h",
            "1h30",
            "h",
            "m",
            "1h30m10s",
            "-1h",
            "1d",
            "9999999999h",
        ] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
        let message = parse_duration("90s").expect_err("seconds").to_string();
        assert_eq!(
            message,
            "`duration` value `90s` is not hours and minutes such as `1h`, `30m` or `1h30m`"
        );
    }
}
