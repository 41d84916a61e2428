//! Human durations as written in workflow files: `90s`, `30m`, `12h`, `1h30m`, `720h0m0s`.
//!
//! The accepted syntax is a superset of Go's `time.Duration` strings limited to whole numbers,
//! because Velero's own fields (`ttl: 720h0m0s`) use that format and operators copy them across.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration parsed from its human spelling; displays back in the shortest exact form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("a duration cannot be empty")]
    Empty,
    #[error("`{0}` has no unit")]
    MissingUnit(String),
    #[error("`{input}` has an unknown unit `{unit}`")]
    UnknownUnit { input: String, unit: String },
    #[error("`{0}` is not a duration")]
    Malformed(String),
    #[error("`{0}` is too long a duration")]
    Overflow(String),
}

impl DurationError {
    pub fn help(&self) -> &'static str {
        match self {
            DurationError::MissingUnit(_) => {
                "add a unit: `ms`, `s`, `m`, `h` or `d`, for example `90s` or `30m`"
            }
            _ => {
                "write a number followed by a unit (`ms`, `s`, `m`, `h`, `d`), for example `90s`, `30m` or `1h30m`"
            }
        }
    }
}

const UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        if s.is_empty() {
            return Err(DurationError::Empty);
        }
        let mut rest = s;
        let mut total_ms: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(DurationError::Malformed(s.to_string()));
            }
            let (number, tail) = rest.split_at(digits);
            let value: u64 = number
                .parse()
                .map_err(|_| DurationError::Overflow(s.to_string()))?;
            let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
            if unit_len == 0 {
                return Err(if tail.is_empty() {
                    DurationError::MissingUnit(s.to_string())
                } else {
                    DurationError::Malformed(s.to_string())
                });
            }
            let (unit, tail) = tail.split_at(unit_len);
            let factor = UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, f)| *f)
                .ok_or_else(|| DurationError::UnknownUnit {
                    input: s.to_string(),
                    unit: unit.to_string(),
                })?;
            total_ms = value
                .checked_mul(factor)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(|| DurationError::Overflow(s.to_string()))?;
            rest = tail;
        }
        Ok(HumanDuration(Duration::from_millis(total_ms)))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return f.write_str("0s");
        }
        for (name, factor) in UNITS.iter().rev() {
            if *name == "d" {
                // Days are accepted on input, but hours read better for Velero-style TTLs.
                continue;
            }
            if ms >= *factor {
                write!(f, "{}{}", ms / factor, name)?;
                ms %= factor;
            }
        }
        Ok(())
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Duration {
        s.parse::<HumanDuration>().unwrap().0
    }

    #[test]
    fn parses_common_spellings() {
        assert_eq!(d("90s"), Duration::from_secs(90));
        assert_eq!(d("30m"), Duration::from_secs(1800));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("720h0m0s"), Duration::from_secs(720 * 3600));
        assert_eq!(d("250ms"), Duration::from_millis(250));
        assert_eq!(d("2d"), Duration::from_secs(172_800));
    }

    #[test]
    fn displays_shortest_exact_form() {
        assert_eq!(
            HumanDuration(Duration::from_secs(5400)).to_string(),
            "1h30m"
        );
        assert_eq!(
            HumanDuration(Duration::from_millis(1500)).to_string(),
            "1s500ms"
        );
        assert_eq!(HumanDuration(Duration::ZERO).to_string(), "0s");
        assert_eq!(
            HumanDuration(Duration::from_secs(720 * 3600)).to_string(),
            "720h"
        );
    }

    #[test]
    fn rejects_with_reasons() {
        assert_eq!("".parse::<HumanDuration>(), Err(DurationError::Empty));
        assert_eq!(
            "90".parse::<HumanDuration>(),
            Err(DurationError::MissingUnit("90".into()))
        );
        assert!(matches!(
            "5y".parse::<HumanDuration>(),
            Err(DurationError::UnknownUnit { .. })
        ));
        for bad in [
            "m",
            "1.5h",
            "-3s",
            "3 s",
            "h1",
            "99999999999999999999s",
            "9999999999999999d",
        ] {
            assert!(bad.parse::<HumanDuration>().is_err(), "{bad:?}");
        }
    }
}
