//! Discrepancies: every way Magento and Xero disagree about an order, both sides' values in
//! words, and the keys to fix what tally can fix, look at the order's trail, accept the
//! difference, or check again.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Wrap};

use super::{Action, Outcome, TableFrame, centered, drive_prompt, hit_row, navigate};
use crate::command::ConsoleCommand;
use crate::fmt;
use crate::scroll::ListCursor;
use crate::state::{ConsoleState, DiscrepancyItem};
use crate::theme::Theme;

#[derive(Debug, Default)]
pub struct DiscrepanciesView {
    pub cursor: ListCursor,
    rows_area: Rect,
    /// The acknowledgement being written, while open.
    ack: Option<AckPrompt>,
}

/// Acknowledging asks why: the reason goes into the order's audit trail and the report, so
/// whoever looks later knows why the difference was accepted. It may be left empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckPrompt {
    pub key: String,
    pub detail: String,
    pub note: String,
}

impl AckPrompt {
    fn handle_key(&mut self, key: &KeyEvent) -> Option<Outcome> {
        match key.code {
            KeyCode::Esc => None,
            KeyCode::Enter => {
                let note = self.note.trim();
                Some(Outcome::Act(Action::Send(ConsoleCommand::Acknowledge {
                    key: self.key.clone(),
                    note: (!note.is_empty()).then(|| note.to_owned()),
                })))
            }
            KeyCode::Backspace => {
                self.note.pop();
                Some(Outcome::Handled)
            }
            KeyCode::Char(c) if self.note.chars().count() < MAX_NOTE => {
                self.note.push(c);
                Some(Outcome::Handled)
            }
            _ => Some(Outcome::Handled),
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let popup = centered(area, 76, 9);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Line::from(format!(" Acknowledge {} ", self.key)).style(theme.title()))
            .title_bottom(Line::from(vec![
                Span::styled(" enter", theme.key_hint()),
                Span::raw(" acknowledge "),
                Span::styled(" esc", theme.key_hint()),
                Span::raw(" cancel "),
            ]));
        let lines = vec![
            Line::from(Span::styled(self.detail.clone(), theme.dim())),
            Line::from(""),
            Line::from("Why is this difference acceptable? (optional; kept in the order's"),
            Line::from("audit trail and the report)"),
            Line::from(vec![
                Span::styled("> ", theme.key_hint()),
                Span::raw(self.note.clone()),
                Span::styled("_", theme.key_hint()),
            ]),
        ];
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            popup,
        );
    }
}

/// Long enough for a sentence, short enough for a report cell.
const MAX_NOTE: usize = 200;

/// Indices of `state.discrepancies`: those needing attention first, then the acknowledged;
/// oldest first within each (timestamps compare as text, chronological for RFC 3339).
pub(crate) fn attention_first(state: &ConsoleState) -> Vec<usize> {
    let mut order: Vec<usize> = (0..state.discrepancies.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&state.discrepancies[a], &state.discrepancies[b]);
        (a.acknowledged_at.is_some(), &a.raised_at, &a.key).cmp(&(
            b.acknowledged_at.is_some(),
            &b.raised_at,
            &b.key,
        ))
    });
    order
}

/// The kind in a few words, for the table (the detail pane has the stable name).
fn kind_label(kind: &str) -> &str {
    match kind {
        "invoice_voided_in_xero" => "voided in Xero",
        "invoice_total_differs" => "total differs",
        "payment_missing_in_xero" => "payment missing",
        "order_cancelled_in_magento" => "cancelled in Magento",
        other => other,
    }
}

impl DiscrepanciesView {
    /// The acknowledgement prompt takes the keyboard while open.
    pub fn captures_input(&self) -> bool {
        self.ack.is_some()
    }

    pub fn ack_prompt(&self) -> Option<&AckPrompt> {
        self.ack.as_ref()
    }

    fn selected<'s>(&self, state: &'s ConsoleState) -> Option<&'s DiscrepancyItem> {
        let order = attention_first(state);
        order
            .get(self.cursor.selected())
            .map(|&i| &state.discrepancies[i])
    }

    pub fn handle_key(&mut self, key: &KeyEvent, state: &ConsoleState) -> Outcome {
        if self.ack.is_some() {
            return drive_prompt(&mut self.ack, |p| p.handle_key(key));
        }
        let selected = self.selected(state);
        match key.code {
            KeyCode::Char('a') => {
                if let Some(d) = selected.filter(|d| d.acknowledged_at.is_none()) {
                    self.ack = Some(AckPrompt {
                        key: d.key.clone(),
                        detail: d.detail.clone(),
                        note: String::new(),
                    });
                }
                Outcome::Handled
            }
            // The fixes tally makes write to Xero: each asks first. Any other kind is sent as
            // is, for the engine to say what to do.
            KeyCode::Char('f') => match selected {
                Some(d) if d.kind == "order_cancelled_in_magento" => {
                    Outcome::Act(Action::Confirm {
                        prompt: format!(
                            "Void the Xero invoice of {} (cancelled in Magento)? Xero cannot undo a void.",
                            d.order.trim_start_matches("order:")
                        ),
                        on_yes: ConsoleCommand::FixDiscrepancy(d.key.clone()),
                    })
                }
                Some(d) if d.kind == "invoice_total_differs" => Outcome::Act(Action::Confirm {
                    prompt: format!(
                        "Restore the Xero invoice of {} as tally posted it? The edit made in Xero is replaced.",
                        d.order.trim_start_matches("order:")
                    ),
                    on_yes: ConsoleCommand::FixDiscrepancy(d.key.clone()),
                }),
                Some(d) if d.kind == "payment_missing_in_xero" => Outcome::Act(Action::Confirm {
                    prompt: format!(
                        "Apply the payment of {} to its Xero invoice again (Magento has it paid)?",
                        d.order.trim_start_matches("order:")
                    ),
                    on_yes: ConsoleCommand::FixDiscrepancy(d.key.clone()),
                }),
                Some(d) => {
                    Outcome::Act(Action::Send(ConsoleCommand::FixDiscrepancy(d.key.clone())))
                }
                None => Outcome::Handled,
            },
            KeyCode::Enter | KeyCode::Char('o') => match selected {
                Some(d) if !d.order.is_empty() => Outcome::Act(Action::OpenEntity(d.order.clone())),
                _ => Outcome::Handled,
            },
            KeyCode::Char('c') => Outcome::Act(Action::Send(ConsoleCommand::ReconcileNow)),
            _ if navigate(&mut self.cursor, key, state.discrepancies.len()) => Outcome::Handled,
            _ => Outcome::Ignored,
        }
    }

    pub fn scroll(&mut self, delta: isize, state: &ConsoleState) {
        self.cursor.scroll(delta, state.discrepancies.len());
    }

    pub fn click(&mut self, column: u16, row: u16, state: &ConsoleState) {
        if let Some(i) = hit_row(self.rows_area, self.cursor.offset(), column, row) {
            self.cursor.select(i, state.discrepancies.len());
        }
    }

    pub fn draw(&mut self, frame: &mut Frame, area: Rect, state: &ConsoleState, theme: Theme) {
        let [table_area, detail_area] =
            Layout::vertical([Constraint::Min(4), Constraint::Length(8)]).areas(area);
        let order = attention_first(state);
        let title = Line::from(format!(
            " Discrepancies · {} need attention · {} acknowledged ",
            fmt::count(state.discrepancies_open),
            fmt::count(state.discrepancies_acknowledged)
        ));
        let table = TableFrame::new(title, table_area, &mut self.cursor, order.len(), theme);
        self.rows_area = table.rows_area;
        let rows = order[table.window.clone()]
            .iter()
            .map(|&i| {
                let d = &state.discrepancies[i];
                let (word, style) = match d.acknowledged_at {
                    Some(_) => ("ack", theme.dim()),
                    None => ("open", theme.warn()),
                };
                Row::new(vec![
                    Cell::from(fmt::short_time(&d.raised_at).to_string()),
                    Cell::from(word).style(style),
                    Cell::from(kind_label(&d.kind).to_owned()),
                    Cell::from(d.order.trim_start_matches("order:").to_owned()),
                    Cell::from(d.detail.clone()),
                ])
            })
            .collect();
        let header = Row::new(vec![
            Cell::from("Raised"),
            Cell::from("State"),
            Cell::from("Kind"),
            Cell::from("Order"),
            Cell::from("Magento ↔ Xero"),
        ]);
        let widths = [
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(20),
            Constraint::Length(10),
            Constraint::Fill(1),
        ];
        table.render(frame, header, widths, rows, &self.cursor);

        let block = Block::default()
            .borders(Borders::ALL)
            .title(Line::from(" Selected ").style(theme.title()));
        let body = match self.selected(state) {
            Some(d) => detail_lines(d, theme),
            None => vec![Line::from(Span::styled(
                "Magento and Xero agree on every order the reconciler has compared.",
                theme.good(),
            ))],
        };
        frame.render_widget(
            Paragraph::new(body).block(block).wrap(Wrap { trim: true }),
            detail_area,
        );
        if let Some(prompt) = &self.ack {
            prompt.draw(frame, area, theme);
        }
    }
}

fn detail_lines(d: &DiscrepancyItem, theme: Theme) -> Vec<Line<'static>> {
    let label = |s: &'static str| Span::styled(format!("{s:<7}"), theme.dim());
    let state = match (&d.acknowledged_at, &d.acknowledged_by) {
        (Some(at), by) => format!(
            "acknowledged by {} at {at}{}; listed until both sides agree",
            by.as_deref().unwrap_or("an operator"),
            d.acknowledged_note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ),
        (None, _) if d.kind == "order_cancelled_in_magento" => {
            "needs attention: f voids the invoice in Xero, a acknowledges it".into()
        }
        (None, _) if d.kind == "invoice_total_differs" => {
            "needs attention: f restores the invoice tally posted, a acknowledges it".into()
        }
        (None, _) if d.kind == "payment_missing_in_xero" => {
            "needs attention: f applies the payment in Xero again, a acknowledges it".into()
        }
        (None, _) => {
            "needs attention: fix it in Xero or Magento (f says how), or acknowledge it (a)".into()
        }
    };
    vec![
        Line::from(vec![
            label("what"),
            Span::raw(format!("{} · {} · raised {}", d.kind, d.key, d.raised_at)),
        ]),
        Line::from(vec![label("detail"), Span::raw(d.detail.clone())]),
        Line::from(vec![
            label("state"),
            Span::styled(
                state,
                if d.acknowledged_at.is_some() {
                    theme.dim()
                } else {
                    theme.warn()
                },
            ),
        ]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, raised: &str, acked: bool) -> DiscrepancyItem {
        DiscrepancyItem {
            key: key.into(),
            kind: "invoice_total_differs".into(),
            order: format!("order:{key}"),
            detail: "d".into(),
            raised_at: raised.into(),
            acknowledged_at: acked.then(|| "2026-11-28T09:00:00Z".into()),
            acknowledged_by: acked.then(|| "operator".into()),
            acknowledged_note: None,
        }
    }

    #[test]
    fn what_needs_attention_comes_first_oldest_first() {
        let state = ConsoleState {
            discrepancies: vec![
                item("a", "2026-11-28T08:00:00Z", true),
                item("b", "2026-11-28T08:30:00Z", false),
                item("c", "2026-11-28T07:00:00Z", false),
            ],
            ..Default::default()
        };
        let keys: Vec<&str> = attention_first(&state)
            .into_iter()
            .map(|i| state.discrepancies[i].key.as_str())
            .collect();
        assert_eq!(keys, ["c", "b", "a"]);
    }
}
