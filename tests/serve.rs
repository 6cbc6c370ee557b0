//! `rtsim serve` on a free loopback port, consumed by clients rtsim did not write — `curl` and headless
//! Chromium (its own `EventSource` and `WebSocket`, driven over the DevTools protocol) — and by rtsim's
//! own four client halves over real TCP: the same code that runs in the simulations.
//!
//! Every child process is killed when its guard drops, so a failing assertion never leaves a server or a
//! browser behind. Without Chromium the browser test fails under `CI=true` (CI installs Debian's
//! `chromium`) and elsewhere says on the terminal that it did not run. Set `RTSIM_SCREENSHOT=/path.png`
//! to keep a screenshot of the page.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod serve_support;
use serve_support::*;

#[test]
fn curl_reads_polling_long_polling_and_sse_with_resume() {
    let server = Server::start(&[]);
    let latest = server.wait_for_events(5);
    // Ids count on from an epoch-based base (they never repeat across restarts).
    let base = server.id_base();

    // Short polling: the backlog as a JSON array, oldest first.
    let (status, body) = curl_status(&[&server.url("/poll?since=0")]);
    assert_eq!(status, 200);
    let ids = ids_of(&body);
    assert_eq!(ids[..5], [1, 2, 3, 4, 5].map(|n| base + n), "{body}");
    let (_, body) = curl_status(&[&server.url(&format!("/poll?since={}", base + 3))]);
    assert_eq!(ids_of(&body)[0], base + 4);

    // Long polling from the newest event: held until the next one, which comes within 1/20 s.
    let newest = server.wait_for_events(latest - base);
    let started = Instant::now();
    let (status, body) = curl_status(&[&server.url(&format!("/long-poll?since={newest}"))]);
    assert_eq!(status, 200);
    let ids = ids_of(&body);
    assert!(
        !ids.is_empty() && ids.iter().all(|&id| id > newest),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // SSE: `retry:`, the starting `id:`, then events whose `id:` matches the payload.
    let stream = curl(&["--no-buffer", "--max-time", "0.6", &server.url("/events")]);
    let text = String::from_utf8_lossy(&stream.stdout);
    assert!(
        text.starts_with("retry: 500\nid: "),
        "stream opens with retry and id: {text}"
    );
    let (ids, data_ids) = sse_ids(&text);
    assert!(data_ids.len() >= 3, "events within 0.6 s: {text}");
    assert_eq!(ids[1..], data_ids[..], "each event carries its id");

    // Resume: with `Last-Event-ID: base+3` the stream replays from event base+4, without a gap.
    let resumed = curl(&[
        "--no-buffer",
        "--max-time",
        "0.4",
        "-H",
        &format!("Last-Event-ID: {}", base + 3),
        &server.url("/events"),
    ]);
    let text = String::from_utf8_lossy(&resumed.stdout);
    let (ids, data_ids) = sse_ids(&text);
    assert_eq!(ids[0], base + 3, "{text}");
    assert!(!text.contains("event: reset"), "an exact resume: {text}");
    let expected: Vec<u64> = (base + 4..base + 4 + data_ids.len() as u64).collect();
    assert_eq!(data_ids, expected, "replayed in order from 4: {text}");
    assert!(data_ids.len() as u64 >= latest - base - 3);

    // The server counted each transport's requests and bytes.
    let (_, stats) = curl_status(&[&server.url("/stats")]);
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["transports"]["polling"]["requests"], 2);
    assert_eq!(stats["transports"]["sse"]["requests"], 2);
    assert!(stats["transports"]["sse"]["bytes_down"].as_u64().unwrap() > 1000);
    assert!(
        stats["transports"]["long-polling"]["bytes_up"]
            .as_u64()
            .unwrap()
            > 50
    );
}

#[test]
fn bad_requests_get_http_errors_and_the_server_keeps_serving() {
    let mut server = Server::start(&[]);
    server.wait_for_events(1);
    let cases: [(&[&str], u16); 6] = [
        (&["/nowhere"], 404),
        (&["/events", "-H", "Last-Event-ID: abc"], 400),
        (&["/poll?since=yesterday"], 400),
        // A plain GET on the WebSocket path: 426 Upgrade Required (RFC 9110 §15.5.22).
        (&["/ws"], 426),
        // An upgrade without Sec-WebSocket-Version.
        (
            &[
                "/ws?last_event_id=1",
                "-H",
                "Connection: Upgrade",
                "-H",
                "Upgrade: websocket",
            ],
            400,
        ),
        (&["/stats", "-X", "POST"], 405),
    ];
    for (args, expected) in cases {
        let url = server.url(args[0]);
        let mut all = vec![url.as_str()];
        all.extend_from_slice(&args[1..]);
        let (status, body) = curl_status(&all);
        assert_eq!(status, expected, "{args:?}: {body}");
        assert!(!body.is_empty(), "errors say what was wrong");
    }

    // Garbage instead of HTTP: hyper answers 400.
    let mut garbage = TcpStream::connect(server.addr).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    garbage.write_all(b"\x16\x03\x01 hello?\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = garbage.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");

    // Slow clients: half a request, a stream nobody reads, a client gone mid-response.
    let mut half = TcpStream::connect(server.addr).unwrap();
    half.write_all(b"GET /poll?since=0 HTTP/1.1\r\nHo").unwrap();
    let mut unread = TcpStream::connect(server.addr).unwrap();
    unread
        .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut gone = TcpStream::connect(server.addr).unwrap();
    gone.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 16];
    gone.read_exact(&mut first).unwrap();
    drop(gone);
    let _ = curl(&["--max-time", "0.2", &server.url("/long-poll?since=999999")]);

    // Everyone else is still served, promptly.
    let started = Instant::now();
    let (status, _) = curl_status(&[&server.url("/poll?since=0")]);
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    server.assert_running();
    drop((half, unread));
}

#[test]
fn connections_beyond_the_limit_get_503() {
    let mut server = Server::start(&["--max-connections", "2"]);
    let _a = TcpStream::connect(server.addr).unwrap();
    let _b = TcpStream::connect(server.addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (status, body) = curl_status(&[&server.url("/time")]);
    assert_eq!(status, 503, "{body}");
    drop((_a, _b));
    std::thread::sleep(Duration::from_millis(100));
    let (status, _) = curl_status(&[&server.url("/time")]);
    assert_eq!(status, 200, "slots are freed when clients leave");
    server.assert_running();
}

#[test]
fn ctrl_c_stops_the_server_cleanly() {
    let mut server = Server::start(&[]);
    server.wait_for_events(1);
    // An open stream must not keep the server alive.
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let status = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(3);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "still running after Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    let mut stderr = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// rtsim's own client halves — the code the simulations run — against the real server over loopback.
#[test]
fn rtsims_own_clients_receive_events_over_real_tcp() {
    use rtsim::recorder::Recorder;
    use rtsim::scenario::Plan;
    use rtsim::serve::{Live, RealClock, ServeConfig, TcpConnector};
    use rtsim::transport::{transport_for, ClientCtx, TransportKind};

    let threads: Vec<_> = TransportKind::ALL
        .into_iter()
        .map(|kind| {
            std::thread::spawn(move || {
                let plan = Plan::from_text("serve-test", PROFILE).unwrap();
                let config = ServeConfig::from_plan(&plan);
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let local = tokio::task::LocalSet::new();
                let recorder =
                    Recorder::new(Rc::new(RealClock::start()), 1, Duration::ZERO).shared();
                let metrics = local.block_on(&runtime, async {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let addr = listener.local_addr().unwrap();
                    let live = Live::new(config.clone(), recorder.clone());
                    tokio::task::spawn_local(live.run(listener, 16, std::future::pending()));
                    let client = Rc::new(ClientCtx::new(
                        0,
                        7,
                        Rc::new(config.settings.clone()),
                        Rc::new(config.workload.clone()),
                        Rc::new(TcpConnector::new(addr)),
                        recorder.clone(),
                    ));
                    tokio::task::spawn_local(transport_for(kind).run_client(client));
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    let end = recorder.borrow().now();
                    recorder.borrow_mut().close(end);
                    // Let the last events in flight arrive (a poll interval, with room for a busy machine).
                    for _ in 0..50 {
                        if recorder.borrow().all_delivered() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let metrics = recorder.borrow().finish(end);
                    metrics
                });
                (kind, metrics)
            })
        })
        .collect();
    for thread in threads {
        let (kind, m) = thread.join().unwrap();
        assert!(m.published >= 20, "{kind}: published {}", m.published);
        // Polling clients start from the beginning and see everything; streams start at the newest
        // event when they connect (a few ms after the first events).
        assert!(
            m.delivered + 2 >= m.published,
            "{kind}: delivered {} of {}",
            m.delivered,
            m.published
        );
        assert_eq!(m.duplicates, 0, "{kind}");
        assert!(m.requests >= 1 && m.bytes_down > 1000, "{kind}: {m:?}");
        assert!(
            m.latency_ms.p50.unwrap() < 400.0,
            "{kind}: p50 {} ms",
            m.latency_ms.p50.unwrap()
        );
    }
}

// --- headless Chromium over the DevTools protocol -------------------------------------------------

type DevTools = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

/// A headless Chromium showing one page, in its own process group (killed whole on drop).
struct Browser {
    child: Child,
    /// The page's DevTools connection, once open.
    socket: Option<DevTools>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // `kill -s KILL -- -PGID`: procps-ng 4.0.2 reads `kill -KILL -PGID` as a signal to process
        // group 9 (checked with strace), which took down every process of the session.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium_binary() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

impl Browser {
    fn open(binary: &str, url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1400,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("chromium starts");
        // Chromium prints the DevTools address on stderr; keep draining it so it never blocks.
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = line.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(address.trim().to_string());
                }
            }
        });
        let mut browser = Browser {
            child,
            socket: None,
            next_id: 0,
            _profile: profile,
        };
        let devtools = rx
            .recv_timeout(Duration::from_secs(15))
            .expect("chromium announces its DevTools address");
        let port: u16 = devtools
            .trim_start_matches("ws://")
            .split(['/', ':'])
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("a DevTools port");
        let deadline = Instant::now() + Duration::from_secs(10);
        let page_socket = loop {
            let list = curl(&[&format!("http://127.0.0.1:{port}/json/list")]);
            let targets: Value = serde_json::from_slice(&list.stdout).unwrap_or(Value::Null);
            let found = targets.as_array().and_then(|list| {
                list.iter()
                    .find(|t| t["type"] == "page" && t["url"].as_str() == Some(url))
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(String::from))
            });
            if let Some(found) = found {
                break found;
            }
            assert!(Instant::now() < deadline, "no page target: {targets}");
            std::thread::sleep(Duration::from_millis(100));
        };
        let (socket, _) = tungstenite::connect(page_socket).unwrap();
        if let tungstenite::stream::MaybeTlsStream::Plain(tcp) = socket.get_ref() {
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        browser.socket = Some(socket);
        browser
    }

    /// Sends one DevTools command and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        use tungstenite::Message;
        self.next_id += 1;
        let id = self.next_id;
        let command = serde_json::json!({ "id": id, "method": method, "params": params });
        let socket = self.socket.as_mut().expect("DevTools is connected");
        socket.send(Message::text(command.to_string())).unwrap();
        loop {
            let message = socket.read().expect("DevTools answers");
            let Message::Text(text) = message else {
                continue;
            };
            let reply: Value = serde_json::from_str(text.as_str()).unwrap();
            if reply["id"] == id {
                return reply["result"].clone();
            }
        }
    }

    /// The page's `window.rtsimState`.
    fn page_state(&mut self) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            serde_json::json!({ "expression": "JSON.stringify(window.rtsimState ?? null)", "returnByValue": true }),
        );
        let text = result["result"]["value"].as_str().unwrap_or("null");
        serde_json::from_str(text).unwrap_or(Value::Null)
    }

    fn screenshot(&mut self, path: &str) {
        let result = self.call("Page.captureScreenshot", serde_json::json!({}));
        let data = base64_decode(result["data"].as_str().unwrap());
        std::fs::write(path, data).unwrap();
        eprintln!("screenshot written to {path}");
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, &d) in chunk.iter().enumerate() {
            n |= u32::from(d) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn chromium_shows_the_four_transports_receiving_events() {
    let Some(binary) = chromium_binary() else {
        missing(
            "chromium_shows_the_four_transports_receiving_events",
            "chromium (Debian package `chromium`)",
        );
        return;
    };
    let server = Server::start(&[]);
    let url = server.url("/");
    let mut browser = Browser::open(binary, &url);
    let deadline = Instant::now() + Duration::from_secs(10);
    let received = |state: &Value, key: &str| state["transports"][key]["received"].as_u64();
    let state = loop {
        let state = browser.page_state();
        let all = ["polling", "long-polling", "sse", "websocket"]
            .iter()
            .all(|key| received(&state, key).is_some_and(|n| n >= 5));
        if all && state["transports"]["sse"]["requests"].as_u64() >= Some(1) {
            break state;
        }
        assert!(Instant::now() < deadline, "page state: {state}");
        std::thread::sleep(Duration::from_millis(200));
    };
    if let Ok(path) = std::env::var("RTSIM_SCREENSHOT") {
        // Let the page fill up a little more for the picture.
        std::thread::sleep(Duration::from_secs(3));
        browser.screenshot(&path);
    }
    for key in ["polling", "long-polling", "sse", "websocket"] {
        let t = &state["transports"][key];
        assert_eq!(t["duplicates"], 0, "{key}: {t}");
        let median = t["median_ms"].as_f64().unwrap();
        // Measured in the browser against the server's clock: small on loopback, polling up to its interval.
        assert!((-5.0..400.0).contains(&median), "{key}: {t}");
    }
    assert!(state["transports"]["sse"]["bytes_down"].as_u64() > Some(500));
    assert!(state["transports"]["websocket"]["bytes_down"].as_u64() > Some(500));
    // The page's DOM carries the same state for anyone reading it without a script.
    let dom = browser.call(
        "Runtime.evaluate",
        serde_json::json!({ "expression": "document.getElementById('rtsim-state').textContent", "returnByValue": true }),
    );
    let dom: Value = serde_json::from_str(dom["result"]["value"].as_str().unwrap()).unwrap();
    assert!(dom["transports"]["websocket"]["received"].as_u64() >= Some(1));
}

/// Issue 14's limits: a body over the limit is refused before it is read (413), a body that never
/// comes is cut (408) and its connection slot freed, and the limits are flags.
#[test]
fn bodies_are_bounded_in_size_and_time_and_stalled_ones_free_their_slot() {
    let mut server = Server::start(&[
        "--max-connections",
        "3",
        "--body-timeout",
        "1s",
        "--max-body-bytes",
        "2000",
    ]);
    let message = r#"{"sent_us":1,"text":"hello"}"#;
    let (status, _) = curl_status(&["--data-binary", message, &server.url("/messages")]);
    assert_eq!(status, 204);
    let big = format!(r#"{{"sent_us":1,"text":"{}"}}"#, "x".repeat(3000));
    let (status, body) = curl_status(&["--data-binary", &big, &server.url("/messages")]);
    assert_eq!(status, 413, "{body}");
    // Chunked, so the size is not declared: refused once the limit is crossed.
    let (status, _) = curl_status(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &big,
        &server.url("/messages"),
    ]);
    assert_eq!(status, 413);
    // Three connections whose declared bodies never arrive take every slot…
    let stalled: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.write_all(b"POST /messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (status, _) = curl_status(&[&server.url("/time")]);
    assert_eq!(status, 503, "all slots are held");
    // …for the body timeout only: each is answered 408 and closed.
    let started = Instant::now();
    for mut s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(100));
    let (status, _) = curl_status(&[&server.url("/time")]);
    assert_eq!(status, 200, "the slots are free again");
    server.assert_running();
}

/// Issue 14's cursor overflow and silent resumes: `since=u64::MAX` is answered as a cursor ahead of
/// the newest event (and does not poison the shared encoding cache), and a resume the server cannot
/// honour is signalled on every transport.
#[test]
fn cursors_that_cannot_be_honoured_are_signalled_and_poison_nothing() {
    let server = Server::start(&[]);
    let latest = server.wait_for_events(5);
    let base = server.id_base();
    let head_of = |args: &[&str]| {
        let mut all = vec!["--include"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&curl(&all).stdout).into_owned()
    };
    let answer = head_of(&[&server.url("/poll?since=18446744073709551615")]);
    let lower = answer.to_ascii_lowercase();
    assert!(
        lower.contains("rtsim-reset: ahead; requested=18446744073709551615"),
        "{answer}"
    );
    assert!(answer.ends_with("[]"), "{answer}");
    // Right after it the whole backlog is still there.
    let (_, body) = curl_status(&[&server.url("/poll?since=0")]);
    let ids = ids_of(&body);
    assert_eq!(ids.first(), Some(&(base + 1)), "{body}");
    assert!(*ids.last().unwrap() >= latest);
    assert!(!head_of(&[&server.url("/poll?since=0")]).contains("rtsim-reset"));
    // A long poll ahead of the newest event is answered at once instead of held.
    let started = Instant::now();
    let answer = head_of(&[&server.url(&format!("/long-poll?since={}", latest + 1000))]);
    assert!(
        answer.to_ascii_lowercase().contains("rtsim-reset: ahead"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // An id from before this server started (a client of the previous run): a gap, said in the
    // stream as an `event: reset`, and the stream goes on from this server's first event.
    let stream = curl(&[
        "--no-buffer",
        "--max-time",
        "0.5",
        "-H",
        "Last-Event-ID: 52",
        &server.url("/events"),
    ]);
    let text = String::from_utf8_lossy(&stream.stdout);
    assert!(
        text.starts_with(&format!(
            "retry: 500\nid: {base}\n\nevent: reset\ndata: {{\"type\":\"reset\",\"reason\":\"gap\",\"requested\":52,\"resumes_after\":{base},"
        )),
        "{text}"
    );
    let (_, data_ids) = sse_ids(&text);
    assert_eq!(data_ids.first(), Some(&(base + 1)), "{text}");
    // The same on WebSocket: a reset frame, then the welcome from where the session starts.
    let ahead = latest + 1_000_000;
    let (mut ws, _) =
        tungstenite::connect(format!("ws://{}/ws?last_event_id={ahead}", server.addr)).unwrap();
    let first: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(first["type"], "reset");
    assert_eq!(first["reason"], "ahead");
    assert_eq!(first["requested"], ahead);
    let welcome: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["last_event_id"], first["resumes_after"]);
    let next: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(
        next["id"].as_u64(),
        Some(welcome["last_event_id"].as_u64().unwrap() + 1),
        "events go on from there"
    );
}

/// Issue 14's methods, Host and origins: 405 with `Allow`, 400 without `Host` on HTTP/1.1, CORS
/// headers and preflights for origins allowed with `--allow-origin`, 403 for the others.
#[test]
fn methods_host_and_origins_follow_the_rules() {
    let server = Server::start(&["--allow-origin", "https://app.example"]);
    server.wait_for_events(1);
    for (path, method, allow) in [
        ("/poll", "POST", "GET, HEAD, OPTIONS"),
        ("/long-poll", "PUT", "GET, HEAD, OPTIONS"),
        ("/events", "DELETE", "GET, HEAD, OPTIONS"),
        ("/ws", "POST", "GET, OPTIONS"),
        ("/messages", "GET", "POST, OPTIONS"),
        ("/stats", "POST", "GET, HEAD, OPTIONS"),
    ] {
        let answer =
            String::from_utf8_lossy(&curl(&["--include", "-X", method, &server.url(path)]).stdout)
                .to_ascii_lowercase();
        assert!(
            answer.starts_with("http/1.1 405"),
            "{method} {path}: {answer}"
        );
        assert!(
            answer.contains(&format!("allow: {}", allow.to_ascii_lowercase())),
            "{answer}"
        );
    }
    // HTTP/1.1 without Host.
    let mut raw = TcpStream::connect(server.addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    raw.write_all(b"GET /poll HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = raw.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // A preflight from the allowed origin, and the actual request.
    let preflight = String::from_utf8_lossy(
        &curl(&[
            "--include",
            "-X",
            "OPTIONS",
            "-H",
            "Origin: https://app.example",
            "-H",
            "Access-Control-Request-Method: POST",
            "-H",
            "Access-Control-Request-Headers: content-type",
            &server.url("/messages"),
        ])
        .stdout,
    )
    .to_ascii_lowercase();
    assert!(preflight.starts_with("http/1.1 204"), "{preflight}");
    for header in [
        "access-control-allow-origin: https://app.example",
        "access-control-allow-methods: post, options",
        "access-control-allow-headers: content-type, last-event-id",
        "vary: origin",
    ] {
        assert!(preflight.contains(header), "{header}: {preflight}");
    }
    let answer = String::from_utf8_lossy(
        &curl(&[
            "--include",
            "-H",
            "Origin: https://app.example",
            &server.url("/poll"),
        ])
        .stdout,
    )
    .to_ascii_lowercase();
    assert!(
        answer.contains("access-control-allow-origin: https://app.example"),
        "{answer}"
    );
    assert!(
        answer.contains("access-control-expose-headers: rtsim-reset"),
        "{answer}"
    );
    // Another origin: refused, on the HTTP transports and the WebSocket alike.
    let (status, body) =
        curl_status(&["-H", "Origin: https://evil.example", &server.url("/events")]);
    assert_eq!(status, 403, "{body}");
    // No Origin at all (curl, native apps): served, without CORS headers.
    let answer = String::from_utf8_lossy(&curl(&["--include", &server.url("/poll")]).stdout)
        .to_ascii_lowercase();
    assert!(
        answer.starts_with("http/1.1 200") && !answer.contains("access-control"),
        "{answer}"
    );

    // `--allow-origin '*'`: every origin, answered with `*`.
    let any = Server::start(&["--allow-origin", "*"]);
    let answer = String::from_utf8_lossy(
        &curl(&[
            "--include",
            "-H",
            "Origin: https://anyone.example",
            &any.url("/poll"),
        ])
        .stdout,
    )
    .to_ascii_lowercase();
    assert!(
        answer.contains("access-control-allow-origin: *"),
        "{answer}"
    );
    // A malformed origin on the command line is an error naming the flag's value.
    let output = Command::new(env!("CARGO_BIN_EXE_rtsim"))
        .args(["serve", "--allow-origin", "app.example"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("app.example") && stderr.contains("--allow-origin"),
        "{stderr}"
    );
}
