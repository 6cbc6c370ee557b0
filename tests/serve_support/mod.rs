//! What the end-to-end tests of `rtsim serve` share: a real server on a free loopback port (killed on
//! drop), `curl`, and the rule for tests that need something missing — a failure under `CI=true`, a
//! plain notice elsewhere (written to the terminal directly: the test harness swallows `eprintln!`
//! of a passing test).
// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A test cannot run because `what` is missing: under `CI=true` that fails the run (CI installs
/// everything); elsewhere the test says plainly, on the terminal, that it did not run.
pub fn missing(test: &str, what: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "{test}: {what} is missing, and under CI=true a test that cannot run fails"
    );
    let mut terminal = std::io::stderr().lock();
    let _ = writeln!(
        terminal,
        "\nNOTICE: {test} DID NOT RUN: {what} is missing (.ci/run installs it); counted as passed\n"
    );
}

/// A fast event stream and short timers, so that every test sees many events within a second or two.
pub const PROFILE: &str = r#"
name = "serve-test"
duration = "1m"
clients = 1

[workload]
events_per_second = 20.0
event_bytes = 120
arrival = "uniform"

[polling]
interval = "300ms"

[long_polling]
hold = "2s"

[sse]
heartbeat = "1s"
retry = "500ms"

[websocket]
ping_interval = "1s"
ping_timeout = "1s"

[reconnect]
initial = "200ms"
max = "1s"
"#;

pub fn profile_file(dir: &Path) -> PathBuf {
    let path = dir.join("serve-test.toml");
    std::fs::write(&path, PROFILE).unwrap();
    path
}

/// Starts `rtsim serve PROFILE --bind 127.0.0.1:0 EXTRA…` and reads the address it prints first.
pub fn spawn(profile: &Path, extra: &[&str], stderr: Stdio) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtsim"))
        .arg("serve")
        .arg(profile)
        .args(["--bind", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("rtsim serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("Serving http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

/// A running `rtsim serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let profile = profile_file(dir.path());
        let (child, addr) = spawn(&profile, extra, Stdio::piped());
        Server {
            child,
            addr,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits until the server has published `n` events (`n` counts from its first event, whatever
    /// the id base); returns the newest id.
    pub fn wait_for_events(&self, n: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let time: Value = serde_json::from_slice(&curl(&[&self.url("/time")]).stdout).unwrap();
            let latest = time["latest_id"].as_u64().unwrap();
            let base = time["id_base"].as_u64().unwrap();
            if latest - base >= n {
                return latest;
            }
            assert!(Instant::now() < deadline, "no events published");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The id before the server's first event (`/time`'s `id_base`).
    pub fn id_base(&self) -> u64 {
        let time: Value = serde_json::from_slice(&curl(&[&self.url("/time")]).stdout).unwrap();
        time["id_base"].as_u64().expect("/time has id_base")
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit; returns whether it succeeded, and stderr.
    pub fn interrupt(&mut self) -> (bool, String) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(Instant::now() < deadline, "still running after Ctrl-C");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        use std::io::Read as _;
        let _ = self
            .child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr);
        (exit.success(), stderr)
    }

    pub fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the server exited"
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl runs")
}

/// Status code and body of a request made by curl.
pub fn curl_status(args: &[&str]) -> (u16, String) {
    let mut all = vec!["--write-out", "\n%{http_code}"];
    all.extend_from_slice(args);
    let output = curl(&all);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

/// The `id:` values and the ids inside the `data:` lines of an SSE stream's events, in order (the
/// data of an `event: reset` is not an event).
pub fn sse_ids(stream: &str) -> (Vec<u64>, Vec<u64>) {
    let mut ids = Vec::new();
    let mut data_ids = Vec::new();
    for line in stream.lines() {
        if let Some(id) = line.strip_prefix("id: ") {
            ids.push(id.parse().unwrap());
        } else if let Some(data) = line.strip_prefix("data: ") {
            let event: Value = serde_json::from_str(data).unwrap();
            if event["type"] != "reset" {
                data_ids.push(event["id"].as_u64().unwrap());
            }
        }
    }
    (ids, data_ids)
}

pub fn ids_of(json: &str) -> Vec<u64> {
    let events: Vec<Value> = serde_json::from_str(json).unwrap();
    events.iter().map(|e| e["id"].as_u64().unwrap()).collect()
}
