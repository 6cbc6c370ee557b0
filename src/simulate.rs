//! `rtsim simulate`: profile → plan → runs → report.
use crate::cli::SimulateArgs;
use std::process::ExitCode;

pub fn run_cli(_args: SimulateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("simulate is being built")
}
