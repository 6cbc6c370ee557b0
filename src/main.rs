use std::process::ExitCode;

use clap::Parser;

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
