//! Frame-time measurement for `tally bench console`: prints numbers, asserts nothing.

use std::fmt;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::app::App;
use crate::fixture::sample_state;
use crate::theme::Theme;
use crate::views::View;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    pub frames: usize,
    pub median_us: u64,
    pub p99_us: u64,
    pub worst_us: u64,
}

impl fmt::Display for FrameStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} frames: median {} µs, p99 {} µs, worst {} µs",
            self.frames, self.median_us, self.p99_us, self.worst_us
        )
    }
}

/// Times `frames` frames at 120×40 with `items` queued operations, alternating the Queues view
/// (paging down one screen each time, so every frame draws different rows) and the Overview.
/// A frame is the key handling plus the draw, i.e. what one keystroke costs.
pub fn bench_frames(items: usize, frames: usize) -> FrameStats {
    let state = sample_state(items);
    let mut app = App::new(Theme::colored());
    let Ok(mut terminal) = Terminal::new(TestBackend::new(120, 40));
    let mut samples = Vec::with_capacity(frames);
    for i in 0..frames {
        let start = Instant::now();
        if i % 2 == 0 {
            app.set_view(View::Queues);
            app.handle_key(KeyEvent::from(KeyCode::PageDown), &state);
        } else {
            app.set_view(View::Overview);
        }
        let Ok(_) = terminal.draw(|frame| app.draw(frame, &state));
        samples.push(start.elapsed().as_micros() as u64);
    }
    stats(samples)
}

fn stats(mut samples: Vec<u64>) -> FrameStats {
    samples.sort_unstable();
    let n = samples.len();
    if n == 0 {
        return FrameStats::default();
    }
    FrameStats {
        frames: n,
        median_us: samples[n / 2],
        p99_us: samples[(n * 99).div_ceil(100) - 1],
        worst_us: samples[n - 1],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_sorted_samples() {
        let s = stats((1..=100).rev().collect());
        assert_eq!(s.frames, 100);
        assert_eq!(s.median_us, 51);
        assert_eq!(s.p99_us, 99);
        assert_eq!(s.worst_us, 100);
        assert_eq!(stats(vec![]), FrameStats::default());
    }
}
