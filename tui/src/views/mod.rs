//! The six screens of the console plus the overlays drawn over them.
//!
//! Each screen owns its own UI state (cursor, filter, popup) and answers keys with an
//! [`Action`]; the [`crate::app::App`] decides what an action means for the engine.

pub mod confirm;
pub mod discrepancies;
pub mod entity;
pub mod errors;
pub mod fix_prompt;
pub mod help;
pub mod log;
pub mod overview;
pub mod queues;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Margin, Rect};
use ratatui::text::Line;
use ratatui::widgets::{
    Block, Borders, Row, Scrollbar, ScrollbarOrientation, ScrollbarState, Table, TableState,
};

use crate::command::ConsoleCommand;
use crate::scroll::ListCursor;
use crate::theme::Theme;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum View {
    #[default]
    Overview,
    Queues,
    Errors,
    Entity,
    Log,
    Discrepancies,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Overview,
        View::Queues,
        View::Errors,
        View::Entity,
        View::Log,
        View::Discrepancies,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Queues => "Queues",
            View::Errors => "Errors",
            View::Entity => "Entity",
            View::Log => "Log",
            View::Discrepancies => "Discrepancies",
        }
    }

    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    pub fn next(self) -> View {
        View::ALL[(self.index() + 1) % View::ALL.len()]
    }

    pub fn prev(self) -> View {
        View::ALL[(self.index() + View::ALL.len() - 1) % View::ALL.len()]
    }

    /// The view bound to a number key.
    pub fn from_digit(c: char) -> Option<View> {
        let n = c.to_digit(10)? as usize;
        View::ALL.get(n.checked_sub(1)?).copied()
    }
}

/// What a screen wants done after a key press or click.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this to the engine right away.
    Send(ConsoleCommand),
    /// Ask the operator first; send `on_yes` only after `y`.
    Confirm {
        prompt: String,
        on_yes: ConsoleCommand,
    },
    /// Show this entity's audit trail: switch to the Entity view and ask the engine for it.
    OpenEntity(String),
}

/// The answer of a screen to a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not a key this screen uses; the app may try its global keys.
    Ignored,
    /// Used, nothing to send.
    Handled,
    Act(Action),
}

/// Gives a key to the open prompt in `slot` (`handle` answers `None` when the prompt is
/// cancelled): a cancelled prompt, or one that sent its command, closes.
pub(crate) fn drive_prompt<P>(
    slot: &mut Option<P>,
    handle: impl FnOnce(&mut P) -> Option<Outcome>,
) -> Outcome {
    let Some(prompt) = slot else {
        return Outcome::Ignored;
    };
    match handle(prompt) {
        None => {
            *slot = None;
            Outcome::Handled
        }
        Some(sent @ Outcome::Act(_)) => {
            *slot = None;
            sent
        }
        Some(other) => other,
    }
}

/// A table over a possibly huge list: lays out the block, asks the cursor for the visible window
/// and returns where the data rows will be drawn, so the caller builds `Row`s for that window
/// only.
pub(crate) struct TableFrame {
    pub block: Block<'static>,
    pub area: Rect,
    /// The data rows, below the header: used for mouse hit-testing.
    pub rows_area: Rect,
    pub window: std::ops::Range<usize>,
    len: usize,
    theme: Theme,
}

impl TableFrame {
    pub fn new(
        title: Line<'static>,
        area: Rect,
        cursor: &mut ListCursor,
        len: usize,
        theme: Theme,
    ) -> Self {
        let block = Block::default()
            .borders(Borders::ALL)
            .title(title)
            .title_style(theme.title());
        let inner = block.inner(area);
        let rows_area = Rect {
            y: inner.y.saturating_add(1),
            height: inner.height.saturating_sub(1),
            ..inner
        };
        let window = cursor.window(len, rows_area.height as usize);
        Self {
            block,
            area,
            rows_area,
            window,
            len,
            theme,
        }
    }

    /// Draws `rows` (exactly the window) under `header`, with the selection highlighted and a
    /// scrollbar when the list does not fit.
    pub fn render<const N: usize>(
        self,
        frame: &mut Frame,
        header: Row<'static>,
        widths: [Constraint; N],
        rows: Vec<Row<'static>>,
        cursor: &ListCursor,
    ) {
        let (len, theme) = (self.len, self.theme);
        let selected = (len > 0).then(|| cursor.selected() - self.window.start);
        let table = Table::new(rows, widths)
            .header(header.style(theme.header_row()))
            .block(self.block)
            .row_highlight_style(theme.selected());
        let mut table_state = TableState::default().with_selected(selected);
        frame.render_stateful_widget(table, self.area, &mut table_state);
        if len > self.rows_area.height as usize {
            let mut sb = ScrollbarState::new(len).position(cursor.selected());
            frame.render_stateful_widget(
                Scrollbar::new(ScrollbarOrientation::VerticalRight),
                self.area.inner(Margin {
                    horizontal: 0,
                    vertical: 1,
                }),
                &mut sb,
            );
        }
    }
}

/// Maps a click to a list index, given where the list's rows were last drawn.
pub(crate) fn hit_row(rows_area: Rect, offset: usize, column: u16, row: u16) -> Option<usize> {
    let inside = column >= rows_area.x
        && column < rows_area.x + rows_area.width
        && row >= rows_area.y
        && row < rows_area.y + rows_area.height;
    inside.then(|| offset + (row - rows_area.y) as usize)
}

/// A popup of at most `width`×`height` in the middle of `area`.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(ratatui::layout::Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(ratatui::layout::Flex::Center)
        .areas(v);
    h
}

/// The list keys every screen shares: arrows/j/k, PageUp/PageDown, Home/End and g/G.
pub(crate) fn navigate(
    cursor: &mut ListCursor,
    key: &crossterm::event::KeyEvent,
    len: usize,
) -> bool {
    use crossterm::event::KeyCode;
    match key.code {
        KeyCode::Up | KeyCode::Char('k') => cursor.up(1),
        KeyCode::Down | KeyCode::Char('j') => cursor.down(1, len),
        KeyCode::PageUp => cursor.page_up(),
        KeyCode::PageDown => cursor.page_down(len),
        KeyCode::Home | KeyCode::Char('g') => cursor.home(),
        KeyCode::End | KeyCode::Char('G') => cursor.end(len),
        _ => return false,
    }
    true
}

/// A right-aligned cell, for numbers.
pub(crate) fn num(s: String) -> ratatui::text::Text<'static> {
    ratatui::text::Text::from(Line::from(s).right_aligned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_order_wraps_both_ways() {
        assert_eq!(View::Log.next(), View::Discrepancies);
        assert_eq!(View::Discrepancies.next(), View::Overview);
        assert_eq!(View::Overview.prev(), View::Discrepancies);
        assert_eq!(View::from_digit('6'), Some(View::Discrepancies));
        assert_eq!(View::from_digit('3'), Some(View::Errors));
        assert_eq!(View::from_digit('0'), None);
        assert_eq!(View::from_digit('7'), None);
    }

    #[test]
    fn clicks_map_to_rows_inside_the_list_only() {
        let area = Rect::new(1, 3, 20, 5);
        assert_eq!(hit_row(area, 100, 5, 3), Some(100));
        assert_eq!(hit_row(area, 100, 5, 7), Some(104));
        assert_eq!(hit_row(area, 100, 5, 8), None);
        assert_eq!(hit_row(area, 100, 0, 4), None);
    }
}
