//! Spreading one profile's runs over machines: `simulate --shard K/N` runs every N-th run starting at
//! the K-th and writes `shard-K-of-N.json` (the profile text, the overrides and each run's full metrics,
//! time series included); `rtsim merge` checks that the shards belong together and cover every run, then
//! writes the report an unsharded run would have written, byte for byte.
//!
//! Any batch system can run the shards (a CI matrix, Slurm, Kubernetes Jobs); this module only splits
//! and joins. It does not simulate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, ensure, Context as _};
use serde::{Deserialize, Serialize};

use crate::metrics::RunMetrics;
use crate::profile::Source;
use crate::report::{self, Report};
use crate::simulate::{self, Overrides};
use clap::Args;

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Folders (or files) holding `shard-K-of-N.json` files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Report folder (default: `reports/<profile name>/`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print summary.json on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// One run's result inside a shard file.
#[derive(Debug, Serialize, Deserialize)]
struct ShardRun {
    /// Position in the plan's run list.
    index: usize,
    metrics: RunMetrics,
    timeline: crate::metrics::Timeline,
}

/// The contents of `shard-K-of-N.json`.
#[derive(Debug, Serialize, Deserialize)]
struct ShardFile {
    rtsim_version: String,
    profile_text: String,
    /// The profile file as named when the shard ran (for the report's "Reproduce" line).
    #[serde(default)]
    profile_path: Option<String>,
    overrides: Overrides,
    shard: usize,
    shards: usize,
    total_runs: usize,
    runs: Vec<ShardRun>,
}

/// The run indices of shard `k` (1-based) of `n`: every n-th run, so shards get a fair mix of scenarios
/// and transports.
pub fn indices(total: usize, k: usize, n: usize) -> Vec<usize> {
    (k - 1..total).step_by(n).collect()
}

/// The shard file's name.
pub fn file_name(k: usize, n: usize) -> String {
    format!("shard-{k}-of-{n}.json")
}

/// Writes a shard's results into `dir` (created if needed); returns the file's path.
#[allow(clippy::too_many_arguments)] // one per field of the shard file
pub fn write(
    dir: &Path,
    profile_path: &Path,
    profile_text: &str,
    overrides: &Overrides,
    (k, n): (usize, usize),
    total_runs: usize,
    indices: &[usize],
    metrics: Vec<RunMetrics>,
) -> anyhow::Result<PathBuf> {
    let runs = indices
        .iter()
        .zip(metrics)
        .map(|(&index, metrics)| ShardRun {
            index,
            timeline: metrics.timeline.clone(),
            metrics,
        })
        .collect();
    let file = ShardFile {
        rtsim_version: env!("CARGO_PKG_VERSION").into(),
        profile_text: profile_text.into(),
        profile_path: Some(profile_path.to_string_lossy().into_owned()),
        overrides: overrides.clone(),
        shard: k,
        shards: n,
        total_runs,
        runs,
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(file_name(k, n));
    let staging = dir.join(format!(".{}.partial", file_name(k, n)));
    std::fs::write(&staging, serde_json::to_vec(&file)?)
        .with_context(|| format!("cannot write {}", staging.display()))?;
    std::fs::rename(&staging, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Shard files named on the command line: files as given, folders searched for `shard-*-of-*.json`.
fn shard_files(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("cannot read {}", input.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("shard-") && n.ends_with(".json"))
                })
                .collect();
            found.sort();
            ensure!(
                !found.is_empty(),
                "{} holds no shard-K-of-N.json file",
                input.display()
            );
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// Reads shards and rebuilds the whole report.
pub fn merge(inputs: &[PathBuf]) -> anyhow::Result<Report> {
    let mut shards: Vec<ShardFile> = Vec::new();
    for path in shard_files(inputs)? {
        let text =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let shard: ShardFile = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a shard file", path.display()))?;
        shards.push(shard);
    }
    let first = shards.first().context("no shard given")?;
    for shard in &shards[1..] {
        ensure!(
            shard.profile_text == first.profile_text
                && shard.overrides == first.overrides
                && shard.shards == first.shards
                && shard.total_runs == first.total_runs,
            "shard {}/{} comes from another profile, other options or another split than shard {}/{}",
            shard.shard,
            shard.shards,
            first.shard,
            first.shards
        );
        ensure!(
            shard.rtsim_version == first.rtsim_version,
            "shards were made by different rtsim versions ({} and {})",
            first.rtsim_version,
            shard.rtsim_version
        );
    }
    let source = Source {
        path: PathBuf::from(
            first
                .profile_path
                .clone()
                .unwrap_or_else(|| "profile (from the shard)".into()),
        ),
        text: first.profile_text.clone(),
    };
    let plan = simulate::plan_from_source(&source, &first.overrides)?;
    let specs = plan.runs();
    ensure!(
        specs.len() == first.total_runs,
        "the shards' run list does not match the profile"
    );
    let mut metrics: Vec<Option<RunMetrics>> = Vec::new();
    metrics.resize_with(specs.len(), || None);
    for shard in shards {
        for run in shard.runs {
            ensure!(
                run.index < specs.len(),
                "shard {}/{} names run {} of {}",
                shard.shard,
                shard.shards,
                run.index,
                specs.len()
            );
            ensure!(
                metrics[run.index].is_none(),
                "run {} appears in two shards",
                run.index + 1
            );
            let mut m = run.metrics;
            m.timeline = run.timeline;
            metrics[run.index] = Some(m);
        }
    }
    let missing: Vec<String> = metrics
        .iter()
        .enumerate()
        .filter(|(_, m)| m.is_none())
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "runs {} are in no shard given: is a shard missing?",
            missing.join(", ")
        );
    }
    let metrics = metrics
        .into_iter()
        .map(|m| m.expect("checked above"))
        .collect();
    Ok(Report::new(plan, &specs, metrics))
}

/// The `merge` subcommand.
pub fn merge_cli(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let report = merge(&args.inputs)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| report::default_dir(&report.plan));
    report::folder::check(&dir)?;
    simulate::finish_report(&dir, &report, args.json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_runs() {
        let total = 10;
        let mut all: Vec<usize> = (1..=3).flat_map(|k| indices(total, k, 3)).collect();
        all.sort();
        assert_eq!(all, (0..total).collect::<Vec<_>>());
        assert_eq!(indices(total, 2, 3), vec![1, 4, 7]);
        assert!(
            indices(2, 3, 3).is_empty(),
            "more shards than runs leaves some empty"
        );
    }

    #[test]
    fn shard_specs_parse_and_bad_ones_are_refused() {
        assert_eq!(simulate::parse_shard("2/8"), Ok((2, 8)));
        for bad in ["0/3", "4/3", "1/0", "2", "a/b", "1/x"] {
            assert!(simulate::parse_shard(bad).is_err(), "{bad}");
        }
    }
}
