//! How the Magento and Xero clients decide whether, and when, to try a call again.
//!
//! The loop is hand-written rather than built on `backon`: the delay before the next attempt
//! depends on the failure itself (a 429's `Retry-After` must win over the computed backoff),
//! and the Xero client must also turn that 429 into a tenant-wide pause on the shared budget
//! before sleeping. `backon`'s `adjust` hook could express the first part, but the loop below
//! is short, uses `tokio::time` (so paused-time tests drive it), and keeps the classification
//! next to the policy that consumes it.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

/// What a failed call means for the caller.
///
/// `Ambiguous` exists because a timeout or a reset *after* the request was sent does not
/// say whether the remote applied it: the only safe retry re-sends the same idempotency key
/// with the byte-identical body (or looks the record up by its natural key first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The request was not applied (or was refused before being applied): retry freely.
    Retriable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying the same request cannot succeed; dead-letter or fix the data.
    Permanent { reason: String },
    /// The outcome is unknown; retry only with the same idempotency key and body.
    Ambiguous { reason: String },
}

impl Failure {
    pub fn retriable(reason: impl Into<String>) -> Self {
        Failure::Retriable {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Failure::Permanent {
            reason: reason.into(),
        }
    }

    pub fn ambiguous(reason: impl Into<String>) -> Self {
        Failure::Ambiguous {
            reason: reason.into(),
        }
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, Failure::Permanent { .. })
    }

    pub fn reason(&self) -> &str {
        match self {
            Failure::Retriable { reason, .. }
            | Failure::Permanent { reason }
            | Failure::Ambiguous { reason } => reason,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Retriable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Classifies an HTTP status. 401 is permanent here because the clients refresh the
    /// token once themselves before giving up; a 401 that reaches this point has already
    /// survived a refresh.
    pub fn from_status(status: u16, retry_after: Option<Duration>, detail: &str) -> Self {
        let reason = if detail.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {detail}")
        };
        match status {
            429 => Failure::Retriable {
                reason,
                retry_after,
            },
            408 | 500..=599 => Failure::Retriable {
                reason,
                retry_after,
            },
            _ => Failure::Permanent { reason },
        }
    }

    /// Classifies a transport error. A failure to connect means nothing was sent; anything
    /// after the request left (timeout, reset, truncated body) is ambiguous.
    pub fn from_reqwest(err: &reqwest::Error) -> Self {
        let reason = transport_reason(err);
        if err.is_connect() {
            Failure::retriable(reason)
        } else if err.is_builder() {
            Failure::permanent(reason)
        } else {
            Failure::ambiguous(reason)
        }
    }
}

/// A description of a transport error without its URL (URLs may carry query values the
/// operator did not mean to log) and without any header.
fn transport_reason(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "response body interrupted"
    } else if err.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// Exponential backoff with full jitter (AWS's "full jitter": a uniform delay in
/// `[0, min(max_delay, base_delay * 2^attempt)]`), which spreads retrying callers apart
/// instead of letting them return to a recovering server in lock-step.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts including the first one; 1 disables retries.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not slept through inside a call: the caller gets
    /// the error and reschedules the work (a daily-limit 429 can say 18 hours).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The cap on the delay before retry number `attempt` (1 = the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The full-jitter delay before retry number `attempt`.
    pub fn jittered(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }

    /// The delay before retry number `attempt` after `failure`, or `None` when the caller
    /// should stop: permanent failures, exhausted attempts, or a `Retry-After` too long to
    /// wait inside one call. A server-given `Retry-After` replaces the computed backoff.
    pub fn next_delay(&self, attempt: u32, failure: &Failure) -> Option<Duration> {
        if failure.is_permanent() || attempt >= self.max_attempts {
            return None;
        }
        match failure.retry_after() {
            Some(after) if after > self.max_retry_after => None,
            Some(after) => Some(after),
            None => Some(self.jittered(attempt)),
        }
    }

    /// Runs `op` until it succeeds, fails permanently or runs out of attempts; `op` gets the
    /// 1-based attempt number. `classify` decides what each error means.
    pub async fn run<T, E, F, Fut>(
        &self,
        mut op: F,
        classify: impl Fn(&E) -> Failure,
    ) -> Result<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 1;
        loop {
            match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let failure = classify(&e);
                    match self.next_delay(attempt, &failure) {
                        Some(delay) => {
                            tracing::debug!(attempt, ?delay, reason = failure.reason(), "retrying");
                            tokio::time::sleep(delay).await;
                            attempt += 1;
                        }
                        None => return Err(e),
                    }
                }
            }
        }
    }
}

/// Parses a `Retry-After` value given in seconds (Xero and the sandbox send delta-seconds;
/// the HTTP-date form is not used by either, so it is treated as absent).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            max_retry_after: Duration::from_secs(10),
        }
    }

    #[test]
    fn ceiling_doubles_and_caps() {
        let p = policy();
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(3), Duration::from_millis(350));
        assert_eq!(p.ceiling(60), Duration::from_millis(350));
    }

    #[test]
    fn full_jitter_stays_within_ceiling_and_varies() {
        let p = policy();
        let samples: Vec<Duration> = (0..200).map(|_| p.jittered(2)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_millis(200)));
        let distinct: std::collections::HashSet<_> = samples.iter().collect();
        assert!(distinct.len() > 50, "jitter should spread delays");
    }

    #[test]
    fn classification_of_statuses() {
        assert!(matches!(
            Failure::from_status(429, Some(Duration::from_secs(3)), ""),
            Failure::Retriable { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            Failure::from_status(503, None, ""),
            Failure::Retriable { .. }
        ));
        assert!(matches!(
            Failure::from_status(500, None, ""),
            Failure::Retriable { .. }
        ));
        for s in [400, 401, 403, 404] {
            assert!(Failure::from_status(s, None, "x").is_permanent(), "{s}");
        }
    }

    #[test]
    fn next_delay_honours_retry_after_and_limits() {
        let p = policy();
        let limited = Failure::Retriable {
            reason: "429".into(),
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(p.next_delay(1, &limited), Some(Duration::from_secs(7)));
        let day_limited = Failure::Retriable {
            reason: "429".into(),
            retry_after: Some(Duration::from_secs(66975)),
        };
        assert_eq!(p.next_delay(1, &day_limited), None);
        assert_eq!(p.next_delay(1, &Failure::permanent("400")), None);
        assert_eq!(p.next_delay(4, &Failure::retriable("503")), None);
        assert!(p.next_delay(3, &Failure::ambiguous("timeout")).is_some());
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after("12"), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-3"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn run_retries_transient_then_succeeds() {
        let calls = AtomicU32::new(0);
        let start = tokio::time::Instant::now();
        let out: Result<u32, Failure> = policy()
            .run(
                |attempt| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if attempt < 3 {
                            Err(Failure::Retriable {
                                reason: "busy".into(),
                                retry_after: Some(Duration::from_secs(2)),
                            })
                        } else {
                            Ok(attempt)
                        }
                    }
                },
                Clone::clone,
            )
            .await;
        assert_eq!(out, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(4),
            "two Retry-After waits of 2 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn run_stops_on_permanent_and_on_exhaustion() {
        let calls = AtomicU32::new(0);
        let out: Result<(), Failure> = policy()
            .run(
                |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async { Err(Failure::permanent("404")) }
                },
                Clone::clone,
            )
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let out: Result<(), Failure> = policy()
            .run(
                |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async { Err(Failure::ambiguous("reset")) }
                },
                Clone::clone,
            )
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}
