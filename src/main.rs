use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than the system allocator: the simulation allocates and frees per message across
/// tens of thousands of connections, and glibc's malloc and free took 14 % of a 3-replica long-polling
/// run (docs/performance-history.md, "5 Dec 2026, morning"). The allocator changes no result:
/// reports are byte-identical.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts (its `malloc_conf`): its memory on transparent huge pages.
/// A run at 10,000 clients reads per-connection state scattered over some 200 MB, so a cache miss
/// was a TLB miss too, and a page walk under a virtual machine's nested paging is long. With 2 MB
/// pages, 10,000 WebSocket clients ran 12 % faster and long polling 6 % (README, "Performance", 6
/// Dec 2026), for more memory (peak RSS +3–5 % at 10,000 clients, +10 % for live-scores, 20 → 26 MB
/// for quickstart). Where the kernel offers no huge pages the options do nothing;
/// `_RJEM_MALLOC_CONF` in the environment still overrides them.
#[cfg(all(not(target_env = "msvc"), target_os = "linux"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_OPTIONS: Option<&'static std::ffi::c_char> =
    Some(unsafe { &*c"thp:always,metadata_thp:always".as_ptr() });

fn main() -> ExitCode {
    let cli = rtsim::cli::Cli::parse();
    match rtsim::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
