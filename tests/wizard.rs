//! `rtsim wizard` end to end: the real binary with answers files (JSON, written profiles, bad files,
//! no terminal), and the interactive prompts driven in a pseudo-terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rtsim::profile::Profile;
use rtsim::scenario::Plan;

const BIN: &str = env!("CARGO_BIN_EXE_rtsim");

/// Runs the binary in `dir` with stdin closed (no terminal), NO_COLOR set.
fn rtsim(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("the rtsim binary runs")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        stderr(out)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// What `rtsim simulate` does before it simulates: load and validate the profile.
fn accepted_by_simulate(path: &Path) -> Plan {
    let (profile, source) = Profile::load(path).unwrap_or_else(|e| panic!("{e}"));
    Plan::from_profile(&profile, &source).unwrap_or_else(|e| panic!("{e}"))
}

/// The real `rtsim simulate` on a written profile, shrunk to a quick look; returns summary.json.
fn simulated(dir: &Path, profile: &str) -> serde_json::Value {
    let out = rtsim(
        dir,
        &[
            "simulate",
            profile,
            "--clients",
            "8",
            "--duration",
            "40s",
            "--quiet",
            "--out",
            "sim",
        ],
    );
    assert!(out.status.success(), "simulate failed: {}", stderr(&out));
    let text = std::fs::read_to_string(dir.join("sim/summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

fn example_answers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/answers/team-chat.toml")
}

#[test]
fn shipped_example_gives_websocket_json_and_a_runnable_profile() {
    let dir = tempfile::tempdir().unwrap();
    let answers = example_answers();
    let out = rtsim(
        dir.path(),
        &[
            "wizard",
            "--answers",
            answers.to_str().unwrap(),
            "--json",
            "--profile-out",
            "chat.toml",
        ],
    );
    let v = json(&out);
    assert_eq!(v["transport"], "websocket");
    assert_eq!(v["profile"], "chat.toml");
    assert_eq!(v["runner_up"]["transport"], "sse");
    let path = v["path"].as_array().unwrap();
    assert_eq!(path.len(), 1);
    assert!(
        path[0].as_str().unwrap().ends_with("→ WebSocket"),
        "{path:?}"
    );
    let ids: Vec<&str> = v["mitigations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["heartbeat", "backoff", "resume", "upstream-acks"]);
    for m in v["mitigations"].as_array().unwrap() {
        for field in ["title", "reason", "source"] {
            assert!(!m[field].as_str().unwrap().is_empty(), "{m}");
        }
    }
    let plan = accepted_by_simulate(&dir.path().join("chat.toml"));
    assert_eq!(plan.name, "team-chat");
    assert_eq!(
        plan.clients, 5000,
        "up to 10,000 clients are simulated as answered"
    );
    assert_eq!(plan.population, None);
    assert!(
        plan.workload.upstream_acks,
        "the outbox the wizard proposes for chat"
    );
    assert!(plan.requirements.bidirectional && plan.requirements.assumed.is_empty());
    let names: Vec<&str> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["baseline", "mobile-nat", "network-switch", "rolling-deploy"]
    );
    assert_eq!(plan.servers.replicas, 3, "the answered servers, simulated");
    assert!(
        plan.scenarios.iter().all(|s| s.balancer.is_some()),
        "the round-robin balancer is in front of them everywhere"
    );
    assert_eq!(v["scenarios"], serde_json::json!(names));
    let summary = simulated(dir.path(), "chat.toml");
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), names.len() * plan.transports.len());
    assert!(
        runs.iter().all(|r| r["delivered"].as_u64().unwrap() > 0),
        "{summary}"
    );
}

/// The corporate dashboard of the issue: no push, one change a minute, a 60 s budget. The wizard and
/// the report's verdict name the same transport, from the same decision module.
#[test]
fn the_wizard_and_the_report_agree_on_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let answers = write(
        dir.path(),
        "dashboard.toml",
        "name = \"corp-dashboard\"\nbidirectional = false\nserver_push = false\n\
         changes_per_minute = 1.0\nclients = 300\nmobile_share = 0.0\ncorporate_proxies = true\n\
         load_balancer = \"none\"\nlatency_budget = \"60s\"\n",
    );
    let out = rtsim(
        dir.path(),
        &[
            "wizard",
            "--answers",
            answers.to_str().unwrap(),
            "--json",
            "--profile-out",
            "dash.toml",
        ],
    );
    let v = json(&out);
    assert_eq!(v["transport"], "polling", "{v:#}");
    let plan = accepted_by_simulate(&dir.path().join("dash.toml"));
    assert_eq!(
        plan.requirements.latency,
        std::time::Duration::from_secs(60)
    );
    assert!(!plan.requirements.server_push);
    // Two minutes at one change a minute: few events, and the report says so.
    let sim = rtsim(
        dir.path(),
        &[
            "simulate",
            "dash.toml",
            "--clients",
            "6",
            "--duration",
            "2m",
            "--quiet",
            "--out",
            "sim",
        ],
    );
    assert!(sim.status.success(), "{}", stderr(&sim));
    let stdout = String::from_utf8_lossy(&sim.stdout);
    assert!(
        stdout.contains("Warning: Only"),
        "sample-size warning: {stdout}"
    );
    let text = std::fs::read_to_string(dir.path().join("sim/summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    let verdict = &summary["verdict"];
    assert_eq!(verdict["candidate"], v["transport"], "{verdict:#}");
    assert_eq!(verdict["transport"], v["transport"], "{verdict:#}");
    assert_eq!(verdict["confirmed"], true, "{verdict:#}");
    assert!(!text.contains("Best fit"));
}

#[test]
fn every_leaf_through_the_binary() {
    let cases = [
        ("bidirectional = true\n", "websocket"),
        ("bidirectional = false\nserver_push = true\n", "sse"),
        (
            "bidirectional = false\nserver_push = false\nchanges_per_minute = 20.0\n",
            "long-polling",
        ),
        (
            "bidirectional = false\nserver_push = false\nchanges_per_minute = 1.0\nlatency_budget = \"60s\"\n",
            "polling",
        ),
        // A budget polling cannot meet moves the answer up the tree.
        (
            "bidirectional = false\nserver_push = false\nchanges_per_minute = 1.0\nlatency_budget = \"200ms\"\n",
            "long-polling",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (answers, transport)) in cases.iter().enumerate() {
        let file = write(
            dir.path(),
            &format!("a{i}.toml"),
            &format!("name = \"leaf{i}\"\n{answers}"),
        );
        let out = rtsim(
            dir.path(),
            &["wizard", "--answers", file.to_str().unwrap(), "--json"],
        );
        assert_eq!(json(&out)["transport"], *transport, "{answers}");
        // Without --profile-out the profile goes to profiles/<name>.toml.
        accepted_by_simulate(&dir.path().join(format!("profiles/leaf{i}.toml")));
    }
}

#[test]
fn proxies_and_cdn_put_their_scenarios_and_mitigations_in_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "a.toml",
        "name = \"office\"\nbidirectional = true\nupstream_per_minute = 6.0\ncorporate_proxies = true\n\
         cdn = true\nmobile_share = 0.0\nload_balancer = \"none\"\n",
    );
    let out = rtsim(
        dir.path(),
        &["wizard", "--answers", file.to_str().unwrap(), "--json"],
    );
    let v = json(&out);
    let ids: Vec<&str> = v["mitigations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "heartbeat",
            "backoff",
            "websocket-fallback",
            "upstream-acks"
        ]
    );
    let plan = accepted_by_simulate(&dir.path().join("profiles/office.toml"));
    let names: Vec<&str> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "baseline",
            "corporate-proxy",
            "proxy-blocks-websocket",
            "cdn"
        ]
    );
    assert_eq!(
        plan.settings.ws_fallback,
        rtsim::profile::Fallback::LongPolling
    );
    assert!(plan.settings.sse_accel_buffering_off);
}

#[test]
fn human_output_has_the_recommendation_and_both_tables() {
    let dir = tempfile::tempdir().unwrap();
    let answers = example_answers();
    let out = rtsim(
        dir.path(),
        &["wizard", "--answers", answers.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "Recommendation: WebSocket (websocket)",
        "Runner-up: Server-Sent Events",
        "Why: 70% of your clients",
        "Source: docs/references.md",
        "▶ WebSocket",
        "Auto-reconnect",
        "Implementation realities for your middleboxes",
        "Mobile carrier",
        "Profile written: profiles/team-chat.toml",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains('\u{1b}'), "NO_COLOR: no escape codes");
}

#[test]
fn an_existing_profile_is_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let answers = example_answers();
    let answers = answers.to_str().unwrap();
    let target = write(dir.path(), "mine.toml", "# hand-edited\n");
    let out = rtsim(
        dir.path(),
        &["wizard", "--answers", answers, "--profile-out", "mine.toml"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("mine.toml exists and differs"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "# hand-edited\n");

    let out = rtsim(
        dir.path(),
        &[
            "wizard",
            "--answers",
            answers,
            "--profile-out",
            "mine.toml",
            "--force",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    accepted_by_simulate(&target);

    // Same answers again: the same text, nothing to ask.
    let out = rtsim(
        dir.path(),
        &["wizard", "--answers", answers, "--profile-out", "mine.toml"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Profile unchanged"));
}

#[test]
fn bad_answers_files_give_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "name = \"x\"\nmobile_shares = 0.5\n",
            "a.toml:2:1: key `mobile_shares`: unknown field",
        ),
        (
            "mobile_share = 1.5\n",
            "a.toml:1:16: key `mobile_share`: must be between 0 and 1 (got 1.5)",
        ),
        ("clients = 0\n", "key `clients`: must be between 1 and"),
        (
            "clients = \"lots\"\n",
            "a.toml:1:11: key `clients`: invalid type",
        ),
        (
            "load_balancer = \"random\"\n",
            "key `load_balancer`: unknown variant `random`",
        ),
        (
            "latency_budget = \"3d\"\n",
            "key `latency_budget`: `3d` has unknown unit",
        ),
        (
            "changes_per_minute = -4.0\n",
            "key `changes_per_minute`: must be between 0.01 and 60000",
        ),
        (
            "name = \"../escape\"\n",
            "key `name`: `../escape` cannot name a report folder",
        ),
        ("bidirectional = \n", "a.toml:1:"),
    ];
    for (text, expected) in cases {
        let file = write(dir.path(), "a.toml", text);
        let out = rtsim(
            dir.path(),
            &["wizard", "--answers", file.to_str().unwrap(), "--json"],
        );
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(out.stdout.is_empty(), "no JSON on error");
        let err = stderr(&out);
        assert!(
            err.contains(expected),
            "{text:?}: expected {expected:?} in {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(
        !dir.path().join("profiles").exists(),
        "nothing written from bad answers"
    );
    let out = rtsim(dir.path(), &["wizard", "--answers", "missing.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing.toml: cannot read the file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_a_terminal_or_answers_it_explains_answers() {
    let dir = tempfile::tempdir().unwrap();
    let out = rtsim(dir.path(), &["wizard"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("stdin is not one"), "{err}");
    assert!(err.contains("rtsim wizard --answers answers.toml"), "{err}");
    assert!(err.contains("profiles/answers/team-chat.toml"), "{err}");
    let out = rtsim(dir.path(), &["wizard", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--answers"), "{}", stderr(&out));
}

/// The interactive prompts in a pseudo-terminal: keys in, screen out.
#[cfg(unix)]
mod pty {
    use super::*;
    use expectrl::process::unix::WaitStatus;
    use expectrl::{Eof, Expect, Session};
    use std::time::Duration;

    const COLS: u16 = 120;
    const ROWS: u16 = 400;

    const ENTER: &str = "\r";
    const ESC: &str = "\x1b";
    const UP: &str = "\x1b[A";
    const DOWN: &str = "\x1b[B";
    const BACKSPACE: &str = "\x7f";

    /// A session and everything it has printed so far.
    struct Terminal {
        session: expectrl::session::OsSession,
        log: Vec<u8>,
    }

    impl Terminal {
        fn start(dir: &Path) -> Self {
            let mut command = Command::new(BIN);
            command
                .arg("wizard")
                .current_dir(dir)
                .env("NO_COLOR", "1")
                .env("TERM", "xterm");
            let mut session = Session::spawn(command).expect("spawn in a pty");
            session
                .get_process_mut()
                .set_window_size(COLS, ROWS)
                .unwrap();
            session.set_expect_timeout(Some(Duration::from_secs(10)));
            Terminal {
                session,
                log: Vec::new(),
            }
        }

        /// Waits until `text` appears (after what was already seen).
        fn wait(&mut self, text: &str) {
            match self.session.expect(text) {
                Ok(found) => self.log.extend_from_slice(found.as_bytes()),
                Err(e) => panic!(
                    "waiting for {text:?}: {e}\nscreen so far:\n{}",
                    self.screen()
                ),
            }
        }

        fn keys(&mut self, keys: &str) {
            self.session.send(keys).unwrap();
        }

        /// Waits for `prompt`, then types `keys`. The short pause lets the prompt finish switching the
        /// terminal to raw mode: keys typed in between can be flushed away, which made this test fail
        /// now and then on a loaded machine.
        fn answer(&mut self, prompt: &str, keys: &str) {
            self.wait(prompt);
            std::thread::sleep(Duration::from_millis(100));
            self.keys(keys);
        }

        fn finish(&mut self) -> String {
            if let Ok(rest) = self.session.expect(Eof) {
                self.log.extend_from_slice(rest.as_bytes());
            }
            self.screen()
        }

        fn screen(&self) -> String {
            let size = |n: u16| std::num::NonZeroU16::new(n).expect("non-zero size");
            let mut parser = vt100::Parser::new(size(ROWS), size(COLS), 0);
            parser.process(&self.log);
            parser.screen().contents()
        }
    }

    #[test]
    fn prompts_go_back_validate_review_and_write_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Terminal::start(dir.path());
        t.answer("Name of the application", &format!("pty-demo{ENTER}"));
        t.answer("Do both client and server send", &format!("y{ENTER}"));
        // server_push is skipped after "yes"; Esc goes back to the previous relevant question.
        t.answer("How many times a minute", ESC);
        t.answer("Do both client and server send", &format!("n{ENTER}"));
        t.answer("Does the server have news", ENTER); // default: yes
        t.answer("How many times a minute", &format!("20{ENTER}"));
        t.answer("How many clients", ENTER);
        t.answer("How large is one update", ENTER);
        t.answer("How many messages does each client send", ENTER);
        t.answer(
            "What fraction of clients are on mobile",
            &format!("1.5{ENTER}"),
        );
        t.wait("must be between 0 and 1 (got 1.5)");
        t.keys(&format!("{BACKSPACE}{BACKSPACE}{BACKSPACE}0.5{ENTER}"));
        t.answer("behind corporate proxies", &format!("y{ENTER}"));
        t.answer("through a CDN", ENTER); // default: no
        t.answer("Is there a load balancer", &format!("{UP}{ENTER}")); // round-robin → sticky
        t.answer(
            "How many application servers",
            &format!("{BACKSPACE}2{ENTER}"),
        );
        t.answer("How late may an update", ENTER);
        // Review: change the client count, then accept.
        t.answer(
            "Review your answers",
            &format!("{DOWN}{DOWN}{DOWN}{DOWN}{DOWN}{ENTER}"),
        );
        t.answer("How many clients", &format!("2000{ENTER}"));
        t.wait("Review your answers");
        t.answer("Change clients = 2000", ENTER);
        t.wait("Recommendation: Server-Sent Events (sse)");
        t.wait("Profile written: profiles/pty-demo.toml");
        t.answer(
            "Run `rtsim simulate profiles/pty-demo.toml` now?",
            &format!("n{ENTER}"),
        );
        t.wait("Later: rtsim simulate profiles/pty-demo.toml");
        let screen = t.finish();
        if std::env::var_os("RTSIM_SHOW_SCREEN").is_some() {
            eprintln!("{screen}");
        }

        for expected in [
            "<canceled>",
            "Does the server have news the client did not ask for (notifications, live scores, feeds)? Yes",
            "load balancer in front of several servers? sticky",
            "2. Does the server need to push data to the client? yes → Server-Sent Events",
            "▶ Server-Sent Events",
            "Corporate proxy",
            "Send `X-Accel-Buffering: no` on the stream",
        ] {
            assert!(screen.contains(expected), "missing {expected:?} on screen:\n{screen}");
        }
        let status = t.session.get_process().wait().unwrap();
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");

        let path = dir.path().join("profiles/pty-demo.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("#   clients = 2000"), "{text}");
        assert!(text.contains("#   load_balancer = \"sticky\""), "{text}");
        assert!(text.contains("recommended for 2000 clients."), "{text}");
        let plan = accepted_by_simulate(&path);
        let names: Vec<&str> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "baseline",
                "mobile-nat",
                "network-switch",
                "corporate-proxy",
                "proxy-blocks-websocket",
                "rolling-deploy"
            ]
        );
        assert_eq!(plan.servers.replicas, 2, "the answered servers");
        assert!(text.contains("#   servers = 2"), "{text}");
        assert!(plan.settings.sse_accel_buffering_off);
        assert_eq!(plan.workload.events_per_second, 20.0 / 60.0);
    }

    #[test]
    fn ctrl_c_stops_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Terminal::start(dir.path());
        t.answer("Name of the application", &format!("stopped{ENTER}"));
        t.answer("Do both client and server send", "\x03");
        t.wait("Interrupted; nothing more was written.");
        t.finish();
        let status = t.session.get_process().wait().unwrap();
        assert!(matches!(status, WaitStatus::Exited(_, 130)), "{status:?}");
        assert!(!dir.path().join("profiles").exists());
    }
}
