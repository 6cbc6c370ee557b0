//! "What this means": short plain-English sentences per scenario, generated from the numbers only.
//!
//! Pure functions from a [`Report`] to text. They say what the metrics show and name the mechanism the
//! plan and metrics point to (a polling interval, silent connection deaths, a buffering proxy); they never
//! guess beyond the numbers, and they carry no markup (the HTML and Markdown exporters escape and format).

use crate::metrics::RunMetrics;
use crate::scenario::{Plan, Scenario};
use crate::transport::TransportKind;

use super::{label, Report, RunResult};

/// The sentences for one scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioInsights {
    /// The scenario's name.
    pub scenario: String,
    /// The scenario's description as the profile wrote it ("" when it has none).
    pub description: String,
    /// What the network does to the clients in this scenario, in words.
    pub conditions: String,
    /// The findings, most important first.
    pub sentences: Vec<String>,
}

/// The findings for every scenario, in plan order.
pub fn insights(report: &Report) -> Vec<ScenarioInsights> {
    report
        .by_scenario()
        .into_iter()
        .map(|(scenario, runs)| ScenarioInsights {
            scenario: scenario.name.clone(),
            description: scenario.description.clone(),
            conditions: conditions(scenario),
            sentences: scenario_sentences(&report.plan, scenario, &runs),
        })
        .collect()
}

impl ScenarioInsights {
    /// The profile's description of the scenario, then the faults in words: "A deploy restarts the
    /// server mid-match. Faults: a server restart at 5 min (5 s down)."
    pub fn summary(&self) -> String {
        let description = self.description.trim();
        if description.is_empty() {
            return self.conditions.clone();
        }
        let end = if description.ends_with(['.', '!', '?']) {
            ""
        } else {
            "."
        };
        format!("{description}{end} {}", self.conditions)
    }
}

/// The faults a scenario injects, in words ("no faults: a steady network" when none).
pub fn conditions(scenario: &Scenario) -> String {
    let mut parts = Vec::new();
    if let Some(nat) = &scenario.nat {
        let then = match nat.expired {
            crate::profile::NatExpiry::Drop => "drops their traffic silently both ways",
            crate::profile::NatExpiry::Reset => "resets whichever side writes next",
            crate::profile::NatExpiry::Remap => {
                "maps a client's next write anew and resets a server that writes first"
            }
        };
        parts.push(format!(
            "a NAT that forgets connections idle for {} and then {then} (`expired = \"{}\"`)",
            fmt_duration_s(nat.idle_timeout.as_secs_f64()),
            nat.expired.as_str()
        ));
    }
    if let Some(proxy) = &scenario.proxy {
        let mut what = Vec::new();
        if proxy.buffer_bytes > 0 {
            let streamed = proxy.upstream_http == crate::profile::UpstreamHttp::Http11;
            let held = if streamed {
                format!(
                    "buffers whole responses up to {} but passes streams as they come",
                    counted(proxy.buffer_bytes as f64, "byte", "bytes")
                )
            } else {
                format!(
                    "holds responses, head and body, until {} gathered",
                    counted(proxy.buffer_bytes as f64, "byte", "bytes")
                )
            };
            // Whether `X-Accel-Buffering: no` is honoured is what tells two such proxies apart.
            what.push(format!(
                "{held} {}",
                if proxy.honor_accel_buffering {
                    "unless they say `X-Accel-Buffering: no`"
                } else {
                    "whatever they say (`X-Accel-Buffering: no` ignored)"
                }
            ));
        }
        if proxy.block_websocket {
            what.push("refuses WebSocket upgrades".to_string());
        } else if !proxy.pass_upgrade {
            what.push("does not pass WebSocket upgrades (the server answers 400)".to_string());
        }
        if let Some(t) = proxy.read_timeout {
            what.push(format!(
                "cuts responses silent for {}",
                fmt_duration_s(t.as_secs_f64())
            ));
        }
        let name = match proxy.like {
            Some(like) => format!("a proxy like {}", like.as_str()),
            None => "a proxy".to_string(),
        };
        if what.is_empty() {
            parts.push(format!("{name}, passing everything through"));
        } else {
            parts.push(format!("{name} that {}", join_and(&what)));
        }
    }
    if let Some(switch) = &scenario.switch {
        parts.push(format!(
            "clients switching networks about every {} ({} without network each time; {})",
            fmt_duration_s(switch.every.as_secs_f64()),
            fmt_duration_s(switch.outage.as_secs_f64()),
            if switch.notify {
                "clients are told, the server is not"
            } else {
                "neither end is told"
            }
        ));
    }
    if let Some(restart) = &scenario.restart {
        parts.push(format!(
            "a server restart at {} ({} down)",
            fmt_duration_s(restart.at.as_secs_f64()),
            fmt_duration_s(restart.down.as_secs_f64())
        ));
    }
    if let Some(balancer) = &scenario.balancer {
        parts.push(format!(
            "a {} load balancer in front of the replicas that closes connections silent for {}",
            balancer.policy.as_str(),
            fmt_duration_s(balancer.idle_timeout.as_secs_f64())
        ));
    }
    if let Some(deploy) = &scenario.deploy {
        let drain = if deploy.drain.is_zero() {
            "each stopped without a drain".to_string()
        } else if deploy.close_spread.is_zero() {
            format!(
                "each drained for {} first",
                fmt_duration_s(deploy.drain.as_secs_f64())
            )
        } else {
            format!(
                "each drained for {} first, its connections closed over {}",
                fmt_duration_s(deploy.drain.as_secs_f64()),
                fmt_duration_s(deploy.close_spread.as_secs_f64())
            )
        };
        parts.push(format!(
            "a rolling deploy from {} restarting one replica every {} ({drain}, {} down)",
            fmt_duration_s(deploy.at.as_secs_f64()),
            fmt_duration_s(deploy.every.as_secs_f64()),
            fmt_duration_s(deploy.down.as_secs_f64())
        ));
    }
    if let Some(scale_out) = &scenario.scale_out {
        parts.push(format!(
            "{} added at {}",
            counted(scale_out.add as f64, "replica", "replicas"),
            fmt_duration_s(scale_out.at.as_secs_f64())
        ));
    }
    if parts.is_empty() {
        "No faults: a steady network.".to_string()
    } else {
        format!("Faults: {}.", join_and(&parts))
    }
}

fn scenario_sentences(plan: &Plan, scenario: &Scenario, runs: &[&RunResult]) -> Vec<String> {
    let mut out = Vec::new();
    if runs.is_empty() {
        return out;
    }
    if let Some(first) = runs.first() {
        let published = first.metrics.published;
        if published < crate::metrics::MIN_EVENTS_FOR_PERCENTILES {
            out.push(small_sample(published));
        }
    }
    out.extend(latency(plan, scenario, runs));
    out.extend(losses(plan, scenario, runs));
    out.extend(upstream_losses(runs));
    out.extend(session_refusals(scenario, runs));
    out.extend(cost(runs));
    for run in runs.iter().filter(|r| r.metrics.duplicates > 0) {
        out.push(format!(
            "{} delivered {} duplicate copies of events clients already had.",
            label(run.transport),
            run.metrics.duplicates
        ));
    }
    out
}

/// The WebSocket fallback's sessions refused by replicas that do not hold them: why, and the fix.
fn session_refusals(scenario: &Scenario, runs: &[&RunResult]) -> Vec<String> {
    let policy = scenario
        .balancer
        .as_ref()
        .map_or("load", |b| b.policy.as_str());
    runs.iter()
        .filter_map(|run| {
            let refused = run.metrics.session_refusals.filter(|&n| n > 0)?;
            Some(format!(
                "{}'s long-polling fallback had {} refused with 400 \"Session ID unknown\": a session \
                 lives on the server that opened it, and the {policy} balancer sent its other requests \
                 elsewhere ({} in all); sticky sessions at the balancer keep it on its server, as \
                 Socket.IO and SignalR require.",
                label(run.transport),
                counted(refused as f64, "request", "requests"),
                counted(run.metrics.reconnects as f64, "reconnect", "reconnects"),
            ))
        })
        .collect()
}

fn latency(plan: &Plan, scenario: &Scenario, runs: &[&RunResult]) -> Vec<String> {
    let delivering: Vec<&&RunResult> = runs.iter().filter(|r| r.metrics.delivered > 0).collect();
    let mut out = Vec::new();
    for run in runs.iter().filter(|r| r.metrics.delivered == 0) {
        out.push(format!(
            "{} delivered no event at all.",
            label(run.transport)
        ));
    }
    let p95 = |r: &RunResult| r.metrics.latency_ms.p95.unwrap_or(f64::INFINITY);
    let (Some(fast), Some(slow)) = (
        delivering.iter().min_by(|a, b| p95(a).total_cmp(&p95(b))),
        delivering.iter().max_by(|a, b| p95(a).total_cmp(&p95(b))),
    ) else {
        return out;
    };
    let (fast_p95, slow_p95) = (p95(fast), p95(slow));
    if delivering.len() < 2 || slow_p95 < fast_p95 * 1.5 + 5.0 {
        out.push(format!(
            "Latency is alike across transports: p95 between {} and {}.",
            fmt_ms(fast_p95),
            fmt_ms(slow_p95)
        ));
        return out;
    }
    let fastest: Vec<TransportKind> = delivering
        .iter()
        .filter(|r| p95(r) <= fast_p95 * 1.1 + 1.0)
        .map(|r| r.transport)
        .collect();
    let why = match slow.transport {
        TransportKind::Polling => format!(
            ": a client only asks every {}, so an event waits for the next request",
            fmt_duration_s(plan.settings.polling_interval.as_secs_f64())
        ),
        TransportKind::Sse if buffering_proxy(plan, scenario) => {
            ": the proxy holds the event stream in its buffer".to_string()
        }
        _ => String::new(),
    };
    out.push(format!(
        "{} {} fastest (p95 {}); {} is slowest at p95 {}, {}× longer{}.",
        join_and(
            &fastest
                .iter()
                .map(|t| label(*t).to_string())
                .collect::<Vec<_>>()
        ),
        if fastest.len() == 1 { "is" } else { "are" },
        fmt_ms(fast_p95),
        label(slow.transport),
        fmt_ms(slow_p95),
        fmt_num(slow_p95 / fast_p95.max(0.001)),
        why
    ));
    out
}

fn buffering_proxy(plan: &Plan, scenario: &Scenario) -> bool {
    scenario.proxy.as_ref().is_some_and(|p| {
        p.buffer_bytes > 0
            && p.upstream_http == crate::profile::UpstreamHttp::Http10
            && !(p.honor_accel_buffering && plan.settings.sse_accel_buffering_off)
    })
}

fn losses(plan: &Plan, scenario: &Scenario, runs: &[&RunResult]) -> Vec<String> {
    let mut out = lost_or_kept(plan, scenario, runs);
    for run in runs.iter().filter(|r| r.metrics.stranded > 0) {
        let m = &run.metrics;
        out.push(format!(
            "{} had {} deliveries still held by the {} when the run ended: stranded, not lost — they \
             would arrive once it released them, so their number depends on the run's length.",
            label(run.transport),
            m.stranded,
            join_and(&m.stranded_in)
        ));
    }
    out
}

fn lost_or_kept(plan: &Plan, scenario: &Scenario, runs: &[&RunResult]) -> Vec<String> {
    let mut out = Vec::new();
    let losing: Vec<&&RunResult> = runs.iter().filter(|r| r.metrics.lost > 0).collect();
    if losing.is_empty() {
        let reconnecting: Vec<String> = runs
            .iter()
            .filter(|r| r.metrics.reconnects > 0)
            .map(|r| format!("{} ({})", label(r.transport), r.metrics.reconnects))
            .collect();
        if reconnecting.is_empty() {
            out.push("No transport lost an event.".to_string());
        } else {
            out.push(format!(
                "No transport lost an event, though some had to reconnect: {}.",
                join_and(&reconnecting)
            ));
        }
        return out;
    }
    for run in losing {
        out.push(loss_sentence(plan, scenario, run.transport, &run.metrics));
    }
    out
}

fn loss_sentence(
    plan: &Plan,
    scenario: &Scenario,
    transport: TransportKind,
    m: &RunMetrics,
) -> String {
    let mut why = Vec::new();
    if let Some(proxy) = scenario.proxy.as_ref().filter(|p| p.buffer_bytes > 0) {
        let passes = (plan.settings.sse_accel_buffering_off && proxy.honor_accel_buffering)
            || proxy.upstream_http == crate::profile::UpstreamHttp::Http11;
        if transport == TransportKind::Sse && !passes {
            why.push(format!(
                "the proxy held the event stream in its {}-byte buffer ({}), so the stream looked \
                 silent and clients gave up on it",
                proxy.buffer_bytes,
                if plan.settings.sse_accel_buffering_off {
                    "it ignores X-Accel-Buffering: no"
                } else {
                    "the server does not send X-Accel-Buffering: no"
                }
            ));
        }
    }
    if m.refused_upgrades > 0 && m.fallbacks == 0 {
        why.push(format!(
            "{} WebSocket upgrades were refused and clients had no fallback",
            m.refused_upgrades
        ));
    }
    if m.undetected > 0 {
        why.push(format!(
            "{} connection{} died silently and {} never noticed (no heartbeat or ping revealed {})",
            m.undetected,
            if m.undetected == 1 { "" } else { "s" },
            if m.undetected == 1 { "was" } else { "were" },
            if m.undetected == 1 { "it" } else { "them" },
        ));
    }
    if m.detections > 0 {
        let cause = match (scenario.nat.is_some(), scenario.switch.is_some()) {
            (true, true) => " (NAT timeouts and network switches)",
            (true, false) => " (NAT timeouts)",
            (false, true) => " (network switches)",
            (false, false) => "",
        };
        why.push(format!(
            "{} connection{} died silently{} and clients took a median {} to notice",
            m.detections,
            if m.detections == 1 { "" } else { "s" },
            cause,
            m.time_to_detect_ms.p50.map_or("—".to_string(), fmt_ms)
        ));
    }
    if m.fallbacks > 0 {
        why.push(format!(
            "{} had to fall back after a refused WebSocket upgrade",
            counted(m.fallbacks as f64, "client", "clients")
        ));
    }
    if m.reconnects > 0 {
        why.push(format!(
            "events published while its {} were under way did not all arrive",
            counted(m.reconnects as f64, "reconnect", "reconnects")
        ));
    }
    let mut sentence = format!(
        "{} lost {} of {} owed deliveries ({})",
        label(transport),
        m.lost,
        m.expected,
        fmt_share(m.lost, m.expected)
    );
    if !why.is_empty() {
        sentence.push_str(": ");
        sentence.push_str(&join_and(&why));
    }
    if m.disconnected_s > 0.0 {
        sentence.push_str(&format!(
            "; in total clients spent {} without a working connection",
            fmt_duration_s(m.disconnected_s)
        ));
    }
    sentence.push('.');
    sentence
}

fn cost(runs: &[&RunResult]) -> Vec<String> {
    let mut out = Vec::new();
    let by = |f: fn(&RunMetrics) -> f64| {
        let min = runs
            .iter()
            .min_by(|a, b| f(&a.metrics).total_cmp(&f(&b.metrics)))?;
        let max = runs
            .iter()
            .max_by(|a, b| f(&a.metrics).total_cmp(&f(&b.metrics)))?;
        Some((*min, *max))
    };
    if let Some((cheap, dear)) = by(|m| m.requests_per_second) {
        let (lo, hi) = (
            cheap.metrics.requests_per_second,
            dear.metrics.requests_per_second,
        );
        if cheap.transport != dear.transport && hi > lo * 1.5 {
            out.push(format!(
                "Server load: {} makes {}, {} only {}{}.",
                label(dear.transport),
                counted(hi, "request/s", "requests/s"),
                label(cheap.transport),
                fmt_num(lo),
                if lo > 0.0 {
                    format!(" ({}× fewer)", fmt_num(hi / lo))
                } else {
                    String::new()
                }
            ));
        }
    }
    let delivering: Vec<&RunResult> = runs
        .iter()
        .copied()
        .filter(|r| r.metrics.delivered > 0)
        .collect();
    let bytes = |r: &RunResult| r.metrics.bytes_per_delivery.unwrap_or(f64::INFINITY);
    if let (Some(cheap), Some(dear)) = (
        delivering
            .iter()
            .min_by(|a, b| bytes(a).total_cmp(&bytes(b))),
        delivering
            .iter()
            .max_by(|a, b| bytes(a).total_cmp(&bytes(b))),
    ) {
        if cheap.transport != dear.transport {
            out.push(format!(
                "On the wire, each delivered event costs {} with {} and {} with {}.",
                counted(bytes(cheap).round(), "byte", "bytes"),
                label(cheap.transport),
                counted(bytes(dear).round(), "byte", "bytes"),
                label(dear.transport)
            ));
        }
    }
    out
}

/// Upstream messages (client → server) that never reached the server, per transport.
fn upstream_losses(runs: &[&RunResult]) -> Vec<String> {
    runs.iter()
        .filter(|r| r.metrics.upstream_lost > 0)
        .map(|r| {
            let m = &r.metrics;
            let mut sentence = format!(
                "{} lost {} of {} messages clients sent to the server ({})",
                label(r.transport),
                m.upstream_lost,
                m.upstream_sent,
                fmt_share(m.upstream_lost, m.upstream_sent)
            );
            if m.upload_silent_deaths > 0 {
                sentence.push_str(&format!(
                    ": {} upload connection{} died silently and clients wrote into {}",
                    m.upload_silent_deaths,
                    if m.upload_silent_deaths == 1 { "" } else { "s" },
                    if m.upload_silent_deaths == 1 { "it" } else { "them" }
                ));
            }
            sentence.push_str(
                " — an outbox that resends until the server acknowledges ([workload] upstream_acks = true) keeps them.",
            );
            sentence
        })
        .collect()
}

/// The warning for percentiles drawn from too few events.
pub fn small_sample(published: u64) -> String {
    format!(
        "Only {published} event{} published: latency percentiles from fewer than {} events are rough; \
         run longer (duration) for firm figures.",
        if published == 1 { " was" } else { "s were" },
        crate::metrics::MIN_EVENTS_FOR_PERCENTILES
    )
}

/// `part` of `whole` as a percentage that is never rounded to 0 % or 100 % while it is neither:
/// "8.33%", "0.002%", "99.998%".
pub fn fmt_percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "—".to_string();
    }
    crate::decision::verdict::fmt_fraction(part as f64 / whole as f64)
}

/// A loss share for sentences: `fmt_percent` of the whole.
pub fn fmt_share(part: u64, whole: u64) -> String {
    fmt_percent(part, whole)
}

/// "a", "a and b", "a, b and c".
pub fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {}", init.join(", "), last),
    }
}

/// Milliseconds for people: "56 ms", "4.7 s", "2.0 min".
pub fn fmt_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{} ms", fmt_num(ms))
    } else {
        fmt_duration_s(ms / 1000.0)
    }
}

/// Seconds for people: "30 s", "4.5 s", "2.5 min", "1.2 h".
pub fn fmt_duration_s(s: f64) -> String {
    if s >= 3600.0 {
        format!("{} h", fmt_num(s / 3600.0))
    } else if s >= 120.0 {
        format!("{} min", fmt_num(s / 60.0))
    } else {
        format!("{} s", fmt_num(s))
    }
}

/// A number with its noun, singular for exactly 1 as shown: "1 event/s", "2 events/s", "0.5 events/s".
pub fn counted(x: f64, one: &str, many: &str) -> String {
    let n = fmt_num(x);
    let noun = if n == "1" { one } else { many };
    format!("{n} {noun}")
}

/// The decision module's number format, so that a figure reads the same in the verdict and the insights.
pub use crate::decision::verdict::fmt_num;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn scenarios_differing_in_one_key_read_differently_and_keep_their_description() {
        let plan = crate::scenario::Plan::from_text(
            "p.toml",
            r#"
name = "p"
duration = "30s"
clients = 2
[[scenario]]
name = "honours"
description = "nginx defaults"
proxy = { buffer_bytes = 8192, honor_accel_buffering = true }
[[scenario]]
name = "ignores"
proxy = { buffer_bytes = 8192, honor_accel_buffering = false }
"#,
        )
        .unwrap();
        let (a, b) = (
            conditions(&plan.scenarios[0]),
            conditions(&plan.scenarios[1]),
        );
        assert_ne!(a, b);
        assert!(a.contains("unless") && b.contains("ignored"), "{a} / {b}");
        let insight = ScenarioInsights {
            scenario: "honours".into(),
            description: plan.scenarios[0].description.clone(),
            conditions: a.clone(),
            sentences: Vec::new(),
        };
        assert_eq!(insight.summary(), format!("nginx defaults. {a}"));
    }

    #[test]
    fn one_is_singular() {
        assert_eq!(counted(1.0, "event/s", "events/s"), "1 event/s");
        assert_eq!(counted(1.0004, "event/s", "events/s"), "1 event/s");
        assert_eq!(counted(2.0, "event/s", "events/s"), "2 events/s");
        assert_eq!(counted(0.5, "event/s", "events/s"), "0.5 events/s");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_num(4718.6), "4719");
        assert_eq!(fmt_num(56.0), "56");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(4.5), "4.5");
        assert_eq!(fmt_ms(56.0), "56 ms");
        assert_eq!(fmt_ms(4718.6), "4.72 s");
        assert_eq!(fmt_ms(150_000.0), "2.5 min");
        assert_eq!(fmt_percent(50, 600), "8.33%");
        assert_eq!(fmt_percent(164_997, 165_000), "99.998%");
        assert_eq!(fmt_percent(3, 165_000), "0.002%");
        assert_eq!(fmt_percent(0, 10), "0%");
        assert_eq!(fmt_percent(10, 10), "100%");
        assert_eq!(fmt_percent(0, 0), "—");
        assert_eq!(
            join_and(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
    }

    #[test]
    fn the_transport_that_lost_events_is_named_with_its_cause() {
        let found = insights(&fixture::report());
        assert_eq!(found.len(), 2);
        let mobile = &found[1];
        assert_eq!(mobile.scenario, "mobile");
        assert!(
            mobile
                .conditions
                .contains("NAT that forgets connections idle for 30 s"),
            "{}",
            mobile.conditions
        );
        let loss = mobile
            .sentences
            .iter()
            .find(|s| s.starts_with("SSE lost"))
            .expect("SSE's loss is told");
        assert!(loss.contains("50 of 600 owed deliveries (8.33%)"), "{loss}");
        assert!(
            loss.contains("3 connections died silently (NAT timeouts and network switches)"),
            "{loss}"
        );
        assert!(loss.contains("median 30 s to notice"), "{loss}");
        assert!(!mobile
            .sentences
            .iter()
            .any(|s| s.starts_with("WebSocket lost")));
    }

    #[test]
    fn buffering_proxies_refused_upgrades_and_unnoticed_deaths_are_named() {
        let mut report = fixture::report();
        report.plan.scenarios[1].proxy = Some(crate::scenario::Proxy {
            buffer_bytes: 8192,
            honor_accel_buffering: true,
            block_websocket: true,
            read_timeout: None,
            like: None,
            upstream_http: crate::profile::UpstreamHttp::Http10,
            pass_upgrade: true,
        });
        report.plan.scenarios[1].restart = Some(crate::scenario::Restart {
            at: std::time::Duration::from_secs(30),
            down: std::time::Duration::from_secs(5),
        });
        for run in report.runs.iter_mut().filter(|r| r.scenario == "mobile") {
            if run.transport == TransportKind::Websocket {
                run.metrics.lost = 10;
                run.metrics.refused_upgrades = 4;
                run.metrics.undetected = 1;
            }
        }
        let mobile = &insights(&report)[1];
        assert!(
            mobile
                .conditions
                .contains("a server restart at 30 s (5 s down)"),
            "{}",
            mobile.conditions
        );
        let told = |who: &str| {
            mobile
                .sentences
                .iter()
                .find(|s| s.starts_with(who))
                .cloned()
                .unwrap_or_default()
        };
        let sse = told("SSE lost");
        assert!(
            sse.contains("held the event stream in its 8192-byte buffer"),
            "{sse}"
        );
        assert!(sse.contains("does not send X-Accel-Buffering: no"), "{sse}");
        let ws = told("WebSocket lost");
        assert!(
            ws.contains("4 WebSocket upgrades were refused and clients had no fallback"),
            "{ws}"
        );
        assert!(
            ws.contains("1 connection died silently and was never noticed"),
            "{ws}"
        );
    }

    #[test]
    fn balancer_deploy_and_scale_out_are_named_as_conditions() {
        let plan = crate::scenario::Plan::from_text(
            "t.toml",
            "name = \"t\"\nduration = \"5m\"\nclients = 10\n[server]\nreplicas = 3\n\
             [[scenario]]\nname = \"d\"\n[scenario.balancer]\npolicy = \"sticky\"\n\
             [scenario.deploy]\nat = \"1m\"\nevery = \"30s\"\ndrain = \"10s\"\n\
             close_spread = \"5s\"\n[scenario.scale_out]\nat = \"4m\"\nadd = 2\n",
        )
        .unwrap();
        assert_eq!(
            conditions(&plan.scenarios[0]),
            "Faults: a sticky load balancer in front of the replicas that closes connections silent \
             for 60 s, a rolling deploy from 60 s restarting one replica every 30 s (each drained for \
             10 s first, its connections closed over 5 s, 2 s down) and 2 replicas added at 4 min."
        );
    }

    #[test]
    fn polling_latency_is_explained_by_its_interval() {
        let found = insights(&fixture::report());
        let office = &found[0];
        assert_eq!(office.conditions, "No faults: a steady network.");
        assert!(
            !office.sentences.iter().any(|s| s.contains("Best fit")),
            "the verdict is the decision module's: {:?}",
            office.sentences
        );
        let latency = office
            .sentences
            .iter()
            .find(|s| s.contains("slowest"))
            .unwrap();
        assert!(
            latency.contains("Short polling is slowest at p95 5 s"),
            "{latency}"
        );
        assert!(
            latency.contains("a client only asks every 5 s"),
            "{latency}"
        );
        assert!(office
            .sentences
            .iter()
            .any(|s| s == "No transport lost an event."));
        let load = office
            .sentences
            .iter()
            .find(|s| s.starts_with("Server load"))
            .unwrap();
        assert!(
            load.contains("Long polling makes 10 requests/s, WebSocket only 0.17 (58.8× fewer)"),
            "{load}"
        );
    }
}
