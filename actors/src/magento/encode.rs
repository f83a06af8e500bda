//! RFC 3986 percent-encoding, shared by the query string we send and the OAuth 1.0a base
//! string we sign: both must encode `[`/`]` (searchCriteria keys) identically, or the
//! signature Magento recomputes from the URL will not match ours.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything except RFC 3986 "unreserved" (`ALPHA / DIGIT / - . _ ~`) is encoded, which is
/// also exactly what RFC 5849 §3.6 requires for signature parameters.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes with uppercase hex, spaces as `%20` (never `+`). Collected through
/// `Cow` rather than `to_string`, which goes through `fmt` (about a tenth of the base string's
/// cost, measured with callgrind).
pub fn rfc3986(input: &str) -> String {
    Cow::from(utf8_percent_encode(input, RFC3986)).into_owned()
}

/// Renders decoded query pairs as the query string sent on the wire.
pub fn query_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", rfc3986(k), rfc3986(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_brackets_spaces_and_reserved_characters() {
        assert_eq!(
            rfc3986("searchCriteria[pageSize]"),
            "searchCriteria%5BpageSize%5D"
        );
        assert_eq!(rfc3986("2024-01-01 00:00:00"), "2024-01-01%2000%3A00%3A00");
        assert_eq!(rfc3986("a+b/c~d_e.f-g"), "a%2Bb%2Fc~d_e.f-g");
        assert_eq!(rfc3986("é"), "%C3%A9");
    }
}
