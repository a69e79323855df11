//! Log parsing and Prometheus text formatting of `random-generator-exporter` (std only, tested on
//! the host). `main.rs` only adapts it to `wasi:http`.
//!
//! The random generator appends `<unix_millis> <duration_micros> <random>\n` to `LOG_FILE` per
//! generated number; every scrape re-reads the whole file.

use std::fmt::Write as _;
use std::io::{self, BufRead};

/// `Content-Type` of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the log file says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Well-formed lines (random numbers generated).
    pub numbers: u64,
    /// Sum of the durations, in microseconds.
    pub duration_micros_sum: u128,
    /// The random number of the last well-formed line.
    pub last_value: Option<i64>,
    /// Malformed lines skipped.
    pub parse_errors: u64,
}

/// One log line: (unix_millis, duration_micros, random). Surrounding whitespace is ignored.
pub fn parse_line(line: &str) -> Option<(u64, u64, i64)> {
    let mut fields = line.split_whitespace();
    let time = fields.next()?.parse().ok()?;
    let duration = fields.next()?.parse().ok()?;
    let value = fields.next()?.parse().ok()?;
    if fields.next().is_some() {
        return None;
    }
    Some((time, duration, value))
}

impl Stats {
    /// Adds one line. Blank lines are ignored; `complete` is false for a last line without
    /// `\n` (possibly still being written), which is ignored rather than counted as an error
    /// when it does not parse.
    pub fn add_line(&mut self, line: &[u8], complete: bool) {
        let parsed = std::str::from_utf8(line).ok().and_then(|l| {
            if l.trim().is_empty() {
                Some(None)
            } else {
                parse_line(l).map(Some)
            }
        });
        match parsed {
            Some(None) => {}
            Some(Some((_, duration, value))) => {
                self.numbers += 1;
                self.duration_micros_sum += u128::from(duration);
                self.last_value = Some(value);
            }
            None if complete => self.parse_errors += 1,
            None => {}
        }
    }

    /// Reads a whole log.
    pub fn read(mut reader: impl BufRead) -> io::Result<Stats> {
        let mut stats = Stats::default();
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(stats);
            }
            let complete = line.last() == Some(&b'\n');
            if complete {
                line.pop();
            }
            stats.add_line(&line, complete);
        }
    }
}

/// Microseconds as an exact decimal number of seconds (`1500000` -> `1.5`).
pub fn micros_to_seconds(micros: u128) -> String {
    let (secs, frac) = (micros / 1_000_000, micros % 1_000_000);
    if frac == 0 {
        return secs.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{secs}.{}", frac.trim_end_matches('0'))
}

/// The metrics in the Prometheus text format 0.0.4. Without any number `last_value` is 0.
pub fn render(stats: &Stats) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (suffix, value) in samples {
            let _ = writeln!(out, "{name}{suffix} {value}");
        }
    };
    metric(
        "random_generator_numbers_total",
        "counter",
        "Random numbers generated (well-formed lines in the random generator's log file).",
        &[("", stats.numbers.to_string())],
    );
    metric(
        "random_generator_duration_seconds",
        "summary",
        "Time the random generator spent generating a number.",
        &[
            ("_sum", micros_to_seconds(stats.duration_micros_sum)),
            ("_count", stats.numbers.to_string()),
        ],
    );
    metric(
        "random_generator_last_value",
        "gauge",
        "The last random number generated (0 before the first one).",
        &[("", stats.last_value.unwrap_or(0).to_string())],
    );
    metric(
        "random_generator_log_parse_errors_total",
        "counter",
        "Malformed lines skipped in the random generator's log file.",
        &[("", stats.parse_errors.to_string())],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        assert_eq!(parse_line("1700000000123 42 12345"), Some((1700000000123, 42, 12345)));
        assert_eq!(parse_line("  1 2 3  \r"), Some((1, 2, 3)));
        assert_eq!(parse_line("1 2 -3"), Some((1, 2, -3)));
        assert_eq!(parse_line("1 2"), None);
        assert_eq!(parse_line("1 2 3 4"), None);
        assert_eq!(parse_line("a 2 3"), None);
        assert_eq!(parse_line("1 -2 3"), None);
        assert_eq!(parse_line("1 2 3.5"), None);
    }

    #[test]
    fn reads_a_log() {
        let log = b"1000 10 5\n1001 20 7\n\ngarbage\n1002 1000000 9\n\xff\xfe\n";
        let stats = Stats::read(&log[..]).unwrap();
        assert_eq!(
            stats,
            Stats {
                numbers: 3,
                duration_micros_sum: 1_000_030,
                last_value: Some(9),
                parse_errors: 2
            }
        );
    }

    #[test]
    fn an_unterminated_last_line_counts_only_when_whole() {
        let stats = Stats::read(&b"1 2 3\n4 5 6"[..]).unwrap();
        assert_eq!((stats.numbers, stats.last_value, stats.parse_errors), (2, Some(6), 0));
        // Half-written: not (yet) an error.
        let stats = Stats::read(&b"1 2 3\n4 5"[..]).unwrap();
        assert_eq!((stats.numbers, stats.last_value, stats.parse_errors), (1, Some(3), 0));
        let stats = Stats::read(&b"1 2 3\n4 5\n"[..]).unwrap();
        assert_eq!((stats.numbers, stats.parse_errors), (1, 1));
    }

    #[test]
    fn an_empty_log_is_all_zeros() {
        assert_eq!(Stats::read(&b""[..]).unwrap(), Stats::default());
    }

    #[test]
    fn formats_seconds_exactly() {
        assert_eq!(micros_to_seconds(0), "0");
        assert_eq!(micros_to_seconds(1), "0.000001");
        assert_eq!(micros_to_seconds(1_500_000), "1.5");
        assert_eq!(micros_to_seconds(2_000_000), "2");
        assert_eq!(micros_to_seconds(123_456_789), "123.456789");
        assert_eq!(micros_to_seconds(30), "0.00003");
    }

    #[test]
    fn renders_prometheus_text() {
        let stats = Stats {
            numbers: 3,
            duration_micros_sum: 1_000_030,
            last_value: Some(9),
            parse_errors: 2,
        };
        let text = render(&stats);
        let expected = "\
# HELP random_generator_numbers_total Random numbers generated (well-formed lines in the random generator's log file).
# TYPE random_generator_numbers_total counter
random_generator_numbers_total 3
# HELP random_generator_duration_seconds Time the random generator spent generating a number.
# TYPE random_generator_duration_seconds summary
random_generator_duration_seconds_sum 1.00003
random_generator_duration_seconds_count 3
# HELP random_generator_last_value The last random number generated (0 before the first one).
# TYPE random_generator_last_value gauge
random_generator_last_value 9
# HELP random_generator_log_parse_errors_total Malformed lines skipped in the random generator's log file.
# TYPE random_generator_log_parse_errors_total counter
random_generator_log_parse_errors_total 2
";
        assert_eq!(text, expected);
    }

    #[test]
    fn renders_zeros_without_a_log() {
        let text = render(&Stats::default());
        for line in [
            "random_generator_numbers_total 0",
            "random_generator_duration_seconds_sum 0",
            "random_generator_duration_seconds_count 0",
            "random_generator_last_value 0",
            "random_generator_log_parse_errors_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing in\n{text}");
        }
        // Every sample line is `name value` with a name from the TYPE lines.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert_eq!(l.split(' ').count(), 2, "{l}");
        }
    }
}
