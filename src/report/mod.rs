//! Reports: the results of all runs of a plan, and the files and tables made from them.
//!
//! Building a report is pure (results in, bytes out); writing it is the only I/O, and it is atomic: the
//! report folder is built beside its final place and renamed over it, so a failed run leaves the previous
//! report whole.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::metrics::RunMetrics;
use crate::scenario::{Plan, RunSpec};
use crate::transport::TransportKind;

pub mod json;
pub mod table;

/// The outcome of one run, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub scenario: String,
    pub transport: TransportKind,
    /// The seed this run used.
    pub seed: u64,
    #[serde(flatten)]
    pub metrics: RunMetrics,
}

/// Everything a report shows.
#[derive(Clone, Debug)]
pub struct Report {
    pub plan: Plan,
    pub runs: Vec<RunResult>,
}

impl Report {
    pub fn new(plan: Plan, specs: &[RunSpec], metrics: Vec<RunMetrics>) -> Self {
        let runs = specs
            .iter()
            .zip(metrics)
            .map(|(spec, metrics)| RunResult {
                scenario: plan.scenarios[spec.scenario].name.clone(),
                transport: spec.transport,
                seed: spec.seed,
                metrics,
            })
            .collect();
        Self { plan, runs }
    }
}

/// One output file made from a report.
pub trait Exporter {
    /// File name inside the report folder.
    fn file_name(&self) -> String;
    /// The file's bytes.
    fn render(&self, report: &Report) -> anyhow::Result<Vec<u8>>;
}

/// Every file a report folder holds.
pub fn exporters() -> Vec<Box<dyn Exporter>> {
    vec![Box::new(json::SummaryJson)]
}

/// Writes every exporter's file into `dir`, replacing what was there only once all are written.
pub fn write_report(dir: &Path, report: &Report) -> anyhow::Result<()> {
    let files = exporters()
        .iter()
        .map(|e| Ok((e.file_name(), e.render(report)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    write_atomically(dir, &files)
}

/// Writes `files` into a fresh folder beside `dir`, then swaps it into place.
pub fn write_atomically(dir: &Path, files: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .with_context(|| format!("`{}` does not name a folder", dir.display()))?
        .to_string_lossy()
        .into_owned();
    fs::create_dir_all(parent)
        .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    let staging = parent.join(format!(".{name}.partial"));
    let retired = parent.join(format!(".{name}.old"));
    for stale in [&staging, &retired] {
        if stale.exists() {
            fs::remove_dir_all(stale)
                .with_context(|| format!("cannot remove the leftover {}", stale.display()))?;
        }
    }
    let result = (|| -> anyhow::Result<()> {
        fs::create_dir_all(&staging)?;
        for (file, bytes) in files {
            let path = staging.join(file);
            if let Some(folder) = path.parent() {
                fs::create_dir_all(folder)?;
            }
            fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        if dir.exists() {
            fs::rename(dir, &retired)?;
        }
        fs::rename(&staging, dir)?;
        if retired.exists() {
            fs::remove_dir_all(&retired)?;
        }
        Ok(())
    })();
    if result.is_err() && staging.exists() {
        let _ = fs::remove_dir_all(&staging);
    }
    result.with_context(|| format!("cannot write the report to {}", dir.display()))
}

/// The default report folder for a plan: `reports/<name>/`.
pub fn default_dir(plan: &Plan) -> PathBuf {
    Path::new("reports").join(&plan.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_folder_whole() {
        let root = std::env::temp_dir().join(format!("rtsim-report-test-{}", std::process::id()));
        let dir = root.join("r");
        write_atomically(&dir, &[("a.txt".into(), b"one".to_vec())]).unwrap();
        write_atomically(&dir, &[("b.txt".into(), b"two".to_vec())]).unwrap();
        assert!(
            !dir.join("a.txt").exists(),
            "the old report is replaced, not merged"
        );
        assert_eq!(fs::read(dir.join("b.txt")).unwrap(), b"two");
        assert!(!root.join(".r.partial").exists() && !root.join(".r.old").exists());
        fs::remove_dir_all(&root).unwrap();
    }
}
