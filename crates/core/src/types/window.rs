//! Maintenance windows: on which days, between which local times, in which time zone an
//! unattended run may start work.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;
use serde::Serialize;

/// A validated maintenance window. A window whose end is not after its start crosses midnight:
/// `Sat 22:00–02:00` runs from Saturday 22:00 to Sunday 02:00, and belongs to Saturday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    #[serde(serialize_with = "serialize_days")]
    pub days: Vec<Weekday>,
    #[serde(serialize_with = "serialize_time")]
    pub start: NaiveTime,
    #[serde(serialize_with = "serialize_time")]
    pub end: NaiveTime,
    #[serde(serialize_with = "serialize_tz")]
    pub timezone: Tz,
}

fn serialize_days<S: serde::Serializer>(days: &[Weekday], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(days.iter().map(|d| d.to_string()))
}

fn serialize_time<S: serde::Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.format("%H:%M"))
}

fn serialize_tz<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&tz.name())
}

/// One concrete occurrence of a window, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Parses a day name: `Mon`, `monday`, `MON` all mean Monday.
pub fn parse_weekday(s: &str) -> Option<Weekday> {
    let lower = s.trim().to_ascii_lowercase();
    const NAMES: [(&str, &str, Weekday); 7] = [
        ("mon", "monday", Weekday::Mon),
        ("tue", "tuesday", Weekday::Tue),
        ("wed", "wednesday", Weekday::Wed),
        ("thu", "thursday", Weekday::Thu),
        ("fri", "friday", Weekday::Fri),
        ("sat", "saturday", Weekday::Sat),
        ("sun", "sunday", Weekday::Sun),
    ];
    NAMES
        .iter()
        .find(|(short, long, _)| lower == *short || lower == *long)
        .map(|(_, _, day)| *day)
}

/// Parses a 24-hour `HH:MM` time.
pub fn parse_time(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    NaiveTime::from_hms_opt(h, m, 0)
}

impl Window {
    /// Local wall-clock time to an instant. Times skipped by a DST jump move forward to the first
    /// instant that exists; repeated times take the earlier instant, so a window never shrinks.
    fn instant(&self, naive: NaiveDateTime) -> DateTime<Utc> {
        let mut probe = naive;
        for _ in 0..4 {
            match self.timezone.from_local_datetime(&probe) {
                LocalResult::Single(t) => return t.with_timezone(&Utc),
                LocalResult::Ambiguous(early, _) => return early.with_timezone(&Utc),
                LocalResult::None => probe += Duration::minutes(30),
            }
        }
        // No real zone has a gap longer than two hours; fall back to reading the time as UTC.
        Utc.from_utc_datetime(&naive)
    }

    fn occurrence_on(&self, date: NaiveDate) -> Occurrence {
        let end_date = if self.end > self.start {
            date
        } else {
            date.succ_opt().unwrap_or(date)
        };
        Occurrence {
            start: self.instant(date.and_time(self.start)),
            end: self.instant(end_date.and_time(self.end)),
        }
    }

    /// The occurrence that contains `now`, if any.
    pub fn current(&self, now: DateTime<Utc>) -> Option<Occurrence> {
        let today = now.with_timezone(&self.timezone).date_naive();
        [today.pred_opt(), Some(today)]
            .into_iter()
            .flatten()
            .filter(|d| self.days.contains(&d.weekday()))
            .map(|d| self.occurrence_on(d))
            .find(|o| o.start <= now && now < o.end)
    }

    /// The first occurrence that starts after `now`.
    pub fn next(&self, now: DateTime<Utc>) -> Option<Occurrence> {
        let today = now.with_timezone(&self.timezone).date_naive();
        today
            .iter_days()
            .take(9)
            .filter(|d| self.days.contains(&d.weekday()))
            .map(|d| self.occurrence_on(d))
            .find(|o| o.start > now)
    }

    /// How long the current occurrence still lasts, or `None` when `now` is outside the window.
    pub fn remaining(&self, now: DateTime<Utc>) -> Option<std::time::Duration> {
        self.current(now).and_then(|o| (o.end - now).to_std().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &[Weekday], start: &str, end: &str, tz: &str) -> Window {
        Window {
            days: days.to_vec(),
            start: parse_time(start).unwrap(),
            end: parse_time(end).unwrap(),
            timezone: tz.parse().unwrap(),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_days_and_times() {
        assert_eq!(parse_weekday("Sat"), Some(Weekday::Sat));
        assert_eq!(parse_weekday("sunday"), Some(Weekday::Sun));
        assert_eq!(parse_weekday("Sa"), None);
        assert_eq!(parse_time("02:00"), NaiveTime::from_hms_opt(2, 0, 0));
        assert_eq!(parse_time("2:05"), NaiveTime::from_hms_opt(2, 5, 0));
        for bad in ["24:00", "02:60", "0200", "2:5", "aa:bb", ""] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn inside_and_outside() {
        // 2026-11-28 is a Saturday.
        let w = window(&[Weekday::Sat, Weekday::Sun], "02:00", "06:00", "UTC");
        assert!(w.current(utc("2026-11-28T03:00:00Z")).is_some());
        assert_eq!(
            w.remaining(utc("2026-11-28T05:30:00Z")),
            Some(std::time::Duration::from_secs(1800))
        );
        assert!(w.current(utc("2026-11-28T06:00:00Z")).is_none());
        assert!(w.current(utc("2026-11-27T03:00:00Z")).is_none());
        assert_eq!(
            w.next(utc("2026-11-27T03:00:00Z")).map(|o| o.start),
            Some(utc("2026-11-28T02:00:00Z"))
        );
    }

    #[test]
    fn crosses_midnight_and_belongs_to_its_start_day() {
        let w = window(&[Weekday::Fri], "22:00", "02:00", "UTC");
        // Saturday 01:00 is inside Friday's window.
        assert!(w.current(utc("2026-11-28T01:00:00Z")).is_some());
        // Saturday 23:00 is not: Saturday is not a window day.
        assert!(w.current(utc("2026-11-28T23:00:00Z")).is_none());
    }

    #[test]
    fn follows_the_time_zone() {
        let w = window(&[Weekday::Sat], "02:00", "06:00", "Europe/Berlin");
        // 02:00 in Berlin in November is 01:00 UTC.
        assert!(w.current(utc("2026-11-28T01:30:00Z")).is_some());
        assert!(w.current(utc("2026-11-28T05:30:00Z")).is_none());
    }

    #[test]
    fn dst_gap_moves_start_forward() {
        // Europe/Berlin skips 02:00–03:00 on 2026-03-29 (a Sunday).
        let w = window(&[Weekday::Sun], "02:30", "05:00", "Europe/Berlin");
        let occ = w.next(utc("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(occ.start, utc("2026-03-29T01:00:00Z"));
    }
}
