//! `tally`: keeps a Magento 2 store and a Xero organisation in agreement.

use clap::Parser;

/// mimalloc rather than glibc malloc: the engine allocates and frees many small JSON nodes
/// across worker threads, where glibc spends a third of a backfill's CPU in malloc/free and
/// keeps per-thread arenas of freed memory long after a burst (see README, Benchmarks).
/// `--features system-alloc` builds with the system allocator, for heap profilers such as
/// heaptrack that hook malloc. This is mimalloc 3; see [`PURGE_DELAY_MS`] for when freed
/// memory goes back to the OS. What bounds the engine's peak is the number of threads that
/// allocate (see `blocking_threads`).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long mimalloc keeps freed pages before returning them to the OS. Every page returned
/// and touched again costs a page fault and a zeroed page: at mimalloc 3's default of 1 s a
/// backfill spent 5 % of its CPU in faults, at 10 ms several percent more. 10 s keeps a burst's
/// pages for the next burst: +4-5 % orders/s, and the 100,000-order engine peak went from
/// 141 to 164 MB (README, Benchmarks; never returning them reached 189 MB).
#[cfg(not(feature = "system-alloc"))]
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// `mi_option_purge_delay` in mimalloc 3's option enum (`mimalloc.h`); libmimalloc-sys names
/// only a few options. The test below checks that this index holds the purge delay.
#[cfg(not(feature = "system-alloc"))]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[cfg(not(feature = "system-alloc"))]
fn tune_allocator() {
    // SAFETY: sets a process-wide integer option; mimalloc reads it on each purge decision
    // and documents it as settable at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
}

#[cfg(feature = "system-alloc")]
fn tune_allocator() {}

/// Threads for blocking work, which is almost all ledger reads: short, CPU-bound jobs that
/// gain nothing from more threads than cores. Tokio's default of 512 let a busy backfill
/// start dozens, and each kept its own allocator pages: the 100,000-order engine peak was
/// 240-370 MB with the default and 117 MB with 4 threads, at the same CPU (README,
/// Benchmarks).
fn blocking_threads() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).max(4))
}

fn main() -> std::process::ExitCode {
    tune_allocator();
    let cli = tally::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads())
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(tally::cmd::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(all(test, not(feature = "system-alloc")))]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: reads and sets process-wide integer options.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // mimalloc 3's documented default for the purge delay: a different index would
            // hold some other option's value.
            assert_eq!(
                before, 1000,
                "option {MI_OPTION_PURGE_DELAY} is not the purge delay"
            );
        }
        tune_allocator();
        let after = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(after, PURGE_DELAY_MS);
    }
}
