//! The console's UI state and its reaction to input; drawable on any ratatui backend.

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::command::ConsoleCommand;
use crate::fmt;
use crate::state::ConsoleState;
use crate::theme::Theme;
use crate::views::confirm::Confirm;
use crate::views::discrepancies::DiscrepanciesView;
use crate::views::entity::EntityScreen;
use crate::views::errors::ErrorsView;
use crate::views::log::LogScreen;
use crate::views::overview::OverviewView;
use crate::views::queues::QueuesView;
use crate::views::{Action, Outcome, View, help};

/// Rows the mouse wheel moves per notch.
const WHEEL_STEP: isize = 3;

#[derive(Debug)]
pub struct App {
    theme: Theme,
    view: View,
    pub overview: OverviewView,
    pub queues: QueuesView,
    pub errors: ErrorsView,
    pub entity: EntityScreen,
    pub log: LogScreen,
    pub discrepancies: DiscrepanciesView,
    confirm: Option<Confirm>,
    help: bool,
    /// Feedback for the last thing the operator asked for, so no keystroke goes unanswered.
    status: Option<String>,
    /// Whether `status` reports a refusal or failure (drawn as an error).
    status_bad: bool,
    /// The last engine [`crate::state::Notice`] shown, so each answer replaces the status once.
    seen_notice: u64,
    quit: bool,
    engine_gone: bool,
    /// Where each tab was drawn, for mouse clicks.
    tabs: [Rect; 6],
    tabs_row: Rect,
}

impl Default for App {
    fn default() -> Self {
        Self::new(Theme::from_env())
    }
}

impl App {
    pub fn new(theme: Theme) -> Self {
        Self {
            theme,
            view: View::Overview,
            overview: OverviewView::default(),
            queues: QueuesView::default(),
            errors: ErrorsView::default(),
            entity: EntityScreen::default(),
            log: LogScreen::default(),
            discrepancies: DiscrepanciesView::default(),
            confirm: None,
            help: false,
            status: None,
            status_bad: false,
            seen_notice: 0,
            quit: false,
            engine_gone: false,
            tabs: [Rect::default(); 6],
            tabs_row: Rect::default(),
        }
    }

    pub fn view(&self) -> View {
        self.view
    }

    pub fn set_view(&mut self, view: View) {
        self.view = view;
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    pub fn help_visible(&self) -> bool {
        self.help
    }

    pub fn confirmation(&self) -> Option<&Confirm> {
        self.confirm.as_ref()
    }

    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }

    pub fn set_status(&mut self, status: impl Into<String>) {
        self.status = Some(status.into());
        self.status_bad = false;
    }

    /// Takes the engine's answer to the latest command into the status line, once.
    fn take_notice(&mut self, state: &ConsoleState) {
        if let Some(n) = &state.notice
            && n.seq != self.seen_notice
        {
            self.seen_notice = n.seq;
            self.status = Some(if n.ok {
                n.message.clone()
            } else {
                format!("refused: {}", n.message)
            });
            self.status_bad = !n.ok;
        }
    }

    /// Marks that the engine stopped publishing state, so the header can say the numbers are
    /// frozen rather than let them look current.
    pub fn set_engine_gone(&mut self, gone: bool) {
        self.engine_gone = gone;
    }

    /// Any terminal event: keys, mouse, resize (which only needs a redraw).
    pub fn handle_event(&mut self, event: &Event, state: &ConsoleState) -> Option<ConsoleCommand> {
        match event {
            Event::Key(key) => self.handle_key(*key, state),
            Event::Mouse(mouse) => self.handle_mouse(*mouse, state),
            _ => None,
        }
    }

    pub fn handle_key(&mut self, key: KeyEvent, state: &ConsoleState) -> Option<ConsoleCommand> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return self.quit_now();
        }
        if let Some(confirm) = &self.confirm {
            return match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    let cmd = confirm.on_yes.clone();
                    self.confirm = None;
                    self.send(cmd)
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.confirm = None;
                    self.status = Some("cancelled".into());
                    None
                }
                _ => None,
            };
        }
        if self.help {
            if matches!(
                key.code,
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
            ) {
                self.help = false;
            }
            return None;
        }
        if !self.view_captures_input() {
            match key.code {
                KeyCode::Char(c @ '1'..='6') => {
                    self.view = View::from_digit(c).unwrap_or(self.view);
                    return None;
                }
                KeyCode::Tab => {
                    self.view = self.view.next();
                    return None;
                }
                KeyCode::BackTab => {
                    self.view = self.view.prev();
                    return None;
                }
                KeyCode::Char('?') => {
                    self.help = true;
                    return None;
                }
                KeyCode::Char('q') => return self.quit_now(),
                _ => {}
            }
        }
        let outcome = match self.view {
            View::Overview => self.overview.handle_key(&key, state),
            View::Queues => self.queues.handle_key(&key, state),
            View::Errors => self.errors.handle_key(&key, state),
            View::Entity => self.entity.handle_key(&key, state),
            View::Log => self.log.handle_key(&key, state),
            View::Discrepancies => self.discrepancies.handle_key(&key, state),
        };
        self.apply(outcome)
    }

    pub fn handle_mouse(
        &mut self,
        mouse: MouseEvent,
        state: &ConsoleState,
    ) -> Option<ConsoleCommand> {
        if self.help || self.confirm.is_some() {
            return None;
        }
        let delta = match mouse.kind {
            MouseEventKind::ScrollDown => WHEEL_STEP,
            MouseEventKind::ScrollUp => -WHEEL_STEP,
            MouseEventKind::Down(MouseButton::Left) => {
                return self.click(mouse.column, mouse.row, state);
            }
            _ => return None,
        };
        match self.view {
            View::Overview => self.overview.scroll(delta, state),
            View::Queues => self.queues.scroll(delta, state),
            View::Errors => self.errors.scroll(delta, state),
            View::Entity => self.entity.scroll(delta, state),
            View::Log => self.log.scroll(delta, state),
            View::Discrepancies => self.discrepancies.scroll(delta, state),
        }
        None
    }

    fn click(&mut self, column: u16, row: u16, state: &ConsoleState) -> Option<ConsoleCommand> {
        if row == self.tabs_row.y {
            if let Some(i) = self
                .tabs
                .iter()
                .position(|r| column >= r.x && column < r.x + r.width)
            {
                self.view = View::ALL[i];
            }
            return None;
        }
        match self.view {
            View::Overview => self.overview.click(column, row, state),
            View::Queues => self.queues.click(column, row, state),
            View::Errors => self.errors.click(column, row, state),
            View::Entity => {
                let outcome = self.entity.click(column, row, state);
                return self.apply(outcome);
            }
            View::Log => self.log.click(column, row, state),
            View::Discrepancies => self.discrepancies.click(column, row, state),
        }
        None
    }

    fn view_captures_input(&self) -> bool {
        match self.view {
            View::Queues => self.queues.captures_input(),
            View::Errors => self.errors.captures_input(),
            View::Entity => self.entity.captures_input(),
            View::Discrepancies => self.discrepancies.captures_input(),
            View::Overview | View::Log => false,
        }
    }

    fn quit_now(&mut self) -> Option<ConsoleCommand> {
        self.quit = true;
        Some(ConsoleCommand::Quit)
    }

    fn apply(&mut self, outcome: Outcome) -> Option<ConsoleCommand> {
        match outcome {
            Outcome::Ignored | Outcome::Handled => None,
            Outcome::Act(Action::Send(cmd)) => self.send(cmd),
            Outcome::Act(Action::Confirm { prompt, on_yes }) => {
                self.confirm = Some(Confirm { prompt, on_yes });
                None
            }
            Outcome::Act(Action::OpenEntity(key)) => {
                self.view = View::Entity;
                self.entity.reset_trail();
                self.send(ConsoleCommand::Open(key))
            }
        }
    }

    fn send(&mut self, cmd: ConsoleCommand) -> Option<ConsoleCommand> {
        self.status = Some(describe(&cmd));
        self.status_bad = false;
        Some(cmd)
    }

    pub fn draw(&mut self, frame: &mut Frame, state: &ConsoleState) {
        self.take_notice(state);
        let [header, tabs, body, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        self.draw_header(frame, header, state);
        self.draw_tabs(frame, tabs, state);
        let theme = self.theme;
        match self.view {
            View::Overview => self.overview.draw(frame, body, state, theme),
            View::Queues => self.queues.draw(frame, body, state, theme),
            View::Errors => self.errors.draw(frame, body, state, theme),
            View::Entity => self.entity.draw(frame, body, state, theme),
            View::Log => self.log.draw(frame, body, state, theme),
            View::Discrepancies => self.discrepancies.draw(frame, body, state, theme),
        }
        self.draw_footer(frame, footer);
        if let Some(confirm) = &self.confirm {
            confirm.draw(frame, body, theme);
        }
        if self.help {
            help::draw(frame, body, theme);
        }
    }

    fn draw_header(&self, frame: &mut Frame, area: Rect, state: &ConsoleState) {
        let t = self.theme;
        let dead: u64 = state.actors.iter().map(|a| a.dead).sum();
        let failed: u64 = state.actors.iter().map(|a| a.failed).sum();
        let mut right = Vec::new();
        if dead > 0 {
            right.push(Span::styled(format!("{} dead", fmt::count(dead)), t.bad()));
            right.push(Span::raw(" · "));
        }
        if failed > 0 {
            right.push(Span::styled(
                format!("{} retrying", fmt::count(failed)),
                t.warn(),
            ));
            right.push(Span::raw(" · "));
        }
        let time = fmt::short_time(&state.generated_at);
        let compact = area.width < 100;
        match (self.engine_gone, compact) {
            (true, true) => right.push(Span::styled(format!("engine stopped {time} "), t.bad())),
            (true, false) => right.push(Span::styled(
                format!("engine stopped · last update {time} "),
                t.bad(),
            )),
            (false, true) => right.push(Span::styled(format!("{time} "), t.dim())),
            (false, false) => right.push(Span::styled(format!("updated {time} "), t.dim())),
        }
        right.insert(0, Span::raw(" "));
        let right = Line::from(right);
        let right_width = right.width() as u16;
        let [l, r] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(right_width)]).areas(area);
        let left = Line::from(vec![
            Span::styled(" tally ", t.active_tab()),
            Span::raw(" "),
            Span::styled(state.link.clone(), t.title()),
        ]);
        frame.render_widget(Paragraph::new(left), l);
        frame.render_widget(Paragraph::new(right), r);
    }

    fn draw_tabs(&mut self, frame: &mut Frame, area: Rect, state: &ConsoleState) {
        self.tabs_row = area;
        let mut x = area.x;
        let mut spans = Vec::new();
        for (i, view) in View::ALL.iter().enumerate() {
            let count = match view {
                View::Queues => format!(" {}", fmt::count(state.queue.len() as u64)),
                View::Errors => format!(" {}", fmt::count(state.errors.len() as u64)),
                View::Discrepancies => format!(" {}", fmt::count(state.discrepancies_open)),
                _ => String::new(),
            };
            let label = format!(" {} {}{} ", i + 1, view.title(), count);
            let width = label.chars().count() as u16;
            let style = if *view == self.view {
                self.theme.active_tab()
            } else {
                self.theme.dim()
            };
            self.tabs[i] = Rect::new(x, area.y, width, 1);
            x = x.saturating_add(width + 1);
            spans.push(Span::styled(label, style));
            spans.push(Span::raw(" "));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    fn draw_footer(&self, frame: &mut Frame, area: Rect) {
        let t = self.theme;
        let hints: &[(&str, &str)] = if self.confirm.is_some() {
            &[("y", "yes"), ("n", "no")]
        } else if self.help {
            &[("esc", "close help")]
        } else if self.view_captures_input() {
            match self.view {
                View::Errors if self.errors.fix_prompt().is_some() => &[
                    ("enter", "apply"),
                    ("tab", "field"),
                    ("↑↓", "rule"),
                    ("esc", "cancel"),
                ],
                View::Queues => &[("enter", "keep filter"), ("esc", "clear")],
                View::Entity => &[("enter", "search"), ("esc", "cancel")],
                View::Discrepancies => &[("enter", "acknowledge"), ("esc", "cancel")],
                _ => &[
                    ("r", "retry"),
                    ("d", "drop"),
                    ("f", "fix"),
                    ("o", "audit trail"),
                    ("esc", "close"),
                ],
            }
        } else {
            match self.view {
                View::Overview => &[
                    ("p", "pause/resume"),
                    ("c", "reconcile"),
                    ("?", "keys"),
                    ("q", "quit"),
                ],
                View::Queues => &[
                    ("/", "filter"),
                    ("end", "last"),
                    ("?", "keys"),
                    ("q", "quit"),
                ],
                View::Errors => &[
                    ("r", "retry"),
                    ("R", "retry all"),
                    ("d", "drop"),
                    ("f", "fix"),
                    ("enter", "details"),
                    ("?", "keys"),
                    ("q", "quit"),
                ],
                View::Entity => &[
                    ("/", "search"),
                    ("enter", "open"),
                    ("pgdn", "trail"),
                    ("?", "keys"),
                    ("q", "quit"),
                ],
                View::Log => &[("↑↓", "scroll"), ("?", "keys"), ("q", "quit")],
                View::Discrepancies => &[
                    ("f", "fix"),
                    ("a", "acknowledge"),
                    ("enter", "audit trail"),
                    ("c", "reconcile"),
                    ("?", "keys"),
                    ("q", "quit"),
                ],
            }
        };
        let mut spans = vec![Span::raw(" ")];
        for (key, what) in hints {
            spans.push(Span::styled(*key, t.key_hint()));
            spans.push(Span::raw(format!(" {what}  ")));
        }
        let status = self.status.clone().unwrap_or_default();
        let status_width = status.chars().count() as u16 + 1;
        let [l, r] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(status_width)]).areas(area);
        frame.render_widget(Paragraph::new(Line::from(spans)), l);
        let style = if self.status_bad { t.bad() } else { t.accent() };
        frame.render_widget(Paragraph::new(Span::styled(status, style)), r);
    }
}

fn describe(cmd: &ConsoleCommand) -> String {
    match cmd {
        ConsoleCommand::Retry(k) => format!("retry sent: {k}"),
        ConsoleCommand::RetryAll => "retry all sent".into(),
        ConsoleCommand::Drop(k) => format!("drop sent: {k}"),
        ConsoleCommand::Pause(a) => format!("pause sent: {a}"),
        ConsoleCommand::Resume(a) => format!("resume sent: {a}"),
        ConsoleCommand::Search(q) => format!("searching \"{q}\""),
        ConsoleCommand::Open(k) => format!("opening {k}"),
        ConsoleCommand::ReconcileNow => "reconcile sent".into(),
        ConsoleCommand::Acknowledge { key, .. } => format!("acknowledge sent: {key}"),
        ConsoleCommand::FixDiscrepancy(k) => format!("fix sent: {k}"),
        ConsoleCommand::Fix { rule, .. } => format!("fix sent: {}", rule.describe()),
        ConsoleCommand::Quit => "quitting".into(),
    }
}
