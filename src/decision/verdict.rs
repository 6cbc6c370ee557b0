//! The verdict: every scenario × transport checked against every requirement, and one decision.
//!
//! [`decide`] takes the plan (its requirements, workload and scenarios) and what every run measured,
//! and returns a [`Verdict`]: the tree's candidate; one [`Check`] per scenario × transport ×
//! requirement (measured value, limit, pass/fail, margin); and the transport to use —
//! - the candidate, when it passes everywhere (*confirmed*);
//! - otherwise the *simplest* transport (polling < long polling < SSE < WebSocket) that passes
//!   everywhere, with the candidate's failures named and the mitigation that addresses each;
//! - if none passes, the one with the fewest failures, and what to relax or mitigate.
//!
//! With repeated seeds a requirement passes only when its whole 95 % interval does; one whose interval
//! straddles the limit is *inconclusive* (`pass: None`), and is said as such. Pure: no I/O, no
//! simulation, and nothing from `report` or `wizard`.

use serde::Serialize;
use serde_json::Value;

use super::mitigations::{mitigations, Mitigation};
use super::tree::candidate;
use super::{LoadBalancer, Situation};
use crate::duration::HumanDuration;
use crate::metrics::RunMetrics;
use crate::scenario::{Plan, Requirements, Scenario};
use crate::transport::TransportKind;

/// What one run measured, as the verdict reads it.
#[derive(Clone, Copy, Debug)]
pub struct Measured<'a> {
    /// The scenario's name.
    pub scenario: &'a str,
    /// The transport run.
    pub transport: TransportKind,
    /// The metrics (the mean over seeds when runs were repeated).
    pub metrics: &'a RunMetrics,
    /// With repeated seeds: the 95 % intervals, in the metrics' shape (`[low, high]` per number).
    pub ci95: Option<&'a Value>,
}

/// The requirement keys a run is checked against, as named in `[requirements]`.
pub const LATENCY: &str = "latency";
/// Owed deliveries lost, as a fraction.
pub const MAX_LOST: &str = "max_lost";
/// Upstream messages lost, as a fraction.
pub const MAX_UPSTREAM_LOST: &str = "max_upstream_lost";
/// The server's request rate.
pub const MAX_REQUESTS_PER_SECOND: &str = "max_requests_per_second";
/// Open connections on the busiest server (replica), scaled to the population.
pub const MAX_OPEN_CONNECTIONS_PER_SERVER: &str = "max_open_connections_per_server";
/// The deploy's peak reconnect attempts per second, scaled to the population.
pub const MAX_RECONNECTS_PER_SECOND: &str = "max_reconnects_per_second";
/// The longest time, after a restart, until every client was served again (ms).
pub const MAX_SERVED_AGAIN: &str = "max_served_again";

/// One requirement held against one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    pub scenario: String,
    pub transport: TransportKind,
    /// The `[requirements]` key: `latency`, `max_lost`, `max_upstream_lost`, `max_requests_per_second`,
    /// `max_open_connections_per_server`, `max_reconnects_per_second`, `max_served_again`.
    pub requirement: &'static str,
    /// What the run measured, in the limit's unit (ms for latency, a fraction for losses, requests/s);
    /// `None` when nothing was measured (no delivery, no message sent).
    pub measured: Option<f64>,
    /// The requirement's limit.
    pub limit: f64,
    /// Met (`true`), missed (`false`), or inconclusive (`None`: the 95 % interval straddles the limit,
    /// or there was nothing to measure).
    pub pass: Option<bool>,
    /// `limit - measured`, when measured.
    pub margin: Option<f64>,
    /// With repeated seeds: the measured value's 95 % interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<[f64; 2]>,
}

/// The one decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// The transport to use.
    pub transport: TransportKind,
    /// The decision tree's pick for these requirements.
    pub candidate: TransportKind,
    /// True when the candidate met every requirement in every scenario.
    pub confirmed: bool,
    /// The decision in one sentence.
    pub headline: String,
    /// One check per scenario × transport × requirement, in run order.
    pub checks: Vec<Check>,
    /// Why, in sentences: the path to the candidate's confirmation, or its failures with their
    /// mitigations and what was chosen instead.
    pub reasons: Vec<String>,
    /// The path through the decision tree, one line per question.
    pub path: Vec<String>,
}

impl Verdict {
    /// The checks of one scenario × transport.
    pub fn checks_of<'a>(
        &'a self,
        scenario: &'a str,
        transport: TransportKind,
    ) -> impl Iterator<Item = &'a Check> + 'a {
        self.checks
            .iter()
            .filter(move |c| c.scenario == scenario && c.transport == transport)
    }

    /// The checks `transport` failed or could not settle, in run order.
    pub fn problems(&self, transport: TransportKind) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.transport == transport && c.pass != Some(true))
            .collect()
    }
}

/// The situation a plan describes, for the tree and the mitigation rules: the requirements, the
/// workload, and the environment its scenarios simulate.
pub fn situation(plan: &Plan) -> Situation {
    let mut s = base_situation(plan);
    for scenario in &plan.scenarios {
        let one = scenario_situation(plan, scenario);
        s.mobile_share = s.mobile_share.max(one.mobile_share);
        s.corporate_proxies |= one.corporate_proxies;
        s.cdn |= one.cdn;
        s.load_balancer = stricter_balancer(s.load_balancer, one.load_balancer);
    }
    s
}

/// Of two balancers, the one whose advice applies: round-robin (clients move between servers) over
/// sticky over none.
fn stricter_balancer(a: LoadBalancer, b: LoadBalancer) -> LoadBalancer {
    let rank = |lb: LoadBalancer| match lb {
        LoadBalancer::None => 0,
        LoadBalancer::Sticky => 1,
        LoadBalancer::RoundRobin => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn base_situation(plan: &Plan) -> Situation {
    let r = &plan.requirements;
    Situation {
        bidirectional: r.bidirectional,
        server_push: r.server_push,
        changes_per_minute: plan.workload.events_per_second * 60.0,
        clients: plan.population.unwrap_or(plan.clients as u64) as i64,
        event_bytes: plan.workload.event_bytes as i64,
        upstream_per_minute: plan.workload.upstream_per_minute,
        mobile_share: 0.0,
        corporate_proxies: false,
        cdn: false,
        load_balancer: LoadBalancer::None,
        latency_budget: HumanDuration(r.latency),
        max_requests_per_second: r.max_requests_per_second,
    }
}

/// The environment one scenario simulates: its NAT or network switches are mobile clients, a proxy
/// that refuses upgrades or ignores `X-Accel-Buffering` a corporate proxy, a buffering one a CDN.
fn scenario_situation(plan: &Plan, scenario: &Scenario) -> Situation {
    let mut s = base_situation(plan);
    if scenario.nat.is_some() || scenario.switch.is_some() {
        s.mobile_share = 1.0;
    }
    if let Some(proxy) = &scenario.proxy {
        s.corporate_proxies = proxy.block_websocket || !proxy.honor_accel_buffering;
        s.cdn = proxy.buffer_bytes > 0 || proxy.read_timeout.is_some();
    }
    // Only a balancer in front of several replicas can move a client between servers.
    if let Some(balancer) = scenario
        .balancer
        .as_ref()
        .filter(|_| plan.servers.replicas > 1)
    {
        s.load_balancer = match balancer.policy {
            crate::profile::BalancePolicy::Sticky => LoadBalancer::Sticky,
            crate::profile::BalancePolicy::RoundRobin
            | crate::profile::BalancePolicy::LeastConnections => LoadBalancer::RoundRobin,
        };
    }
    s
}

/// The requirements `transport` is held to in a plan, in check order.
fn requirement_keys(plan: &Plan) -> Vec<&'static str> {
    let mut keys = vec![LATENCY, MAX_LOST];
    if plan.workload.upstream_per_minute > 0.0 {
        keys.push(MAX_UPSTREAM_LOST);
    }
    if plan.requirements.max_requests_per_second.is_some() {
        keys.push(MAX_REQUESTS_PER_SECOND);
    }
    if plan.requirements.max_open_connections_per_server.is_some() {
        keys.push(MAX_OPEN_CONNECTIONS_PER_SERVER);
    }
    if plan.requirements.max_reconnects_per_second.is_some() {
        keys.push(MAX_RECONNECTS_PER_SECOND);
    }
    if plan.requirements.max_served_again.is_some() {
        keys.push(MAX_SERVED_AGAIN);
    }
    keys
}

/// Whether a requirement speaks of this run: a deploy's reconnect peak only where the scenario
/// deploys, the time until served again only where it restarts something; the rest everywhere.
fn applies(run: &Measured, requirement: &str) -> bool {
    match requirement {
        MAX_RECONNECTS_PER_SECOND => run.metrics.deploy_peak_reconnects_per_second.is_some(),
        MAX_SERVED_AGAIN => run.metrics.served_again_s.is_some(),
        _ => true,
    }
}

/// Server-side figures scale from the simulated clients to the population they stand for.
pub fn scale(plan: &Plan) -> f64 {
    plan.population
        .map_or(1.0, |p| p as f64 / plan.clients.max(1) as f64)
}

/// A number's 95 % interval from a run's `ci95`, by its dotted path.
fn interval(ci: Option<&Value>, path: &[&str]) -> Option<[f64; 2]> {
    let range = path.iter().try_fold(ci?, |v, key| v.get(key))?;
    Some([range.get(0)?.as_f64()?, range.get(1)?.as_f64()?])
}

/// Checks one run against one requirement.
pub fn check(plan: &Plan, run: &Measured, requirement: &'static str) -> Check {
    let r: &Requirements = &plan.requirements;
    let m = run.metrics;
    let ratio = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
    let scale_interval = |i: Option<[f64; 2]>, by: f64| i.map(|[lo, hi]| [lo * by, hi * by]);
    let (measured, limit, range) = match requirement {
        LATENCY => {
            let p = r.latency_percentile;
            let key = format!("p{p}");
            (
                m.latency_ms.at(p),
                r.latency.as_secs_f64() * 1000.0,
                interval(run.ci95, &["latency_ms", &key]),
            )
        }
        MAX_LOST => (
            ratio(m.lost, m.expected),
            r.max_lost,
            scale_interval(
                interval(run.ci95, &["lost"]),
                1.0 / m.expected.max(1) as f64,
            ),
        ),
        MAX_UPSTREAM_LOST => (
            ratio(m.upstream_lost, m.upstream_sent),
            r.max_upstream_lost,
            scale_interval(
                interval(run.ci95, &["upstream_lost"]),
                1.0 / m.upstream_sent.max(1) as f64,
            ),
        ),
        MAX_OPEN_CONNECTIONS_PER_SERVER => (
            busiest_server_peak(m).map(|peak| peak * scale(plan)),
            r.max_open_connections_per_server.unwrap_or(f64::INFINITY),
            // The busiest replica's peak has no interval of its own: the seeds' mean is judged.
            None,
        ),
        MAX_RECONNECTS_PER_SECOND => (
            m.deploy_peak_reconnects_per_second
                .map(|peak| peak as f64 * scale(plan)),
            r.max_reconnects_per_second.unwrap_or(f64::INFINITY),
            scale_interval(
                interval(run.ci95, &["deploy_peak_reconnects_per_second"]),
                scale(plan),
            ),
        ),
        MAX_SERVED_AGAIN => (
            m.served_again_s.flatten().map(|s| s * 1000.0),
            r.max_served_again
                .map_or(f64::INFINITY, |d| d.as_secs_f64() * 1000.0),
            scale_interval(interval(run.ci95, &["served_again_s"]), 1000.0),
        ),
        _ => (
            Some(m.requests_per_second * scale(plan)),
            r.max_requests_per_second.unwrap_or(f64::INFINITY),
            scale_interval(interval(run.ci95, &["requests_per_second"]), scale(plan)),
        ),
    };
    let pass = match (measured, range) {
        // Nothing delivered: no latency can meet a budget; a client never served again misses any
        // limit on when it is. Nothing sent or owed: nothing to judge.
        (None, _) if requirement == LATENCY || requirement == MAX_SERVED_AGAIN => Some(false),
        (None, _) => None,
        (Some(_), Some([lo, hi])) if hi > lo => {
            if hi <= limit {
                Some(true)
            } else if lo > limit {
                Some(false)
            } else {
                None
            }
        }
        (Some(v), _) => Some(v <= limit),
    };
    Check {
        scenario: run.scenario.to_string(),
        transport: run.transport,
        requirement,
        measured,
        limit,
        pass,
        margin: measured.map(|v| limit - v),
        interval: range.filter(|[lo, hi]| hi > lo),
    }
}

/// The most open connections one server held: the busiest replica's peak behind a balancer, the lone
/// server's peak otherwise; `None` when the run did not count them.
pub fn busiest_server_peak(m: &RunMetrics) -> Option<f64> {
    match &m.per_replica {
        Some(replicas) if !replicas.is_empty() => replicas
            .iter()
            .map(|r| r.open_connections_peak as f64)
            .reduce(f64::max),
        _ => m.open_connections_peak.map(|p| p as f64),
    }
}

/// The simplicity order: the brief's rule is the simplest approach that meets the requirements.
fn simplicity(t: TransportKind) -> usize {
    TransportKind::ALL
        .iter()
        .position(|&k| k == t)
        .unwrap_or(usize::MAX)
}

/// Makes the decision for a plan from what its runs measured.
pub fn decide(plan: &Plan, runs: &[Measured]) -> Verdict {
    let situation = situation(plan);
    let (picked, path) = candidate(&situation);
    let keys = requirement_keys(plan);
    let checks: Vec<Check> = runs
        .iter()
        .flat_map(|run| {
            keys.iter()
                .filter(move |&&key| applies(run, key))
                .map(move |&key| check(plan, run, key))
        })
        .collect();
    let mut transports: Vec<TransportKind> = runs.iter().map(|r| r.transport).collect();
    transports.sort_by_key(|&t| simplicity(t));
    transports.dedup();
    let scenarios = plan
        .scenarios
        .iter()
        .filter(|s| runs.iter().any(|r| r.scenario == s.name))
        .count();
    let tally = |t: TransportKind| {
        let of_t = || checks.iter().filter(move |c| c.transport == t);
        (
            of_t().filter(|c| c.pass == Some(false)).count(),
            of_t().filter(|c| c.pass.is_none()).count(),
        )
    };
    let passes = |t: TransportKind| tally(t) == (0, 0);
    let simulated = transports.contains(&picked);
    let mut reasons = Vec::new();
    reasons.push(format!(
        "The design brief's tree picks {}: {}.",
        short(picked),
        path.iter()
            .rfind(|l| !l.starts_with("Rule of thumb"))
            .map(|l| tidy_path_line(l))
            .unwrap_or_default()
    ));
    let in_scenarios = |n: usize| {
        if n == 1 {
            "in its one scenario".to_string()
        } else if n == 2 {
            "in both scenarios".to_string()
        } else {
            format!("in all {n} scenarios")
        }
    };
    let transport;
    let headline;
    if simulated && passes(picked) {
        transport = picked;
        let tight = tightest(plan, &checks, picked);
        headline = format!(
            "{}: the tree's pick, confirmed {}{}.",
            short(picked),
            in_scenarios(scenarios),
            tight
                .as_ref()
                .map(|t| format!("; tightest margin: {t}"))
                .unwrap_or_default()
        );
        reasons.push(format!(
            "{} met every requirement {} ({}).",
            short(picked),
            in_scenarios(scenarios),
            requirement_list(plan)
        ));
    } else {
        if simulated {
            for c in checks
                .iter()
                .filter(|c| c.transport == picked && c.pass != Some(true))
            {
                reasons.push(failure_sentence(plan, c));
                if c.pass == Some(false) {
                    reasons.extend(
                        mitigations_for(plan, c)
                            .iter()
                            .map(|m| format!("Mitigation ({}): {}.", m.id, m.title)),
                    );
                }
            }
        } else {
            reasons.push(format!(
                "{} was not simulated (the run's transports leave it out), so the tree's pick is unchecked.",
                short(picked)
            ));
        }
        let alternative = transports.iter().copied().find(|&t| passes(t));
        match alternative {
            Some(t) => {
                transport = t;
                let tight = tightest(plan, &checks, t);
                headline = format!(
                    "{}: the simplest transport that meets every requirement {}; the tree's pick, {}, {}.",
                    short(t),
                    in_scenarios(scenarios),
                    short(picked),
                    if !simulated {
                        "was not simulated".to_string()
                    } else {
                        miss_summary(tally(picked))
                    }
                );
                reasons.push(format!(
                    "{} met every requirement {} ({}){}.",
                    short(t),
                    in_scenarios(scenarios),
                    requirement_list(plan),
                    tight
                        .as_ref()
                        .map(|x| format!("; tightest margin: {x}"))
                        .unwrap_or_default()
                ));
            }
            None => {
                let best = transports
                    .iter()
                    .copied()
                    .min_by_key(|&t| (tally(t), simplicity(t)))
                    .unwrap_or(picked);
                transport = best;
                let (fails, unsure) = tally(best);
                headline = format!(
                    "No transport meets every requirement; {} comes closest ({}).",
                    short(best),
                    miss_summary((fails, unsure))
                );
                if best != picked {
                    for c in checks
                        .iter()
                        .filter(|c| c.transport == best && c.pass != Some(true))
                    {
                        reasons.push(failure_sentence(plan, c));
                    }
                }
                reasons.push(format!(
                    "To settle it: {} or apply the mitigations named above, then run again.",
                    relax(&checks, best)
                ));
            }
        }
    }
    if checks
        .iter()
        .any(|c| c.pass.is_none() && c.measured.is_some())
    {
        reasons.push(
            "Inconclusive means the 95 % interval over the seeds straddles the limit: more seeds \
             (--seeds) or a longer run will settle it."
                .to_string(),
        );
    }
    if let Some(first) = runs.first() {
        if first.metrics.published < crate::metrics::MIN_EVENTS_FOR_PERCENTILES {
            reasons.push(format!(
                "Only {} events were published: latency percentiles from fewer than {} are rough; run \
                 longer for a firm verdict.",
                first.metrics.published,
                crate::metrics::MIN_EVENTS_FOR_PERCENTILES
            ));
        }
    }
    let confirmed = transport == picked && simulated && passes(picked);
    Verdict {
        transport,
        candidate: picked,
        confirmed,
        headline,
        checks,
        reasons,
        path,
    }
}

/// "fails 2 requirements", "fails 1 and is inconclusive on 1".
fn miss_summary((fails, unsure): (usize, usize)) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    match (fails, unsure) {
        (0, 0) => "passes".to_string(),
        (f, 0) => format!("misses {f} check{}", plural(f)),
        (0, u) => format!("is inconclusive on {u} check{}", plural(u)),
        (f, u) => format!("misses {f} check{} and is inconclusive on {u}", plural(f)),
    }
}

/// The path's last line without its number and arrow, for a sentence.
fn tidy_path_line(line: &str) -> String {
    let text = line
        .split_once(". ")
        .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
        .map_or(line, |(_, rest)| rest);
    text.split(" → ").next().unwrap_or(text).to_string()
}

/// The requirements checked, in words: "p95 ≤ 1 s, nothing lost".
fn requirement_list(plan: &Plan) -> String {
    let r = &plan.requirements;
    let mut parts = vec![format!(
        "p{} latency ≤ {}",
        r.latency_percentile,
        fmt_ms(r.latency.as_secs_f64() * 1000.0)
    )];
    parts.push(loss_limit(r.max_lost, "deliveries"));
    if plan.workload.upstream_per_minute > 0.0 {
        parts.push(loss_limit(r.max_upstream_lost, "upstream messages"));
    }
    parts.extend(budget_phrases(r));
    parts.join(", ")
}

/// The optional server-side budgets a profile states, in words: "≤ 500 requests/s", "≤ 2 open
/// connections per server", "≤ 1000 reconnects/s during a deploy", "every client served again within
/// 10 s of a restart".
pub fn budget_phrases(r: &Requirements) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(max) = r.max_requests_per_second {
        parts.push(format!("≤ {} requests/s", fmt_num(max)));
    }
    if let Some(max) = r.max_open_connections_per_server {
        parts.push(format!("≤ {} open connections per server", fmt_num(max)));
    }
    if let Some(max) = r.max_reconnects_per_second {
        parts.push(format!("≤ {} reconnects/s during a deploy", fmt_num(max)));
    }
    if let Some(max) = r.max_served_again {
        parts.push(format!(
            "every client served again within {} of a restart",
            fmt_ms(max.as_secs_f64() * 1000.0)
        ));
    }
    parts
}

fn loss_limit(limit: f64, what: &str) -> String {
    if limit == 0.0 {
        format!("no {what} lost")
    } else {
        format!("≤ {} of {what} lost", fmt_fraction(limit))
    }
}

/// The passing check with the least room left, in words: "p95 780 ms of 1 s in network-switch".
fn tightest(plan: &Plan, checks: &[Check], transport: TransportKind) -> Option<String> {
    checks
        .iter()
        .filter(|c| c.transport == transport && c.pass == Some(true) && c.limit > 0.0)
        .filter(|c| c.limit.is_finite())
        .filter_map(|c| Some((c, c.margin? / c.limit)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| {
            let name = if c.requirement == LATENCY {
                latency_label(plan)
            } else {
                short_requirement(c.requirement).to_string()
            };
            format!(
                "{} {} of {} in {}",
                name,
                fmt_value(c.requirement, c.measured),
                fmt_value(c.requirement, Some(c.limit)),
                c.scenario
            )
        })
}

/// What to relax for `transport` to pass: each failing requirement's worst measured value.
fn relax(checks: &[Check], transport: TransportKind) -> String {
    let mut parts: Vec<String> = Vec::new();
    for key in [
        LATENCY,
        MAX_LOST,
        MAX_UPSTREAM_LOST,
        MAX_REQUESTS_PER_SECOND,
        MAX_OPEN_CONNECTIONS_PER_SERVER,
        MAX_RECONNECTS_PER_SECOND,
        MAX_SERVED_AGAIN,
    ] {
        let worst = checks
            .iter()
            .filter(|c| c.transport == transport && c.requirement == key && c.pass != Some(true))
            .filter_map(|c| c.measured)
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.max(v)))
            });
        let failing = checks
            .iter()
            .any(|c| c.transport == transport && c.requirement == key && c.pass != Some(true));
        match worst {
            Some(v) => parts.push(format!(
                "relax {key} to {} for {}",
                fmt_value(key, Some(v)),
                short(transport)
            )),
            None if failing => parts.push(format!(
                "make {} deliver at all where it delivered nothing",
                short(transport)
            )),
            None => {}
        }
    }
    if parts.is_empty() {
        "review the requirements".to_string()
    } else {
        parts.join(", ")
    }
}

/// A failed or inconclusive check in a sentence.
pub fn failure_sentence(plan: &Plan, c: &Check) -> String {
    let what = long_requirement(plan, c.requirement);
    match (c.pass, c.measured) {
        (Some(false), None) if c.requirement == MAX_SERVED_AGAIN => format!(
            "In {}, some {} clients were never served again after a restart (limit {}).",
            c.scenario,
            short(c.transport),
            fmt_value(c.requirement, Some(c.limit))
        ),
        (Some(false), None) => format!(
            "In {}, {} delivered nothing, so its {what} has no value to meet {}.",
            c.scenario,
            short(c.transport),
            fmt_value(c.requirement, Some(c.limit))
        ),
        (Some(false), Some(_)) => format!(
            "In {}, {} missed {}: {what} {}, limit {}.",
            c.scenario,
            short(c.transport),
            c.requirement,
            fmt_value(c.requirement, c.measured),
            fmt_value(c.requirement, Some(c.limit))
        ),
        (_, Some(_)) => format!(
            "In {}, {}'s {what} is inconclusive: {} (95 % interval {}), limit {}.",
            c.scenario,
            short(c.transport),
            fmt_value(c.requirement, c.measured),
            c.interval
                .map(|[lo, hi]| format!(
                    "{} to {}",
                    fmt_value(c.requirement, Some(lo.max(0.0))),
                    fmt_value(c.requirement, Some(hi))
                ))
                .unwrap_or_else(|| "—".into()),
            fmt_value(c.requirement, Some(c.limit))
        ),
        (_, None) => format!(
            "In {}, {}'s {what} could not be measured (nothing to count).",
            c.scenario,
            short(c.transport)
        ),
    }
}

/// The mitigations that address a failed check, from the rules for that scenario's environment;
/// ones the profile already applies are left out.
pub fn mitigations_for(plan: &Plan, c: &Check) -> Vec<Mitigation> {
    let Some(scenario) = plan.scenarios.iter().find(|s| s.name == c.scenario) else {
        return Vec::new();
    };
    let relevant: &[&str] = match c.requirement {
        LATENCY => &[
            "accel-buffering",
            "websocket-fallback",
            "polling-interval",
            "sticky-sessions",
        ],
        MAX_LOST => &[
            "sticky-sessions",
            "heartbeat",
            "long-poll-hold",
            "resume",
            "accel-buffering",
            "websocket-fallback",
        ],
        MAX_UPSTREAM_LOST => &["upstream-acks", "heartbeat", "sticky-sessions"],
        MAX_RECONNECTS_PER_SECOND => &["backoff"],
        _ => &[],
    };
    mitigations(&scenario_situation(plan, scenario), c.transport)
        .into_iter()
        .filter(|m| relevant.contains(&m.id))
        .filter(|m| !already_applied(plan, m))
        .collect()
}

/// True when every setting of a mitigation already holds in the plan (a fix that is in place cannot
/// be the fix for what still fails).
fn already_applied(plan: &Plan, m: &Mitigation) -> bool {
    let s = &plan.settings;
    !m.settings.is_empty()
        && m.settings.iter().all(|setting| match setting.key {
            "sse.accel_buffering_off" => s.sse_accel_buffering_off,
            "websocket.fallback" => s.ws_fallback == crate::profile::Fallback::LongPolling,
            "workload.upstream_acks" => plan.workload.upstream_acks,
            "websocket.resume" => s.ws_resume,
            "sse.heartbeat" => s.sse_heartbeat.is_some(),
            "websocket.ping_interval" | "websocket.ping_timeout" => s.ws_ping_interval.is_some(),
            "long_polling.hold" => s.long_poll_hold <= std::time::Duration::from_secs(20),
            // A jittered backoff in place is the backoff mitigation, whatever its exact delays.
            "reconnect.initial" | "reconnect.max" | "reconnect.factor" | "reconnect.jitter" => {
                s.reconnect.jitter > 0.0 && s.reconnect.factor > 1.0
            }
            "polling.interval" => false,
            "server.history" => false,
            _ => false,
        })
}

/// A transport's short name ("Short polling", "SSE").
pub fn short(t: TransportKind) -> &'static str {
    match t {
        TransportKind::Polling => "Short polling",
        TransportKind::LongPolling => "Long polling",
        TransportKind::Sse => "SSE",
        TransportKind::Websocket => "WebSocket",
    }
}

/// A requirement in a word, for tables and the matrix: "latency", "lost", "up-lost", "req/s".
pub fn short_requirement(key: &str) -> &'static str {
    match key {
        LATENCY => "latency",
        MAX_LOST => "lost",
        MAX_UPSTREAM_LOST => "up-lost",
        MAX_OPEN_CONNECTIONS_PER_SERVER => "conns",
        MAX_RECONNECTS_PER_SECOND => "storm",
        MAX_SERVED_AGAIN => "recovery",
        _ => "req/s",
    }
}

/// The latency requirement's short name for a plan's percentile ("p99").
pub fn latency_label(plan: &Plan) -> String {
    format!("p{}", plan.requirements.latency_percentile)
}

fn long_requirement(plan: &Plan, key: &str) -> String {
    match key {
        LATENCY => format!("{} latency", latency_label(plan)),
        MAX_LOST => "share of owed deliveries lost".to_string(),
        MAX_UPSTREAM_LOST => "share of client messages lost".to_string(),
        MAX_OPEN_CONNECTIONS_PER_SERVER => "busiest server's open connections".to_string(),
        MAX_RECONNECTS_PER_SECOND => {
            "peak reconnect attempts per second during the deploy".to_string()
        }
        MAX_SERVED_AGAIN => "time until every client was served again after a restart".to_string(),
        _ => "request rate".to_string(),
    }
}

/// A measured value or limit in its unit: "780 ms", "0.25%", "120 req/s"; "—" when not measured.
pub fn fmt_value(key: &str, value: Option<f64>) -> String {
    let Some(v) = value else {
        return "—".to_string();
    };
    match key {
        LATENCY => fmt_ms(v),
        MAX_LOST | MAX_UPSTREAM_LOST => fmt_fraction(v),
        MAX_OPEN_CONNECTIONS_PER_SERVER => format!("{} connections", fmt_num(v)),
        MAX_RECONNECTS_PER_SECOND => format!("{} reconnects/s", fmt_num(v)),
        MAX_SERVED_AGAIN => fmt_ms(v),
        _ => format!("{} req/s", fmt_num(v)),
    }
}

/// A fraction as a percentage that never rounds to 0 % or 100 % while it is neither.
pub fn fmt_fraction(f: f64) -> String {
    if f <= 0.0 {
        return "0%".to_string();
    }
    if f >= 1.0 {
        return "100%".to_string();
    }
    let share = f * 100.0;
    let mut decimals = 2;
    while decimals < 8 {
        let scale = 10f64.powi(decimals);
        let rounded = (share * scale).round() / scale;
        if rounded > 0.0 && rounded < 100.0 {
            break;
        }
        decimals += 1;
    }
    let text = format!("{share:.*}", decimals as usize);
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}%")
}

/// Milliseconds for people: "56 ms", "4.7 s".
pub fn fmt_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{} ms", fmt_num(ms))
    } else {
        format!("{} s", fmt_num(ms / 1000.0))
    }
}

/// A number with as many decimals as it deserves: "1234", "56", "4.5", "0.25".
pub fn fmt_num(x: f64) -> String {
    let a = x.abs();
    let text = if a >= 100.0 || a == a.round() {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Percentiles;
    use TransportKind::*;

    fn plan(requirements: &str, scenarios: &[&str]) -> Plan {
        let mut text = format!(
            "name = \"t\"\nduration = \"60s\"\nclients = 10\n[workload]\nevents_per_second = 2.0\n\
             [requirements]\n{requirements}\n"
        );
        for s in scenarios {
            text.push_str(&format!("[[scenario]]\nname = \"{s}\"\n"));
        }
        Plan::from_text("t.toml", &text).unwrap()
    }

    /// A run that delivered all but `lost` of 1,200 owed deliveries with this p95.
    fn metrics(p95_ms: Option<f64>, lost: u64) -> RunMetrics {
        let expected = 1200;
        RunMetrics {
            published: 120,
            expected,
            delivered: expected - lost,
            lost,
            latency_ms: Percentiles {
                p95: p95_ms,
                ..Percentiles::default()
            },
            requests_per_second: 1.0,
            ..RunMetrics::default()
        }
    }

    type Outcome = (&'static str, TransportKind, Option<f64>, u64);

    fn decide_on(plan: &Plan, outcomes: &[Outcome]) -> Verdict {
        let metrics: Vec<RunMetrics> = outcomes.iter().map(|o| metrics(o.2, o.3)).collect();
        let runs: Vec<Measured> = outcomes
            .iter()
            .zip(&metrics)
            .map(|(o, m)| Measured {
                scenario: o.0,
                transport: o.1,
                metrics: m,
                ci95: None,
            })
            .collect();
        decide(plan, &runs)
    }

    fn all_pass(scenarios: &[&'static str]) -> Vec<Outcome> {
        scenarios
            .iter()
            .flat_map(|&s| TransportKind::ALL.map(|t| (s, t, Some(100.0), 0)))
            .collect()
    }

    /// Every leaf of the tree, confirmed when every run meets every requirement.
    #[test]
    fn every_leaf_is_confirmed_when_it_passes_everywhere() {
        let cases: &[(&str, TransportKind)] = &[
            ("bidirectional = true\nlatency = \"1s\"", Websocket),
            (
                "bidirectional = false\nserver_push = true\nlatency = \"1s\"",
                Sse,
            ),
            (
                "bidirectional = false\nserver_push = false\nlatency = \"1s\"",
                LongPolling,
            ),
            (
                "bidirectional = false\nserver_push = false\nlatency = \"2m\"",
                // 2 events a second is frequent: long polling; a slow feed is polling (below).
                LongPolling,
            ),
        ];
        for (requirements, leaf) in cases {
            let p = plan(requirements, &["a", "b"]);
            let v = decide_on(&p, &all_pass(&["a", "b"]));
            assert_eq!(v.candidate, *leaf, "{requirements}");
            assert_eq!(v.transport, *leaf, "{requirements}");
            assert!(v.confirmed, "{requirements}: {v:?}");
            assert!(
                v.headline.contains("confirmed in both scenarios"),
                "{}",
                v.headline
            );
            assert!(v.headline.contains("tightest margin"), "{}", v.headline);
            assert_eq!(
                v.checks.len(),
                2 * 4 * 2,
                "scenarios × transports × requirements"
            );
        }
        // The polling leaf: data changing less often than every 30 s, with a budget polling can meet.
        let text = "name = \"t\"\nduration = \"10m\"\nclients = 10\n[workload]\n\
                    events_per_second = 0.01\n[requirements]\nserver_push = false\nlatency = \"1m\"\n";
        let p = Plan::from_text("t.toml", text).unwrap();
        let v = decide_on(&p, &all_pass(&["baseline"]));
        assert_eq!(
            (v.candidate, v.transport, v.confirmed),
            (Polling, Polling, true)
        );
    }

    /// The candidate fails one requirement in one scenario: the simplest transport that passes
    /// everywhere is chosen, and the failure is named with its mitigation.
    #[test]
    fn a_failing_candidate_gives_way_to_the_simplest_passing_transport() {
        let text =
            "name = \"t\"\nduration = \"60s\"\nclients = 10\n[requirements]\nlatency = \"1s\"\n\
                    [[scenario]]\nname = \"baseline\"\n[[scenario]]\nname = \"proxy\"\n\
                    proxy = { buffer_bytes = 8192, honor_accel_buffering = false }\n";
        let p = Plan::from_text("t.toml", text).unwrap();
        let mut outcomes = all_pass(&["baseline", "proxy"]);
        for o in outcomes.iter_mut() {
            match (o.0, o.1) {
                // SSE behind the buffering proxy: nothing arrives.
                ("proxy", Sse) => (o.2, o.3) = (None, 1200),
                // Polling misses the budget everywhere.
                (_, Polling) => o.2 = Some(4600.0),
                _ => {}
            }
        }
        let v = decide_on(&p, &outcomes);
        assert_eq!(v.candidate, Sse);
        assert_eq!(v.transport, LongPolling, "{v:#?}");
        assert!(!v.confirmed);
        let sse_proxy: Vec<&Check> = v.checks_of("proxy", Sse).collect();
        assert_eq!(
            sse_proxy[0].measured, None,
            "no latency when nothing arrived"
        );
        assert_eq!(sse_proxy[0].pass, Some(false));
        assert_eq!(sse_proxy[1].measured, Some(1.0));
        assert!(
            v.reasons
                .iter()
                .any(|r| r.starts_with("In proxy, SSE delivered nothing")),
            "{:?}",
            v.reasons
        );
        assert!(v
            .reasons
            .iter()
            .any(|r| r.starts_with("In proxy, SSE missed max_lost")));
        assert!(
            v.reasons
                .iter()
                .any(|r| r.starts_with("Mitigation (accel-buffering)")),
            "{:?}",
            v.reasons
        );
        assert!(
            v.headline
                .starts_with("Long polling: the simplest transport"),
            "{}",
            v.headline
        );
    }

    #[test]
    fn when_none_passes_the_fewest_failures_wins_and_what_to_relax_is_said() {
        let p = plan("latency = \"100ms\"", &["a"]);
        let outcomes: Vec<Outcome> = vec![
            ("a", Polling, Some(4000.0), 3),
            ("a", LongPolling, Some(300.0), 0),
            ("a", Sse, Some(250.0), 2),
            ("a", Websocket, Some(240.0), 0),
        ];
        let v = decide_on(&p, &outcomes);
        assert_eq!(
            v.transport, LongPolling,
            "one failure each; the simpler wins"
        );
        assert!(
            v.headline
                .starts_with("No transport meets every requirement"),
            "{}",
            v.headline
        );
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("relax latency to 300 ms for Long polling")),
            "{:?}",
            v.reasons
        );
    }

    /// With seeds, a check passes only when its whole 95 % interval does.
    #[test]
    fn an_interval_straddling_the_limit_is_inconclusive() {
        let p = plan("latency = \"1s\"", &["a"]);
        let m = metrics(Some(950.0), 0);
        let straddles =
            serde_json::json!({"latency_ms": {"p95": [880.0, 1020.0]}, "lost": [0.0, 0.0]});
        let within = serde_json::json!({"latency_ms": {"p95": [900.0, 990.0]}, "lost": [0.0, 0.0]});
        let over = serde_json::json!({"latency_ms": {"p95": [1010.0, 1100.0]}, "lost": [0.0, 0.0]});
        let cases = [
            (&straddles, None),
            (&within, Some(true)),
            (&over, Some(false)),
        ];
        for (ci, expected) in cases {
            let run = Measured {
                scenario: "a",
                transport: Sse,
                metrics: &m,
                ci95: Some(ci),
            };
            assert_eq!(check(&p, &run, LATENCY).pass, expected, "{ci}");
        }
        let runs = [Measured {
            scenario: "a",
            transport: Sse,
            metrics: &m,
            ci95: Some(&straddles),
        }];
        let v = decide(&p, &runs);
        assert!(!v.confirmed);
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("latency is inconclusive") && r.contains("880 ms to 1.02 s")),
            "{:?}",
            v.reasons
        );
        assert!(v
            .reasons
            .iter()
            .any(|r| r.starts_with("Inconclusive means")));
    }

    #[test]
    fn open_connections_are_held_against_the_busiest_server_at_population_scale() {
        let text = "name = \"t\"\nduration = \"60s\"\nclients = 10\npopulation = 100\n\
                    [server]\nreplicas = 2\n[workload]\nevents_per_second = 2.0\n\
                    [requirements]\nmax_open_connections_per_server = 60\n\
                    [[scenario]]\nname = \"rr\"\n[[scenario]]\nname = \"sticky\"\n\
                    [scenario.balancer]\npolicy = \"sticky\"\n";
        let plan = Plan::from_text("t.toml", text).unwrap();
        let replica = |k: u32, peak: u64| crate::metrics::ReplicaMetrics {
            replica: k,
            connections: peak,
            requests: 0,
            events_published: 0,
            open_connections_peak: peak,
            open_connections_mean: peak as f64,
            open_connections_end: peak,
        };
        let mut balanced = metrics(Some(100.0), 0);
        balanced.open_connections_peak = Some(10);
        balanced.per_replica = Some(vec![replica(0, 5), replica(1, 5)]);
        let mut skewed = balanced.clone();
        skewed.per_replica = Some(vec![replica(0, 8), replica(1, 2)]);
        let run = |scenario, m| Measured {
            scenario,
            transport: Sse,
            metrics: m,
            ci95: None,
        };
        let fair = check(
            &plan,
            &run("rr", &balanced),
            MAX_OPEN_CONNECTIONS_PER_SERVER,
        );
        // 5 simulated connections on the busiest replica stand for 50 of the population's 100.
        assert_eq!((fair.measured, fair.pass), (Some(50.0), Some(true)));
        let busy = check(&plan, &run("rr", &skewed), MAX_OPEN_CONNECTIONS_PER_SERVER);
        assert_eq!((busy.measured, busy.pass), (Some(80.0), Some(false)));
        assert_eq!(
            failure_sentence(&plan, &busy),
            "In rr, SSE missed max_open_connections_per_server: busiest server's open connections \
             80 connections, limit 60 connections."
        );
        let mut unmeasured = balanced.clone();
        unmeasured.per_replica = None;
        unmeasured.open_connections_peak = None;
        let none = check(
            &plan,
            &run("rr", &unmeasured),
            MAX_OPEN_CONNECTIONS_PER_SERVER,
        );
        assert_eq!((none.measured, none.pass), (None, None));
        assert!(requirement_list(&plan).contains("≤ 60 open connections per server"));
        // The balancer's policy reaches the situation the mitigation rules see.
        assert_eq!(
            scenario_situation(&plan, &plan.scenarios[0]).load_balancer,
            LoadBalancer::RoundRobin
        );
        assert_eq!(
            scenario_situation(&plan, &plan.scenarios[1]).load_balancer,
            LoadBalancer::Sticky
        );
        assert_eq!(situation(&plan).load_balancer, LoadBalancer::RoundRobin);
    }

    #[test]
    fn shares_never_round_to_all_or_nothing() {
        assert_eq!(fmt_fraction(3.0 / 165_000.0), "0.002%");
        assert_eq!(fmt_fraction(1.0 - 3.0 / 165_000.0), "99.998%");
        assert_eq!(fmt_fraction(0.184), "18.4%");
        assert_eq!(fmt_fraction(0.0), "0%");
    }
}
