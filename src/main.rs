use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than the system allocator: the simulation allocates and frees per message across
/// tens of thousands of connections, and glibc's malloc and free took 14 % of a 3-replica long-polling
/// run (docs/performance-history.md, "5 Dec 2026, morning"). The allocator changes no result:
/// reports are byte-identical.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
