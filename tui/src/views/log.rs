//! Log: the engine's recent log lines, newest first like the Errors view.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row};

use super::{Outcome, TableFrame, hit_row, navigate};
use crate::fmt;
use crate::scroll::ListCursor;
use crate::state::ConsoleState;
use crate::theme::Theme;

#[derive(Debug, Default)]
pub struct LogScreen {
    pub cursor: ListCursor,
    rows_area: Rect,
}

impl LogScreen {
    pub fn handle_key(&mut self, key: &KeyEvent, state: &ConsoleState) -> Outcome {
        if navigate(&mut self.cursor, key, state.log.len()) {
            Outcome::Handled
        } else {
            Outcome::Ignored
        }
    }

    pub fn scroll(&mut self, delta: isize, state: &ConsoleState) {
        self.cursor.scroll(delta, state.log.len());
    }

    pub fn click(&mut self, column: u16, row: u16, state: &ConsoleState) {
        if let Some(i) = hit_row(self.rows_area, self.cursor.offset(), column, row) {
            self.cursor.select(i, state.log.len());
        }
    }

    pub fn draw(&mut self, frame: &mut Frame, area: Rect, state: &ConsoleState, theme: Theme) {
        let len = state.log.len();
        let title = Line::from(format!(
            " Log · {} lines · newest first ",
            fmt::count(len as u64)
        ));
        let table = TableFrame::new(title, area, &mut self.cursor, len, theme);
        self.rows_area = table.rows_area;
        let rows = table
            .window
            .clone()
            .map(|i| {
                let l = &state.log[len - 1 - i];
                Row::new(vec![
                    Cell::from(fmt::short_time(&l.at).to_string()),
                    Cell::from(l.level.label()).style(theme.log_level(l.level)),
                    Cell::from(l.message.clone()),
                ])
            })
            .collect();
        let header = Row::new(vec!["When", "Level", "Message"]);
        let widths = [
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Fill(1),
        ];
        table.render(frame, header, widths, rows, &self.cursor);
    }
}
