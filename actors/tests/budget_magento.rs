//! The Magento budget: a concurrency cap and an optional rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tally_actors::budget::{MagentoBudget, MagentoLimits, Priority};
use tokio::time::Instant;

async fn run(budget: MagentoBudget, calls: u32) -> (u32, Duration) {
    let in_flight = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..calls {
        let (budget, in_flight, peak) = (budget.clone(), in_flight.clone(), peak.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = budget.acquire(Priority::Lookup).await;
            let n = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5 + u64::from(i % 7))).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (peak.load(Ordering::SeqCst), start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_capped() {
    let budget = MagentoBudget::new(MagentoLimits {
        concurrent: 3,
        per_second: None,
    });
    let (peak, _) = run(budget.clone(), 50).await;
    assert_eq!(peak, 3);
    let snap = budget.snapshot();
    assert_eq!((snap.calls_total, snap.in_flight, snap.waiting), (50, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn optional_rate_paces_calls() {
    let budget = MagentoBudget::new(MagentoLimits {
        concurrent: 8,
        per_second: Some(10.0),
    });
    let (_, elapsed) = run(budget, 50).await;
    // 10 per sliding second: 50 calls need at least four full windows after the first ten.
    assert!(elapsed >= Duration::from_secs(4), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
}
