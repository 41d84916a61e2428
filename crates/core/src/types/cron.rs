//! Cron schedules as Karpenter reads them in NodePool disruption budgets: robfig/cron v3's
//! standard parser (five fields or a macro), evaluated in UTC at minute precision. Answers the
//! questions the budget check asks: does a minute match, when did the schedule last fire, and
//! when is a budget that lasts `duration` after each firing in force.

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, Timelike, Utc};

/// Why a schedule does not parse; every message names the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("cron schedule is empty")]
    Empty,
    #[error(
        "cron schedule `{text}` has {found} fields; expected 5: minute, hour, day of month, month, day of week"
    )]
    FieldCount { text: String, found: usize },
    #[error(
        "unknown cron macro `{0}`; expected `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight` or `@hourly`"
    )]
    UnknownMacro(String),
    #[error("{field} `{part}` in cron schedule: {problem}")]
    Part {
        field: &'static str,
        part: String,
        problem: String,
    },
}

/// The values one field allows, as a bit set, and whether it was written as `*` or `?`: robfig
/// decides between "both day fields must match" and "either may" on that flag, not on the values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Field {
    bits: u64,
    star: bool,
}

impl Field {
    fn has(self, v: u32) -> bool {
        self.bits & (1u64 << v) != 0
    }
}

/// A field's name (for messages), its bounds and the names that stand for its first values.
struct Spec(&'static str, u32, u32, &'static [&'static str]);

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
// robfig allows 0-6 only: `7` for Sunday, which many crons accept, is an error there.
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const SPECS: [Spec; 5] = [
    Spec("minute", 0, 59, &[]),
    Spec("hour", 0, 23, &[]),
    Spec("day of month", 1, 31, &[]),
    Spec("month", 1, 12, &MONTHS),
    Spec("day of week", 0, 6, &DAYS),
];

/// Any schedule that fires at all fires at least once in eight years (a February 29 around
/// 2100 is the longest gap), so searching further back than this finds nothing new.
const LONGEST_GAP_DAYS: u64 = 8 * 366 + 1;

/// A parsed five-field cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minute: Field,
    hour: Field,
    dom: Field,
    month: Field,
    dow: Field,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, CronError> {
        let text = text.trim();
        let spec = match text {
            "" => return Err(CronError::Empty),
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            // `@every` is robfig's too, but Karpenter's CRD pattern does not admit it.
            _ if text.starts_with('@') => return Err(CronError::UnknownMacro(text.into())),
            _ => text,
        };
        let fields: Vec<&str> = spec.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            let (text, found) = (text.to_string(), fields.len());
            return Err(CronError::FieldCount { text, found });
        };
        let [minute, hour, dom, month, dow] = [
            field(minute, &SPECS[0])?,
            field(hour, &SPECS[1])?,
            field(dom, &SPECS[2])?,
            field(month, &SPECS[3])?,
            field(dow, &SPECS[4])?,
        ];
        Ok(Schedule {
            minute,
            hour,
            dom,
            month,
            dow,
        })
    }

    /// Whether the schedule fires in the minute holding `t` (seconds are ignored).
    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        self.day_matches(t.date_naive()) && self.hour.has(t.hour()) && self.minute.has(t.minute())
    }

    /// The latest firing at or before `t`, looking back about a year.
    pub fn last_hit_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.scan(t, t.date_naive().checked_sub_days(Days::new(366))?, true)
    }

    /// Whether a budget lasting `duration` after each firing is in force at `now`: Karpenter
    /// looks for a firing in `(now - duration, now]`, so one exactly `duration` ago has ended.
    pub fn active(&self, now: DateTime<Utc>, duration: Duration) -> bool {
        self.hit_within(now, duration).is_some()
    }

    /// Whether the schedule can ever fire: `0 0 30 2 *` parses but never does, which matters
    /// because Karpenter then finds no next firing and treats the budget as always in force.
    pub fn can_fire(&self) -> bool {
        // With a restricted day of week the schedule fires weekly, whether the day fields are
        // combined with "or" (both restricted) or "and" (day of month is `*`).
        if !self.dow.star || self.dom.star {
            return true;
        }
        const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        (1..=12u32)
            .any(|m| self.month.has(m) && (1..=LONGEST[m as usize - 1]).any(|d| self.dom.has(d)))
    }

    /// The merged intervals `[start, end)` within `[from, to]` during which a budget lasting
    /// `duration` after each firing is in force, in order.
    pub fn active_spans(
        &self,
        duration: Duration,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let mut spans = Vec::new();
        if duration <= Duration::zero() || from >= to {
            return spans;
        }
        let last_day = to.date_naive();
        let mut next = self
            .hit_within(from, duration)
            .or_else(|| self.next_hit_after(from, last_day));
        while let Some(hit) = next.filter(|h| *h < to) {
            let mut end = hit.checked_add_signed(duration).unwrap_or(to);
            // A firing inside the span (or exactly at its end) carries it on without a gap.
            while end < to {
                match self.scan(end, hit.date_naive(), true) {
                    Some(h) if h + duration > end => end = h + duration,
                    _ => break,
                }
            }
            spans.push((hit.max(from), end.min(to)));
            next = if end < to {
                self.next_hit_after(end, last_day)
            } else {
                None
            };
        }
        spans
    }

    fn hit_within(&self, now: DateTime<Utc>, duration: Duration) -> Option<DateTime<Utc>> {
        if duration <= Duration::zero() {
            return None;
        }
        let since = now.checked_sub_signed(duration);
        let floor = now
            .date_naive()
            .checked_sub_days(Days::new(LONGEST_GAP_DAYS))?;
        let floor = since.map_or(floor, |s| s.date_naive().max(floor));
        self.scan(now, floor, true)
            .filter(|h| since.is_none_or(|s| *h > s))
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        if !self.month.has(date.month()) {
            return false;
        }
        let dom = self.dom.has(date.day());
        let dow = self.dow.has(date.weekday().num_days_from_sunday());
        // robfig/Vixie: if either day field is `*` both must match, otherwise either may.
        if self.dom.star || self.dow.star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The nearest firing at or before `t` (`back`) or at or after it, going no further than
    /// `limit`: walks a day at a time, skipping days that cannot match, then takes the nearest
    /// matching hour and minute of the first day that can.
    fn scan(&self, t: DateTime<Utc>, limit: NaiveDate, back: bool) -> Option<DateTime<Utc>> {
        let (mut date, mut hour, mut minute) = (t.date_naive(), t.hour(), t.minute());
        // The values at or past `from` in the walking direction, and the nearest of a set.
        let side = |from: u32| {
            if back {
                u64::MAX >> (63 - from)
            } else {
                u64::MAX << from
            }
        };
        let nearest = |bits: u64| {
            if back {
                63 - bits.leading_zeros()
            } else {
                bits.trailing_zeros()
            }
        };
        while if back { date >= limit } else { date <= limit } {
            if self.day_matches(date) {
                let mut hours = self.hour.bits & side(hour);
                while hours != 0 {
                    let h = nearest(hours);
                    let minutes =
                        self.minute.bits & if h == hour { side(minute) } else { u64::MAX };
                    if minutes != 0 {
                        return Some(date.and_hms_opt(h, nearest(minutes), 0)?.and_utc());
                    }
                    hours &= !(1u64 << h);
                }
            }
            (date, hour, minute) = match back {
                true => (date.pred_opt()?, 23, 59),
                false => (date.succ_opt()?, 0, 0),
            };
        }
        None
    }

    /// The first firing strictly after `t`, on or before `last_day`.
    fn next_hit_after(&self, t: DateTime<Utc>, last_day: NaiveDate) -> Option<DateTime<Utc>> {
        let next_minute = t.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        self.scan(next_minute, last_day, false)
    }
}

/// One field: a comma list of `*`, `?`, values, `a-b` ranges, each with an optional `/step`;
/// `a/step` means `a-max/step`, as in robfig.
fn field(text: &str, &Spec(name, min, max, names): &Spec) -> Result<Field, CronError> {
    let mut out = Field::default();
    for item in text.split(',') {
        let part = if item.is_empty() { text } else { item };
        let fail = |problem: String| CronError::Part {
            field: name,
            part: part.into(),
            problem,
        };
        if item.is_empty() {
            return Err(fail("the list has an empty item".into()));
        }
        let (range, step) = item.split_once('/').unwrap_or((item, "1"));
        let step = match step.parse::<u32>() {
            _ if step.contains('/') => return Err(fail("too many `/`".into())),
            Ok(0) => return Err(fail("a step must be at least 1".into())),
            Ok(n) => n,
            Err(_) => return Err(fail(format!("step `{step}` is not a number"))),
        };
        let value = |v: &str| match names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
            Some(i) => Ok(min + i as u32),
            None if v.is_empty() => Err(fail("a number is missing".into())),
            None => v
                .parse::<u32>()
                .map_err(|_| fail(format!("`{v}` is not a number or name"))),
        };
        let (lo, hi) = match range.split_once('-') {
            _ if range == "*" || range == "?" => (min, max),
            Some((_, b)) if b.contains('-') => return Err(fail("too many `-`".into())),
            Some((a, b)) => (value(a)?, value(b)?),
            None if item.contains('/') => (value(range)?, max),
            None => (value(range)?, value(range)?),
        };
        if let Some(v) = [lo, hi].into_iter().find(|v| *v < min || *v > max) {
            return Err(fail(format!("{v} is outside {min}-{max}")));
        }
        if lo > hi {
            return Err(fail("the range runs backwards".into()));
        }
        for v in (lo..=hi).step_by(step as usize) {
            out.bits |= 1u64 << v;
        }
        // robfig drops the "written as `*`" mark when a step above 1 thins the field out.
        out.star |= (range == "*" || range == "?") && step == 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        let format = if s.len() > 16 {
            "%Y-%m-%d %H:%M:%S"
        } else {
            "%Y-%m-%d %H:%M"
        };
        let time = chrono::NaiveDateTime::parse_from_str(s, format).expect(s);
        time.and_utc()
    }
    fn s(text: &str) -> Schedule {
        Schedule::parse(text).expect(text)
    }
    /// Runs `f` on each `a | b | c | want` line of `table`.
    fn each(table: &str, f: impl Fn(&[&str]) -> String) {
        for line in table.lines().filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = line.split('|').map(str::trim).collect();
            let (want, args) = cols.split_last().expect("a column");
            assert_eq!(f(args), *want, "{line}");
        }
    }

    #[test]
    fn matches_minutes() {
        each(
            "
            @yearly                | 2025-01-01 00:00    | true
            @annually              | 2025-01-02 00:00    | false
            @monthly               | 2025-07-01 00:00:59 | true
            @weekly                | 2025-06-01 00:00    | true
            @weekly                | 2025-06-02 00:00    | false
            @daily                 | 2025-06-02 00:00    | true
            @midnight              | 2025-06-02 00:01    | false
            @hourly                | 2025-06-02 13:00    | true
            0 9 * jan-MAR Mon-fri  | 2025-01-06 09:00    | true
            0 9 * jan-MAR Mon-fri  | 2025-01-05 09:00    | false
            0 9 * jan-MAR Mon-fri  | 2025-04-07 09:00    | false
            0 8-10,14 * * *        | 2025-01-01 14:00    | true
            0 8-10,14 * * *        | 2025-01-01 11:00    | false
            */15 * * * *           | 2025-01-01 11:45    | true
            */15 * * * *           | 2025-01-01 11:10    | false
            5/20 * * * *           | 2025-01-01 11:45    | true
            5/20 * * * *           | 2025-01-01 11:40    | false
            10-30/10,59 * * * *    | 2025-01-01 11:20    | true
            10-30/10,59 * * * *    | 2025-01-01 11:25    | false
            0 0 13 * FRI           | 2025-06-13 00:00    | true
            0 0 13 * FRI           | 2025-06-06 00:00    | true
            0 0 13 * FRI           | 2025-07-13 00:00    | true
            0 0 13 * FRI           | 2025-06-07 00:00    | false
            0 0 */2 * MON          | 2025-06-02 00:00    | true
            0 0 */2 * MON          | 2025-06-03 00:00    | true
            0 0 */2 * MON          | 2025-06-04 00:00    | false
            0 0 ? * MON            | 2025-06-03 00:00    | false
            0 0 13 * *             | 2025-06-06 00:00    | false
            ",
            // A stepped day field is not `*`, so `*/2` with MON means either, like 13 with FRI.
            |a| s(a[0]).matches(t(a[1])).to_string(),
        );
    }

    #[test]
    fn last_hits() {
        each(
            "
            30 9 * * *   | 2025-06-02 09:29:59 | 2025-06-01 09:30:00 UTC
            30 9 * * *   | 2025-06-02 09:30:45 | 2025-06-02 09:30:00 UTC
            0 0 29 2 *   | 2025-01-01 00:00    | 2024-02-29 00:00:00 UTC
            0 0 30 2 *   | 2025-06-02 00:00    | none
            ",
            |a| {
                s(a[0])
                    .last_hit_at_or_before(t(a[1]))
                    .map_or("none".into(), |h| h.to_string())
            },
        );
        assert!(!s("0 0 30 2 *").can_fire());
        assert!(s("0 0 29 2 *").can_fire() && s("0 0 30 2 1").can_fire() && s("@daily").can_fire());
    }

    #[test]
    fn active_at_the_edges() {
        each(
            "
            0 9 * * *    | 480  | 2025-06-02 09:00    | true
            0 9 * * *    | 480  | 2025-06-02 16:59:59 | true
            0 9 * * *    | 480  | 2025-06-02 17:00    | false
            0 9 * * *    | 480  | 2025-06-02 08:59:59 | false
            0 9 * * *    | 0    | 2025-06-02 09:00    | false
            0 0 30 2 *   | 9999999 | 2025-06-02 00:00 | false
            0 0 29 2 *   | 4320000 | 2027-01-01 00:00 | true
            ",
            // A firing exactly `duration` ago has ended; the search goes past a year back.
            |a| {
                let minutes = a[1].parse().expect("minutes");
                s(a[0])
                    .active(t(a[2]), Duration::minutes(minutes))
                    .to_string()
            },
        );
    }

    #[test]
    fn active_spans_clip_and_merge() {
        let spans = |text: &str, minutes, from, to| {
            let spans = s(text).active_spans(Duration::minutes(minutes), t(from), t(to));
            spans
                .iter()
                .map(|(a, b)| format!("{a} - {b}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert_eq!(
            spans("0 9 * * *", 120, "2025-06-02 10:00", "2025-06-04 10:00"),
            "2025-06-02 10:00:00 UTC - 2025-06-02 11:00:00 UTC, \
             2025-06-03 09:00:00 UTC - 2025-06-03 11:00:00 UTC, \
             2025-06-04 09:00:00 UTC - 2025-06-04 10:00:00 UTC"
        );
        let (from, to) = ("2025-06-02 00:00", "2025-06-02 05:00");
        let whole = "2025-06-02 00:00:00 UTC - 2025-06-02 05:00:00 UTC";
        assert_eq!(spans("0 * * * *", 90, from, to), whole);
        let touching = "2025-06-02 01:00:00 UTC - 2025-06-02 03:00:00 UTC";
        assert_eq!(spans("0 1,2 * * *", 60, from, to), touching);
        assert_eq!(spans("0 0 30 2 *", 60, from, to), "");
    }

    #[test]
    fn malformed_schedules_name_the_bad_part() {
        let err = |text: &str| Schedule::parse(text).expect_err(text);
        assert_eq!(err("  "), CronError::Empty);
        assert!(matches!(
            err("0 0 * *"),
            CronError::FieldCount { found: 4, .. }
        ));
        assert!(matches!(
            err("0 0 * * * *"),
            CronError::FieldCount { found: 6, .. }
        ));
        assert!(matches!(err("@every 1h"), CronError::UnknownMacro(_)));
        assert!(matches!(err("@DAILY"), CronError::UnknownMacro(_)));
        each(
            "
            60 * * * *    | minute `60` in cron schedule: 60 is outside 0-59
            * * 0 * *     | day of month `0` in cron schedule: 0 is outside 1-31
            * * * * 7     | day of week `7` in cron schedule: 7 is outside 0-6
            * 5-1 * * *   | hour `5-1` in cron schedule: the range runs backwards
            */0 * * * *   | minute `*/0` in cron schedule: a step must be at least 1
            */x * * * *   | minute `*/x` in cron schedule: step `x` is not a number
            1-2-3 * * * * | minute `1-2-3` in cron schedule: too many `-`
            */2/3 * * * * | minute `*/2/3` in cron schedule: too many `/`
            1,,2 * * * *  | minute `1,,2` in cron schedule: the list has an empty item
            * * * FOO *   | month `FOO` in cron schedule: `FOO` is not a number or name
            * * * * -1    | day of week `-1` in cron schedule: a number is missing
            0 0 * * *     | ok
            ",
            |a| Schedule::parse(a[0]).map_or_else(|e| e.to_string(), |_| "ok".into()),
        );
    }
}
