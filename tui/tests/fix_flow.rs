//! The fix form on the Errors view: pre-filled from the dead letter, edited, sent, answered.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tally_tui::fixture::sample_state;
use tally_tui::state::{ConsoleState, ErrorItem, Notice};
use tally_tui::{App, ConsoleCommand, FixRule, Theme};

/// The sample state plus the newest dead letter: an order whose tax class is not mapped.
fn state_with_tax_gap() -> ConsoleState {
    let mut state = sample_state(50);
    state.errors.push(ErrorItem {
        key: "order:000000207".into(),
        record: "order 000000207".into(),
        field: "items[0].tax_class".into(),
        message: "SKU \"LX-1\": tax class \"Luxury Goods\" is not mapped in mapping.tax".into(),
        remote_message: String::new(),
        attempts: 1,
        stage: "contact_ready".into(),
        at: "2025-06-01T12:00:04Z".into(),
        dead: true,
    });
    state
}

fn key(app: &mut App, state: &ConsoleState, code: KeyCode) -> Option<ConsoleCommand> {
    app.handle_key(KeyEvent::from(code), state)
}

fn screen(app: &mut App, state: &ConsoleState) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| app.draw(f, state)).unwrap();
    t
}

fn text(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn open_prompt(app: &mut App, state: &ConsoleState) {
    key(app, state, KeyCode::Char('3'));
    assert_eq!(key(app, state, KeyCode::Char('f')), None);
}

#[test]
fn fix_prompt_80x24() {
    let state = state_with_tax_gap();
    let mut app = App::new(Theme::colored());
    open_prompt(&mut app, &state);
    insta::assert_snapshot!(screen(&mut app, &state).backend());
}

#[test]
fn f_prefills_the_tax_class_and_enter_sends_the_typed_rule_for_that_letter() {
    let state = state_with_tax_gap();
    let mut app = App::new(Theme::colored());
    open_prompt(&mut app, &state);
    // Digits and `q` are text while the form is open, not view switches or quit.
    for c in "OUTPUT2q".chars() {
        assert_eq!(key(&mut app, &state, KeyCode::Char(c)), None);
    }
    key(&mut app, &state, KeyCode::Backspace);
    key(&mut app, &state, KeyCode::Backspace);
    assert!(!app.should_quit());
    let sent = key(&mut app, &state, KeyCode::Enter);
    assert_eq!(
        sent,
        Some(ConsoleCommand::Fix {
            key: "order:000000207".into(),
            rule: FixRule::TaxClass {
                class: "Luxury Goods".into(),
                tax_type: "OUTPUT".into(),
            },
        })
    );
    assert!(
        app.errors.fix_prompt().is_none(),
        "the form closes once sent"
    );
    assert!(app.status().unwrap().starts_with("fix sent: mapping.tax"));
}

#[test]
fn an_incomplete_rule_is_not_sent_and_esc_cancels() {
    let state = state_with_tax_gap();
    let mut app = App::new(Theme::colored());
    open_prompt(&mut app, &state);
    assert_eq!(key(&mut app, &state, KeyCode::Enter), None);
    assert!(text(&screen(&mut app, &state)).contains("Xero TaxType is empty"));
    // Another rule kind, with the name field typed after tab.
    key(&mut app, &state, KeyCode::Down);
    key(&mut app, &state, KeyCode::Esc);
    assert!(app.errors.fix_prompt().is_none());
    assert_eq!(
        key(&mut app, &state, KeyCode::Char('q')),
        Some(ConsoleCommand::Quit)
    );
}

#[test]
fn the_engines_answer_replaces_the_status_once() {
    let mut state = state_with_tax_gap();
    let mut app = App::new(Theme::colored());
    open_prompt(&mut app, &state);
    key(&mut app, &state, KeyCode::Esc);
    state.notice = Some(Notice {
        seq: 7,
        ok: false,
        message: "tax type \"GST\" is not in the organisation".into(),
    });
    let shown = text(&screen(&mut app, &state));
    assert!(shown.contains("refused: tax type \"GST\""), "{shown}");
    app.set_status("retry sent: x");
    screen(&mut app, &state);
    assert_eq!(
        app.status(),
        Some("retry sent: x"),
        "an answer is shown once"
    );
}

#[test]
fn help_lists_the_fix_key() {
    let state = state_with_tax_gap();
    let mut app = App::new(Theme::colored());
    key(&mut app, &state, KeyCode::Char('?'));
    assert!(text(&screen(&mut app, &state)).contains("fix mapping + retry"));
}
