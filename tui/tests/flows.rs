//! Key and mouse flows: what the operator presses and what the engine is asked to do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use tally_tui::fixture::sample_state;
use tally_tui::state::ConsoleState;
use tally_tui::views::View;
use tally_tui::{App, ConsoleCommand, Theme};

fn app() -> App {
    App::new(Theme::colored())
}

fn key(app: &mut App, state: &ConsoleState, code: KeyCode) -> Option<ConsoleCommand> {
    app.handle_key(KeyEvent::from(code), state)
}

fn typed(app: &mut App, state: &ConsoleState, text: &str) {
    for c in text.chars() {
        assert_eq!(key(app, state, KeyCode::Char(c)), None, "typing {c:?}");
    }
}

fn draw(app: &mut App, state: &ConsoleState, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.draw(f, state)).unwrap();
    t.backend().buffer().clone()
}

fn rows(buf: &Buffer) -> Vec<String> {
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

fn text(buf: &Buffer) -> String {
    rows(buf).join("\n")
}

/// The text of the row drawn reversed, i.e. the selected row of the main list.
fn selected_row(buf: &Buffer) -> String {
    let rows = rows(buf);
    (0..buf.area.height)
        .find(|&y| {
            (1..buf.area.width - 1).all(|x| buf[(x, y)].modifier.contains(Modifier::REVERSED))
        })
        .map(|y| rows[y as usize].clone())
        .unwrap_or_default()
}

#[test]
fn number_keys_and_tab_switch_views() {
    let s = sample_state(10);
    let mut a = app();
    assert_eq!(a.view(), View::Overview);
    key(&mut a, &s, KeyCode::Char('2'));
    assert_eq!(a.view(), View::Queues);
    key(&mut a, &s, KeyCode::Tab);
    assert_eq!(a.view(), View::Errors);
    key(&mut a, &s, KeyCode::BackTab);
    assert_eq!(a.view(), View::Queues);
    key(&mut a, &s, KeyCode::Char('5'));
    assert_eq!(a.view(), View::Log);
    key(&mut a, &s, KeyCode::Tab);
    assert_eq!(a.view(), View::Discrepancies);
    key(&mut a, &s, KeyCode::Tab);
    assert_eq!(a.view(), View::Overview);
    key(&mut a, &s, KeyCode::Char('6'));
    assert_eq!(a.view(), View::Discrepancies);
    key(&mut a, &s, KeyCode::Char('4'));
    assert!(text(&draw(&mut a, &s, 80, 24)).contains("Audit trail"));
}

#[test]
fn r_on_errors_retries_the_selected_newest_first_item() {
    let s = sample_state(10);
    let mut a = app();
    key(&mut a, &s, KeyCode::Char('3'));
    // Newest first: 12:00:01 is order 000000152 although it is fourth in the state.
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('r')),
        Some(ConsoleCommand::Retry("order 000000152".into()))
    );
    key(&mut a, &s, KeyCode::Down);
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('r')),
        Some(ConsoleCommand::Retry("order 000000131".into()))
    );
    assert_eq!(a.status(), Some("retry sent: order 000000131"));
}

#[test]
fn discrepancies_list_what_needs_attention_first_and_acknowledge_asks_first() {
    let s = sample_state(10);
    let mut a = app();
    key(&mut a, &s, KeyCode::Char('6'));
    let screen = text(&draw(&mut a, &s, 120, 40));
    assert!(
        screen.contains("Discrepancies · 3 need attention · 1 acknowledged"),
        "{screen}"
    );
    // Oldest open one first: 000000118 was raised at 11:40; the acknowledged one comes last.
    let row = selected_row(&draw(&mut a, &s, 120, 40));
    assert!(row.contains("000000118") && row.contains("open"), "{row}");
    // `a` asks why; Esc leaves it as it was.
    assert_eq!(key(&mut a, &s, KeyCode::Char('a')), None);
    assert!(
        text(&draw(&mut a, &s, 120, 40)).contains("Acknowledge voided:order:000000118"),
        "the prompt names the discrepancy"
    );
    assert_eq!(key(&mut a, &s, KeyCode::Esc), None);
    assert!(!text(&draw(&mut a, &s, 120, 40)).contains("Why is this difference"));
    // The reason typed (keys that would act elsewhere are text here) goes with it.
    assert_eq!(key(&mut a, &s, KeyCode::Char('a')), None);
    typed(&mut a, &s, "re-issued, q3");
    key(&mut a, &s, KeyCode::Backspace);
    assert!(!a.should_quit());
    assert!(
        text(&draw(&mut a, &s, 120, 40)).contains("> re-issued, q_"),
        "the reason as typed"
    );
    assert_eq!(
        key(&mut a, &s, KeyCode::Enter),
        Some(ConsoleCommand::Acknowledge {
            key: "voided:order:000000118".into(),
            note: Some("re-issued, q".into())
        })
    );
    // With nothing typed, no reason is sent.
    key(&mut a, &s, KeyCode::Char('a'));
    assert_eq!(
        key(&mut a, &s, KeyCode::Enter),
        Some(ConsoleCommand::Acknowledge {
            key: "voided:order:000000118".into(),
            note: None
        })
    );
    assert_eq!(a.status(), Some("acknowledge sent: voided:order:000000118"));
    // An acknowledged one is not asked about again.
    key(&mut a, &s, KeyCode::End);
    let row = selected_row(&draw(&mut a, &s, 120, 40));
    assert!(row.contains("000000097") && row.contains("ack"), "{row}");
    assert_eq!(key(&mut a, &s, KeyCode::Char('a')), None);
    assert!(a.confirmation().is_none());
    // `f` on an edited total restores the invoice tally posted: asked first.
    assert_eq!(key(&mut a, &s, KeyCode::Char('f')), None);
    assert!(
        text(&draw(&mut a, &s, 120, 40)).contains("Restore the Xero invoice of 000000097"),
        "asks before writing to Xero"
    );
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('y')),
        Some(ConsoleCommand::FixDiscrepancy(
            "total:order:000000097".into()
        ))
    );
    // `f` on a kind tally cannot fix goes straight to the engine, which says what to do.
    key(&mut a, &s, KeyCode::Char('6'));
    key(&mut a, &s, KeyCode::Home);
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('f')),
        Some(ConsoleCommand::FixDiscrepancy(
            "voided:order:000000118".into()
        ))
    );
    key(&mut a, &s, KeyCode::End);
    // Enter opens the order's audit trail.
    assert_eq!(
        key(&mut a, &s, KeyCode::Enter),
        Some(ConsoleCommand::Open("order:000000097".into()))
    );
    assert_eq!(a.view(), View::Entity);
    // `f` on a cancelled order's discrepancy voids its invoice in Xero: asked first.
    let mut s = s;
    s.discrepancies[0].kind = "order_cancelled_in_magento".into();
    s.discrepancies[0].key = "cancelled:order:000000118".into();
    key(&mut a, &s, KeyCode::Char('6'));
    key(&mut a, &s, KeyCode::Home);
    assert_eq!(key(&mut a, &s, KeyCode::Char('f')), None);
    assert!(
        text(&draw(&mut a, &s, 120, 40)).contains("Void the Xero invoice of 000000118"),
        "asks before writing to Xero"
    );
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('y')),
        Some(ConsoleCommand::FixDiscrepancy(
            "cancelled:order:000000118".into()
        ))
    );
    // `f` on a payment removed in Xero applies it again: asked first too.
    s.discrepancies[0].kind = "payment_missing_in_xero".into();
    s.discrepancies[0].key = "payment-missing:order:000000118".into();
    key(&mut a, &s, KeyCode::Char('6'));
    key(&mut a, &s, KeyCode::Home);
    assert_eq!(key(&mut a, &s, KeyCode::Char('f')), None);
    assert!(
        text(&draw(&mut a, &s, 120, 40)).contains("Apply the payment of 000000118"),
        "asks before writing to Xero"
    );
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('y')),
        Some(ConsoleCommand::FixDiscrepancy(
            "payment-missing:order:000000118".into()
        ))
    );
    // `c` asks for a reconciliation pass from here too.
    key(&mut a, &s, KeyCode::Char('6'));
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('c')),
        Some(ConsoleCommand::ReconcileNow)
    );
}

#[test]
fn retry_all_asks_first_and_only_y_sends_it() {
    let s = sample_state(10);
    let mut a = app();
    key(&mut a, &s, KeyCode::Char('3'));
    assert_eq!(key(&mut a, &s, KeyCode::Char('R')), None);
    assert!(a.confirmation().is_some());
    assert!(text(&draw(&mut a, &s, 80, 24)).contains("Retry all 5 failed items"));
    // Other keys do nothing while the question is open.
    assert_eq!(key(&mut a, &s, KeyCode::Char('r')), None);
    assert_eq!(key(&mut a, &s, KeyCode::Char('q')), None);
    assert!(!a.should_quit());
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('y')),
        Some(ConsoleCommand::RetryAll)
    );
    assert!(a.confirmation().is_none());

    assert_eq!(key(&mut a, &s, KeyCode::Char('R')), None);
    assert_eq!(key(&mut a, &s, KeyCode::Char('n')), None);
    assert!(a.confirmation().is_none());
    assert_eq!(a.status(), Some("cancelled"));
    assert!(!text(&draw(&mut a, &s, 80, 24)).contains("Retry all 5"));
}

#[test]
fn d_then_y_drops_the_selected_item() {
    let s = sample_state(10);
    let mut a = app();
    key(&mut a, &s, KeyCode::Char('3'));
    key(&mut a, &s, KeyCode::Down);
    key(&mut a, &s, KeyCode::Down);
    assert_eq!(key(&mut a, &s, KeyCode::Char('d')), None);
    assert!(a.confirmation().unwrap().prompt.contains("order 000000123"));
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('y')),
        Some(ConsoleCommand::Drop("order 000000123".into()))
    );
    assert_eq!(key(&mut a, &s, KeyCode::Char('d')), None);
    assert_eq!(key(&mut a, &s, KeyCode::Esc), None);
    assert!(a.confirmation().is_none());
}

#[test]
fn enter_on_an_error_shows_details_and_o_opens_its_trail() {
    let s = sample_state(10);
    let mut a = app();
    key(&mut a, &s, KeyCode::Char('3'));
    key(&mut a, &s, KeyCode::Down);
    assert_eq!(key(&mut a, &s, KeyCode::Enter), None);
    let screen = text(&draw(&mut a, &s, 80, 24));
    assert!(
        screen.contains("must be unique across all active"),
        "{screen}"
    );
    // Number keys belong to the popup while it is open.
    key(&mut a, &s, KeyCode::Char('1'));
    assert_eq!(a.view(), View::Errors);
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('o')),
        Some(ConsoleCommand::Open("order 000000131".into()))
    );
    assert_eq!(a.view(), View::Entity);
}

#[test]
fn slash_filter_narrows_queue_rows_and_esc_restores_them() {
    let s = sample_state(500);
    let mut a = app();
    key(&mut a, &s, KeyCode::Char('2'));
    key(&mut a, &s, KeyCode::Char('/'));
    typed(&mut a, &s, "00049");
    let screen = text(&draw(&mut a, &s, 80, 24));
    assert!(screen.contains("11 of 500 match"), "{screen}");
    assert!(screen.contains("order 000000490"));
    assert!(!screen.contains("order 000000001 "));
    // Filter kept after enter; the selection moves within the matches only.
    key(&mut a, &s, KeyCode::Enter);
    key(&mut a, &s, KeyCode::End);
    assert!(selected_row(&draw(&mut a, &s, 80, 24)).contains("order 000000499"));
    key(&mut a, &s, KeyCode::Esc);
    assert_eq!(a.queues.filter(), "");
    let screen = text(&draw(&mut a, &s, 80, 24));
    assert!(screen.contains("500 pending or in flight"));
    assert!(screen.contains("order 000000001 "));
}

#[test]
fn entity_search_sends_search_then_open() {
    let s = sample_state(10);
    let mut a = app();
    key(&mut a, &s, KeyCode::Char('4'));
    key(&mut a, &s, KeyCode::Char('s'));
    // Letters that are keys elsewhere are text while typing.
    typed(&mut a, &s, "jo@example.com q");
    assert!(!a.should_quit());
    key(&mut a, &s, KeyCode::Backspace);
    key(&mut a, &s, KeyCode::Backspace);
    assert_eq!(
        key(&mut a, &s, KeyCode::Enter),
        Some(ConsoleCommand::Search("jo@example.com".into()))
    );
    key(&mut a, &s, KeyCode::Down);
    assert_eq!(
        key(&mut a, &s, KeyCode::Enter),
        Some(ConsoleCommand::Open("contact jo@example.com".into()))
    );
}

#[test]
fn question_mark_shows_every_key_and_esc_hides_it() {
    let s = sample_state(10);
    let mut a = app();
    key(&mut a, &s, KeyCode::Char('?'));
    assert!(a.help_visible());
    let screen = text(&draw(&mut a, &s, 80, 24));
    for needle in [
        "retry all",
        "drop",
        "pause / resume",
        "filter",
        "search",
        "quit",
    ] {
        assert!(screen.contains(needle), "help lacks {needle}:\n{screen}");
    }
    key(&mut a, &s, KeyCode::Esc);
    assert!(!a.help_visible());
    assert!(!text(&draw(&mut a, &s, 80, 24)).contains("esc or ? closes"));
}

#[test]
fn p_pauses_a_running_actor_and_resumes_a_paused_one() {
    let s = sample_state(10);
    let mut a = app();
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('p')),
        Some(ConsoleCommand::Pause("ingest".into()))
    );
    for _ in 0..3 {
        key(&mut a, &s, KeyCode::Down);
    }
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('p')),
        Some(ConsoleCommand::Resume("payments".into()))
    );
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('c')),
        Some(ConsoleCommand::ReconcileNow)
    );
}

#[test]
fn q_and_ctrl_c_quit_even_while_typing() {
    let s = sample_state(10);
    let mut a = app();
    assert_eq!(
        key(&mut a, &s, KeyCode::Char('q')),
        Some(ConsoleCommand::Quit)
    );
    assert!(a.should_quit());

    let mut a = app();
    key(&mut a, &s, KeyCode::Char('2'));
    key(&mut a, &s, KeyCode::Char('/'));
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(a.handle_key(ctrl_c, &s), Some(ConsoleCommand::Quit));
    assert!(a.should_quit());
}

#[test]
fn no_color_draws_default_colours_with_reverse_selection() {
    let s = sample_state(50);
    for view in View::ALL {
        let mut plain = App::new(Theme::plain());
        plain.set_view(view);
        let buf = draw(&mut plain, &s, 120, 40);
        for cell in buf.content() {
            assert_eq!(cell.fg, Color::Reset, "{view:?} {cell:?}");
            assert_eq!(cell.bg, Color::Reset, "{view:?} {cell:?}");
        }
        assert!(
            buf.content()
                .iter()
                .any(|c| c.modifier.contains(Modifier::REVERSED)),
            "{view:?} has no emphasis"
        );
    }
    let mut colored = app();
    let buf = draw(&mut colored, &s, 120, 40);
    assert!(buf.content().iter().any(|c| c.fg != Color::Reset));
}

#[test]
fn a_100k_queue_pages_and_ends_on_the_right_rows() {
    let s = sample_state(100_000);
    let mut a = app();
    key(&mut a, &s, KeyCode::Char('2'));
    draw(&mut a, &s, 80, 24);
    // 80×24 leaves 18 data rows: PageDown selects the 19th item.
    key(&mut a, &s, KeyCode::PageDown);
    let buf = draw(&mut a, &s, 80, 24);
    assert!(
        selected_row(&buf).contains("order 000000019 "),
        "{}",
        text(&buf)
    );
    key(&mut a, &s, KeyCode::End);
    let buf = draw(&mut a, &s, 80, 24);
    let screen = text(&buf);
    assert!(selected_row(&buf).contains("order 000100000 "), "{screen}");
    assert!(screen.contains("order 000099983 "), "{screen}");
    assert!(!screen.contains("order 000099982 "), "{screen}");
    key(&mut a, &s, KeyCode::PageUp);
    let buf = draw(&mut a, &s, 80, 24);
    assert!(
        selected_row(&buf).contains("order 000099982 "),
        "{}",
        text(&buf)
    );
    key(&mut a, &s, KeyCode::Home);
    let buf = draw(&mut a, &s, 80, 24);
    assert!(selected_row(&buf).contains("order 000000001 "));
}

#[test]
fn mouse_wheel_scrolls_and_clicks_select_tabs_and_rows() {
    let s = sample_state(1_000);
    let mut a = app();
    key(&mut a, &s, KeyCode::Char('2'));
    draw(&mut a, &s, 80, 24);
    let mouse = |kind, column, row| MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    };
    a.handle_mouse(mouse(MouseEventKind::ScrollDown, 10, 10), &s);
    assert!(selected_row(&draw(&mut a, &s, 80, 24)).contains("order 000000004 "));
    a.handle_mouse(mouse(MouseEventKind::ScrollUp, 10, 10), &s);
    assert!(selected_row(&draw(&mut a, &s, 80, 24)).contains("order 000000001 "));
    // Row 4 of the screen is the first data row (header, tabs, border, column header).
    a.handle_mouse(mouse(MouseEventKind::Down(MouseButton::Left), 10, 6), &s);
    assert!(selected_row(&draw(&mut a, &s, 80, 24)).contains("order 000000003 "));
    // The tab bar is row 1; "3 Errors" starts after " 1 Overview   2 Queues 1,000 ".
    let tabs = rows(&draw(&mut a, &s, 80, 24))[1].clone();
    let x = tabs.find("3 Errors").unwrap() as u16;
    a.handle_mouse(mouse(MouseEventKind::Down(MouseButton::Left), x, 1), &s);
    assert_eq!(a.view(), View::Errors);
}
