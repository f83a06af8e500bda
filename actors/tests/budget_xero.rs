//! The Xero budget under tokio's paused clock: minutes and days of traffic in milliseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use reqwest::header::{HeaderMap, HeaderValue};
use tally_actors::budget::{Priority, XeroBudget, XeroLimits};
use tokio::time::Instant;

fn limits(per_minute: u32, concurrent: u32, per_day: u32, time_scale: f64) -> XeroLimits {
    XeroLimits {
        per_minute,
        concurrent,
        per_day,
        time_scale,
    }
}

/// Deterministic pseudo-random latencies so the test is reproducible.
fn latency(seed: u64, min_ms: u64, spread_ms: u64) -> Duration {
    let x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        >> 33;
    Duration::from_millis(min_ms + x % spread_ms)
}

struct Run {
    /// (granted, arrived at the "server", completed) per call.
    calls: Vec<(Instant, Instant, Instant)>,
    max_in_flight: u32,
    elapsed: Duration,
}

/// `workers` tasks each make `per_worker` calls of varying latency through one budget.
async fn drive(
    budget: XeroBudget,
    workers: u64,
    per_worker: u64,
    min_ms: u64,
    spread_ms: u64,
) -> Run {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(AtomicU32::new(0));
    let max_in_flight = Arc::new(AtomicU32::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (budget, calls, in_flight, max_in_flight) = (
            budget.clone(),
            calls.clone(),
            in_flight.clone(),
            max_in_flight.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0..per_worker {
                let priority = Priority::ALL[((w + i) % 5) as usize];
                let permit = budget.acquire(priority).await;
                let granted = Instant::now();
                let now_in = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max_in_flight.fetch_max(now_in, Ordering::SeqCst);
                let lat = latency(w * 1_000_003 + i, min_ms, spread_ms);
                // The remote counts the call somewhere inside the round trip.
                tokio::time::sleep(lat / 3).await;
                let arrived = Instant::now();
                tokio::time::sleep(lat - lat / 3).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                let completed = Instant::now();
                drop(permit);
                calls.lock().push((granted, arrived, completed));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut calls = std::mem::take(&mut *calls.lock());
    calls.sort_by_key(|c| c.1);
    Run {
        calls,
        max_in_flight: max_in_flight.load(Ordering::SeqCst),
        elapsed: start.elapsed(),
    }
}

/// The most calls whose arrival falls in any window `[t, t + window]` (closed, the
/// strictest reading of "the last 60 seconds").
fn max_in_window(arrivals: &[Instant], window: Duration) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..arrivals.len() {
        while arrivals[hi] - arrivals[lo] > window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[tokio::test(start_paused = true)]
async fn thousands_of_calls_never_exceed_the_sliding_minute_or_concurrency() {
    let budget = XeroBudget::new(limits(60, 5, 1_000_000, 1.0));
    let run = drive(budget.clone(), 20, 150, 20, 800).await;
    assert_eq!(run.calls.len(), 3000);

    let arrivals: Vec<Instant> = run.calls.iter().map(|c| c.1).collect();
    let peak = max_in_window(&arrivals, Duration::from_secs(60));
    assert!(
        peak <= 60,
        "the remote would have seen {peak} calls in one minute"
    );
    // Also with the budget's own grant instants.
    let mut grants: Vec<Instant> = run.calls.iter().map(|c| c.0).collect();
    grants.sort();
    assert!(max_in_window(&grants, Duration::from_secs(60)) <= 60);
    assert_eq!(peak, 60, "the window should be used to the full");

    assert!(
        run.max_in_flight <= 5,
        "in flight peaked at {}",
        run.max_in_flight
    );
    assert_eq!(
        run.max_in_flight, 5,
        "the concurrency cap should be reached"
    );

    // Utilisation: at least 57 calls per minute while work is waiting.
    let per_minute = 3000.0 / (run.elapsed.as_secs_f64() / 60.0);
    assert!(per_minute >= 57.0, "only {per_minute:.2} calls/minute");

    let snap = budget.snapshot();
    assert_eq!(snap.calls_total, 3000);
    assert_eq!(snap.in_flight, 0);
    assert_eq!(snap.waiting, 0);
}

#[tokio::test(start_paused = true)]
async fn time_scale_counts_in_simulated_seconds() {
    // 600 simulated seconds per real second: a simulated minute is 100 ms.
    let budget = XeroBudget::new(limits(60, 5, 1_000_000, 600.0));
    let run = drive(budget, 10, 60, 0, 3).await;
    let arrivals: Vec<Instant> = run.calls.iter().map(|c| c.1).collect();
    assert!(max_in_window(&arrivals, Duration::from_millis(100)) <= 60);
    // 600 calls = 10 simulated minutes = about one real second, not ten minutes.
    let per_sim_minute = 600.0 / (run.elapsed.as_secs_f64() * 600.0 / 60.0);
    assert!(
        per_sim_minute >= 57.0,
        "only {per_sim_minute:.2} calls per simulated minute"
    );
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_highest_priority_first() {
    let budget = XeroBudget::new(limits(1000, 1, 1_000_000, 1.0));
    let held = budget.acquire(Priority::Lookup).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for p in [
        Priority::Backfill,
        Priority::Lookup,
        Priority::Contact,
        Priority::Backfill,
        Priority::Invoice,
        Priority::Payment,
    ] {
        let (budget, order) = (budget.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let permit = budget.acquire(p).await;
            order.lock().push(p);
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(permit);
        }));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(budget.snapshot().waiting, 6);
    drop(held);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        *order.lock(),
        vec![
            Priority::Payment,
            Priority::Invoice,
            Priority::Contact,
            Priority::Lookup,
            Priority::Backfill,
            Priority::Backfill,
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_does_not_block_the_queue() {
    let budget = XeroBudget::new(limits(1000, 1, 1_000_000, 1.0));
    let held = budget.acquire(Priority::Lookup).await;
    let b = budget.clone();
    let urgent = tokio::spawn(async move { b.acquire(Priority::Payment).await });
    let b = budget.clone();
    let patient = tokio::spawn(async move {
        let _p = b.acquire(Priority::Backfill).await;
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(budget.snapshot().waiting, 2);
    urgent.abort();
    let _ = urgent.await;
    assert_eq!(budget.snapshot().waiting, 1);
    drop(held);
    tokio::time::timeout(Duration::from_secs(1), patient)
        .await
        .expect("the remaining waiter must be served")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn pause_until_stops_every_acquirer_of_the_tenant() {
    let budget = XeroBudget::new(XeroLimits::default());
    let start = Instant::now();
    budget.pause_until(start + Duration::from_secs(30), "minute");
    // A shorter pause never shortens the current one.
    budget.pause_until(start + Duration::from_secs(5), "concurrent");

    let snap = budget.snapshot();
    assert_eq!(snap.throttled_total, 2);
    assert_eq!(snap.pause_problem.as_deref(), Some("minute"));
    assert!((snap.paused_for_secs.unwrap() - 30.0).abs() < 1e-6);
    assert!(snap.paused_until.is_some());

    let mut tasks = Vec::new();
    for p in [Priority::Payment, Priority::Invoice, Priority::Backfill] {
        let b = budget.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = b.acquire(p).await;
            Instant::now()
        }));
    }
    for t in tasks {
        let granted = t.await.unwrap();
        assert!(
            granted >= start + Duration::from_secs(30),
            "{p:?} went early",
            p = granted - start
        );
    }
    assert_eq!(budget.snapshot().paused_until, None);
}

fn headers(min_remaining: Option<&str>, day_remaining: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(v) = min_remaining {
        h.insert("X-MinLimit-Remaining", HeaderValue::from_str(v).unwrap());
    }
    if let Some(v) = day_remaining {
        h.insert("X-DayLimit-Remaining", HeaderValue::from_str(v).unwrap());
    }
    h
}

#[tokio::test(start_paused = true)]
async fn xero_counts_are_believed_when_higher_than_ours() {
    let budget = XeroBudget::new(XeroLimits::default());
    for _ in 0..3 {
        drop(budget.acquire(Priority::Lookup).await);
    }
    // Xero says more remain than we think: our stricter count stands.
    budget.observe(&headers(Some("59"), Some("4999")));
    let snap = budget.snapshot();
    assert_eq!((snap.minute_used, snap.day_used), (3, 3));

    // Xero has counted 50 this minute and 10 today (another instance is using the tenant).
    budget.observe(&headers(Some("10"), Some("4990")));
    let snap = budget.snapshot();
    assert_eq!((snap.minute_used, snap.day_used), (50, 10));

    // So only ten more go out now; the eleventh waits for the minute to pass.
    let start = Instant::now();
    for _ in 0..10 {
        drop(budget.acquire(Priority::Lookup).await);
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    drop(budget.acquire(Priority::Lookup).await);
    assert!(
        start.elapsed() >= Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );

    // Garbage headers change nothing.
    let before = budget.snapshot();
    budget.observe(&headers(Some("lots"), Some("-1")));
    assert_eq!(budget.snapshot().minute_used, before.minute_used);
}

#[tokio::test(start_paused = true)]
async fn daily_allowance_is_forecast_and_enforced() {
    let budget = XeroBudget::new(limits(60, 5, 5000, 1.0));
    assert_eq!(
        budget.snapshot().day_forecast_exhausted_in_secs,
        None,
        "idle: no forecast"
    );
    for _ in 0..300 {
        drop(budget.acquire(Priority::Backfill).await);
    }
    let snap = budget.snapshot();
    assert_eq!(snap.day_used, 300);
    // About 60 a minute: the 4,700 left last about 4,700 seconds.
    let expected = 4700.0;
    let forecast = snap
        .day_forecast_exhausted_in_secs
        .expect("a forecast while busy");
    assert!(
        (forecast - expected).abs() / expected < 0.05,
        "forecast {forecast}, expected {expected}"
    );
    assert!(snap.day_forecast_exhausted_at.is_some());

    // A small daily allowance blocks until the oldest call leaves the rolling day.
    let budget = XeroBudget::new(limits(60, 5, 10, 1.0));
    let start = Instant::now();
    for _ in 0..10 {
        drop(budget.acquire(Priority::Lookup).await);
    }
    assert_eq!(budget.snapshot().day_forecast_exhausted_in_secs, Some(0.0));
    drop(budget.acquire(Priority::Lookup).await);
    assert!(
        start.elapsed() >= Duration::from_secs(86_400),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn snapshot_serializes_for_the_console() {
    let budget = XeroBudget::new(XeroLimits::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let json = rt.block_on(async {
        let _p = budget.acquire(Priority::Invoice).await;
        serde_json::to_value(budget.snapshot()).unwrap()
    });
    assert_eq!(json["minute_limit"], 60);
    assert_eq!(json["in_flight"], 1);
    assert_eq!(json["day_limit"], 5000);
    assert_eq!(json["calls_total"], 1);
}
