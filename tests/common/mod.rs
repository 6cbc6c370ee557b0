//! Helpers shared by the end-to-end test files (each includes this module with `mod common;`).
// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the real `rtsim` binary from the repository root.
pub fn rtsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rtsim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

/// An empty folder for one test, unique to this test process (each test file runs as its own).
/// It is removed when the test passes and kept, for a look, when it fails.
pub fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("rtsim-test-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// A test's folder from [`temp_dir`]: a path, removed with what is in it when dropped, unless the
/// test is failing (panicking).
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for a look: {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A report folder's summary.json, parsed.
pub fn summary(dir: &Path) -> serde_json::Value {
    let text = fs::read_to_string(dir.join("summary.json")).expect("summary.json written");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

/// Writes `profile` into `dir` as `<name>.toml`, runs `rtsim simulate` on it into `dir/<name>` and
/// returns summary.json's runs.
pub fn simulate_runs(dir: &Path, name: &str, profile: &str) -> Vec<serde_json::Value> {
    let path = dir.join(format!("{name}.toml"));
    fs::write(&path, profile).unwrap();
    let out = dir.join(name);
    let output = rtsim(&[
        "simulate",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "rtsim failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    summary(&out)["runs"].as_array().unwrap().clone()
}

/// A whole-number field of a run (or any JSON object), or a panic naming the field and the object.
pub fn u(run: &serde_json::Value, key: &str) -> u64 {
    run[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {run}"))
}

/// Every file of a folder, recursively, as (relative path, bytes), sorted: for comparing whole report
/// folders byte for byte.
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((name, fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}
