//! Time: the handler's one clock and the date forms DynamoDB and SigV4 print. Natively and
//! under Spin the clock is the platform's. The host's component imports no WASI: there it is the
//! time the host read for the call and passed in its context (`enter`).

/// Milliseconds since the Unix epoch: the one clock of the handler, the host and the Spin component.
#[cfg(not(feature = "component"))]
pub fn now_millis() -> u128 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

#[cfg(feature = "component")]
pub use from_host::{enter, now_millis};

#[cfg(feature = "component")]
mod from_host {
    use std::cell::Cell;

    thread_local! {
        /// The call's time.
        static NOW_MS: Cell<u64> = const { Cell::new(0) };
    }

    /// Sets the time for the call the host just made.
    pub fn enter(now_ms: u64) {
        NOW_MS.set(now_ms);
    }

    /// The time the host read for this call.
    pub fn now_millis() -> u128 {
        u128::from(NOW_MS.get())
    }
}

pub fn now_seconds() -> f64 {
    // DynamoDB reports timestamps with millisecond precision.
    (now_millis() as f64) / 1000.0
}

/// `YYYYMMDDTHHMMSSZ` as seconds since the epoch.
pub(crate) fn parse_basic_iso8601(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = text.get(range)?;
        digits.bytes().all(|b| b.is_ascii_digit()).then(|| digits.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

pub(crate) fn basic_iso8601(seconds: i64) -> String {
    let (days, time) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", time / 3600, time / 60 % 60, time % 60)
}

/// `2026-11-30T13:46:54.123`: the extended form with milliseconds, as in stream labels.
pub(crate) fn extended_iso8601_millis(seconds: f64) -> String {
    let millis = (seconds * 1000.0).round() as i64;
    let (whole, millis) = (millis.div_euclid(1000), millis.rem_euclid(1000));
    let (days, time) = (whole.div_euclid(86_400), whole.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}", time / 3600, time / 60 % 60, time % 60)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_iso8601_round_trips() {
        for text in ["19700101T000000Z", "20000229T235959Z", "20261130T120000Z", "21000301T010203Z"] {
            assert_eq!(basic_iso8601(parse_basic_iso8601(text).unwrap()), text);
        }
        assert_eq!(parse_basic_iso8601("20261130T120000Z"), Some(1_796_040_000));
        for bad in ["2001", "20261330T120000Z", "20261130 120000Z", "2026113OT120000Z"] {
            assert_eq!(parse_basic_iso8601(bad), None, "{bad}");
        }
    }
}
