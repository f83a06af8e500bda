//! The pacing core shared by the Xero and Magento budgets.
//!
//! Hand-written rather than `governor`: governor's GCRA is a smoothed token bucket, not the
//! sliding window Xero counts; it cannot cap calls in flight, has no notion of an
//! externally imposed pause (`Retry-After`) or of server-reported usage, serves waiters in
//! no particular order, and sleeps on its own clock, which tokio's paused time does not
//! drive. This gate is a sliding-window counter plus an in-flight cap plus a pause, with an
//! explicit priority queue of waiters, all on `tokio::time` so tests run minutes of traffic
//! in milliseconds.
//!
//! Window accounting: a call occupies its window slot from the moment it is granted until
//! `window` after it *completes* (its permit is dropped). The remote counts a call when the
//! request arrives, which is somewhere between those two instants; so two calls whose slots
//! never overlap in our accounting are always at least `window` apart at the remote, whatever
//! the network latency. The price is that a full window waits one round-trip longer, which
//! is negligible against 60 seconds.
//!
//! Only the head of the queue (best priority, then arrival order) ever tries to take a
//! slot; everyone else sleeps on a private `Notify` until they become head. That makes the
//! order strict and avoids waking thousands of waiters on every release.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::priority::Priority;

#[derive(Debug, Clone)]
pub(crate) struct GateConfig {
    pub concurrent: u32,
    /// Sliding window and the calls allowed in it; `None` means no rate limit.
    pub window: Option<(Duration, u32)>,
    /// Rolling day window and its allowance.
    pub day: Option<(Duration, u32)>,
    /// How far back the daily forecast looks to estimate the current rate.
    pub forecast_horizon: Duration,
}

type WaiterKey = (u8, u64);

#[derive(Debug)]
struct Slot {
    id: u64,
    /// `None` while the call is in flight.
    expires: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct DayEntry {
    at: Instant,
    /// Phantom entries come from the server's own count and do not feed the rate forecast.
    real: bool,
}

#[derive(Debug)]
struct State {
    in_flight: u32,
    slots: Vec<Slot>,
    day: VecDeque<DayEntry>,
    paused_until: Option<Instant>,
    pause_problem: Option<String>,
    waiters: BTreeMap<WaiterKey, Arc<Notify>>,
    next_seq: u64,
    next_slot: u64,
    calls_total: u64,
    throttled_total: u64,
    started: Instant,
}

#[derive(Debug)]
pub(crate) struct Gate {
    pub cfg: GateConfig,
    state: Mutex<State>,
}

/// What a caller may see of the gate at one instant.
#[derive(Debug, Clone)]
pub(crate) struct GateView {
    pub window_used: u32,
    pub day_used: u32,
    pub in_flight: u32,
    pub paused_until: Option<Instant>,
    pub pause_problem: Option<String>,
    pub calls_total: u64,
    pub throttled_total: u64,
    pub waiting: u32,
    /// Time until the day allowance runs out at the recent rate.
    pub day_exhausted_in: Option<Duration>,
}

impl State {
    fn prune(&mut self, cfg: &GateConfig, now: Instant) {
        self.slots.retain(|s| s.expires.is_none_or(|e| e > now));
        if let Some((day_window, _)) = cfg.day {
            while self.day.front().is_some_and(|d| d.at + day_window <= now) {
                self.day.pop_front();
            }
        }
        if self.paused_until.is_some_and(|p| p <= now) {
            self.paused_until = None;
            self.pause_problem = None;
        }
    }

    /// Takes a slot, or says until when (if known) the caller must wait.
    fn try_grant(&mut self, cfg: &GateConfig, now: Instant) -> Result<u64, Option<Instant>> {
        self.prune(cfg, now);
        if let Some(p) = self.paused_until {
            return Err(Some(p));
        }
        if self.in_flight >= cfg.concurrent {
            return Err(None);
        }
        if let Some((_, per_window)) = cfg.window
            && self.slots.len() >= per_window as usize
        {
            return Err(self.slots.iter().filter_map(|s| s.expires).min());
        }
        if let Some((day_window, per_day)) = cfg.day
            && self.day.len() >= per_day as usize
        {
            return Err(self.day.front().map(|d| d.at + day_window));
        }
        let id = self.next_slot;
        self.next_slot += 1;
        if cfg.window.is_some() {
            self.slots.push(Slot { id, expires: None });
        }
        if cfg.day.is_some() {
            self.day.push_back(DayEntry {
                at: now,
                real: true,
            });
        }
        self.in_flight += 1;
        self.calls_total += 1;
        Ok(id)
    }

    fn notify_head(&self) {
        if let Some(n) = self.waiters.values().next() {
            n.notify_one();
        }
    }
}

impl Gate {
    pub fn new(cfg: GateConfig) -> Self {
        assert!(
            cfg.concurrent > 0,
            "a budget must allow at least one call in flight"
        );
        Self {
            cfg,
            state: Mutex::new(State {
                in_flight: 0,
                slots: Vec::new(),
                day: VecDeque::new(),
                paused_until: None,
                pause_problem: None,
                waiters: BTreeMap::new(),
                next_seq: 0,
                next_slot: 0,
                calls_total: 0,
                throttled_total: 0,
                started: Instant::now(),
            }),
        }
    }

    /// Waits for a slot. Cancel-safe: dropping the future leaves the queue.
    pub async fn acquire(self: &Arc<Self>, priority: Priority) -> GatePermit {
        let notify = Arc::new(Notify::new());
        let key = {
            let mut st = self.state.lock();
            let key = (priority.rank(), st.next_seq);
            st.next_seq += 1;
            st.waiters.insert(key, notify.clone());
            key
        };
        let mut guard = QueueGuard {
            gate: self,
            key,
            queued: true,
        };
        loop {
            let deadline = {
                let mut st = self.state.lock();
                if st.waiters.keys().next() == Some(&key) {
                    match st.try_grant(&self.cfg, Instant::now()) {
                        Ok(slot) => {
                            st.waiters.remove(&key);
                            guard.queued = false;
                            st.notify_head();
                            return GatePermit {
                                gate: self.clone(),
                                slot,
                            };
                        }
                        Err(deadline) => deadline,
                    }
                } else {
                    None
                }
            };
            match deadline {
                Some(d) => {
                    tokio::select! {
                        _ = notify.notified() => {}
                        _ = tokio::time::sleep_until(d) => {}
                    }
                }
                None => notify.notified().await,
            }
        }
    }

    fn release(&self, slot: u64) {
        let mut st = self.state.lock();
        st.in_flight -= 1;
        if let Some((window, _)) = self.cfg.window {
            let expires = Instant::now() + window;
            if let Some(s) = st.slots.iter_mut().find(|s| s.id == slot) {
                s.expires = Some(expires);
            }
        }
        st.notify_head();
    }

    /// Stops every acquirer until `until` (extends, never shortens, a current pause).
    pub fn pause_until(&self, until: Instant, problem: &str) {
        let mut st = self.state.lock();
        st.throttled_total += 1;
        if st.paused_until.is_none_or(|p| p < until) {
            st.paused_until = Some(until);
            st.pause_problem = Some(problem.to_owned());
        }
        st.notify_head();
    }

    /// Raises our counts to what the remote says it has counted, never lowers them.
    pub fn align_used(&self, window_used: Option<u32>, day_used: Option<u32>) {
        let mut st = self.state.lock();
        let now = Instant::now();
        st.prune(&self.cfg, now);
        if let (Some(remote), Some((window, per_window))) = (window_used, self.cfg.window) {
            let target = remote.min(per_window) as usize;
            while st.slots.len() < target {
                let id = st.next_slot;
                st.next_slot += 1;
                st.slots.push(Slot {
                    id,
                    expires: Some(now + window),
                });
            }
        }
        if let (Some(remote), Some((_, per_day))) = (day_used, self.cfg.day) {
            let target = remote.min(per_day) as usize;
            while st.day.len() < target {
                st.day.push_back(DayEntry {
                    at: now,
                    real: false,
                });
            }
        }
    }

    pub fn view(&self) -> GateView {
        let mut st = self.state.lock();
        let now = Instant::now();
        st.prune(&self.cfg, now);
        let day_exhausted_in = self.cfg.day.and_then(|(_, per_day)| {
            let remaining = (per_day as usize).saturating_sub(st.day.len());
            if remaining == 0 {
                return Some(Duration::ZERO);
            }
            let horizon = self.cfg.forecast_horizon.min(now - st.started);
            if horizon.is_zero() {
                return None;
            }
            let since = now - horizon;
            let recent = st.day.iter().filter(|d| d.real && d.at > since).count();
            if recent == 0 {
                return None;
            }
            let per_sec = recent as f64 / horizon.as_secs_f64();
            Some(Duration::from_secs_f64(remaining as f64 / per_sec))
        });
        GateView {
            window_used: st.slots.len() as u32,
            day_used: st.day.len() as u32,
            in_flight: st.in_flight,
            paused_until: st.paused_until,
            pause_problem: st.pause_problem.clone(),
            calls_total: st.calls_total,
            throttled_total: st.throttled_total,
            waiting: st.waiters.len() as u32,
            day_exhausted_in,
        }
    }
}

/// Leaves the queue if the acquiring future is dropped before it got a slot.
struct QueueGuard<'a> {
    gate: &'a Arc<Gate>,
    key: WaiterKey,
    queued: bool,
}

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        if self.queued {
            let mut st = self.gate.state.lock();
            st.waiters.remove(&self.key);
            st.notify_head();
        }
    }
}

/// One granted call; the in-flight slot is returned and the window slot starts expiring
/// when this is dropped, so hold it until the response has been read.
#[derive(Debug)]
pub(crate) struct GatePermit {
    gate: Arc<Gate>,
    slot: u64,
}

impl Drop for GatePermit {
    fn drop(&mut self) {
        self.gate.release(self.slot);
    }
}
