//! `tally`: keeps a Magento 2 store and a Xero organisation in agreement.

use clap::Parser;

/// mimalloc rather than glibc malloc: the engine allocates and frees many small JSON nodes
/// across worker threads, where glibc spends a third of a backfill's CPU in malloc/free and
/// keeps per-thread arenas of freed memory long after a burst (see README, Benchmarks).
/// `--features system-alloc` builds with the system allocator, for heap profilers such as
/// heaptrack that hook malloc.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: milliseconds before freed memory is returned to the
/// OS. Index 15 in `mi_option_e` of both mimalloc v2 and v3 (libmimalloc-sys builds v3).
#[cfg(not(feature = "system-alloc"))]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[cfg(not(feature = "system-alloc"))]
const PURGE_DELAY_MS: std::ffi::c_long = 10;

fn main() -> std::process::ExitCode {
    // Freed memory goes back to the OS after 10 ms (mimalloc's default), set explicitly
    // because it was once 0: when the engine built every order as a `serde_json::Value`, a
    // 10,000-order backfill peaked at 341 MB without it. Now the engine allocates far less;
    // measured with 0 against 10 ms: 100,000-order peak RSS 143-155 MB against 146-151 MB,
    // idle daemon 31.5 against 28.8 MB, while returning memory at once cost 7-10% of the
    // engine's CPU in page faults and TLB shootdowns (README, Benchmarks).
    #[cfg(not(feature = "system-alloc"))]
    // SAFETY: sets a process-wide allocator option before any thread is started; mimalloc
    // documents options as settable at any time.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
    let cli = tally::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
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
