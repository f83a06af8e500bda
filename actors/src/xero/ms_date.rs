//! Xero's `/Date(1518685950940+0000)/` timestamps (milliseconds since the epoch, UTC offset).

use chrono::{DateTime, Utc};

/// The instant a `/Date(ms±hhmm)/` string names; `None` for anything else. The offset only
/// says how the instant was displayed, so the milliseconds alone are the instant.
pub fn parse_ms_date(text: &str) -> Option<DateTime<Utc>> {
    let inner = text.strip_prefix("/Date(")?.strip_suffix(")/")?;
    let end = inner
        .char_indices()
        .skip(1)
        .find(|(_, c)| matches!(c, '+' | '-'))
        .map_or(inner.len(), |(i, _)| i);
    DateTime::from_timestamp_millis(inner[..end].parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_milliseconds_with_or_without_an_offset() {
        let t = parse_ms_date("/Date(1518685950940+0000)/").unwrap();
        assert_eq!(t.timestamp_millis(), 1_518_685_950_940);
        assert_eq!(parse_ms_date("/Date(1518685950940)/"), Some(t));
        assert_eq!(parse_ms_date("/Date(1518685950940-0500)/"), Some(t));
        assert_eq!(
            parse_ms_date("/Date(-1000)/").unwrap().timestamp_millis(),
            -1000
        );
        assert_eq!(parse_ms_date("2018-02-15"), None);
        assert_eq!(parse_ms_date("/Date(abc)/"), None);
    }
}
