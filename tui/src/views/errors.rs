//! Errors: what failed, on which record and field, what the remote system said, and the keys
//! to retry or drop it. Nothing fails silently: every failure the engine knows is listed here.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Wrap};

use super::fix_prompt::FixPrompt;
use super::{Action, Outcome, TableFrame, centered, drive_prompt, hit_row, navigate, num};
use crate::command::ConsoleCommand;
use crate::fmt;
use crate::scroll::ListCursor;
use crate::state::{ConsoleState, ErrorItem};
use crate::theme::Theme;

#[derive(Debug, Default)]
pub struct ErrorsView {
    pub cursor: ListCursor,
    rows_area: Rect,
    detail: bool,
    /// The fix form, while open.
    fix: Option<FixPrompt>,
}

/// Indices of `state.errors`, newest first (timestamps compare as text, which is chronological
/// for RFC 3339 and for HH:MM:SS within a day).
pub(crate) fn newest_first(state: &ConsoleState) -> Vec<usize> {
    let mut order: Vec<usize> = (0..state.errors.len()).collect();
    order.sort_by(|&a, &b| state.errors[b].at.cmp(&state.errors[a].at));
    order
}

impl ErrorsView {
    /// The details popup and the fix form take the keyboard while open.
    pub fn captures_input(&self) -> bool {
        self.detail || self.fix.is_some()
    }

    pub fn fix_prompt(&self) -> Option<&FixPrompt> {
        self.fix.as_ref()
    }

    fn selected<'s>(&self, state: &'s ConsoleState) -> Option<&'s ErrorItem> {
        let order = newest_first(state);
        order.get(self.cursor.selected()).map(|&i| &state.errors[i])
    }

    pub fn handle_key(&mut self, key: &KeyEvent, state: &ConsoleState) -> Outcome {
        if self.fix.is_some() {
            return drive_prompt(&mut self.fix, |p| p.handle_key(key));
        }
        let selected = self.selected(state);
        match key.code {
            KeyCode::Char('f') => {
                if let Some(e) = selected {
                    self.detail = false;
                    self.fix = Some(FixPrompt::for_error(e));
                }
                Outcome::Handled
            }
            KeyCode::Char('r') => match selected {
                Some(e) => Outcome::Act(Action::Send(ConsoleCommand::Retry(e.key.clone()))),
                None => Outcome::Handled,
            },
            KeyCode::Char('R') if !state.errors.is_empty() => {
                let dead = state.errors.iter().filter(|e| e.dead).count();
                Outcome::Act(Action::Confirm {
                    prompt: format!(
                        "Retry all {} failed items ({} dead, {} retrying)?",
                        state.errors.len(),
                        dead,
                        state.errors.len() - dead
                    ),
                    on_yes: ConsoleCommand::RetryAll,
                })
            }
            KeyCode::Char('d') => match selected {
                Some(e) => Outcome::Act(Action::Confirm {
                    prompt: format!("Drop {}? Its operation will not be sent again.", e.key),
                    on_yes: ConsoleCommand::Drop(e.key.clone()),
                }),
                None => Outcome::Handled,
            },
            KeyCode::Enter if !self.detail && selected.is_some() => {
                self.detail = true;
                Outcome::Handled
            }
            KeyCode::Char('o') if self.detail => match selected {
                Some(e) => {
                    self.detail = false;
                    Outcome::Act(Action::OpenEntity(e.key.clone()))
                }
                None => Outcome::Handled,
            },
            KeyCode::Esc | KeyCode::Enter if self.detail => {
                self.detail = false;
                Outcome::Handled
            }
            _ if self.detail => Outcome::Handled,
            _ if navigate(&mut self.cursor, key, state.errors.len()) => Outcome::Handled,
            _ => Outcome::Ignored,
        }
    }

    pub fn scroll(&mut self, delta: isize, state: &ConsoleState) {
        self.cursor.scroll(delta, state.errors.len());
    }

    pub fn click(&mut self, column: u16, row: u16, state: &ConsoleState) {
        if let Some(i) = hit_row(self.rows_area, self.cursor.offset(), column, row) {
            self.cursor.select(i, state.errors.len());
        }
    }

    pub fn draw(&mut self, frame: &mut Frame, area: Rect, state: &ConsoleState, theme: Theme) {
        let detail_height = 8;
        let [table_area, detail_area] =
            Layout::vertical([Constraint::Min(4), Constraint::Length(detail_height)]).areas(area);
        let order = newest_first(state);
        let len = order.len();
        let dead = state.errors.iter().filter(|e| e.dead).count();
        let title = Line::from(format!(
            " Errors · {} dead · {} retrying · newest first ",
            fmt::count(dead as u64),
            fmt::count((len - dead) as u64)
        ));
        let table = TableFrame::new(title, table_area, &mut self.cursor, len, theme);
        self.rows_area = table.rows_area;
        let rows = order[table.window.clone()]
            .iter()
            .map(|&i| {
                let e = &state.errors[i];
                let (word, style) = if e.dead {
                    ("dead", theme.bad())
                } else {
                    ("retry", theme.warn())
                };
                Row::new(vec![
                    Cell::from(fmt::short_time(&e.at).to_string()),
                    Cell::from(word).style(style),
                    Cell::from(num(e.attempts.to_string())),
                    Cell::from(e.key.clone()),
                    Cell::from(e.field.clone()),
                    Cell::from(e.message.clone()),
                ])
            })
            .collect();
        let header = Row::new(vec![
            Cell::from("When"),
            Cell::from("State"),
            Cell::from(num("Try".into())),
            Cell::from("Key"),
            Cell::from("Field"),
            Cell::from("Problem"),
        ]);
        let widths = [
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(3),
            Constraint::Length(16),
            Constraint::Length(18),
            Constraint::Fill(1),
        ];
        table.render(frame, header, widths, rows, &self.cursor);

        let selected = order.get(self.cursor.selected()).map(|&i| &state.errors[i]);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Line::from(" Selected ").style(theme.title()));
        let body = match selected {
            Some(e) => detail_lines(e, theme),
            None => vec![Line::from(Span::styled(
                "Nothing has failed. Failures appear here with the remote system's own message.",
                theme.good(),
            ))],
        };
        frame.render_widget(
            Paragraph::new(body).block(block).wrap(Wrap { trim: true }),
            detail_area,
        );

        if self.detail
            && let Some(e) = selected
        {
            draw_popup(frame, area, e, theme);
        }
        if let Some(prompt) = &self.fix {
            prompt.draw(frame, area, theme);
        }
    }
}

fn detail_lines(e: &ErrorItem, theme: Theme) -> Vec<Line<'static>> {
    let label = |s: &'static str| Span::styled(format!("{s:<7}"), theme.dim());
    let field = if e.field.is_empty() {
        String::new()
    } else {
        format!(" · field {}", e.field)
    };
    vec![
        Line::from(vec![
            label("record"),
            Span::raw(format!("{}{field}", e.record)),
        ]),
        Line::from(vec![label("tally"), Span::raw(e.message.clone())]),
        Line::from(vec![
            label("remote"),
            Span::styled(e.remote_message.clone(), theme.warn()),
        ]),
        Line::from(vec![
            label("stage"),
            Span::raw(format!(
                "{} · attempt {} · {} · {}",
                e.stage,
                e.attempts,
                e.at,
                if e.dead {
                    "dead: waiting for you"
                } else {
                    "will retry"
                }
            )),
        ]),
    ]
}

fn draw_popup(frame: &mut Frame, area: Rect, e: &ErrorItem, theme: Theme) {
    let popup = centered(area, 76, 14);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Line::from(format!(" {} ", e.key)).style(theme.title()))
        .title_bottom(Line::from(vec![
            Span::styled(" r", theme.key_hint()),
            Span::raw(" retry "),
            Span::styled(" d", theme.key_hint()),
            Span::raw(" drop "),
            Span::styled(" f", theme.key_hint()),
            Span::raw(" fix "),
            Span::styled(" o", theme.key_hint()),
            Span::raw(" audit trail "),
            Span::styled(" esc", theme.key_hint()),
            Span::raw(" close "),
        ]));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(detail_lines(e, theme))
            .block(block)
            .wrap(Wrap { trim: true }),
        popup,
    );
}
