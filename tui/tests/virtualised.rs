//! A frame's cost must not grow with the queue: only the visible window becomes widgets.
//!
//! Counts heap allocations with a counting global allocator; this file holds a single test so no
//! other test allocates concurrently.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tally_tui::fixture::sample_state;
use tally_tui::{App, Theme};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations of one Queues frame (key handling plus draw) at the end of `items` queued items.
fn allocations_per_frame(items: usize) -> usize {
    let state = sample_state(items);
    let mut app = App::new(Theme::colored());
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    app.handle_key(KeyEvent::from(KeyCode::Char('2')), &state);
    terminal.draw(|f| app.draw(f, &state)).unwrap();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    app.handle_key(KeyEvent::from(KeyCode::End), &state);
    terminal.draw(|f| app.draw(f, &state)).unwrap();
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn frame_allocations_do_not_grow_with_the_queue() {
    let small = allocations_per_frame(100);
    let huge = allocations_per_frame(100_000);
    // A frame builds ~35 rows of ~6 cells; building every row would be millions of allocations.
    assert!(
        huge <= small + small / 10,
        "100 items: {small} allocations, 100,000 items: {huge}"
    );
    assert!(huge < 10_000, "{huge} allocations for one frame");
}
