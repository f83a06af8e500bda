//! The yes/no question asked before anything that cannot be undone or touches many records.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::centered;
use crate::command::ConsoleCommand;
use crate::theme::Theme;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    pub prompt: String,
    /// Sent only if the operator answers yes.
    pub on_yes: ConsoleCommand,
}

impl Confirm {
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let popup = centered(area, 60, 6);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Line::from(" Confirm ").style(theme.title()))
            .border_style(theme.warn());
        let text = vec![
            Line::from(self.prompt.clone()),
            Line::from(""),
            Line::from(vec![
                Span::styled("y", theme.key_hint()),
                Span::raw(" yes    "),
                Span::styled("n", theme.key_hint()),
                Span::raw("/"),
                Span::styled("esc", theme.key_hint()),
                Span::raw(" no"),
            ]),
        ];
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(text).block(block).wrap(Wrap { trim: true }),
            popup,
        );
    }
}
