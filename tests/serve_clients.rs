//! `rtsim serve` against client libraries nobody on this project wrote, over real TCP: Python's
//! `websockets` (WebSocket) and `httpx` + `httpx-sse` (HTTP and Server-Sent Events), driven by
//! `tests/clients/serve_clients.py`. They check the clean close codes (1000 answered, 1001 on Ctrl-C,
//! 1009 over the limit), that a stream ends cleanly on shutdown, resuming across a restart of the
//! server (signalled as a gap, ids never reused), the body limit and the CORS headers.
//!
//! The interpreter is `$RTSIM_PYTHON`, else the virtual environment `.ci/run` creates
//! (`target/ci-python`), else `python3`. Without the packages the test fails under `CI=true` and
//! elsewhere says on the terminal that it did not run.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

mod serve_support;
use serve_support::*;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/clients/serve_clients.py"
);

/// A Python that has the pinned client packages, if there is one.
fn python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ci-python/bin/python");
    let candidates = std::env::var_os("RTSIM_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([venv, PathBuf::from("python3")]);
    candidates.into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import websockets, httpx, httpx_sse"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A client process, killed on drop; its stdout is read line by line as JSON.
struct Client {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Client {
    fn start(python: &PathBuf, args: &[&str]) -> Client {
        let mut child = Command::new(python)
            .arg(SCRIPT)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python starts");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Client { child, lines }
    }

    fn next(&mut self) -> Value {
        let line = self
            .lines
            .next()
            .expect("the client printed a result")
            .unwrap();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
    }

    /// Runs a subcommand to its end and returns its one result.
    fn run(python: &PathBuf, args: &[&str]) -> Value {
        let mut client = Client::start(python, args);
        let result = client.next();
        let status = client.child.wait().unwrap();
        assert!(status.success(), "{args:?}: {status:?}");
        result
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn python_clients_see_clean_closes_honest_resumes_limits_and_cors() {
    let Some(python) = python() else {
        missing(
            "python_clients_see_clean_closes_honest_resumes_limits_and_cors",
            "Python with websockets, httpx and httpx-sse",
        );
        return;
    };
    let mut first = Server::start(&["--allow-origin", "https://app.example"]);
    first.wait_for_events(3);
    let base = first.addr.to_string();

    // Closes, limits and origins, as each library sees them.
    let ws = Client::run(&python, &["ws-checks", &base]);
    eprintln!("websockets {}", ws["websockets"]);
    assert_eq!(ws["client_close"]["code"], 1000, "{ws}");
    assert_eq!(ws["client_close"]["answered"], true, "{ws}");
    assert_eq!(ws["too_big"], 1009, "{ws}");
    assert_eq!(ws["foreign_origin"], 403, "{ws}");
    assert_eq!(ws["own_origin"], "welcome", "{ws}");
    let http = Client::run(&python, &["http-checks", &base]);
    assert_eq!(http["too_big"], 413, "{http}");
    assert_eq!(http["small"], 204, "{http}");
    assert_eq!(http["preflight"]["status"], 204, "{http}");
    let preflight = &http["preflight"]["headers"];
    assert_eq!(
        preflight["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(preflight["access-control-allow-methods"], "POST, OPTIONS");
    assert!(preflight["access-control-allow-headers"]
        .as_str()
        .unwrap()
        .contains("content-type"));
    assert_eq!(
        http["cors_get"]["headers"]["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(http["foreign"], 403, "{http}");
    assert_eq!(http["sse_cors"], "https://app.example", "{http}");
    assert!(http["sse_event_id"].as_u64().is_some(), "{http}");

    // A session and a stream open while the server is stopped with Ctrl-C.
    let mut ws_watch = Client::start(&python, &["ws-watch", &base]);
    let mut sse_watch = Client::start(&python, &["sse-watch", &base]);
    assert!(ws_watch.next()["ready"].as_u64().is_some());
    assert!(sse_watch.next()["ready"].as_u64().is_some());
    let (stopped, stderr) = first.interrupt();
    assert!(stopped, "{stderr}");
    let ws_end = ws_watch.next();
    assert_eq!(ws_end["code"], 1001, "going away: {ws_end}");
    assert_eq!(ws_end["clean"], true, "{ws_end}");
    let sse_end = sse_watch.next();
    assert_eq!(
        sse_end["clean"], true,
        "the stream ended on a chunk boundary: {sse_end}"
    );
    let ws_last = ws_end["last_id"].as_u64().unwrap();
    let sse_last = sse_end["last_id"].as_u64().unwrap();

    // The server restarts (a new process, its history gone): both resume, and are told that the
    // events after their cursor are lost, instead of waiting silently for ids to come round again.
    let second = Server::start(&[]);
    second.wait_for_events(3);
    let new_base = second.id_base();
    assert!(
        new_base > ws_last.max(sse_last),
        "ids never repeat across restarts"
    );
    let addr = second.addr.to_string();
    let ws = Client::run(&python, &["ws-resume", &addr, &ws_last.to_string()]);
    assert_eq!(ws["first"]["type"], "reset", "{ws}");
    assert_eq!(ws["first"]["reason"], "gap", "{ws}");
    assert_eq!(ws["first"]["requested"], ws_last, "{ws}");
    assert_eq!(ws["first"]["resumes_after"], new_base, "{ws}");
    assert_eq!(ws["welcome"]["last_event_id"], new_base, "{ws}");
    assert_eq!(ws["event_id"], new_base + 1, "{ws}");
    assert_eq!(ws["close_code"], 1000, "{ws}");
    let sse = Client::run(&python, &["sse-resume", &addr, &sse_last.to_string()]);
    let events = sse["events"].as_array().unwrap();
    assert_eq!(events[0]["event"], "reset", "{sse}");
    let reset: Value = serde_json::from_str(events[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(reset["reason"], "gap");
    assert_eq!(reset["requested"], sse_last);
    assert_eq!(events[1]["event"], "message", "{sse}");
    assert_eq!(events[1]["id"], (new_base + 1).to_string(), "{sse}");
}
