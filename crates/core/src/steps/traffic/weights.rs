//! The arithmetic of a traffic shift, kept apart from the calls that carry it out: which
//! weights a stage asks for, whether the stages as written make sense, and — from what the
//! journal says and what Route 53 answers — whether a stage must still be submitted, waited for,
//! is done, or finds weights nobody asked for. A resumed run decides here, so it never repeats a
//! change and never guesses.

use serde::{Deserialize, Serialize};

use crate::cloud::route53::Weighted;
use crate::steps::green::Weights;

/// Blue's and green's weights: `None` for a set that does not exist (green's, before the first
/// stage creates it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Split {
    pub blue: Option<i64>,
    pub green: Option<i64>,
}

impl Split {
    /// Green at `percent`, blue at the rest.
    pub fn stage(percent: u32) -> Split {
        let p = i64::from(percent.min(100));
        Split {
            blue: Some(100 - p),
            green: Some(p),
        }
    }

    /// Every request to blue, none to green: where a switch back goes.
    pub const ALL_BLUE: Split = Split {
        blue: Some(100),
        green: Some(0),
    };

    /// The same routing: a missing green set sends green as little as a set of weight 0.
    pub fn same(self, other: Split) -> bool {
        self.blue == other.blue && self.green.unwrap_or(0) == other.green.unwrap_or(0)
    }

    /// Blue's and green's weights as written in plans: `90/10`.
    pub fn short(self) -> String {
        format!("{}/{}", self.blue.unwrap_or(0), self.green.unwrap_or(0))
    }
}

impl From<Split> for Weights {
    fn from(s: Split) -> Weights {
        Weights {
            blue: s.blue,
            green: s.green,
        }
    }
}

impl From<Weights> for Split {
    fn from(w: Weights) -> Split {
        Split {
            blue: w.blue,
            green: w.green,
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Weights {
            blue: self.blue,
            green: self.green,
        }
        .fmt(f)
    }
}

/// What a stage set out to do, recorded before its change is sent: the weights it read and the
/// weights it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    pub from: Split,
    pub to: Split,
}

/// What a stage does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send the change: Route 53 still has the weights the stage started from.
    Submit,
    /// The change was sent: wait until it is `INSYNC`.
    Wait(String),
    /// The weights are in place. `known` is false when a resumed run found them applied by a
    /// change whose id it had not recorded.
    Done { known: bool },
    /// Route 53 has weights the stage neither started from nor asked for: someone else moved
    /// them, and the run will not guess.
    Conflict,
}

/// The next move of a stage, from its recorded intent, its recorded change id, whether that
/// change was seen `INSYNC`, and the weights Route 53 has now.
pub fn next(intent: &Intent, change: Option<&str>, insync: bool, current: Split) -> Next {
    match change {
        Some(_) if insync => Next::Done { known: true },
        Some(id) => Next::Wait(id.to_string()),
        // The change may have been sent just before the run stopped: the weights tell.
        None if current.same(intent.to) => Next::Done { known: false },
        None if current.same(intent.from) => Next::Submit,
        None => Next::Conflict,
    }
}

/// Why the stages as written cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageProblem {
    Empty,
    /// Stage `index` (0-based) is not 1–100.
    OutOfRange {
        index: usize,
        value: u32,
    },
    /// Stage `index` does not move past the one before it.
    NotAscending {
        index: usize,
        value: u32,
        before: u32,
    },
    /// The last stage leaves blue with traffic.
    NotAll {
        last: u32,
    },
}

impl StageProblem {
    /// The index of the stage the problem is about, for its location; `None` for the list.
    pub fn index(&self) -> Option<usize> {
        match self {
            StageProblem::OutOfRange { index, .. } | StageProblem::NotAscending { index, .. } => {
                Some(*index)
            }
            StageProblem::Empty | StageProblem::NotAll { .. } => None,
        }
    }

    pub fn message(&self) -> String {
        match self {
            StageProblem::Empty => "`stages` is empty".into(),
            StageProblem::OutOfRange { value, .. } => {
                format!("stage `{value}` is not a percentage between 1 and 100")
            }
            StageProblem::NotAscending { value, before, .. } => {
                format!("stage `{value}` does not move past `{before}` before it")
            }
            StageProblem::NotAll { last } => {
                format!("the last stage sends green `{last}`%, not all the traffic")
            }
        }
    }

    pub fn help(&self) -> &'static str {
        match self {
            StageProblem::Empty | StageProblem::NotAll { .. } => {
                "list green's share at each stage, ending at 100, such as `[10, 50, 100]`"
            }
            StageProblem::OutOfRange { .. } => {
                "write green's share of the requests in percent, such as `10`"
            }
            StageProblem::NotAscending { .. } => {
                "list the stages in ascending order, such as `[10, 50, 100]`"
            }
        }
    }
}

/// Every problem of the stages as written: green's share in percent, each stage more than the
/// one before, ending with all of it.
pub fn check_stages(stages: &[u32]) -> Vec<StageProblem> {
    let mut out = Vec::new();
    for (index, &value) in stages.iter().enumerate() {
        if !(1..=100).contains(&value) {
            out.push(StageProblem::OutOfRange { index, value });
        } else if let Some(&before) = index.checked_sub(1).and_then(|i| stages.get(i))
            && value <= before
        {
            out.push(StageProblem::NotAscending {
                index,
                value,
                before,
            });
        }
    }
    match stages.last() {
        None => out.push(StageProblem::Empty),
        Some(&last) if last != 100 && (1..=100).contains(&last) => {
            out.push(StageProblem::NotAll { last })
        }
        Some(_) => {}
    }
    out
}

/// The sets a stage asks for: blue's set as it is with its new weight, and green's set pointing
/// at `green_value` with the same TTL as blue's, so that both sides of the name expire from
/// caches alike.
pub fn desired(blue: &Weighted, green_set: &str, green_value: &str, to: Split) -> Vec<Weighted> {
    vec![
        Weighted {
            weight: to.blue.unwrap_or(0),
            ..blue.clone()
        },
        Weighted {
            set_identifier: green_set.to_string(),
            weight: to.green.unwrap_or(0),
            ttl: blue.ttl,
            values: vec![green_value.to_string()],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(blue: i64, green: Option<i64>) -> Split {
        Split {
            blue: Some(blue),
            green,
        }
    }

    /// Every row: (change id recorded, INSYNC recorded, weights now) → next move, for the
    /// intent 90/10 → 50/50.
    #[test]
    fn the_decision_table() {
        let intent = Intent {
            from: split(90, Some(10)),
            to: split(50, Some(50)),
        };
        let rows: &[(Option<&str>, bool, Split, Next)] = &[
            // Sent and seen INSYNC: done, whatever the weights are now.
            (
                Some("C1"),
                true,
                split(50, Some(50)),
                Next::Done { known: true },
            ),
            // Sent, not yet INSYNC: only wait, never send again.
            (
                Some("C1"),
                false,
                split(50, Some(50)),
                Next::Wait("C1".into()),
            ),
            (
                Some("C1"),
                false,
                split(90, Some(10)),
                Next::Wait("C1".into()),
            ),
            // Intent without an id: the weights say whether the change went out.
            (
                None,
                false,
                split(50, Some(50)),
                Next::Done { known: false },
            ),
            (None, false, split(90, Some(10)), Next::Submit),
            // Anything else was moved by someone else.
            (None, false, split(70, Some(30)), Next::Conflict),
            (None, false, split(100, None), Next::Conflict),
        ];
        for (change, insync, current, want) in rows {
            assert_eq!(
                &next(&intent, *change, *insync, *current),
                want,
                "change {change:?}, insync {insync}, current {current}"
            );
        }
    }

    #[test]
    fn a_missing_green_set_routes_like_weight_zero() {
        let intent = Intent {
            from: split(100, None),
            to: Split::stage(10),
        };
        assert_eq!(
            next(&intent, None, false, split(100, Some(0))),
            Next::Submit
        );
        assert_eq!(next(&intent, None, false, split(100, None)), Next::Submit);
        assert_eq!(
            next(&intent, None, false, split(90, Some(10))),
            Next::Done { known: false }
        );
        // Blue's weight matters: a set at 255 is not the 100 the stage started from.
        assert_eq!(next(&intent, None, false, split(255, None)), Next::Conflict);
    }

    #[test]
    fn stages_ascend_to_all_of_the_traffic() {
        assert!(check_stages(&[10, 50, 100]).is_empty());
        assert!(check_stages(&[100]).is_empty());
        assert_eq!(check_stages(&[]), [StageProblem::Empty]);
        assert_eq!(check_stages(&[10, 50]), [StageProblem::NotAll { last: 50 }]);
        assert_eq!(
            check_stages(&[0, 50, 100]),
            [StageProblem::OutOfRange { index: 0, value: 0 }]
        );
        assert_eq!(
            check_stages(&[10, 150]),
            [StageProblem::OutOfRange {
                index: 1,
                value: 150
            }]
        );
        assert_eq!(
            check_stages(&[50, 10, 100]),
            [StageProblem::NotAscending {
                index: 1,
                value: 10,
                before: 50
            }]
        );
        assert_eq!(
            check_stages(&[10, 10, 100]),
            [StageProblem::NotAscending {
                index: 1,
                value: 10,
                before: 10
            }]
        );
        for p in check_stages(&[0, 0]) {
            assert!(!p.message().is_empty() && !p.help().is_empty());
        }
    }

    #[test]
    fn a_stage_keeps_blues_set_and_points_green_at_its_value() {
        let blue = Weighted {
            set_identifier: "blue".into(),
            weight: 100,
            ttl: 60,
            values: vec!["blue.elb".into()],
        };
        let got = desired(&blue, "green", "green.elb", Split::stage(10));
        assert_eq!(got[0].weight, 90);
        assert_eq!(got[0].values, ["blue.elb"]);
        assert_eq!(
            got[1],
            Weighted {
                set_identifier: "green".into(),
                weight: 10,
                ttl: 60,
                values: vec!["green.elb".into()],
            }
        );
        assert_eq!(Split::stage(10).short(), "90/10");
        assert_eq!(split(100, None).to_string(), "blue 100/green no set");
    }
}
