//! `tally console --attach`: following a daemon's state, surviving its restart, posting commands.

mod daemon_support;

use std::sync::Arc;
use std::time::Duration;

use daemon_support::*;
use tally::daemon::attach::{DAEMON_ROW, follow_with_reconnect, forward_commands};
use tally::daemon::client::ControlClient;
use tally::daemon::{Daemon, DaemonConfig, Settings};
use tally_tui::{ConsoleCommand, ConsoleState};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

async fn wait_for(
    rx: &mut watch::Receiver<ConsoleState>,
    what: &str,
    cond: impl Fn(&ConsoleState) -> bool,
) {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if cond(&rx.borrow_and_update()) {
                return;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "timed out waiting for: {what}; last state: {:?}",
            rx.borrow()
        )
    });
}

#[tokio::test]
async fn attached_console_shows_disconnection_and_reconnects_after_a_restart() {
    let settings = Settings {
        daemon: DaemonConfig {
            listen: "127.0.0.1:0".into(),
            token: secret("t0k"),
            shutdown_grace_secs: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let first = start(settings.clone()).await;
    let addr = first.daemon.local_addr();
    let client = ControlClient::new(&addr.to_string(), secret("t0k")).unwrap();
    let (tx, mut rx) = watch::channel(ConsoleState::default());
    let stop = CancellationToken::new();
    let follower = tokio::spawn(follow_with_reconnect(
        client.clone(),
        tx.clone(),
        stop.clone(),
    ));

    first.engine.state.send_modify(|s| s.discrepancies_open = 1);
    wait_for(&mut rx, "first daemon's state", |s| {
        s.discrepancies_open == 1
    })
    .await;

    // Commands typed in the console reach the daemon's engine.
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let forwarder = tokio::spawn(forward_commands(client, cmd_rx, tx.clone()));
    cmd_tx.send(ConsoleCommand::RetryAll).unwrap();
    eventually("command forwarded", || {
        first.engine.commands.lock().as_slice() == [ConsoleCommand::RetryAll]
    })
    .await;

    first.daemon.trigger().cancel();
    first.engine.release_shutdown.notify_one();
    first.daemon.wait().await;
    wait_for(&mut rx, "disconnected marker", |s| {
        s.link.ends_with("disconnected, retrying")
            && s.health.iter().any(|h| h.system == DAEMON_ROW && !h.ok)
    })
    .await;
    assert_eq!(
        rx.borrow().discrepancies_open,
        1,
        "the last state stays on screen"
    );

    // The daemon comes back on the same address with a different engine.
    let engine = Arc::new(FakeEngine::default());
    engine.state.send_modify(|s| s.discrepancies_open = 2);
    let second = Daemon::start(settings, engine.clone(), Some(&addr.to_string()))
        .await
        .expect("rebinds");
    wait_for(&mut rx, "second daemon's state", |s| {
        s.discrepancies_open == 2 && !s.link.contains("disconnected")
    })
    .await;

    stop.cancel();
    follower.await.unwrap();
    drop(cmd_tx);
    forwarder.await.unwrap();
    second.trigger().cancel();
    engine.release_shutdown.notify_one();
    second.wait().await;
}
