//! The WebSocket fallback's engine.io polling over real TCP (`rtsim serve`, curl as the client): the
//! handshake's open packet, a poll answered from the session's buffer, a pong and a message sent
//! with `ok`, and a session id the server does not hold refused as engine.io refuses it (400,
//! `{"code":1,"message":"Session ID unknown"}`, lib/server.ts; docs/references.md, "engine.io").
#![cfg(unix)]

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
        assert_eq!(body, r#"{"code":1,"message":"Session ID unknown"}"#, "{method}");
    }
    let (status, body) = curl_status(&[&server.url("/socket.io/?EIO=3&transport=polling")]);
    assert_eq!((status, body.as_str()), (400, r#"{"code":5,"message":"Unsupported protocol version"}"#));
    let (status, body) = curl_status(&[&server.url("/socket.io/?EIO=4&transport=flash")]);
    assert_eq!((status, body.as_str()), (400, r#"{"code":0,"message":"Transport unknown"}"#));

    // A session whose pongs stop is closed after the ping timeout: its id is refused from then on.
    let (_, body) = curl_status(&[&polling("")]);
    let open: Value = serde_json::from_str(body.strip_prefix('0').unwrap()).unwrap();
    let quiet = open["sid"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (status, body) = curl_status(&[&polling(&format!("&sid={quiet}"))]);
    assert_eq!((status, body.as_str()), (400, r#"{"code":1,"message":"Session ID unknown"}"#));
}
