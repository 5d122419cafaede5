//! Durations as operators write them on the command line: `250ms`, `1s`, `2m`, `1h`; a bare
//! number means seconds (`1.5` is 1.5 s).

use std::time::Duration;

/// Parses `250ms`, `1s`, `1.5s`, `2m`, `1h` or a bare number of seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit_secs) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {text:?} (write it like 250ms, 1s, 2m)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("invalid duration {text:?}: must be zero or more"));
    }
    let secs = value * unit_secs;
    if secs > 86_400.0 * 365.0 {
        return Err(format!("invalid duration {text:?}: longer than a year"));
    }
    // Whole microseconds: binary floating point cannot hold most decimals (10000000.96 is
    // 10000000.960000001), and within a year its error stays under 10 ns, so rounding gives
    // back exactly the value written.
    Ok(Duration::from_micros((secs * 1e6).round() as u64))
}

/// Formats a duration the way [`parse`] reads it back, for `--help` defaults and logs.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_bare_seconds() {
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse("0.25").unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "s", "abc", "-1s", "1x", "NaN", "inf", "99999999h"] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    /// Found by fuzzing (fuzz/regressions/cli/): float error made `10000000.96` read as
    /// 10000000.960000001 s, so what `format` printed did not read back the same.
    #[test]
    fn decimals_read_exactly() {
        let d = parse("10000000.96").unwrap();
        assert_eq!(d, Duration::from_millis(10_000_000_960));
        assert_eq!(parse(&format(d)).unwrap(), d);
        assert_eq!(parse("0.1").unwrap(), Duration::from_millis(100));
        assert_eq!(
            parse("1.000001s").unwrap(),
            Duration::from_micros(1_000_001)
        );
        assert_eq!(parse("8760h").unwrap(), Duration::from_secs(86_400 * 365));
    }

    #[test]
    fn format_round_trips() {
        for text in ["250ms", "1s", "2m", "90s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
