//! The `?` overlay: every key the console understands, so none has to be remembered.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::centered;
use crate::theme::Theme;

type Section = (&'static str, &'static [(&'static str, &'static str)]);

const LEFT: &[Section] = &[
    (
        "Everywhere",
        &[
            ("1-6", "switch view"),
            ("tab/⇧tab", "next / previous view"),
            ("?", "this help (esc closes)"),
            ("q ctrl-c", "quit"),
        ],
    ),
    (
        "Lists",
        &[
            ("↑↓ j k", "move"),
            ("pgup pgdn", "page"),
            ("home end g G", "first / last"),
            ("wheel click", "scroll / select"),
        ],
    ),
    (
        "Discrepancies",
        &[
            ("f", "fix what tally can fix"),
            ("a", "acknowledge (asks why)"),
            ("enter o", "order's audit trail"),
            ("c", "reconcile now"),
        ],
    ),
];

const RIGHT: &[Section] = &[
    ("Queues", &[("/", "filter"), ("esc", "clear filter")]),
    (
        "Errors",
        &[
            ("r", "retry selected"),
            ("R", "retry all (asks first)"),
            ("d", "drop (asks first)"),
            ("f", "fix mapping + retry"),
            ("enter", "details; o audit trail"),
        ],
    ),
    (
        "Entity",
        &[
            ("/ s", "search, enter sends"),
            ("enter", "open selected result"),
            ("pgup pgdn", "scroll audit trail"),
        ],
    ),
    (
        "Overview",
        &[("p", "pause / resume actor"), ("c", "reconcile now")],
    ),
];

fn lines(sections: &[Section], theme: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for (i, (title, keys)) in sections.iter().enumerate() {
        if i > 0 {
            out.push(Line::from(""));
        }
        out.push(Line::from(Span::styled(*title, theme.header_row())));
        for (key, what) in keys.iter() {
            out.push(Line::from(vec![
                Span::styled(format!(" {key:<13}"), theme.key_hint()),
                Span::raw(*what),
            ]));
        }
    }
    out
}

/// Drawn over the view's area, not the whole screen: the header and the row of views stay
/// in sight. The columns are balanced so that area holds them at 80×24.
pub fn draw(frame: &mut Frame, area: Rect, theme: Theme) {
    let (left, right) = (lines(LEFT, theme), lines(RIGHT, theme));
    let height = left.len().max(right.len()) as u16 + 2;
    let popup = centered(area, 78, height);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Line::from(" Keys ").style(theme.title()))
        .title_bottom(Line::from(" esc or ? closes "));
    let inner = block.inner(popup);
    frame.render_widget(Clear, popup);
    frame.render_widget(block, popup);
    let [l, r] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    frame.render_widget(Paragraph::new(left), l);
    frame.render_widget(Paragraph::new(right), r);
}
