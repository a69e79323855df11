//! UTC calendar arithmetic and formatting (no time zone database in WASI).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub secs: i64,
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday
    pub weekday: u32,
    /// 1..=366
    pub yday: u32,
}

impl Utc {
    pub fn from_unix(secs: i64) -> Utc {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let jan1 = days_from_civil(year, 1, 1);
        Utc {
            secs,
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            weekday: (days + 4).rem_euclid(7) as u32,
            yday: (days - jan1 + 1) as u32,
        }
    }

    pub fn from_system(t: SystemTime) -> Utc {
        let secs = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
        };
        Utc::from_unix(secs)
    }

    pub fn now() -> Utc {
        Utc::from_system(SystemTime::now())
    }

    /// `Sat Nov 28 08:26:38 UTC 2026` (the default output of `date`).
    pub fn default_format(&self) -> String {
        self.format("%a %b %e %H:%M:%S %Z %Y")
    }

    /// strftime subset: %a %b %d %e %H %M %S %Y %y %m %j %s %Z %F %T %D %n %t %%.
    pub fn format(&self, fmt: &str) -> String {
        let mut out = String::new();
        let mut chars = fmt.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let _ = match chars.next() {
                Some('a') => write!(out, "{}", DAYS[self.weekday as usize]),
                Some('A') => write!(out, "{}", full_day(self.weekday)),
                Some('b' | 'h') => write!(out, "{}", MONTHS[self.month as usize - 1]),
                Some('d') => write!(out, "{:02}", self.day),
                Some('e') => write!(out, "{:>2}", self.day),
                Some('H') => write!(out, "{:02}", self.hour),
                Some('M') => write!(out, "{:02}", self.minute),
                Some('S') => write!(out, "{:02}", self.second),
                Some('Y') => write!(out, "{}", self.year),
                Some('y') => write!(out, "{:02}", self.year.rem_euclid(100)),
                Some('m') => write!(out, "{:02}", self.month),
                Some('j') => write!(out, "{:03}", self.yday),
                Some('s') => write!(out, "{}", self.secs),
                Some('u') => write!(out, "{}", if self.weekday == 0 { 7 } else { self.weekday }),
                Some('w') => write!(out, "{}", self.weekday),
                Some('Z') => write!(out, "UTC"),
                Some('z') => write!(out, "+0000"),
                Some('F') => write!(out, "{}", self.format("%Y-%m-%d")),
                Some('T') => write!(out, "{}", self.format("%H:%M:%S")),
                Some('D') => write!(out, "{}", self.format("%m/%d/%y")),
                Some('R') => write!(out, "{}", self.format("%H:%M")),
                Some('n') => writeln!(out),
                Some('t') => write!(out, "\t"),
                Some('%') => write!(out, "%"),
                Some(other) => write!(out, "%{other}"),
                None => write!(out, "%"),
            };
        }
        out
    }
}

fn full_day(weekday: u32) -> &'static str {
    [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ][weekday as usize]
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch() {
        assert_eq!(Utc::from_unix(0).default_format(), "Thu Jan  1 00:00:00 UTC 1970");
    }

    #[test]
    fn known_dates() {
        // date -u -d @1795854398
        assert_eq!(
            Utc::from_unix(1_795_854_398).default_format(),
            "Sat Nov 28 08:26:38 UTC 2026"
        );
        // leap day, yday
        let t = Utc::from_unix(951_782_400); // 2000-02-29 00:00:00
        assert_eq!(t.format("%F %T %j %a"), "2000-02-29 00:00:00 060 Tue");
        assert_eq!(Utc::from_unix(-1).format("%F %T"), "1969-12-31 23:59:59");
    }

    #[test]
    fn round_trip() {
        for days in [-800_000i64, -1, 0, 59, 365, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
