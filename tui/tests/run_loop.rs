//! The main loop over a test backend: input reaches the app and the engine, state updates are
//! drawn, and an engine that goes away leaves the console up and saying so.

use std::io;
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tally_tui::fixture::sample_state;
use tally_tui::run::run_loop;
use tally_tui::{App, ConsoleCommand, Theme};
use tokio::sync::{mpsc, watch};

fn screen(t: &Terminal<TestBackend>) -> String {
    t.backend().to_string()
}

fn key(c: KeyCode) -> io::Result<Event> {
    Ok(Event::Key(KeyEvent::from(c)))
}

#[tokio::test(start_paused = true)]
async fn keys_reach_the_engine_and_state_updates_are_drawn() {
    let (state_tx, state_rx) = watch::channel(sample_state(10));
    let (input_tx, input_rx) = mpsc::channel(16);
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel();
    let console = tokio::spawn(async move {
        let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
        let r = run_loop(
            &mut t,
            App::new(Theme::colored()),
            state_rx,
            input_rx,
            cmd_tx,
        )
        .await;
        (r, t)
    });

    input_tx.send(key(KeyCode::Char('3'))).await.unwrap();
    input_tx.send(key(KeyCode::Char('r'))).await.unwrap();
    // Paused time only advances once every task is idle, so this waits for the loop, not a clock.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        cmd_rx.try_recv().unwrap(),
        ConsoleCommand::Retry("order 000000152".into())
    );

    let mut next = sample_state(10);
    next.link = "Magento eu ↔ Xero Other Ltd".into();
    state_tx.send(next).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(state_tx);
    tokio::time::sleep(Duration::from_secs(1)).await;

    input_tx.send(key(KeyCode::Char('q'))).await.unwrap();
    let (result, terminal) = console.await.unwrap();
    result.unwrap();
    assert_eq!(cmd_rx.try_recv().unwrap(), ConsoleCommand::Quit);
    let shown = screen(&terminal);
    assert!(shown.contains("Magento eu ↔ Xero Other Ltd"), "{shown}");
    assert!(shown.contains("engine stopped"), "{shown}");
    assert!(shown.contains("Errors · 2 dead"), "{shown}");
}

#[tokio::test(start_paused = true)]
async fn a_resize_is_absorbed_and_closed_input_ends_the_loop() {
    let (_state_tx, state_rx) = watch::channel(sample_state(10));
    let (input_tx, input_rx) = mpsc::channel(16);
    let (cmd_tx, _cmd_rx) = mpsc::unbounded_channel();
    let console = tokio::spawn(async move {
        let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let r = run_loop(
            &mut t,
            App::new(Theme::colored()),
            state_rx,
            input_rx,
            cmd_tx,
        )
        .await;
        (r, t)
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    input_tx.send(Ok(Event::Resize(100, 30))).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(input_tx);
    let (result, terminal) = console.await.unwrap();
    result.unwrap();
    assert!(screen(&terminal).contains("Throughput"));
}

#[tokio::test(start_paused = true)]
async fn an_input_error_is_returned() {
    let (_state_tx, state_rx) = watch::channel(sample_state(1));
    let (input_tx, input_rx) = mpsc::channel(16);
    let (cmd_tx, _cmd_rx) = mpsc::unbounded_channel();
    input_tx
        .send(Err(io::Error::other("tty went away")))
        .await
        .unwrap();
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let err = run_loop(
        &mut t,
        App::new(Theme::colored()),
        state_rx,
        input_rx,
        cmd_tx,
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "tty went away");
}
