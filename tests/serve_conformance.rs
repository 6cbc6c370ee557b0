//! RFC 6455 conformance of `rtsim serve`'s WebSocket server half, frame by frame over a raw TCP socket
//! (no WebSocket library on the client side, so nothing is smoothed over): the opening handshake's
//! rules, the close handshake, fragmentation, control frames, UTF-8 validation, masking, reserved
//! bits and opcodes, close codes, message limits, and the 1001 a shutdown sends. Numbered after the
//! sections of the RFC they check; Autobahn's suite covers the same ground but needs Python 2.
#![cfg(unix)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tungstenite::handshake::derive_accept_key;

mod serve_support;
use serve_support::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Sends `request` and returns the status line and the whole head of the answer.
fn exchange(addr: SocketAddr, request: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    (stream, String::from_utf8_lossy(&head).into_owned())
}

fn upgrade_request(extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{extra}\r\n"
    )
}

/// An open WebSocket session on a raw socket.
fn open(addr: SocketAddr) -> TcpStream {
    let (stream, head) = exchange(addr, &upgrade_request(""));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let accept = derive_accept_key(KEY.as_bytes());
    assert!(
        head.to_ascii_lowercase().contains(&format!(
            "sec-websocket-accept: {}",
            accept.to_ascii_lowercase()
        )),
        "{head}"
    );
    stream
}

/// Writes one frame; `mask` is the client's masking key (`None` sends it unmasked, a violation).
fn send(
    stream: &mut TcpStream,
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let mut frame = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    let masked = u8::from(mask.is_some()) << 7;
    match payload.len() {
        n if n < 126 => frame.push(masked | n as u8),
        n if n <= 0xFFFF => {
            frame.push(masked | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(masked | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => frame.extend_from_slice(payload),
    }
    stream.write_all(&frame).unwrap();
}

const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

/// Reads one frame from the server: (fin, opcode, payload). Server frames must be unmasked (§5.1).
fn read_frame(stream: &mut TcpStream) -> Option<(bool, u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).ok()?;
    assert_eq!(
        head[1] & 0x80,
        0,
        "a server frame must not be masked (RFC 6455 §5.1)"
    );
    assert_eq!(head[0] & 0x70, 0, "no reserved bits without an extension");
    let len = match head[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            stream.read_exact(&mut n).ok()?;
            u16::from_be_bytes(n) as usize
        }
        127 => {
            let mut n = [0u8; 8];
            stream.read_exact(&mut n).ok()?;
            u64::from_be_bytes(n) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).ok()?;
    Some((head[0] & 0x80 != 0, head[0] & 0x0f, payload))
}

/// Reads frames (skipping events and pings) until a control frame of `opcode`; returns its payload.
fn until(stream: &mut TcpStream, opcode: u8) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(
            Instant::now() < deadline,
            "no frame with opcode {opcode:#x}"
        );
        let (_, op, payload) = read_frame(stream).unwrap_or_else(|| {
            panic!("the connection ended before a frame with opcode {opcode:#x}")
        });
        if op == opcode {
            return payload;
        }
        assert!(
            op == TEXT || op == PING,
            "unexpected opcode {op:#x} while waiting for {opcode:#x}"
        );
    }
}

/// Waits for the server's Close and returns its code; then the server must close TCP (a FIN, not
/// a reset, and soon).
fn expect_close(stream: &mut TcpStream, code: u16) {
    let payload = until(stream, CLOSE);
    assert!(
        payload.len() >= 2,
        "a Close with a status code: {payload:?}"
    );
    let got = u16::from_be_bytes([payload[0], payload[1]]);
    assert_eq!(
        got,
        code,
        "close reason {:?}",
        String::from_utf8_lossy(&payload[2..])
    );
    assert!(
        std::str::from_utf8(&payload[2..]).is_ok(),
        "the reason is UTF-8"
    );
    let started = Instant::now();
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => panic!("the server should close TCP cleanly after its Close: {e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

#[test]
fn opening_handshake_follows_rfc_6455_section_4() {
    let server = Server::start(&[]);
    let addr = server.addr;
    // §4.2.2: a version other than 13 gets 426 with the version the server speaks.
    let (_, head) = exchange(
        addr,
        &upgrade_request("").replace("Version: 13", "Version: 8"),
    );
    assert!(head.starts_with("HTTP/1.1 426"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{head}"
    );
    // A missing version: 400, still naming 13.
    let (_, head) = exchange(
        addr,
        &upgrade_request("").replace("Sec-WebSocket-Version: 13\r\n", ""),
    );
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{head}"
    );
    // §4.1: the key must be 16 bytes in base64.
    for key in [
        "abc",
        "dGhlIHNhbXBsZSBub25jZQ",
        "dGhlIHNhbXBsZSBub25jZR==",
        "!GhlIHNhbXBsZSBub25jZQ==",
    ] {
        let (_, head) = exchange(addr, &upgrade_request("").replace(KEY, key));
        assert!(head.starts_with("HTTP/1.1 400"), "key {key}: {head}");
    }
    // Two keys.
    let (_, head) = exchange(
        addr,
        &upgrade_request(&format!("Sec-WebSocket-Key: {KEY}\r\n")),
    );
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    // §4.1: HTTP/1.1 or later; an HTTP/1.0 request is never answered 101.
    let (_, head) = exchange(addr, &upgrade_request("").replace("HTTP/1.1", "HTTP/1.0"));
    assert!(head.starts_with("HTTP/1.0 400"), "{head}");
    // Only GET upgrades (405 names what is allowed).
    let (_, head) = exchange(addr, &upgrade_request("").replace("GET /ws", "POST /ws"));
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    assert!(head.to_ascii_lowercase().contains("allow: get"), "{head}");
    // HTTP/1.1 without Host (RFC 9112 §3.2).
    let (_, head) = exchange(
        addr,
        &upgrade_request("").replace("Host: 127.0.0.1\r\n", ""),
    );
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    // §4.2.2 / §10.2: an Origin that is not allowed is refused with 403.
    let (_, head) = exchange(addr, &upgrade_request("Origin: https://evil.example\r\n"));
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    // The page's own origin is allowed.
    let (_, head) = exchange(addr, &upgrade_request("Origin: http://127.0.0.1\r\n"));
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

#[test]
fn a_close_is_answered_with_a_close_and_the_server_closes_tcp() {
    let server = Server::start(&[]);
    let mut ws = open(server.addr);
    // The session is live: the welcome frame arrives first.
    let (_, op, welcome) = read_frame(&mut ws).unwrap();
    assert_eq!(op, TEXT);
    assert!(String::from_utf8_lossy(&welcome).contains("\"welcome\""));
    send(&mut ws, true, 0, CLOSE, &close_frame(1000, "bye"), MASK);
    // §5.5.1: the reply echoes the code.
    expect_close(&mut ws, 1000);

    // A Close without a code is answered with one without a code (or 1000); either way, answered.
    let mut ws = open(server.addr);
    send(&mut ws, true, 0, CLOSE, &[], MASK);
    let payload = until(&mut ws, CLOSE);
    assert!(
        payload.is_empty() || payload[..2] == 1000u16.to_be_bytes(),
        "{payload:?}"
    );
}

#[test]
fn fragmented_messages_and_interleaved_control_frames_are_accepted() {
    let server = Server::start(&[]);
    let mut ws = open(server.addr);
    // §5.4: a text message in three fragments with a ping between them; §5.5.2: the pong echoes the
    // ping's payload, at once, even in the middle of a fragmented message.
    send(&mut ws, false, 0, TEXT, b"{\"sent_", MASK);
    send(&mut ws, true, 0, PING, b"are you there", MASK);
    assert_eq!(until(&mut ws, PONG), b"are you there");
    send(
        &mut ws,
        false,
        0,
        CONTINUATION,
        b"us\":1,\"text\":\"h\xc3",
        MASK,
    );
    // A UTF-8 sequence split across fragments is valid.
    send(&mut ws, true, 0, CONTINUATION, b"\xa9llo\"}", MASK);
    // A 125-byte ping is the largest allowed.
    send(&mut ws, true, 0, PING, &[b'p'; 125], MASK);
    assert_eq!(until(&mut ws, PONG), vec![b'p'; 125]);
    // An unsolicited pong is ignored (§5.5.3).
    send(&mut ws, true, 0, PONG, b"", MASK);
    send(&mut ws, true, 0, CLOSE, &close_frame(1000, ""), MASK);
    expect_close(&mut ws, 1000);
}

/// Writes frames that break a rule of the protocol.
type Violation = Box<dyn Fn(&mut TcpStream)>;

#[test]
fn protocol_violations_are_closed_with_1002() {
    let server = Server::start(&[]);
    let cases: [(&str, Violation); 9] = [
        // §5.1: a client frame must be masked.
        (
            "unmasked frame",
            Box::new(|ws| send(ws, true, 0, TEXT, b"{}", None)),
        ),
        // §5.2: reserved bits without an extension.
        (
            "RSV1 set",
            Box::new(|ws| send(ws, true, 0b100, TEXT, b"{}", MASK)),
        ),
        (
            "reserved data opcode",
            Box::new(|ws| send(ws, true, 0, 0x3, b"x", MASK)),
        ),
        (
            "reserved control opcode",
            Box::new(|ws| send(ws, true, 0, 0xB, b"", MASK)),
        ),
        // §5.5: control frames are at most 125 bytes and never fragmented.
        (
            "ping of 126 bytes",
            Box::new(|ws| send(ws, true, 0, PING, &[0; 126], MASK)),
        ),
        (
            "fragmented ping",
            Box::new(|ws| send(ws, false, 0, PING, b"x", MASK)),
        ),
        // §5.4: a continuation with nothing to continue; a new message inside a fragmented one.
        (
            "stray continuation",
            Box::new(|ws| send(ws, true, 0, CONTINUATION, b"x", MASK)),
        ),
        (
            "text inside a fragmented message",
            Box::new(|ws| {
                send(ws, false, 0, TEXT, b"a", MASK);
                send(ws, true, 0, TEXT, b"b", MASK);
            }),
        ),
        // §7.4.1: 1005 may not be sent in a Close frame.
        (
            "close code 1005",
            Box::new(|ws| send(ws, true, 0, CLOSE, &close_frame(1005, ""), MASK)),
        ),
    ];
    for (name, violate) in cases {
        let mut ws = open(server.addr);
        violate(&mut ws);
        let payload = until(&mut ws, CLOSE);
        let code = u16::from_be_bytes([payload[0], payload[1]]);
        assert_eq!(
            code,
            1002,
            "{name}: {:?}",
            String::from_utf8_lossy(&payload[2..])
        );
    }
    // More codes that may not be sent: 999, 1004, 1006, 1015, 5000; a 1-byte close payload.
    for payload in [
        close_frame(999, ""),
        close_frame(1004, ""),
        close_frame(1006, ""),
        close_frame(1015, ""),
        close_frame(5000, ""),
        vec![0x03],
    ] {
        let mut ws = open(server.addr);
        send(&mut ws, true, 0, CLOSE, &payload, MASK);
        let reply = until(&mut ws, CLOSE);
        assert_eq!(
            reply[..2],
            1002u16.to_be_bytes(),
            "close payload {payload:?}"
        );
    }
}

#[test]
fn invalid_utf8_is_closed_with_1007() {
    let server = Server::start(&[]);
    for frames in [
        vec![(true, TEXT, b"{\"a\":\"\xff\"}".to_vec())],
        // Invalid only once the fragments are joined.
        vec![
            (false, TEXT, b"{\"a\":\"\xce".to_vec()),
            (true, CONTINUATION, b"\x28\"}".to_vec()),
        ],
        // An invalid close reason.
        vec![(
            true,
            CLOSE,
            [&1000u16.to_be_bytes()[..], b"\xc0\xaf"].concat(),
        )],
    ] {
        let mut ws = open(server.addr);
        for (fin, op, payload) in &frames {
            send(&mut ws, *fin, 0, *op, payload, MASK);
        }
        let reply = until(&mut ws, CLOSE);
        let code = u16::from_be_bytes([reply[0], reply[1]]);
        assert_eq!(code, 1007, "{frames:?}");
    }
}

#[test]
fn messages_over_the_limit_are_closed_with_1009() {
    let server = Server::start(&["--max-message-bytes", "1024"]);
    // One frame over the limit.
    let mut ws = open(server.addr);
    send(&mut ws, true, 0, TEXT, &vec![b'x'; 2000], MASK);
    expect_close(&mut ws, 1009);
    // Fragments each under the limit, together over it: the server does not wait for the end.
    let mut ws = open(server.addr);
    send(&mut ws, false, 0, TEXT, &vec![b'x'; 600], MASK);
    send(&mut ws, false, 0, CONTINUATION, &vec![b'x'; 600], MASK);
    expect_close(&mut ws, 1009);
    // A frame header announcing 60 MiB is refused before any of it is read.
    let mut ws = open(server.addr);
    let mut head = vec![0x81, 0x80 | 127];
    head.extend_from_slice(&(60u64 << 20).to_be_bytes());
    head.extend_from_slice(&[1, 2, 3, 4]);
    ws.write_all(&head).unwrap();
    let reply = until(&mut ws, CLOSE);
    assert_eq!(reply[..2], 1009u16.to_be_bytes());
    // Within the limit is fine.
    let mut ws = open(server.addr);
    send(&mut ws, true, 0, TEXT, &vec![b'x'; 1000], MASK);
    send(&mut ws, true, 0, PING, b"still here", MASK);
    assert_eq!(until(&mut ws, PONG), b"still here");
}

#[test]
fn ctrl_c_closes_sessions_with_1001_and_ends_streams_on_an_event_boundary() {
    let mut server = Server::start(&[]);
    server.wait_for_events(3);
    let mut ws = open(server.addr);
    let (_, op, _) = read_frame(&mut ws).unwrap();
    assert_eq!(op, TEXT);
    let mut sse = TcpStream::connect(server.addr).unwrap();
    sse.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sse.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Answer the server's Close from another thread, as a client would, while Ctrl-C is handled.
    let client = std::thread::spawn(move || {
        let payload = until(&mut ws, CLOSE);
        send(&mut ws, true, 0, CLOSE, &payload, MASK);
        let mut rest = Vec::new();
        let closed = ws.read_to_end(&mut rest).is_ok();
        (u16::from_be_bytes([payload[0], payload[1]]), closed)
    });
    let (success, stderr) = server.interrupt();
    assert!(success, "{stderr}");
    let (code, closed) = client.join().unwrap();
    assert_eq!(code, 1001, "going away");
    assert!(closed, "the server closed TCP after the handshake");
    // The SSE response ends with the last chunk of chunked encoding, right after a whole event.
    let mut stream = Vec::new();
    sse.read_to_end(&mut stream)
        .expect("a clean end of the stream");
    let text = String::from_utf8_lossy(&stream);
    assert!(
        text.ends_with("\n\n\r\n0\r\n\r\n"),
        "{:?}",
        &text[text.len().saturating_sub(200)..]
    );
}
