//! `bench_frames` runs and reports sane numbers; the figures themselves are for `tally bench
//! console` (run with `--release -- --nocapture` to see them).

#[test]
fn bench_frames_measures_every_frame() {
    let stats = tally_tui::bench_frames(2_000, 20);
    println!("2,000 items: {stats}");
    assert_eq!(stats.frames, 20);
    assert!(stats.median_us <= stats.p99_us && stats.p99_us <= stats.worst_us);
    assert!(stats.worst_us > 0);
}

#[test]
#[ignore = "benchmark: cargo test -p tally-tui --release --test bench -- --ignored --nocapture"]
fn bench_100k_items() {
    let stats = tally_tui::bench_frames(100_000, 1_000);
    println!("100,000 items: {stats}");
}
