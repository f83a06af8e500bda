//! Overview: is everything flowing, and if not, where is it stuck?

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, LineGauge, Paragraph, Row, Sparkline, Wrap};

use super::{Action, Outcome, TableFrame, hit_row, navigate, num};
use crate::command::ConsoleCommand;
use crate::fmt;
use crate::scroll::ListCursor;
use crate::state::{ActorStatus, BudgetView, ConsoleState};
use crate::theme::Theme;

#[derive(Debug, Default)]
pub struct OverviewView {
    pub cursor: ListCursor,
    rows_area: Rect,
}

impl OverviewView {
    pub fn handle_key(&mut self, key: &KeyEvent, state: &ConsoleState) -> Outcome {
        if navigate(&mut self.cursor, key, state.actors.len()) {
            return Outcome::Handled;
        }
        match key.code {
            KeyCode::Char('p') => match state.actors.get(self.cursor.selected()) {
                Some(actor) if actor.status == ActorStatus::Paused => {
                    Outcome::Act(Action::Send(ConsoleCommand::Resume(actor.name.clone())))
                }
                Some(actor) => {
                    Outcome::Act(Action::Send(ConsoleCommand::Pause(actor.name.clone())))
                }
                None => Outcome::Handled,
            },
            KeyCode::Char('c') => Outcome::Act(Action::Send(ConsoleCommand::ReconcileNow)),
            _ => Outcome::Ignored,
        }
    }

    pub fn scroll(&mut self, delta: isize, state: &ConsoleState) {
        self.cursor.scroll(delta, state.actors.len());
    }

    pub fn click(&mut self, column: u16, row: u16, state: &ConsoleState) {
        if let Some(i) = hit_row(self.rows_area, self.cursor.offset(), column, row) {
            self.cursor.select(i, state.actors.len());
        }
    }

    pub fn draw(&mut self, frame: &mut Frame, area: Rect, state: &ConsoleState, theme: Theme) {
        let tall = area.height >= 30;
        let actors_height = (state.actors.len() as u16).saturating_add(3);
        let [actors_area, error_area, spark_area, bottom, recent_area] = Layout::vertical([
            Constraint::Length(actors_height),
            Constraint::Length(if tall { 3 } else { 1 }),
            Constraint::Length(if tall { 6 } else { 3 }),
            Constraint::Length(7),
            Constraint::Min(0),
        ])
        .areas(area);
        self.draw_actors(frame, actors_area, state, theme);
        self.draw_last_error(frame, error_area, state, theme);
        draw_throughput(frame, spark_area, state, theme);
        let [budget_area, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(bottom);
        draw_budget(frame, budget_area, &state.budget, theme);
        let [health_area, disc_area] =
            Layout::vertical([Constraint::Min(4), Constraint::Length(3)]).areas(right);
        draw_health(frame, health_area, state, theme);
        draw_discrepancies(frame, disc_area, state, theme);
        if recent_area.height >= 3 {
            draw_recent_problems(frame, recent_area, state, theme);
        }
    }

    fn draw_actors(&mut self, frame: &mut Frame, area: Rect, state: &ConsoleState, theme: Theme) {
        let len = state.actors.len();
        let title = Line::from(" Actors ");
        let table = TableFrame::new(title, area, &mut self.cursor, len, theme);
        self.rows_area = table.rows_area;
        let rows = state.actors[table.window.clone()]
            .iter()
            .map(|a| {
                let count_style = |n: u64, style: Style| if n > 0 { style } else { Style::new() };
                Row::new(vec![
                    Cell::from(a.name.clone()),
                    Cell::from(a.status.label()).style(theme.actor_status(a.status)),
                    Cell::from(num(fmt::count(a.queued))),
                    Cell::from(num(fmt::count(a.in_flight))),
                    Cell::from(num(fmt::count(a.done))),
                    Cell::from(num(fmt::count(a.failed)))
                        .style(count_style(a.failed, theme.warn())),
                    Cell::from(num(fmt::count(a.dead))).style(count_style(a.dead, theme.bad())),
                    Cell::from(a.last_error.clone().unwrap_or_default()).style(theme.dim()),
                ])
            })
            .collect();
        let header = Row::new(vec![
            Cell::from("Actor"),
            Cell::from("Status"),
            Cell::from(num("Queued".into())),
            Cell::from(num("In flight".into())),
            Cell::from(num("Done".into())),
            Cell::from(num("Failed".into())),
            Cell::from(num("Dead".into())),
            Cell::from("Last error"),
        ]);
        let widths = [
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Fill(1),
        ];
        table.render(frame, header, widths, rows, &self.cursor);
    }

    /// The selected actor's last error in full: the table column is too narrow to explain it.
    fn draw_last_error(&self, frame: &mut Frame, area: Rect, state: &ConsoleState, theme: Theme) {
        let Some(actor) = state.actors.get(self.cursor.selected()) else {
            return;
        };
        let line = match &actor.last_error {
            Some(e) => Line::from(vec![
                Span::styled(format!(" {} last error: ", actor.name), theme.warn()),
                Span::raw(e.clone()),
            ]),
            None => Line::from(Span::styled(
                format!(" {}: no errors", actor.name),
                theme.dim(),
            )),
        };
        frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: true }), area);
    }
}

/// All actors' throughput summed per second, newest sample at the right edge.
fn draw_throughput(frame: &mut Frame, area: Rect, state: &ConsoleState, theme: Theme) {
    let block = Block::default().borders(Borders::ALL);
    let width = block.inner(area).width as usize;
    let longest = state
        .actors
        .iter()
        .map(|a| a.throughput.len())
        .max()
        .unwrap_or(0);
    let shown = longest.min(width);
    let mut total = vec![0u64; shown];
    for actor in &state.actors {
        let t = &actor.throughput;
        let skip_in_total = longest - t.len();
        for (i, v) in t.iter().enumerate() {
            let pos = skip_in_total + i;
            if pos >= longest - shown {
                total[pos - (longest - shown)] += v;
            }
        }
    }
    let now = total.last().copied().unwrap_or(0);
    let peak = total.iter().copied().max().unwrap_or(0);
    let title = Line::from(vec![
        Span::styled(" Throughput ", theme.title()),
        Span::raw(format!("{now}/s now · peak {peak}/s · last {shown}s ")),
    ]);
    let spark = Sparkline::default()
        .block(block.title(title))
        .data(&total)
        .style(theme.accent());
    frame.render_widget(spark, area);
}

fn draw_budget(frame: &mut Frame, area: Rect, b: &BudgetView, theme: Theme) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Line::from(" Xero budget ").style(theme.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = Layout::vertical([Constraint::Length(1); 5]).split(inner);
    let gauge = |label: &str, used: u64, limit: u64| {
        let ratio = if limit == 0 {
            0.0
        } else {
            (used as f64 / limit as f64).clamp(0.0, 1.0)
        };
        LineGauge::default()
            .ratio(ratio)
            .filled_symbol(ratatui::symbols::block::FULL)
            .unfilled_symbol("░")
            .label(format!(
                "{label:<6} {:>5}/{:<5}",
                fmt::count(used),
                fmt::count(limit)
            ))
            .filled_style(theme.gauge(ratio))
            .unfilled_style(theme.dim())
    };
    frame.render_widget(gauge("minute", b.minute_used, b.minute_limit), rows[0]);
    frame.render_widget(gauge("today", b.day_used, b.day_limit), rows[1]);
    let forecast = match &b.forecast_exhausted_at {
        Some(at) => Line::from(vec![
            Span::raw("daily budget runs out "),
            Span::styled(fmt::short_time(at).to_string(), theme.warn()),
        ]),
        None => Line::from(Span::styled("daily budget lasts the day", theme.good())),
    };
    frame.render_widget(Paragraph::new(forecast), rows[2]);
    let in_flight_style = if b.in_flight >= b.in_flight_limit && b.in_flight_limit > 0 {
        theme.warn()
    } else {
        Style::new()
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(
                format!("in flight {}/{}", b.in_flight, b.in_flight_limit),
                in_flight_style,
            ),
            Span::raw(format!(" · 429s {}", fmt::count(b.throttled_total))),
        ])),
        rows[3],
    );
    let paused = match &b.paused_until {
        Some(until) => Span::styled(
            format!("paused by Xero until {}", fmt::short_time(until)),
            theme.bad(),
        ),
        None => Span::styled("not throttled", theme.dim()),
    };
    frame.render_widget(Paragraph::new(Line::from(paused)), rows[4]);
}

fn draw_health(frame: &mut Frame, area: Rect, state: &ConsoleState, theme: Theme) {
    let lines: Vec<Line> = state
        .health
        .iter()
        .map(|h| {
            let (mark, word, style) = if h.ok {
                ("●", "ok", theme.good())
            } else {
                ("✗", "DOWN", theme.bad())
            };
            let latency = h
                .latency_ms
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_else(|| "no answer".into());
            Line::from(vec![
                Span::styled(format!("{mark} {:<8}{word:<5}", h.system), style),
                Span::raw(format!("{latency:>9}  ")),
                Span::styled(h.detail.clone(), theme.dim()),
            ])
        })
        .collect();
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Line::from(" Health ").style(theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// Whether the two systems agree at a glance, and in what way they do not (by kind); the
/// records themselves are in the Discrepancies view (6) and `tally report`.
fn draw_discrepancies(frame: &mut Frame, area: Rect, state: &ConsoleState, theme: Theme) {
    let n = state.discrepancies_open;
    let style = if n > 0 { theme.warn() } else { theme.good() };
    let kinds: Vec<String> = state
        .discrepancies_by_kind
        .iter()
        .filter(|(_, k)| **k > 0)
        .map(|(kind, k)| format!("{kind} {}", fmt::count(*k)))
        .collect();
    let mut spans = vec![Span::styled(
        format!("Discrepancies: {} open", fmt::count(n)),
        style,
    )];
    if state.discrepancies_acknowledged > 0 {
        spans.push(Span::styled(
            format!(
                " (+{} acknowledged)",
                fmt::count(state.discrepancies_acknowledged)
            ),
            theme.dim(),
        ));
    }
    // The key hints before the kinds: on a narrow terminal the kinds are what is cut.
    spans.push(Span::styled("  6 list  c reconcile now", theme.dim()));
    if !kinds.is_empty() {
        spans.push(Span::raw(format!("  {}", kinds.join(", "))));
    }
    let line = Line::from(spans);
    let block = Block::default().borders(Borders::ALL);
    frame.render_widget(Paragraph::new(line).block(block), area);
}

/// On a tall terminal the spare rows show why things are stuck without switching to Errors.
fn draw_recent_problems(frame: &mut Frame, area: Rect, state: &ConsoleState, theme: Theme) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Line::from(" Recent problems · 3 for details ").style(theme.title()));
    let rows = block.inner(area).height as usize;
    let lines: Vec<Line> = super::errors::newest_first(state)
        .into_iter()
        .take(rows)
        .map(|i| {
            let e = &state.errors[i];
            let (word, style) = if e.dead {
                ("dead ", theme.bad())
            } else {
                ("retry", theme.warn())
            };
            Line::from(vec![
                Span::raw(format!("{} ", fmt::short_time(&e.at))),
                Span::styled(word, style),
                Span::raw(format!(" {:<16} ", e.key)),
                Span::raw(e.message.clone()),
                Span::styled(format!(" — {}", e.remote_message), theme.dim()),
            ])
        })
        .collect();
    let body = if lines.is_empty() {
        vec![Line::from(Span::styled("nothing is failing", theme.good()))]
    } else {
        lines
    };
    frame.render_widget(Paragraph::new(body).block(block), area);
}
