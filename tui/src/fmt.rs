//! Turning numbers and timestamps into the short text that fits a table cell.

/// "999,999" at most 7 characters, then "1.23M", so counters fit fixed-width columns.
pub fn count(n: u64) -> String {
    if n >= 1_000_000 {
        let hundredths = n / 10_000;
        return format!("{}.{:02}M", hundredths / 100, hundredths % 100);
    }
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The time of day of an RFC 3339 timestamp ("2025-06-01T12:03:05Z" → "12:03:05"); anything
/// else is shown as the engine sent it.
pub fn short_time(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 19 && b[10] == b'T' && b[13] == b':' && b[16] == b':' {
        &s[11..19]
    } else {
        s
    }
}

/// "42s", "3m12s", "2h05m", "3d04h": the two most significant units are enough at a glance.
pub fn age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
        _ => format!("{}d{:02}h", secs / 86_400, (secs % 86_400) / 3600),
    }
}

/// Case-insensitive (ASCII) substring test that allocates nothing, because the Queues filter runs
/// it over every queued item on every frame.
pub fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return true;
    }
    h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_then_abbreviated() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(999_999), "999,999");
        assert_eq!(count(1_234_567), "1.23M");
    }

    #[test]
    fn rfc3339_is_shortened_to_time_of_day() {
        assert_eq!(short_time("2025-06-01T12:03:05Z"), "12:03:05");
        assert_eq!(short_time("in 5s"), "in 5s");
    }

    #[test]
    fn ages_use_two_units() {
        assert_eq!(age(42), "42s");
        assert_eq!(age(192), "3m12s");
        assert_eq!(age(7_500), "2h05m");
        assert_eq!(age(273_600), "3d04h");
    }

    #[test]
    fn filter_match_ignores_ascii_case() {
        assert!(contains_ignore_case("Order 000000123", "order 0000001"));
        assert!(!contains_ignore_case("order 1", "invoice"));
        assert!(contains_ignore_case("x", ""));
    }
}
