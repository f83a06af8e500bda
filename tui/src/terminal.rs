//! Owning the real terminal: raw mode, alternate screen and mouse capture, always given back.
//!
//! A console that dies and leaves the shell in raw mode is worse than no console, so the terminal
//! is restored by an RAII guard on every normal or `?` exit and by a panic hook when a panic
//! unwinds past us (the hook runs first, so the panic message lands on a usable screen).

use std::io::{self, Stdout, stdout};
use std::sync::Once;

use crossterm::cursor::Show;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub type CrosstermTerminal = Terminal<CrosstermBackend<Stdout>>;

/// Restores the terminal when dropped.
#[must_use = "the terminal is restored when the guard is dropped"]
#[derive(Debug)]
pub struct TerminalGuard {
    _private: (),
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = restore();
    }
}

/// Switches the terminal to the console's mode; keep the guard alive as long as the console runs.
pub fn enter() -> io::Result<(CrosstermTerminal, TerminalGuard)> {
    install_panic_hook();
    enable_raw_mode()?;
    // From here on any early return must undo raw mode: the guard does it.
    let guard = TerminalGuard { _private: () };
    execute!(stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(stdout()))?;
    terminal.clear()?;
    Ok((terminal, guard))
}

/// Leaves the console's mode. Safe to call more than once.
pub fn restore() -> io::Result<()> {
    let raw = disable_raw_mode();
    let screen = execute!(stdout(), DisableMouseCapture, LeaveAlternateScreen, Show);
    raw.and(screen)
}

/// Installs, once per process, a panic hook that restores the terminal before the previous hook
/// prints the panic.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        chain_panic_hook(|| {
            let _ = restore();
        })
    });
}

/// Runs `before` on panic, then whatever hook was installed before (the default printer, or a
/// tracing/color-eyre hook the binary set up), so ours never swallows theirs.
pub fn chain_panic_hook<F>(before: F)
where
    F: Fn() + Send + Sync + 'static,
{
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        before();
        previous(info);
    }));
}
