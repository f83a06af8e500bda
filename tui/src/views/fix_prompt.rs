//! The small form `f` opens on a dead letter: a mapping rule pre-filled from the letter's field
//! and message, edited in place and sent with `enter`.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::{Action, Outcome, centered};
use crate::command::ConsoleCommand;
use crate::fix_rule::{FixRule, KINDS};
use crate::state::ErrorItem;
use crate::theme::Theme;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Focus {
    Name,
    #[default]
    Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixPrompt {
    /// The dead letter the prompt was opened on; retried with everything else the rule unblocks.
    pub key: String,
    kind: usize,
    name: String,
    value: String,
    focus: Focus,
    /// Why the last `enter` was refused, shown in the prompt.
    problem: Option<String>,
}

impl FixPrompt {
    pub fn for_error(e: &ErrorItem) -> Self {
        let rule = FixRule::suggested_for(e);
        let kind = KINDS.iter().position(|k| *k == rule.kind()).unwrap_or(0);
        let name = rule.name().unwrap_or_default().to_owned();
        let focus = if name.is_empty() && rule.name().is_some() {
            Focus::Name
        } else {
            Focus::Value
        };
        Self {
            key: e.key.clone(),
            kind,
            name,
            value: rule.value().to_owned(),
            focus,
            problem: None,
        }
    }

    fn has_name(&self) -> bool {
        !FixRule::labels(KINDS[self.kind]).0.is_empty()
    }

    /// The rule as currently typed.
    pub fn rule(&self) -> Option<FixRule> {
        FixRule::from_parts(KINDS[self.kind], &self.name, &self.value)
    }

    /// `Outcome::Act(Send(Fix))` on a complete rule, `Handled` otherwise; `None` when the
    /// operator cancelled (the caller closes the prompt).
    pub fn handle_key(&mut self, key: &KeyEvent) -> Option<Outcome> {
        match key.code {
            KeyCode::Esc => return None,
            KeyCode::Enter => {
                let Some(rule) = self.rule() else {
                    return Some(Outcome::Handled);
                };
                return Some(match rule.check_complete() {
                    Ok(()) => Outcome::Act(Action::Send(ConsoleCommand::Fix {
                        key: self.key.clone(),
                        rule,
                    })),
                    Err(problem) => {
                        self.problem = Some(problem);
                        Outcome::Handled
                    }
                });
            }
            KeyCode::Up => self.kind = (self.kind + KINDS.len() - 1) % KINDS.len(),
            KeyCode::Down => self.kind = (self.kind + 1) % KINDS.len(),
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Focus::Name => Focus::Value,
                    Focus::Value if self.has_name() => Focus::Name,
                    Focus::Value => Focus::Value,
                };
            }
            KeyCode::Backspace => {
                self.field().pop();
            }
            KeyCode::Char(c) => self.field().push(c),
            _ => {}
        }
        if !self.has_name() {
            self.focus = Focus::Value;
        }
        self.problem = None;
        Some(Outcome::Handled)
    }

    fn field(&mut self) -> &mut String {
        match self.focus {
            Focus::Name => &mut self.name,
            Focus::Value => &mut self.value,
        }
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme) {
        let popup = centered(area, 64, 10);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Line::from(format!(" Fix mapping · {} ", self.key)).style(theme.title()))
            .title_bottom(Line::from(vec![
                Span::styled(" enter", theme.key_hint()),
                Span::raw(" apply + retry "),
                Span::styled(" tab", theme.key_hint()),
                Span::raw(" field "),
                Span::styled(" ↑↓", theme.key_hint()),
                Span::raw(" rule "),
                Span::styled(" esc", theme.key_hint()),
                Span::raw(" cancel "),
            ]))
            .border_style(theme.accent());
        let kind = KINDS[self.kind];
        let (name_label, value_label) = FixRule::labels(kind);
        let field_line = |label: &str, text: &str, focused: bool| {
            let cursor = if focused { "▏" } else { "" };
            Line::from(vec![
                Span::styled(format!("{label:<20}"), theme.dim()),
                Span::styled(
                    format!("{text}{cursor}"),
                    if focused {
                        theme.selected()
                    } else {
                        theme.accent()
                    },
                ),
            ])
        };
        let mut text = vec![Line::from(vec![
            Span::styled(format!("{:<20}", "rule"), theme.dim()),
            Span::styled(kind.replace('_', " "), theme.title()),
        ])];
        if self.has_name() {
            text.push(field_line(
                name_label,
                &self.name,
                self.focus == Focus::Name,
            ));
        }
        text.push(field_line(
            value_label,
            &self.value,
            self.focus == Focus::Value,
        ));
        text.push(Line::from(""));
        match &self.problem {
            Some(p) => text.push(Line::from(Span::styled(p.clone(), theme.bad()))),
            None => text.push(Line::from(Span::styled(
                "Checked against the organisation, written to the config, then every dead \
                 letter it unblocks is retried.",
                theme.dim(),
            ))),
        }
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(text).block(block).wrap(Wrap { trim: true }),
            popup,
        );
    }
}
