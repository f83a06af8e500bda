//! Colours, chosen once at start-up.
//!
//! Colour is only ever a second cue: every state also has a word ("dead", "paused", "ERROR"), so
//! with `NO_COLOR` (https://no-color.org) the console falls back to the terminal's default colours
//! and uses bold/reverse for the few things that must stand out.

use ratatui::style::{Color, Modifier, Style};

use crate::state::{ActorStatus, LogLevel};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to a non-empty value.
    pub fn from_env() -> Self {
        Self::from_no_color(std::env::var_os("NO_COLOR").as_deref())
    }

    /// The decision of [`Theme::from_env`] for a given `NO_COLOR` value, kept separate so it can
    /// be tested without touching the process environment.
    pub fn from_no_color(value: Option<&std::ffi::OsStr>) -> Self {
        match value {
            Some(v) if !v.is_empty() => Self::plain(),
            _ => Self::colored(),
        }
    }

    pub fn colored() -> Self {
        Self { color: true }
    }

    pub fn plain() -> Self {
        Self { color: false }
    }

    pub fn is_colored(self) -> bool {
        self.color
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    /// Something healthy.
    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }

    /// Something that needs watching but is not broken.
    pub fn warn(self) -> Style {
        if self.color {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }

    /// Something broken that needs an operator.
    pub fn bad(self) -> Style {
        if self.color {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        }
    }

    /// Secondary text.
    pub fn dim(self) -> Style {
        self.fg(Color::DarkGray)
    }

    pub fn accent(self) -> Style {
        self.fg(Color::Cyan)
    }

    pub fn title(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn key_hint(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn header_row(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn active_tab(self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        }
    }

    pub fn gauge(self, ratio: f64) -> Style {
        if ratio >= 0.9 {
            self.bad()
        } else if ratio >= 0.7 {
            self.warn()
        } else {
            self.good()
        }
    }

    pub fn actor_status(self, status: ActorStatus) -> Style {
        match status {
            ActorStatus::Running => self.good(),
            ActorStatus::Paused | ActorStatus::Restarting => self.warn(),
            ActorStatus::Failed => self.bad(),
        }
    }

    pub fn log_level(self, level: LogLevel) -> Style {
        match level {
            LogLevel::Error => self.bad(),
            LogLevel::Warn => self.warn(),
            LogLevel::Info => Style::new(),
            LogLevel::Debug => self.dim(),
        }
    }

    pub fn system(self, system: &str) -> Style {
        match system.to_ascii_lowercase().as_str() {
            "magento" => self.fg(Color::LightRed),
            "xero" => self.fg(Color::LightBlue),
            _ => self.fg(Color::Magenta),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn no_color_set_and_non_empty_disables_colour() {
        assert!(!Theme::from_no_color(Some(OsStr::new("1"))).is_colored());
        assert!(Theme::from_no_color(Some(OsStr::new(""))).is_colored());
        assert!(Theme::from_no_color(None).is_colored());
    }

    #[test]
    fn plain_theme_never_sets_a_colour() {
        let t = Theme::plain();
        for s in [
            t.good(),
            t.warn(),
            t.bad(),
            t.dim(),
            t.accent(),
            t.active_tab(),
        ] {
            assert_eq!(s.fg, None);
            assert_eq!(s.bg, None);
        }
        assert!(t.bad().add_modifier.contains(Modifier::REVERSED));
    }
}
