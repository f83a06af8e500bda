//! The view model and commands survive JSON, as they must when the console attaches to a daemon.

use tally_tui::ConsoleCommand;
use tally_tui::fixture::sample_state;
use tally_tui::state::ConsoleState;

#[test]
fn console_state_round_trips_through_json() {
    let state = sample_state(3);
    let json = serde_json::to_string(&state).unwrap();
    assert!(json.contains(r#""status":"restarting""#), "{json}");
    let back: ConsoleState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);
}

#[test]
fn commands_round_trip_through_json() {
    for cmd in [
        ConsoleCommand::Retry("order 000000123".into()),
        ConsoleCommand::RetryAll,
        ConsoleCommand::Drop("order 1".into()),
        ConsoleCommand::Pause("invoices".into()),
        ConsoleCommand::Resume("invoices".into()),
        ConsoleCommand::Search("jo@example.com".into()),
        ConsoleCommand::Open("order 1".into()),
        ConsoleCommand::ReconcileNow,
        ConsoleCommand::Quit,
    ] {
        let json = serde_json::to_string(&cmd).unwrap();
        assert_eq!(serde_json::from_str::<ConsoleCommand>(&json).unwrap(), cmd);
    }
    assert_eq!(
        serde_json::to_string(&ConsoleCommand::Retry("x".into())).unwrap(),
        r#"{"command":"retry","arg":"x"}"#
    );
}
