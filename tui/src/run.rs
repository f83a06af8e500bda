//! The console's main loop: input first, then engine updates, redraws capped at ~30 per second.

use std::io;
use std::time::Duration;

use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::app::App;
use crate::command::ConsoleCommand;
use crate::state::ConsoleState;
use crate::terminal;
use crate::theme::Theme;

/// Minimum time between two frames: an engine publishing hundreds of updates per second must not
/// turn the console into a busy loop.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(33);

/// Runs the console on the real terminal until the operator quits or stdin closes.
pub async fn run(
    state_rx: watch::Receiver<ConsoleState>,
    commands: UnboundedSender<ConsoleCommand>,
) -> io::Result<()> {
    let (mut terminal, _guard) = terminal::enter()?;
    let (input_tx, input_rx) = mpsc::channel(256);
    let input = tokio::spawn(read_input(input_tx));
    let result = run_loop(
        &mut terminal,
        App::new(Theme::from_env()),
        state_rx,
        input_rx,
        commands,
    )
    .await;
    input.abort();
    result
}

/// Forwards crossterm's events; lives in its own task so reading the terminal never waits on
/// drawing or on the engine.
async fn read_input(tx: mpsc::Sender<io::Result<Event>>) {
    let mut events = EventStream::new();
    while let Some(event) = events.next().await {
        if tx.send(event).await.is_err() {
            break;
        }
    }
}

/// The loop behind [`run`], over any backend and any input source so it can be driven by tests.
///
/// Returns when the operator quits or the input channel closes. When the engine drops its state
/// sender the console stays up, showing the last state marked as stopped.
pub async fn run_loop<B>(
    terminal: &mut Terminal<B>,
    mut app: App,
    mut state_rx: watch::Receiver<ConsoleState>,
    mut input: mpsc::Receiver<io::Result<Event>>,
    commands: UnboundedSender<ConsoleCommand>,
) -> io::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
{
    // The state is borrowed, never cloned: a 100,000-item queue would cost a deep copy per update,
    // while a borrow only holds the watch's read lock for one key press or one (sub-millisecond,
    // virtualised) draw.
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut engine_open = true;
    loop {
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME_INTERVAL) {
            terminal
                .draw(|frame| app.draw(frame, &state_rx.borrow()))
                .map_err(io::Error::other)?;
            dirty = false;
            last_draw = Some(Instant::now());
        }
        let next_frame = last_draw.map_or_else(Instant::now, |t| t + FRAME_INTERVAL);
        tokio::select! {
            biased;
            event = input.recv() => match event {
                Some(Ok(event)) => {
                    let command = app.handle_event(&event, &state_rx.borrow());
                    if let Some(command) = command
                        && commands.send(command).is_err()
                    {
                        app.set_status("the engine is not listening");
                    }
                    dirty = true;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            changed = state_rx.changed(), if engine_open => {
                if changed.is_err() {
                    engine_open = false;
                    app.set_engine_gone(true);
                }
                dirty = true;
            }
            _ = tokio::time::sleep_until(next_frame), if dirty => {}
        }
        if app.should_quit() {
            return Ok(());
        }
    }
}
