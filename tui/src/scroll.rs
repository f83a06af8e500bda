//! Selection and scroll position of a list that may be far longer than the screen.
//!
//! Views ask the cursor for the visible window and build widgets only for that window, so the
//! cost of a frame depends on the terminal height, not on the number of queued items.

use std::ops::Range;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListCursor {
    selected: usize,
    offset: usize,
    /// Rows visible at the last draw; key handling happens between draws and needs it for paging.
    page: usize,
    /// Set by End so the selection keeps up with a list that grows between frames.
    at_end: bool,
}

impl ListCursor {
    pub fn selected(&self) -> usize {
        self.selected
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    fn page(&self) -> usize {
        self.page.max(1)
    }

    pub fn up(&mut self, n: usize) {
        self.at_end = false;
        self.selected = self.selected.saturating_sub(n);
    }

    pub fn down(&mut self, n: usize, len: usize) {
        self.at_end = false;
        self.selected = (self.selected + n).min(len.saturating_sub(1));
    }

    pub fn page_up(&mut self) {
        self.up(self.page());
    }

    pub fn page_down(&mut self, len: usize) {
        self.down(self.page(), len);
    }

    pub fn home(&mut self) {
        self.at_end = false;
        self.selected = 0;
        self.offset = 0;
    }

    pub fn end(&mut self, len: usize) {
        self.at_end = true;
        self.selected = len.saturating_sub(1);
    }

    /// Select an absolute index (a mouse click), clamped to the list.
    pub fn select(&mut self, index: usize, len: usize) {
        self.at_end = false;
        self.selected = index.min(len.saturating_sub(1));
    }

    /// Scrolls the view without moving the selection out of sight (mouse wheel).
    pub fn scroll(&mut self, delta: isize, len: usize) {
        if delta < 0 {
            self.up(delta.unsigned_abs());
        } else {
            self.down(delta.unsigned_abs(), len);
        }
    }

    /// The rows to draw for a list of `len` items in `height` rows, keeping the selection visible.
    pub fn window(&mut self, len: usize, height: usize) -> Range<usize> {
        self.page = height;
        if len == 0 {
            self.selected = 0;
            self.offset = 0;
            return 0..0;
        }
        if self.at_end || self.selected >= len {
            self.selected = len - 1;
        }
        let height = height.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        // Never leave blank rows at the bottom when the list shrank under us.
        self.offset = self.offset.min(len.saturating_sub(height));
        self.offset..(self.offset + height).min(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_shows_the_last_page() {
        let mut c = ListCursor::default();
        c.end(100_000);
        assert_eq!(c.window(100_000, 20), 99_980..100_000);
        assert_eq!(c.selected(), 99_999);
    }

    #[test]
    fn page_down_moves_by_the_visible_height() {
        let mut c = ListCursor::default();
        c.window(1000, 10);
        c.page_down(1000);
        assert_eq!(c.selected(), 10);
        assert_eq!(c.window(1000, 10), 1..11);
    }

    #[test]
    fn selection_follows_the_end_while_the_list_grows() {
        let mut c = ListCursor::default();
        c.end(10);
        c.window(10, 5);
        assert_eq!(c.window(15, 5), 10..15);
        assert_eq!(c.selected(), 14);
    }

    #[test]
    fn shrinking_list_clamps_the_selection() {
        let mut c = ListCursor::default();
        c.select(50, 100);
        c.window(100, 10);
        assert_eq!(c.window(20, 10), 10..20);
        assert_eq!(c.selected(), 19);
    }

    #[test]
    fn empty_list_has_an_empty_window() {
        let mut c = ListCursor::default();
        c.down(3, 0);
        assert_eq!(c.window(0, 10), 0..0);
    }
}
