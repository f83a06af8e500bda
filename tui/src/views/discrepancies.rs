//! Discrepancies: every way Magento and Xero disagree about an order, both sides' values in
//! words, and the keys to fix what tally can fix, look at the order's trail, accept the
//! difference, or check again.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Wrap};

use super::{Action, Outcome, TableFrame, hit_row, navigate};
use crate::command::ConsoleCommand;
use crate::fmt;
use crate::scroll::ListCursor;
use crate::state::{ConsoleState, DiscrepancyItem};
use crate::theme::Theme;

#[derive(Debug, Default)]
pub struct DiscrepanciesView {
    pub cursor: ListCursor,
    rows_area: Rect,
}

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
    fn selected<'s>(&self, state: &'s ConsoleState) -> Option<&'s DiscrepancyItem> {
        let order = attention_first(state);
        order
            .get(self.cursor.selected())
            .map(|&i| &state.discrepancies[i])
    }

    pub fn handle_key(&mut self, key: &KeyEvent, state: &ConsoleState) -> Outcome {
        let selected = self.selected(state);
        match key.code {
            KeyCode::Char('a') => match selected {
                Some(d) if d.acknowledged_at.is_some() => Outcome::Handled,
                Some(d) => Outcome::Act(Action::Confirm {
                    prompt: format!(
                        "Acknowledge {}? It stays listed until Magento and Xero agree, and asks again if it changes.",
                        d.key
                    ),
                    on_yes: ConsoleCommand::Acknowledge(d.key.clone()),
                }),
                None => Outcome::Handled,
            },
            // Only a cancelled order's invoice has a fix tally makes, and it writes to Xero:
            // it asks first. Any other kind is sent as is, for the engine to say what to do.
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
    }
}

fn detail_lines(d: &DiscrepancyItem, theme: Theme) -> Vec<Line<'static>> {
    let label = |s: &'static str| Span::styled(format!("{s:<7}"), theme.dim());
    let state = match (&d.acknowledged_at, &d.acknowledged_by) {
        (Some(at), by) => format!(
            "acknowledged by {} at {at}; listed until both sides agree",
            by.as_deref().unwrap_or("an operator")
        ),
        (None, _) if d.kind == "order_cancelled_in_magento" => {
            "needs attention: f voids the invoice in Xero, a acknowledges it".into()
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
