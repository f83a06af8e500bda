//! Queues: what is waiting to be sent, and how long it has waited.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row};

use super::{Outcome, TableFrame, hit_row, navigate, num};
use crate::fmt;
use crate::scroll::ListCursor;
use crate::state::{ConsoleState, QueueItem};
use crate::theme::Theme;

#[derive(Debug, Default)]
pub struct QueuesView {
    pub cursor: ListCursor,
    rows_area: Rect,
    filter: String,
    editing: bool,
}

/// The rows the filter lets through: all of them without a filter (no index list is built, so
/// an unfiltered 100,000-item queue costs nothing per frame), or the matching indices.
enum Visible {
    All(usize),
    Matching(Vec<usize>),
}

impl Visible {
    fn len(&self) -> usize {
        match self {
            Visible::All(n) => *n,
            Visible::Matching(v) => v.len(),
        }
    }

    fn index(&self, i: usize) -> usize {
        match self {
            Visible::All(_) => i,
            Visible::Matching(v) => v[i],
        }
    }
}

fn matches(item: &QueueItem, needle: &str) -> bool {
    fmt::contains_ignore_case(&item.key, needle)
        || fmt::contains_ignore_case(&item.stage, needle)
        || fmt::contains_ignore_case(&item.op, needle)
}

impl QueuesView {
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// While the filter is being typed every key belongs to it.
    pub fn captures_input(&self) -> bool {
        self.editing
    }

    fn visible(&self, state: &ConsoleState) -> Visible {
        if self.filter.is_empty() {
            Visible::All(state.queue.len())
        } else {
            Visible::Matching(
                (0..state.queue.len())
                    .filter(|&i| matches(&state.queue[i], &self.filter))
                    .collect(),
            )
        }
    }

    pub fn handle_key(&mut self, key: &KeyEvent, state: &ConsoleState) -> Outcome {
        if self.editing {
            match key.code {
                KeyCode::Enter => self.editing = false,
                KeyCode::Esc => {
                    self.editing = false;
                    self.filter.clear();
                    self.cursor.home();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                    self.cursor.home();
                }
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.filter.push(c);
                    self.cursor.home();
                }
                _ => {}
            }
            return Outcome::Handled;
        }
        match key.code {
            KeyCode::Char('/') => {
                self.editing = true;
                Outcome::Handled
            }
            KeyCode::Esc if !self.filter.is_empty() => {
                self.filter.clear();
                self.cursor.home();
                Outcome::Handled
            }
            _ => {
                let len = self.visible(state).len();
                if navigate(&mut self.cursor, key, len) {
                    Outcome::Handled
                } else {
                    Outcome::Ignored
                }
            }
        }
    }

    pub fn scroll(&mut self, delta: isize, state: &ConsoleState) {
        let len = self.visible(state).len();
        self.cursor.scroll(delta, len);
    }

    pub fn click(&mut self, column: u16, row: u16, state: &ConsoleState) {
        if let Some(i) = hit_row(self.rows_area, self.cursor.offset(), column, row) {
            let len = self.visible(state).len();
            self.cursor.select(i, len);
        }
    }

    pub fn draw(&mut self, frame: &mut Frame, area: Rect, state: &ConsoleState, theme: Theme) {
        let show_filter = self.editing || !self.filter.is_empty();
        let [table_area, filter_area] = Layout::vertical([
            Constraint::Min(3),
            Constraint::Length(u16::from(show_filter)),
        ])
        .areas(area);
        let visible = self.visible(state);
        let len = visible.len();
        let total = state.queue.len();
        let title = if self.filter.is_empty() {
            Line::from(format!(
                " Queue · {} pending or in flight ",
                fmt::count(total as u64)
            ))
        } else {
            Line::from(format!(
                " Queue · {} of {} match \"{}\" ",
                fmt::count(len as u64),
                fmt::count(total as u64),
                self.filter
            ))
        };
        let table = TableFrame::new(title, table_area, &mut self.cursor, len, theme);
        self.rows_area = table.rows_area;
        let rows = table
            .window
            .clone()
            .map(|i| {
                let q = &state.queue[visible.index(i)];
                Row::new(vec![
                    Cell::from(q.key.clone()),
                    Cell::from(q.stage.clone()),
                    Cell::from(q.op.clone()),
                    Cell::from(num(q.attempts.to_string())),
                    Cell::from(
                        q.next_retry
                            .as_deref()
                            .map(fmt::short_time)
                            .unwrap_or("now")
                            .to_string(),
                    ),
                    Cell::from(num(fmt::age(q.age))),
                ])
            })
            .collect();
        let header = Row::new(vec![
            Cell::from("Key"),
            Cell::from("Stage"),
            Cell::from("Operation"),
            Cell::from(num("Try".into())),
            Cell::from("Next try"),
            Cell::from(num("Age".into())),
        ]);
        let widths = [
            Constraint::Length(16),
            Constraint::Length(15),
            Constraint::Fill(1),
            Constraint::Length(3),
            Constraint::Length(8),
            Constraint::Length(6),
        ];
        table.render(frame, header, widths, rows, &self.cursor);
        if show_filter {
            let mut spans = vec![
                Span::styled("/", theme.key_hint()),
                Span::raw(self.filter.clone()),
            ];
            if self.editing {
                spans.push(Span::styled("▌", theme.accent()));
                spans.push(Span::styled("  enter keep · esc clear", theme.dim()));
            } else {
                spans.push(Span::styled("  / edit · esc clear", theme.dim()));
            }
            frame.render_widget(Paragraph::new(Line::from(spans)), filter_area);
        }
    }
}
