//! The WebSocket fallback's engine.io polling over real TCP (`rtsim serve`, curl as the client): the
//! handshake's open packet, a poll answered from the session's buffer, a pong and a message sent
//! with `ok`, and a session id the server does not hold refused as engine.io refuses it (400,
//! `{"code":1,"message":"Session ID unknown"}`, lib/server.ts; docs/references.md, "engine.io").
//!
//! Then an engine.io client nobody on this project wrote (python-engineio, pinned in
//! tests/clients/requirements.txt, polling only) through a TCP relay in front of two `rtsim serve`
//! processes, as a load balancer in front of two replicas: with every connection relayed to one
//! server (sticky) its session lives; relayed round-robin, its second connection reaches the other
//! server, which refuses the session, and the client's transport gives up — what the simulation
//! shows behind a round-robin balancer. Without python-engineio the test fails under `CI=true` and
//! elsewhere says on the terminal that it did not run.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

mod serve_support;
use serve_support::*;

/// The packets of a polling body (separated by the record separator).
fn packets(body: &str) -> Vec<&str> {
    body.split('\u{1e}').filter(|p| !p.is_empty()).collect()
}

#[test]
fn engine_io_sessions_open_poll_send_and_refuse_unknown_ids() {
    let server = Server::start(&[]);
    server.wait_for_events(3);
    let polling = |query: &str| server.url(&format!("/socket.io/?EIO=4&transport=polling{query}"));

    let (status, body) = curl_status(&[&polling("")]);
    assert_eq!(status, 200, "{body}");
    let open: Value = serde_json::from_str(body.strip_prefix('0').expect("an open packet"))
        .unwrap_or_else(|e| panic!("{e}: {body}"));
    let sid = open["sid"].as_str().unwrap().to_string();
    assert_eq!(sid.len(), 20, "{open}");
    assert_eq!(open["upgrades"], serde_json::json!([]));
    // The profile's WebSocket ping: 1 s interval, 1 s timeout.
    assert_eq!(open["pingInterval"], 1000, "{open}");
    assert_eq!(open["pingTimeout"], 1000, "{open}");
    assert!(open["maxPayload"].as_u64().unwrap() > 0);

    // The first poll: the welcome (where the session starts), then events as message packets.
    let (status, body) = curl_status(&[&polling(&format!("&sid={sid}"))]);
    assert_eq!(status, 200, "{body}");
    let first = packets(&body);
    let welcome: Value = serde_json::from_str(first[0].strip_prefix('4').unwrap()).unwrap();
    assert_eq!(welcome["type"], "welcome", "{body}");
    let (status, body) = curl_status(&[&polling(&format!("&sid={sid}"))]);
    assert_eq!(status, 200);
    let event = packets(&body)
        .into_iter()
        .filter_map(|p| p.strip_prefix('4'))
        .find_map(|json| serde_json::from_str::<Value>(json).ok()?["id"].as_u64());
    assert!(
        event.is_some_and(|id| id > welcome["last_event_id"].as_u64().unwrap()),
        "{body}"
    );

    // A pong and a message in one POST: `ok`.
    let message = r#"4{"sent_us":1,"text":"hi"}"#;
    let (status, body) = curl_status(&[
        "-X",
        "POST",
        "-H",
        "content-type: text/plain;charset=UTF-8",
        "--data-binary",
        &format!("3\u{1e}{message}"),
        &polling(&format!("&sid={sid}")),
    ]);
    assert_eq!((status, body.as_str()), (200, "ok"));

    // An id this server never issued: engine.io's refusal, byte for byte.
    for method in ["GET", "POST"] {
        let (status, body) = curl_status(&[
            "-X",
            method,
            "--data-binary",
            "3",
            &polling("&sid=AAAAAAAAAAAAAAAAAAAA"),
        ]);
        assert_eq!(status, 400, "{method}");
        assert_eq!(
            body, r#"{"code":1,"message":"Session ID unknown"}"#,
            "{method}"
        );
    }
    let (status, body) = curl_status(&[&server.url("/socket.io/?EIO=3&transport=polling")]);
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            r#"{"code":5,"message":"Unsupported protocol version"}"#
        )
    );
    let (status, body) = curl_status(&[&server.url("/socket.io/?EIO=4&transport=flash")]);
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"code":0,"message":"Transport unknown"}"#)
    );

    // A session whose pongs stop is closed after the ping timeout: its id is refused from then on.
    let (_, body) = curl_status(&[&polling("")]);
    let open: Value = serde_json::from_str(body.strip_prefix('0').unwrap()).unwrap();
    let quiet = open["sid"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (status, body) = curl_status(&[&polling(&format!("&sid={quiet}"))]);
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"code":1,"message":"Session ID unknown"}"#)
    );
}

const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/clients/engineio_client.py"
);

/// A Python with python-engineio, if there is one (`$RTSIM_PYTHON`, `.ci/run`'s venv, `python3`).
fn engineio_python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ci-python/bin/python");
    std::env::var_os("RTSIM_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([venv, PathBuf::from("python3")])
        .find(|python| {
            Command::new(python)
                .args(["-c", "import engineio"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// A TCP relay on loopback handing each accepted connection to the next of `backends` in turn (a
/// layer-4 balancer; one backend: every connection to it, as sticky sessions do for one client).
fn relay(backends: Vec<SocketAddr>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (n, inbound) in listener.incoming().enumerate() {
            let Ok(inbound) = inbound else { return };
            let Ok(outbound) = TcpStream::connect(backends[n % backends.len()]) else {
                continue;
            };
            for (mut from, mut to) in [
                (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                (outbound, inbound),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    addr
}

/// Runs the client's `watch` for `seconds` through `addr` and returns its report.
fn watch(python: &PathBuf, addr: SocketAddr, seconds: &str) -> Value {
    let mut child = Command::new(python)
        .arg(CLIENT)
        .args(["watch", &addr.to_string(), seconds])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(child.wait().unwrap().success(), "the client failed: {line}");
    serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
}

#[test]
fn a_real_engine_io_client_needs_sticky_sessions_in_front_of_two_servers() {
    let Some(python) = engineio_python() else {
        missing(
            "a_real_engine_io_client_needs_sticky_sessions_in_front_of_two_servers",
            "Python with python-engineio",
        );
        return;
    };
    let a = Server::start(&[]);
    let b = Server::start(&[]);
    a.wait_for_events(3);
    b.wait_for_events(3);

    // Sticky: both of the client's connections reach one server. Pings every second, answered;
    // the session lives for the whole watch.
    let stuck = watch(&python, relay(vec![a.addr]), "3.5");
    eprintln!("python-engineio {}", stuck["engineio"]);
    assert_eq!(stuck["disconnected"], false, "{stuck}");
    assert_eq!(stuck["welcome"]["type"], "welcome", "{stuck}");
    assert!(stuck["events"].as_u64().unwrap() >= 20, "{stuck}");
    assert_eq!(stuck["warnings"], serde_json::json!([]), "{stuck}");

    // Round-robin: the poll's connection reaches one server, the send's the other: refused, and
    // the client's transport gives up on the session.
    let spread = watch(&python, relay(vec![a.addr, b.addr]), "3.5");
    eprintln!("round-robin: {spread}");
    assert_eq!(spread["disconnected"], true, "{spread}");
    let warnings = spread["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("Unexpected status code 400")),
        "{spread}"
    );
}
