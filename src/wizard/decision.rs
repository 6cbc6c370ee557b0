//! The design brief's decision tree and the mitigation rules, as data and pure functions.
//!
//! [`recommend`] turns [`Answers`] into a [`Recommendation`]: the transport, the path taken through
//! [`TREE`] in words, the runner-up and when it would win, and the mitigations that [`RULES`] say this
//! environment demands, each with its reason, its source figure (rows of `shared/REFERENCE.md`) and the
//! profile settings that apply it.
//!
//! No terminal, file or clock here: everything is a function of the answers, so every leaf and every
//! rule is tested without a terminal.

use std::time::Duration;

use serde::Serialize;

use super::answers::{Answers, LoadBalancer};
use crate::duration;
use crate::transport::TransportKind;

/// Data changing more often than this many times a minute (every 30 s) counts as "frequent".
pub const FREQUENT_CHANGES_PER_MINUTE: f64 = 2.0;

/// A question of the decision tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Step 1: do both client and server send frequently?
    Bidirectional,
    /// Step 2: does the server push data the client did not ask for?
    ServerPush,
    /// Step 3: does the data change more often than every 30 seconds?
    FrequentChanges,
}

/// Where an answer leads: another question, or a transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Ask another question.
    Ask(Step),
    /// The walk ends: this transport.
    Leaf(TransportKind),
}

/// One node of the tree.
#[derive(Clone, Copy, Debug)]
pub struct Branch {
    /// Which question this node asks.
    pub step: Step,
    /// The question as the design brief asks it.
    pub question: &'static str,
    /// Where a yes leads.
    pub yes: Next,
    /// Where a no leads.
    pub no: Next,
}

/// The design brief's decision tree; the walk starts at the first branch.
pub const TREE: [Branch; 3] = [
    Branch {
        step: Step::Bidirectional,
        question: "Need bidirectional communication (both client and server send frequently)?",
        yes: Next::Leaf(TransportKind::Websocket),
        no: Next::Ask(Step::ServerPush),
    },
    Branch {
        step: Step::ServerPush,
        question: "Does the server need to push data to the client?",
        yes: Next::Leaf(TransportKind::Sse),
        no: Next::Ask(Step::FrequentChanges),
    },
    Branch {
        step: Step::FrequentChanges,
        question: "Does data change frequently (more often than every 30 seconds)?",
        yes: Next::Leaf(TransportKind::LongPolling),
        no: Next::Leaf(TransportKind::Polling),
    },
];

/// The transport that would come second, and the condition under which it would be the better choice.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunnerUp {
    /// The second-best transport.
    pub transport: TransportKind,
    /// When it would win, in words tied to the user's own answers.
    pub when: String,
}

/// A profile key and the value a mitigation gives it (dotted key as in the profile file).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Setting {
    /// Dotted profile key, e.g. `sse.heartbeat`.
    pub key: &'static str,
    /// The value written to the profile.
    pub value: toml::Value,
}

/// Something this environment demands of the chosen transport.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mitigation {
    /// Stable identifier of the rule that produced it (`heartbeat`, `backoff`, ...).
    pub id: &'static str,
    /// What to do.
    pub title: String,
    /// Why, in terms of the user's answers.
    pub reason: String,
    /// The figure it rests on and where it comes from (rows of shared/REFERENCE.md).
    pub source: String,
    /// Profile keys the written profile sets to apply it (empty when the simulator cannot model it).
    pub settings: Vec<Setting>,
}

/// The wizard's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    /// The transport the tree leads to.
    pub transport: TransportKind,
    /// The path taken through the tree, one line per question.
    pub path: Vec<String>,
    /// The second-best transport and when it would win.
    pub runner_up: RunnerUp,
    /// What the user's environment demands of the chosen transport, in [`RULES`] order.
    pub mitigations: Vec<Mitigation>,
    /// Answers that look inconsistent with each other, and what that would change.
    pub notes: Vec<String>,
}

/// A mitigation rule: when it applies, and what it says.
#[derive(Clone, Copy)]
pub struct Rule {
    /// Stable identifier, the same as the produced [`Mitigation::id`].
    pub id: &'static str,
    /// Whether the rule applies to these answers and this transport.
    pub applies: fn(&Answers, TransportKind) -> bool,
    /// The mitigation, worded for these answers and this transport.
    pub build: fn(&Answers, TransportKind) -> Mitigation,
}

/// Every mitigation rule, in the order the recommendation lists them.
pub const RULES: [Rule; 8] = [
    Rule {
        id: "heartbeat",
        applies: heartbeat_applies,
        build: heartbeat,
    },
    Rule {
        id: "long-poll-hold",
        applies: long_poll_hold_applies,
        build: long_poll_hold,
    },
    Rule {
        id: "backoff",
        applies: backoff_applies,
        build: backoff,
    },
    Rule {
        id: "resume",
        applies: resume_applies,
        build: resume,
    },
    Rule {
        id: "accel-buffering",
        applies: accel_buffering_applies,
        build: accel_buffering,
    },
    Rule {
        id: "websocket-fallback",
        applies: websocket_fallback_applies,
        build: websocket_fallback,
    },
    Rule {
        id: "sticky-sessions",
        applies: sticky_sessions_applies,
        build: sticky_sessions,
    },
    Rule {
        id: "polling-interval",
        applies: polling_interval_applies,
        build: polling_interval,
    },
];

/// The answer to one step, and the figure behind it in words.
pub fn answer(step: Step, a: &Answers) -> (bool, String) {
    match step {
        Step::Bidirectional => {
            let detail = format!(
                "each client sends {}",
                counted(
                    a.upstream_per_minute,
                    "message a minute",
                    "messages a minute"
                )
            );
            (a.bidirectional, detail)
        }
        Step::ServerPush => (a.server_push, String::new()),
        Step::FrequentChanges => {
            let detail = format!(
                "{}, one every {}",
                counted(a.changes_per_minute, "change a minute", "changes a minute"),
                change_period(a)
            );
            (a.changes_per_minute > FREQUENT_CHANGES_PER_MINUTE, detail)
        }
    }
}

/// Walks the tree: the leaf reached and one line per question asked.
pub fn walk(a: &Answers) -> (TransportKind, Vec<String>) {
    let mut path = Vec::new();
    let mut branch = &TREE[0];
    loop {
        let (yes, detail) = answer(branch.step, a);
        let next = if yes { branch.yes } else { branch.no };
        let mut line = format!(
            "{}. {} {}",
            path.len() + 1,
            branch.question,
            if yes { "yes" } else { "no" }
        );
        if !detail.is_empty() {
            line.push_str(&format!(" ({detail})"));
        }
        match next {
            Next::Leaf(transport) => {
                line.push_str(&format!(" → {}", transport.title()));
                path.push(line);
                if transport == TransportKind::Polling {
                    path.push(
                        "Rule of thumb: the simplest approach that meets the requirements.".into(),
                    );
                }
                return (transport, path);
            }
            Next::Ask(step) => {
                path.push(line);
                // TREE lists every step; a missing one would be a typo in the table above (tested).
                branch = TREE
                    .iter()
                    .find(|b| b.step == step)
                    .unwrap_or(&TREE[TREE.len() - 1]);
            }
        }
    }
}

/// The whole recommendation for a set of answers.
pub fn recommend(a: &Answers) -> Recommendation {
    let (transport, path) = walk(a);
    Recommendation {
        transport,
        path,
        runner_up: runner_up(transport, a),
        mitigations: mitigations(a, transport),
        notes: notes(a),
    }
}

/// The mitigations every applicable rule gives for `transport`, in [`RULES`] order.
pub fn mitigations(a: &Answers, transport: TransportKind) -> Vec<Mitigation> {
    RULES
        .iter()
        .filter(|rule| (rule.applies)(a, transport))
        .map(|rule| (rule.build)(a, transport))
        .collect()
}

/// The second-best transport for a leaf, and when it would win.
pub fn runner_up(transport: TransportKind, a: &Answers) -> RunnerUp {
    let (transport, when) = match transport {
        TransportKind::Websocket => (
            TransportKind::Sse,
            format!(
                "if clients send rarely enough that ordinary HTTP requests can carry their messages \
                 (now {} a minute each): SSE plus POST needs no upgrade, passes proxies that block it, \
                 and the browser reconnects by itself",
                num(a.upstream_per_minute)
            ),
        ),
        TransportKind::Sse if a.corporate_proxies || a.cdn => (
            TransportKind::LongPolling,
            "if a proxy in the path buffers the stream and cannot be told not to: long polling answers \
             each request whole, so buffering cannot hold events back"
                .to_string(),
        ),
        TransportKind::Sse => (
            TransportKind::Websocket,
            format!(
                "if clients start sending frequently too (now {} each): one \
                 connection then carries both directions",
                counted(a.upstream_per_minute, "message a minute", "messages a minute")
            ),
        ),
        TransportKind::LongPolling => (
            TransportKind::Polling,
            format!(
                "if changes slow to one every 30 s or less (now one every {}) or updates may wait a \
                 whole polling interval: plain short requests, nothing held open, cacheable",
                change_period(a)
            ),
        ),
        TransportKind::Polling => (
            TransportKind::LongPolling,
            format!(
                "if data starts changing more often than every 30 s (now one every {}) or the latency \
                 budget ({}) gets shorter than a sensible polling interval: the server answers as soon \
                 as something changes",
                change_period(a),
                a.latency_budget
            ),
        ),
    };
    RunnerUp { transport, when }
}

/// Answers that pull against each other.
pub fn notes(a: &Answers) -> Vec<String> {
    let mut notes = Vec::new();
    if a.bidirectional && a.upstream_per_minute < 1.0 {
        notes.push(format!(
            "You said both sides send frequently, but each client sends {}: if that \
             is the real figure, answer no to step 1 and SSE with ordinary POST requests may do.",
            counted(
                a.upstream_per_minute,
                "message a minute",
                "messages a minute"
            )
        ));
    }
    if !a.bidirectional && a.upstream_per_minute >= 10.0 {
        notes.push(format!(
            "Each client sends {}: if that counts as frequent, answer yes to step 1 \
             (WebSockets).",
            counted(
                a.upstream_per_minute,
                "message a minute",
                "messages a minute"
            )
        ));
    }
    notes
}

// ---- the rules -------------------------------------------------------------------------------------

/// SSE and WebSocket hold one connection open for a long time.
fn long_lived(t: TransportKind) -> bool {
    matches!(t, TransportKind::Sse | TransportKind::Websocket)
}

/// Long polling is in use: chosen, or as WebSocket's fallback behind corporate proxies.
fn uses_long_polling(a: &Answers, t: TransportKind) -> bool {
    t == TransportKind::LongPolling || (t == TransportKind::Websocket && a.corporate_proxies)
}

/// Middleboxes on the path that cut idle connections: (what happens, source figure).
fn idle_cutters(a: &Answers) -> Vec<(String, &'static str)> {
    let mut cutters = Vec::new();
    if a.mobile_share > 0.0 {
        cutters.push((
            format!(
                "{} of your clients are on mobile networks, whose NATs forget a connection idle for 30–60 s",
                percent(a.mobile_share)
            ),
            "mobile carrier NAT kills idle TCP mappings after 30–60 s (design brief; Eronen 2008)",
        ));
    }
    if a.load_balancer != LoadBalancer::None {
        cutters.push((
            "your load balancer closes idle connections (AWS ALB: after 60 s by default)"
                .to_string(),
            "AWS ALB / ELB idle timeout 60 s by default (AWS docs)",
        ));
    }
    if a.cdn {
        cutters.push((
            "your CDN or reverse proxy cuts a silent response (nginx after 60 s, Cloudflare after 100 s)"
                .to_string(),
            "nginx proxy_read_timeout 60 s; Cloudflare read timeout 100 s",
        ));
    }
    if a.corporate_proxies {
        cutters.push((
            "corporate proxies close long idle connections".to_string(),
            "corporate proxies may close long idle connections (Spring/SockJS docs)",
        ));
    }
    cutters
}

fn heartbeat_applies(a: &Answers, t: TransportKind) -> bool {
    long_lived(t) && !idle_cutters(a).is_empty()
}

fn heartbeat(a: &Answers, t: TransportKind) -> Mitigation {
    let cutters = idle_cutters(a);
    let causes: Vec<&str> = cutters.iter().map(|c| c.0.as_str()).collect();
    let mut reason = format!(
        "{}. A connection silent for longer is cut without either side noticing, and events sent on it \
         afterwards are lost. A heartbeat every 15–30 s keeps the path open and lets the client notice \
         a dead connection.",
        capitalise(&causes.join("; "))
    );
    if a.mobile_share > 0.0 {
        reason.push_str(
            " Do not go much tighter on mobile: a 20 s keepalive raised 2G/3G power use tenfold (Eronen 2008).",
        );
    }
    let mut sources: Vec<&str> = cutters.iter().map(|c| c.1).collect();
    let (title, settings) = if t == TransportKind::Sse {
        sources.push("SignalR keep-alive 15 s");
        (
            "Heartbeat: an SSE comment line (`:`) every 15 s while the stream is idle".to_string(),
            vec![setting("sse.heartbeat", "15s")],
        )
    } else {
        sources.push("Socket.IO ping every 25 s, timeout 20 s; Phoenix heartbeat 30 s");
        (
            "Heartbeat: a WebSocket ping every 20 s; a connection without a pong 10 s later is dead"
                .to_string(),
            vec![setting("websocket.ping_interval", "20s"), setting("websocket.ping_timeout", "10s")],
        )
    };
    Mitigation {
        id: "heartbeat",
        title,
        reason,
        source: format!("REFERENCE.md: {}", sources.join("; ")),
        settings,
    }
}

fn long_poll_hold_applies(a: &Answers, t: TransportKind) -> bool {
    uses_long_polling(a, t) && a.mobile_share > 0.0
}

fn long_poll_hold(a: &Answers, t: TransportKind) -> Mitigation {
    let fallback = if t == TransportKind::Websocket {
        " (in the long-polling fallback)"
    } else {
        ""
    };
    Mitigation {
        id: "long-poll-hold",
        title: format!("Hold each long poll at most 20 s{fallback}, then answer empty"),
        reason: format!(
            "A held request is silent until an event comes or the hold ends; {} of your clients sit behind \
             mobile NATs that forget a silent connection after 30 s, and the answer never arrives. \
             Answering within 20 s renews the mapping.",
            percent(a.mobile_share)
        ),
        source: "REFERENCE.md: mobile carrier NAT 30–60 s (design brief); Phoenix long-poll timeout 20 s"
            .to_string(),
        settings: vec![setting("long_polling.hold", "20s")],
    }
}

fn backoff_applies(_: &Answers, t: TransportKind) -> bool {
    t != TransportKind::Polling
}

fn backoff(a: &Answers, t: TransportKind) -> Mitigation {
    let mut reason = format!(
        "When a server, proxy or load balancer restarts, all {} clients lose their connection at once; \
         reconnecting in lockstep is a thundering herd that can knock the server over again. Doubling \
         delays spread by jitter flatten the wave.",
        a.clients
    );
    if t == TransportKind::Sse {
        reason.push_str(
            " EventSource's own retry (about 3 s, no backoff) is not enough: send `retry:` and back off in \
             the error handler.",
        );
    }
    Mitigation {
        id: "backoff",
        title: "Reconnect with exponential backoff and jitter: 1 s, 2 s, 4 s, 8 s (±50 %)"
            .to_string(),
        reason,
        source:
            "REFERENCE.md: pain points — reconnect storms, fixed with jittered backoff; Socket.IO \
                 backoff 1 s → 5 s ×2, randomization 0.5; Phoenix 1 s, 2 s, 5 s, then 10 s"
                .to_string(),
        settings: vec![
            setting("reconnect.initial", "1s"),
            setting("reconnect.max", "8s"),
            Setting {
                key: "reconnect.factor",
                value: toml::Value::Float(2.0),
            },
            Setting {
                key: "reconnect.jitter",
                value: toml::Value::Float(0.5),
            },
        ],
    }
}

fn resume_applies(a: &Answers, t: TransportKind) -> bool {
    a.mobile_share > 0.0 && t != TransportKind::Polling
}

/// Events kept for replay: two minutes' worth, at least 1000.
pub fn history_for(a: &Answers) -> i64 {
    ((a.changes_per_minute * 2.0).ceil() as i64).clamp(1000, 10_000_000)
}

fn resume(a: &Answers, t: TransportKind) -> Mitigation {
    let title = match t {
        TransportKind::Sse => {
            "Give every event an `id:` and replay from `Last-Event-ID` on reconnect"
        }
        TransportKind::Websocket => "Resume from the client's last event id after a reconnect",
        _ => "Poll with a cursor (the last event id) so events during a gap are replayed",
    };
    let mut settings = vec![Setting {
        key: "server.history",
        value: toml::Value::Integer(history_for(a)),
    }];
    if t == TransportKind::Websocket {
        settings.push(Setting {
            key: "websocket.resume",
            value: toml::Value::Boolean(true),
        });
    }
    Mitigation {
        id: "resume",
        title: title.to_string(),
        reason: format!(
            "{} of your clients are on phones that switch between Wi-Fi and cellular; every switch kills \
             every TCP connection, and events published while a client reconnects are lost unless the \
             server keeps them (here: the last {}, two minutes' worth or more) and replays them.",
            percent(a.mobile_share),
            history_for(a)
        ),
        source: "REFERENCE.md: Wi-Fi → cellular switch kills every TCP connection; browsers' EventSource \
                 sends Last-Event-ID; Mercure replays history from Last-Event-ID"
            .to_string(),
        settings,
    }
}

fn accel_buffering_applies(a: &Answers, t: TransportKind) -> bool {
    t == TransportKind::Sse && (a.cdn || a.corporate_proxies)
}

fn accel_buffering(a: &Answers, _: TransportKind) -> Mitigation {
    let per_buffer = (8192 / a.event_bytes.max(1)).max(1);
    let mut reason = format!(
        "A buffering proxy holds the stream until 4–8 KiB have gathered — about {per_buffer} of your \
         {}-byte events — so events arrive late and in bursts. `X-Accel-Buffering: no` turns buffering \
         off in nginx and proxies that honour it.",
        a.event_bytes
    );
    if a.corporate_proxies {
        reason.push_str(
            " Corporate proxies you do not control may ignore it: serve the stream over HTTPS, and if no \
             byte arrives within the heartbeat timeout, switch that client to long polling.",
        );
    }
    Mitigation {
        id: "accel-buffering",
        title: "Send `X-Accel-Buffering: no` on the stream; fall back to long polling where a proxy still \
                buffers"
            .to_string(),
        reason,
        source: "REFERENCE.md: nginx proxy_buffering on by default, `X-Accel-Buffering: no` turns it off, \
                 buffers one memory page (4 or 8 KiB)"
            .to_string(),
        settings: vec![Setting { key: "sse.accel_buffering_off", value: toml::Value::Boolean(true) }],
    }
}

fn websocket_fallback_applies(a: &Answers, t: TransportKind) -> bool {
    t == TransportKind::Websocket && a.corporate_proxies
}

fn websocket_fallback(_: &Answers, _: TransportKind) -> Mitigation {
    Mitigation {
        id: "websocket-fallback",
        title: "Fall back to long polling when a proxy refuses the WebSocket upgrade".to_string(),
        reason: "Corporate proxies may not pass the `Upgrade` header; without a fallback the clients \
                 behind them get nothing at all."
            .to_string(),
        source: "REFERENCE.md: corporate proxies may not pass the `Upgrade` header (Spring/SockJS docs); \
                 Socket.IO starts on long polling, SignalR falls back WebSockets → SSE → long polling"
            .to_string(),
        settings: vec![setting("websocket.fallback", "long-polling")],
    }
}

fn sticky_sessions_applies(a: &Answers, t: TransportKind) -> bool {
    uses_long_polling(a, t) && a.load_balancer == LoadBalancer::RoundRobin
}

fn sticky_sessions(_: &Answers, t: TransportKind) -> Mitigation {
    let fallback = if t == TransportKind::Websocket {
        " (for the long-polling fallback)"
    } else {
        ""
    };
    Mitigation {
        id: "sticky-sessions",
        title: format!(
            "Turn on sticky sessions at the load balancer{fallback}, or share long-poll state between servers"
        ),
        reason: "Your round-robin load balancer sends a client's consecutive polls to different servers, \
                 which do not know its session or its place in the stream."
            .to_string(),
        source: "REFERENCE.md: pain points — long polling behind a load balancer without sticky sessions \
                 fails (\"Session ID unknown\")"
            .to_string(),
        settings: Vec::new(),
    }
}

fn polling_interval_applies(_: &Answers, t: TransportKind) -> bool {
    t == TransportKind::Polling
}

/// Polling interval that meets the latency budget: the budget, kept between 1 s and 60 s.
pub fn polling_interval_for(a: &Answers) -> Duration {
    let ms = a.latency_budget.0.as_millis().clamp(1_000, 60_000) as u64;
    Duration::from_millis(ms)
}

fn polling_interval(a: &Answers, _: TransportKind) -> Mitigation {
    let interval = polling_interval_for(a);
    let mut reason = format!(
        "A change waits up to one interval before the next poll sees it, so the interval follows your \
         latency budget ({}); data changes about every {}.",
        a.latency_budget,
        change_period(a)
    );
    if a.latency_budget.0 < Duration::from_secs(1) {
        reason.push_str(&format!(
            " A budget under 1 s would take more than one request a second from each of {} clients: long \
             polling (the runner-up) meets it with far fewer requests.",
            a.clients
        ));
    }
    Mitigation {
        id: "polling-interval",
        title: format!("Poll every {}", duration::format(interval)),
        reason,
        source: "design brief: regular polling when data changes less often than every 30 s; the simplest \
                 approach that meets the requirements"
            .to_string(),
        settings: vec![setting("polling.interval", &duration::format(interval))],
    }
}

// ---- wording helpers --------------------------------------------------------------------------------

fn setting(key: &'static str, value: &str) -> Setting {
    Setting {
        key,
        value: toml::Value::String(value.to_string()),
    }
}

/// A number without a needless `.0`.
/// `value` with its noun, singular for exactly 1: "1 message a minute", "3 messages a minute".
fn counted(value: f64, one: &str, many: &str) -> String {
    let n = num(value);
    format!("{n} {}", if n == "1" { one } else { many })
}

fn num(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn percent(share: f64) -> String {
    format!("{}%", num((share * 100.0 * 10.0).round() / 10.0))
}

/// Time between changes, e.g. `3s`.
fn change_period(a: &Answers) -> String {
    let ms = (60_000.0 / a.changes_per_minute).round().max(1.0) as u64;
    duration::format(Duration::from_millis(ms))
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::HumanDuration;

    fn answers(f: impl FnOnce(&mut Answers)) -> Answers {
        let mut a = Answers::default();
        f(&mut a);
        a
    }

    /// Every leaf of the tree, reached through the pure core.
    #[test]
    fn every_leaf_of_the_tree() {
        use TransportKind::*;
        // (bidirectional, server_push, changes_per_minute) → transport, questions asked
        let cases: &[(bool, bool, f64, TransportKind, usize)] = &[
            (true, true, 20.0, Websocket, 1),
            (true, false, 0.5, Websocket, 1),
            (false, true, 20.0, Sse, 2),
            (false, true, 0.1, Sse, 2),
            (false, false, 20.0, LongPolling, 3),
            (false, false, 2.5, LongPolling, 3),
            (false, false, 2.0, Polling, 3), // exactly every 30 s is not "more often"
            (false, false, 0.5, Polling, 3),
        ];
        for &(bidirectional, server_push, cpm, expected, asked) in cases {
            let a = answers(|a| {
                a.bidirectional = bidirectional;
                a.server_push = server_push;
                a.changes_per_minute = cpm;
            });
            let (transport, path) = walk(&a);
            assert_eq!(
                transport, expected,
                "{bidirectional} {server_push} {cpm}: {path:?}"
            );
            let questions = path.iter().filter(|l| l.contains('?')).count();
            assert_eq!(questions, asked, "{path:?}");
            assert!(
                path.iter()
                    .any(|l| l.ends_with(&format!("→ {}", expected.title()))),
                "{path:?}"
            );
            assert_eq!(recommend(&a).transport, expected);
        }
    }

    #[test]
    fn path_reads_as_words() {
        let a = answers(|a| {
            a.server_push = false;
            a.changes_per_minute = 20.0;
        });
        let (_, path) = walk(&a);
        assert_eq!(
            path,
            vec![
                "1. Need bidirectional communication (both client and server send frequently)? no \
                 (each client sends 0 messages a minute)",
                "2. Does the server need to push data to the client? no",
                "3. Does data change frequently (more often than every 30 seconds)? yes (20 changes a \
                 minute, one every 3s) → Long polling",
            ]
        );
    }

    #[test]
    fn every_step_of_the_tree_is_reachable_and_every_leaf_is_a_transport() {
        let mut leaves: Vec<TransportKind> = TREE
            .iter()
            .flat_map(|b| [b.yes, b.no])
            .filter_map(|n| match n {
                Next::Leaf(t) => Some(t),
                Next::Ask(step) => {
                    assert!(TREE.iter().any(|b| b.step == step));
                    None
                }
            })
            .collect();
        leaves.sort();
        assert_eq!(leaves, TransportKind::ALL.to_vec());
    }

    #[test]
    fn runner_up_differs_and_depends_on_the_environment() {
        use TransportKind::*;
        let plain = Answers::default();
        let proxied = answers(|a| a.corporate_proxies = true);
        let cases = [
            (Websocket, &plain, Sse),
            (Sse, &plain, Websocket),
            (Sse, &proxied, LongPolling),
            (LongPolling, &plain, Polling),
            (Polling, &plain, LongPolling),
        ];
        for (t, a, expected) in cases {
            let r = runner_up(t, a);
            assert_eq!(r.transport, expected, "{t}");
            assert!(r.when.starts_with("if "), "{}", r.when);
        }
    }

    fn ids(a: &Answers, t: TransportKind) -> Vec<&'static str> {
        mitigations(a, t).iter().map(|m| m.id).collect()
    }

    /// Every mitigation rule, table-driven: (answers, transport) → the rules that fire.
    #[test]
    fn every_mitigation_rule() {
        use TransportKind::*;
        let quiet = answers(|a| {
            a.mobile_share = 0.0;
            a.load_balancer = LoadBalancer::None;
        });
        let mobile = answers(|a| {
            a.mobile_share = 0.7;
            a.load_balancer = LoadBalancer::None;
        });
        let round_robin = answers(|a| {
            a.mobile_share = 0.0;
            a.load_balancer = LoadBalancer::RoundRobin;
        });
        let sticky = answers(|a| {
            a.mobile_share = 0.0;
            a.load_balancer = LoadBalancer::Sticky;
        });
        let proxies = answers(|a| {
            a.mobile_share = 0.0;
            a.load_balancer = LoadBalancer::None;
            a.corporate_proxies = true;
        });
        let cdn = answers(|a| {
            a.mobile_share = 0.0;
            a.load_balancer = LoadBalancer::None;
            a.cdn = true;
        });
        let everything = answers(|a| {
            a.mobile_share = 0.5;
            a.load_balancer = LoadBalancer::RoundRobin;
            a.corporate_proxies = true;
            a.cdn = true;
        });
        let cases: &[(&str, &Answers, TransportKind, &[&str])] = &[
            ("quiet sse", &quiet, Sse, &["backoff"]),
            ("quiet websocket", &quiet, Websocket, &["backoff"]),
            ("quiet long polling", &quiet, LongPolling, &["backoff"]),
            ("quiet polling", &quiet, Polling, &["polling-interval"]),
            (
                "mobile sse",
                &mobile,
                Sse,
                &["heartbeat", "backoff", "resume"],
            ),
            (
                "mobile websocket",
                &mobile,
                Websocket,
                &["heartbeat", "backoff", "resume"],
            ),
            (
                "mobile long polling",
                &mobile,
                LongPolling,
                &["long-poll-hold", "backoff", "resume"],
            ),
            ("mobile polling", &mobile, Polling, &["polling-interval"]),
            (
                "round-robin sse",
                &round_robin,
                Sse,
                &["heartbeat", "backoff"],
            ),
            (
                "round-robin long polling",
                &round_robin,
                LongPolling,
                &["backoff", "sticky-sessions"],
            ),
            ("sticky long polling", &sticky, LongPolling, &["backoff"]),
            (
                "proxies sse",
                &proxies,
                Sse,
                &["heartbeat", "backoff", "accel-buffering"],
            ),
            (
                "proxies websocket",
                &proxies,
                Websocket,
                &["heartbeat", "backoff", "websocket-fallback"],
            ),
            (
                "cdn sse",
                &cdn,
                Sse,
                &["heartbeat", "backoff", "accel-buffering"],
            ),
            ("cdn websocket", &cdn, Websocket, &["heartbeat", "backoff"]),
            (
                "everything websocket",
                &everything,
                Websocket,
                &[
                    "heartbeat",
                    "long-poll-hold",
                    "backoff",
                    "resume",
                    "websocket-fallback",
                    "sticky-sessions",
                ],
            ),
            (
                "everything sse",
                &everything,
                Sse,
                &["heartbeat", "backoff", "resume", "accel-buffering"],
            ),
        ];
        for (name, a, t, expected) in cases {
            assert_eq!(ids(a, *t), expected.to_vec(), "{name}");
            for rule in RULES.iter().filter(|r| (r.applies)(a, *t)) {
                assert_eq!((rule.build)(a, *t).id, rule.id, "{name}");
            }
        }
        // Every rule fires in at least one case of the table above.
        for rule in RULES {
            assert!(
                cases
                    .iter()
                    .any(|(_, a, t, _)| ids(a, *t).contains(&rule.id)),
                "rule {} never fires",
                rule.id
            );
        }
    }

    #[test]
    fn mitigations_carry_reason_source_and_the_brief_figures() {
        let a = answers(|a| {
            a.mobile_share = 0.7;
            a.corporate_proxies = true;
        });
        for t in TransportKind::ALL {
            for m in mitigations(&a, t) {
                assert!(!m.title.is_empty() && !m.reason.is_empty(), "{}", m.id);
                assert!(
                    m.source.starts_with("REFERENCE.md") || m.source.starts_with("design brief"),
                    "{}: {}",
                    m.id,
                    m.source
                );
            }
        }
        let ws = mitigations(&a, TransportKind::Websocket);
        let heartbeat = &ws[0];
        assert!(
            heartbeat.reason.contains("70% of your clients"),
            "{}",
            heartbeat.reason
        );
        assert!(heartbeat.reason.contains("30–60 s") && heartbeat.reason.contains("15–30 s"));
        let backoff = ws.iter().find(|m| m.id == "backoff").unwrap();
        assert!(backoff.title.contains("1 s, 2 s, 4 s, 8 s") && backoff.title.contains("jitter"));
        let sse = mitigations(&a, TransportKind::Sse);
        let accel = sse.iter().find(|m| m.id == "accel-buffering").unwrap();
        assert!(accel.title.contains("X-Accel-Buffering: no") && accel.title.contains("fall back"));
        assert!(
            accel.reason.contains("about 27 of your 300-byte events"),
            "{}",
            accel.reason
        );
    }

    #[test]
    fn polling_interval_follows_the_budget_within_bounds() {
        let cases = [
            (500, 1_000),
            (1_000, 1_000),
            (5_000, 5_000),
            (300_000, 60_000),
        ];
        for (budget_ms, interval_ms) in cases {
            let a = answers(|a| a.latency_budget = HumanDuration(Duration::from_millis(budget_ms)));
            assert_eq!(polling_interval_for(&a), Duration::from_millis(interval_ms));
        }
        let tight = answers(|a| a.latency_budget = HumanDuration(Duration::from_millis(200)));
        let m = polling_interval(&tight, TransportKind::Polling);
        assert!(
            m.reason.contains("long polling (the runner-up)"),
            "{}",
            m.reason
        );
    }

    #[test]
    fn notes_flag_answers_that_pull_against_each_other() {
        let a = answers(|a| {
            a.bidirectional = true;
            a.upstream_per_minute = 0.0;
        });
        assert_eq!(notes(&a).len(), 1);
        let a = answers(|a| a.upstream_per_minute = 30.0);
        assert!(notes(&a)[0].contains("answer yes to step 1"));
        assert!(notes(&Answers::default()).is_empty());
    }
}
