//! Entity: find one order, customer, SKU or Xero document and read everything that happened to
//! it, in both systems, in order.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Wrap};

use super::{Action, Outcome, TableFrame, hit_row, navigate};
use crate::command::ConsoleCommand;
use crate::fmt;
use crate::scroll::ListCursor;
use crate::state::ConsoleState;
use crate::theme::Theme;

#[derive(Debug, Default)]
pub struct EntityScreen {
    pub results: ListCursor,
    results_area: Rect,
    pub trail: ListCursor,
    input: String,
    editing: bool,
}

impl EntityScreen {
    /// While the search is being typed every key belongs to it.
    pub fn captures_input(&self) -> bool {
        self.editing
    }

    /// Starts typing a search (also reachable from other views).
    pub fn start_search(&mut self) {
        self.editing = true;
        self.input.clear();
    }

    pub fn handle_key(&mut self, key: &KeyEvent, state: &ConsoleState) -> Outcome {
        if self.editing {
            return match key.code {
                KeyCode::Enter => {
                    self.editing = false;
                    let query = self.input.trim();
                    if query.is_empty() {
                        Outcome::Handled
                    } else {
                        self.results.home();
                        Outcome::Act(Action::Send(ConsoleCommand::Search(query.to_string())))
                    }
                }
                KeyCode::Esc => {
                    self.editing = false;
                    Outcome::Handled
                }
                KeyCode::Backspace => {
                    self.input.pop();
                    Outcome::Handled
                }
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.input.push(c);
                    Outcome::Handled
                }
                _ => Outcome::Handled,
            };
        }
        let trail_len = state.entity.as_ref().map_or(0, |e| e.trail.len());
        match key.code {
            KeyCode::Char('/') | KeyCode::Char('s') => {
                self.start_search();
                Outcome::Handled
            }
            KeyCode::PageUp => {
                self.trail.page_up();
                Outcome::Handled
            }
            KeyCode::PageDown => {
                self.trail.page_down(trail_len);
                Outcome::Handled
            }
            KeyCode::Enter => match state.search_results.get(self.results.selected()) {
                Some(key) => Outcome::Act(Action::OpenEntity(key.clone())),
                None => Outcome::Handled,
            },
            _ if navigate(&mut self.results, key, state.search_results.len()) => Outcome::Handled,
            _ => Outcome::Ignored,
        }
    }

    /// The wheel scrolls the audit trail, the long list here.
    pub fn scroll(&mut self, delta: isize, state: &ConsoleState) {
        let len = state.entity.as_ref().map_or(0, |e| e.trail.len());
        self.trail.scroll(delta, len);
    }

    /// Clicking a result opens it.
    pub fn click(&mut self, column: u16, row: u16, state: &ConsoleState) -> Outcome {
        match hit_row(self.results_area, self.results.offset(), column, row) {
            Some(i) if i < state.search_results.len() => {
                self.results.select(i, state.search_results.len());
                Outcome::Act(Action::OpenEntity(state.search_results[i].clone()))
            }
            _ => Outcome::Ignored,
        }
    }

    /// The entity has just been opened from elsewhere (Errors): start its trail at the top.
    pub fn reset_trail(&mut self) {
        self.trail.home();
    }

    pub fn draw(&mut self, frame: &mut Frame, area: Rect, state: &ConsoleState, theme: Theme) {
        let wide = area.width >= 100;
        let [left, right] = Layout::horizontal([
            Constraint::Length(if wide { 36 } else { 26 }),
            Constraint::Fill(1),
        ])
        .areas(area);
        let [input_area, results_area] =
            Layout::vertical([Constraint::Length(3), Constraint::Min(3)]).areas(left);
        self.draw_input(frame, input_area, theme);
        self.draw_results(frame, results_area, state, theme);
        self.draw_entity(frame, right, state, theme, wide);
    }

    fn draw_input(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Line::from(" Search ").style(theme.title()));
        let line = if self.editing {
            Line::from(vec![
                Span::raw(self.input.clone()),
                Span::styled("▌", theme.accent()),
            ])
        } else if self.input.is_empty() {
            Line::from(Span::styled("/ order, email, SKU, Xero id", theme.dim()))
        } else {
            Line::from(vec![
                Span::raw(self.input.clone()),
                Span::styled("  / new", theme.dim()),
            ])
        };
        frame.render_widget(Paragraph::new(line).block(block), area);
    }

    fn draw_results(&mut self, frame: &mut Frame, area: Rect, state: &ConsoleState, theme: Theme) {
        let len = state.search_results.len();
        let title = Line::from(format!(" Results · {} ", fmt::count(len as u64)));
        let table = TableFrame::new(title, area, &mut self.results, len, theme);
        self.results_area = table.rows_area;
        let open = state.entity.as_ref().map(|e| e.key.as_str());
        let rows = state.search_results[table.window.clone()]
            .iter()
            .map(|k| {
                let mark = if Some(k.as_str()) == open {
                    "▸ "
                } else {
                    "  "
                };
                Row::new(vec![Cell::from(format!("{mark}{k}"))])
            })
            .collect();
        let header = Row::new(vec![Cell::from("enter opens")]);
        table.render(frame, header, [Constraint::Fill(1)], rows, &self.results);
    }

    fn draw_entity(
        &mut self,
        frame: &mut Frame,
        area: Rect,
        state: &ConsoleState,
        theme: Theme,
        wide: bool,
    ) {
        let Some(entity) = &state.entity else {
            let text = vec![
                Line::from("Press / or s and type an order number, customer email, SKU or"),
                Line::from("Xero id, then enter. Pick a result and press enter to see its"),
                Line::from("full audit trail across Magento, tally and Xero."),
            ];
            let block = Block::default().borders(Borders::ALL).title(" Entity ");
            frame.render_widget(
                Paragraph::new(text)
                    .block(block)
                    .style(theme.dim())
                    .wrap(Wrap { trim: true }),
                area,
            );
            return;
        };
        let summary_rows = entity.summary.len().min(8) as u16;
        let [summary_area, trail_area] =
            Layout::vertical([Constraint::Length(summary_rows + 2), Constraint::Min(4)])
                .areas(area);
        let label_width = entity
            .summary
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let lines: Vec<Line> = entity
            .summary
            .iter()
            .map(|(k, v)| {
                Line::from(vec![
                    Span::styled(format!("{k:<label_width$}  "), theme.dim()),
                    Span::raw(v.clone()),
                ])
            })
            .collect();
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Line::from(format!(" {} ", entity.key)).style(theme.title()));
        frame.render_widget(Paragraph::new(lines).block(block), summary_area);

        let len = entity.trail.len();
        let title = Line::from(format!(" Audit trail · {} events · oldest first ", len));
        let table = TableFrame::new(title, trail_area, &mut self.trail, len, theme);
        let rows = entity.trail[table.window.clone()]
            .iter()
            .map(|t| {
                let change = if t.from.is_empty() {
                    t.to.clone()
                } else {
                    format!("{} → {}", t.from, t.to)
                };
                let mut cells = vec![
                    Cell::from(fmt::short_time(&t.at).to_string()),
                    Cell::from(t.system.clone()).style(theme.system(&t.system)),
                ];
                if wide {
                    cells.push(Cell::from(change));
                    cells.push(Cell::from(t.detail.clone()));
                } else {
                    cells.push(Cell::from(format!("{change} · {}", t.detail)));
                }
                Row::new(cells)
            })
            .collect();
        if wide {
            let header = Row::new(vec!["When", "System", "Change", "Detail"]);
            let widths = [
                Constraint::Length(8),
                Constraint::Length(7),
                Constraint::Length(32),
                Constraint::Fill(1),
            ];
            table.render(frame, header, widths, rows, &self.trail);
        } else {
            let header = Row::new(vec!["When", "System", "Change · detail"]);
            let widths = [
                Constraint::Length(8),
                Constraint::Length(7),
                Constraint::Fill(1),
            ];
            table.render(frame, header, widths, rows, &self.trail);
        }
    }
}
