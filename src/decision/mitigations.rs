//! The mitigation rules: what an environment demands of a transport, each with its reason, its source
//! figure (rows of `docs/references.md`) and the profile settings that apply it.
//!
//! Pure functions of a [`Situation`] and a transport; every rule is tested without a terminal.

use std::time::Duration;

use serde::Serialize;

use super::{LoadBalancer, Situation};
use crate::duration;
use crate::transport::TransportKind;

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
    /// The figure it rests on and where it comes from (rows of docs/references.md).
    pub source: String,
    /// Profile keys the written profile sets to apply it (empty when the simulator cannot model it).
    pub settings: Vec<Setting>,
}

/// A mitigation rule: when it applies, and what it says.
#[derive(Clone, Copy)]
pub struct Rule {
    /// Stable identifier, the same as the produced [`Mitigation::id`].
    pub id: &'static str,
    /// Whether the rule applies to these answers and this transport.
    pub applies: fn(&Situation, TransportKind) -> bool,
    /// The mitigation, worded for these answers and this transport.
    pub build: fn(&Situation, TransportKind) -> Mitigation,
}

/// Every mitigation rule, in the order the recommendation lists them.
pub const RULES: [Rule; 9] = [
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
    Rule {
        id: "upstream-acks",
        applies: upstream_acks_applies,
        build: upstream_acks,
    },
];

/// The mitigations every applicable rule gives for `transport`, in [`RULES`] order.
pub fn mitigations(a: &Situation, transport: TransportKind) -> Vec<Mitigation> {
    RULES
        .iter()
        .filter(|rule| (rule.applies)(a, transport))
        .map(|rule| (rule.build)(a, transport))
        .collect()
}

// ---- the rules -------------------------------------------------------------------------------------

/// SSE and WebSocket hold one connection open for a long time.
fn long_lived(t: TransportKind) -> bool {
    matches!(t, TransportKind::Sse | TransportKind::Websocket)
}

/// Long polling is in use: chosen, or as WebSocket's fallback behind corporate proxies.
fn uses_long_polling(a: &Situation, t: TransportKind) -> bool {
    t == TransportKind::LongPolling || (t == TransportKind::Websocket && a.corporate_proxies)
}

/// Middleboxes on the path that cut idle connections: (what happens, source figure).
fn idle_cutters(a: &Situation) -> Vec<(String, &'static str)> {
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

fn heartbeat_applies(a: &Situation, t: TransportKind) -> bool {
    long_lived(t) && !idle_cutters(a).is_empty()
}

fn heartbeat(a: &Situation, t: TransportKind) -> Mitigation {
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
        source: format!("docs/references.md: {}", sources.join("; ")),
        settings,
    }
}

fn long_poll_hold_applies(a: &Situation, t: TransportKind) -> bool {
    uses_long_polling(a, t) && a.mobile_share > 0.0
}

fn long_poll_hold(a: &Situation, t: TransportKind) -> Mitigation {
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
        source: "docs/references.md: mobile carrier NAT 30–60 s (design brief); Phoenix long-poll timeout 20 s"
            .to_string(),
        settings: vec![setting("long_polling.hold", "20s")],
    }
}

fn backoff_applies(_: &Situation, t: TransportKind) -> bool {
    t != TransportKind::Polling
}

fn backoff(a: &Situation, t: TransportKind) -> Mitigation {
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
            "docs/references.md: pain points — reconnect storms, fixed with jittered backoff; Socket.IO \
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

fn resume_applies(a: &Situation, t: TransportKind) -> bool {
    a.mobile_share > 0.0 && t != TransportKind::Polling
}

/// Events kept for replay: two minutes' worth, at least 1000.
pub fn history_for(a: &Situation) -> i64 {
    ((a.changes_per_minute * 2.0).ceil() as i64).clamp(1000, 10_000_000)
}

fn resume(a: &Situation, t: TransportKind) -> Mitigation {
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
        source: "docs/references.md: Wi-Fi → cellular switch kills every TCP connection; browsers' EventSource \
                 sends Last-Event-ID; Mercure replays history from Last-Event-ID"
            .to_string(),
        settings,
    }
}

fn accel_buffering_applies(a: &Situation, t: TransportKind) -> bool {
    t == TransportKind::Sse && (a.cdn || a.corporate_proxies)
}

fn accel_buffering(a: &Situation, _: TransportKind) -> Mitigation {
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
        source: "docs/references.md: nginx proxy_buffering on by default, `X-Accel-Buffering: no` turns it off, \
                 buffers one memory page (4 KiB on x86-64, measured)"
            .to_string(),
        settings: vec![Setting { key: "sse.accel_buffering_off", value: toml::Value::Boolean(true) }],
    }
}

fn websocket_fallback_applies(a: &Situation, t: TransportKind) -> bool {
    t == TransportKind::Websocket && a.corporate_proxies
}

fn websocket_fallback(_: &Situation, _: TransportKind) -> Mitigation {
    Mitigation {
        id: "websocket-fallback",
        title: "Fall back to long polling when a proxy refuses the WebSocket upgrade".to_string(),
        reason: "Corporate proxies may not pass the `Upgrade` header; without a fallback the clients \
                 behind them get nothing at all."
            .to_string(),
        source: "docs/references.md: corporate proxies may not pass the `Upgrade` header (Spring/SockJS docs); \
                 Socket.IO starts on long polling, SignalR falls back WebSockets → SSE → long polling"
            .to_string(),
        settings: vec![setting("websocket.fallback", "long-polling")],
    }
}

fn sticky_sessions_applies(a: &Situation, t: TransportKind) -> bool {
    uses_long_polling(a, t) && a.load_balancer == LoadBalancer::RoundRobin
}

fn sticky_sessions(_: &Situation, t: TransportKind) -> Mitigation {
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
        source: "docs/references.md: pain points — long polling behind a load balancer without sticky sessions \
                 fails (\"Session ID unknown\")"
            .to_string(),
        settings: Vec::new(),
    }
}

fn polling_interval_applies(_: &Situation, t: TransportKind) -> bool {
    t == TransportKind::Polling
}

/// Polling interval that meets the latency budget: the budget, kept between 1 s and 60 s.
pub fn polling_interval_for(a: &Situation) -> Duration {
    // Half the budget: an event waits up to a whole interval, plus the network, and the budget holds
    // at a high percentile, so an interval equal to the budget would miss it.
    let ms = (a.latency_budget.0.as_millis() / 2).clamp(1_000, 60_000) as u64;
    Duration::from_millis(ms)
}

fn polling_interval(a: &Situation, _: TransportKind) -> Mitigation {
    let interval = polling_interval_for(a);
    let mut reason = format!(
        "A change waits up to one interval before the next poll sees it, so the interval is half your \
         latency budget ({}), leaving room for the network; data changes about every {}.",
        a.latency_budget,
        change_period(a)
    );
    if a.latency_budget.0 < Duration::from_secs(2) {
        reason.push_str(&format!(
            " A budget under 2 s would take more than one request a second from each of {} clients: long \
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

fn upstream_acks_applies(a: &Situation, _: TransportKind) -> bool {
    a.upstream_per_minute > 0.0
}

fn upstream_acks(a: &Situation, t: TransportKind) -> Mitigation {
    let carrier = if t == TransportKind::Websocket {
        "frame"
    } else {
        "`POST /messages`"
    };
    Mitigation {
        id: "upstream-acks",
        title: "Keep each message the client sends in an outbox until the server acknowledges it; resend \
                after a reconnect, and drop duplicates at the server by message id"
            .to_string(),
        reason: format!(
            "Each client sends {}. A client that writes a {carrier} into a connection \
             that has silently died (a NAT timeout, a network switch) loses what it wrote: TCP accepts \
             the bytes and nobody ever reads them. Only an acknowledgement tells the client a message \
             arrived.",
            counted(a.upstream_per_minute, "message a minute", "messages a minute")
        ),
        source: "design brief: the standard mitigation for messages lost on a dead connection — \
                 acknowledge, resend, deduplicate (Socket.IO acknowledgements; Phoenix push replies)"
            .to_string(),
        settings: vec![Setting {
            key: "workload.upstream_acks",
            value: toml::Value::Boolean(true),
        }],
    }
}

// ---- wording helpers --------------------------------------------------------------------------------

fn setting(key: &'static str, value: &str) -> Setting {
    Setting {
        key,
        value: toml::Value::String(value.to_string()),
    }
}

/// `value` with its noun, singular for exactly 1: "1 message a minute", "3 messages a minute".
pub(crate) fn counted(value: f64, one: &str, many: &str) -> String {
    let n = num(value);
    format!("{n} {}", if n == "1" { one } else { many })
}

/// A number without a needless `.0`.
pub(crate) fn num(value: f64) -> String {
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
pub(crate) fn change_period(a: &Situation) -> String {
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

    fn answers(f: impl FnOnce(&mut Situation)) -> Situation {
        let mut a = Situation::default();
        f(&mut a);
        a
    }

    fn ids(a: &Situation, t: TransportKind) -> Vec<&'static str> {
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
        let chatty = answers(|a| {
            a.mobile_share = 0.0;
            a.load_balancer = LoadBalancer::None;
            a.upstream_per_minute = 4.0;
        });
        let everything = answers(|a| {
            a.mobile_share = 0.5;
            a.load_balancer = LoadBalancer::RoundRobin;
            a.corporate_proxies = true;
            a.cdn = true;
        });
        let cases: &[(&str, &Situation, TransportKind, &[&str])] = &[
            ("quiet sse", &quiet, Sse, &["backoff"]),
            (
                "chat websocket",
                &chatty,
                Websocket,
                &["backoff", "upstream-acks"],
            ),
            (
                "chat polling",
                &chatty,
                Polling,
                &["polling-interval", "upstream-acks"],
            ),
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
                    m.source.starts_with("docs/references.md")
                        || m.source.starts_with("design brief"),
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
            (2_000, 1_000),
            (5_000, 2_500),
            (60_000, 30_000),
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
}
