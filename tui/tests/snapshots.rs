//! What each screen looks like, at the smallest supported terminal (80×24) and a common one
//! (120×40), drawn from the fixed sample state.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tally_tui::fixture::sample_state;
use tally_tui::state::ConsoleState;
use tally_tui::views::View;
use tally_tui::{App, Theme};

fn draw(app: &mut App, state: &ConsoleState, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| app.draw(f, state)).unwrap();
    terminal
}

fn press(app: &mut App, state: &ConsoleState, code: KeyCode) {
    app.handle_key(KeyEvent::from(code), state);
}

fn view_at(view: View, width: u16, height: u16) -> Terminal<TestBackend> {
    let state = sample_state(500);
    let mut app = App::new(Theme::colored());
    app.set_view(view);
    draw(&mut app, &state, width, height)
}

macro_rules! view_snapshots {
    ($($name:ident: $view:expr, $w:expr, $h:expr;)*) => {$(
        #[test]
        fn $name() {
            insta::assert_snapshot!(view_at($view, $w, $h).backend());
        }
    )*};
}

view_snapshots! {
    overview_80x24: View::Overview, 80, 24;
    overview_120x40: View::Overview, 120, 40;
    queues_80x24: View::Queues, 80, 24;
    queues_120x40: View::Queues, 120, 40;
    errors_80x24: View::Errors, 80, 24;
    errors_120x40: View::Errors, 120, 40;
    entity_80x24: View::Entity, 80, 24;
    entity_120x40: View::Entity, 120, 40;
    log_80x24: View::Log, 80, 24;
    log_120x40: View::Log, 120, 40;
    discrepancies_80x24: View::Discrepancies, 80, 24;
    discrepancies_120x40: View::Discrepancies, 120, 40;
}

#[test]
fn help_overlay_80x24() {
    let state = sample_state(500);
    let mut app = App::new(Theme::colored());
    press(&mut app, &state, KeyCode::Char('?'));
    insta::assert_snapshot!(draw(&mut app, &state, 80, 24).backend());
}

#[test]
fn retry_all_confirmation_80x24() {
    let state = sample_state(500);
    let mut app = App::new(Theme::colored());
    press(&mut app, &state, KeyCode::Char('3'));
    press(&mut app, &state, KeyCode::Char('R'));
    insta::assert_snapshot!(draw(&mut app, &state, 80, 24).backend());
}

#[test]
fn discrepancy_acknowledgement_prompt_80x24() {
    let state = sample_state(500);
    let mut app = App::new(Theme::colored());
    press(&mut app, &state, KeyCode::Char('6'));
    press(&mut app, &state, KeyCode::Char('a'));
    for c in "re-invoiced by hand".chars() {
        press(&mut app, &state, KeyCode::Char(c));
    }
    insta::assert_snapshot!(draw(&mut app, &state, 80, 24).backend());
}

#[test]
fn error_details_popup_80x24() {
    let state = sample_state(500);
    let mut app = App::new(Theme::colored());
    press(&mut app, &state, KeyCode::Char('3'));
    press(&mut app, &state, KeyCode::Down);
    press(&mut app, &state, KeyCode::Enter);
    insta::assert_snapshot!(draw(&mut app, &state, 80, 24).backend());
}

#[test]
fn queues_filtered_80x24() {
    let state = sample_state(500);
    let mut app = App::new(Theme::colored());
    press(&mut app, &state, KeyCode::Char('2'));
    press(&mut app, &state, KeyCode::Char('/'));
    for c in "00049".chars() {
        press(&mut app, &state, KeyCode::Char(c));
    }
    insta::assert_snapshot!(draw(&mut app, &state, 80, 24).backend());
}

#[test]
fn engine_down_and_throttled_overview_80x24() {
    let mut state = sample_state(10);
    state.health[1].ok = false;
    state.health[1].detail = "401 token expired: re-authorise".into();
    state.health[1].latency_ms = None;
    state.budget.paused_until = Some("2025-06-01T12:01:00Z".into());
    state.budget.forecast_exhausted_at = None;
    let mut app = App::new(Theme::colored());
    app.set_engine_gone(true);
    insta::assert_snapshot!(draw(&mut app, &state, 80, 24).backend());
}
