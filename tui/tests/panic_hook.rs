//! The terminal is restored before the previous panic hook prints, and that hook still runs.
//! (Own test binary: panic hooks are process-wide.)

use std::sync::Mutex;

static CALLS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

#[test]
fn restore_runs_first_then_the_previous_hook() {
    std::panic::set_hook(Box::new(|_| CALLS.lock().unwrap().push("previous")));
    tally_tui::terminal::chain_panic_hook(|| CALLS.lock().unwrap().push("restore"));
    let outcome = std::panic::catch_unwind(|| panic!("boom"));
    assert!(outcome.is_err());
    let _ = std::panic::take_hook();
    assert_eq!(*CALLS.lock().unwrap(), vec!["restore", "previous"]);
}
