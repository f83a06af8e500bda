//! `tally`: keeps a Magento 2 store and a Xero organisation in agreement.

use clap::Parser;

/// mimalloc rather than glibc malloc: the engine allocates and frees many small JSON nodes
/// across worker threads, where glibc spends a third of a backfill's CPU in malloc/free and
/// keeps per-thread arenas of freed memory long after a burst (see README, Benchmarks).
/// `--features system-alloc` builds with the system allocator, for heap profilers such as
/// heaptrack that hook malloc. This is mimalloc 3, whose default delay before returning freed
/// memory to the OS is 1 s; it is kept: returning it at once cost 7-10 % of the engine's CPU
/// in page faults, and 10 ms still cost several percent (README, Benchmarks). What bounds
/// the engine's peak is the number of threads that allocate (see `blocking_threads`).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Threads for tokio's blocking work. Ledger reads have their own threads now
/// (`ledger::reader_pool`); what is left (DNS lookups, token files, opening the ledger) is
/// rare. The bound stays because tokio's default of 512 let a busy backfill start dozens,
/// each keeping its own allocator pages (the 100,000-order engine peak was 240-370 MB with
/// the default and 117 MB with 4 threads; README, Benchmarks).
fn blocking_threads() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).max(4))
}

fn main() -> std::process::ExitCode {
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
