//! Human-readable durations as written in profiles: `"250ms"`, `"30s"`, `"1.5s"`, `"10m"`, `"1h"`.
//!
//! This module only parses and prints; it knows nothing of which duration means what.

use std::fmt;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Parses a duration with a unit suffix (`us`, `ms`, `s`, `m`, `h`). The number may be fractional.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit: write e.g. \"250ms\", \"30s\", \"10m\""))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    let seconds_per_unit = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "`{text}` has unknown unit `{other}` (use us, ms, s, m or h)"
            ))
        }
    };
    let seconds = value * seconds_per_unit;
    if !seconds.is_finite() || seconds > 1e9 {
        return Err(format!("`{text}` is too long"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Formats a duration in the shortest exact form `parse` reads back (`"1m30s"` is written `"90s"`).
pub fn format(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros == 0 {
        return "0s".to_string();
    }
    if micros.is_multiple_of(3_600_000_000) {
        format!("{}h", micros / 3_600_000_000)
    } else if micros.is_multiple_of(60_000_000) {
        format!("{}m", micros / 60_000_000)
    } else if micros.is_multiple_of(1_000_000) {
        format!("{}s", micros / 1_000_000)
    } else if micros.is_multiple_of(1_000) {
        format!("{}ms", micros / 1_000)
    } else {
        format!("{micros}us")
    }
}

/// A duration that (de)serialises as a string with a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map(HumanDuration).map_err(de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(self.0))
    }
}

/// A duration that may be switched off with `"off"` (heartbeats, pings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OptionalDuration(pub Option<Duration>);

impl<'de> Deserialize<'de> for OptionalDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim().eq_ignore_ascii_case("off") {
            return Ok(OptionalDuration(None));
        }
        parse(&text)
            .map(|d| OptionalDuration(Some(d)))
            .map_err(|e| de::Error::custom(format!("{e}, or \"off\"")))
    }
}

impl Serialize for OptionalDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(d) => serializer.serialize_str(&format(d)),
            None => serializer.serialize_str("off"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("40us"), Ok(Duration::from_micros(40)));
    }

    #[test]
    fn rejects_missing_or_unknown_units_and_negatives() {
        assert!(parse("30").unwrap_err().contains("no unit"));
        assert!(parse("3d").unwrap_err().contains("unknown unit"));
        assert!(parse("-3s").is_err());
        assert!(parse("s").is_err());
    }

    #[test]
    fn format_round_trips() {
        for text in ["0s", "250ms", "30s", "10m", "2h", "90s", "1500ms", "40us"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
