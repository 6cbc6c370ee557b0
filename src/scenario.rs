//! The validated experiment: a profile checked for impossible values and resolved into plain units, plus
//! the list of runs (scenario × transport) it asks for.
//!
//! Everything downstream trusts a `Plan`; nothing here touches the network or the simulator.

use std::time::Duration;

use crate::profile::InputError;
use crate::profile::{Arrival, Fallback, NatExpiry, Profile, ProxyPreset, Source, UpstreamHttp};
use crate::profile::{Backplane, BalancePolicy};
use crate::transport::TransportKind;

/// A whole profile, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub name: String,
    pub description: String,
    pub seed: u64,
    /// How many seeds each run is repeated with (`--seeds`); the first is `seed` itself.
    pub seeds: u32,
    pub duration: Duration,
    pub clients: u32,
    pub transports: Vec<TransportKind>,
    pub network: Network,
    pub workload: Workload,
    pub settings: TransportSettings,
    pub scenarios: Vec<Scenario>,
    pub simulation: Simulation,
    /// The profile file as it was named (for the report's "Reproduce" line).
    pub profile_path: std::path::PathBuf,
    /// What the application needs, as evaluated (given or assumed).
    pub requirements: Requirements,
    /// The real population the simulated clients stand for, when larger than `clients`.
    pub population: Option<u64>,
    /// The server replicas and how they share events (`[server]`).
    pub servers: Servers,
}

/// `[server] replicas`, `backplane`, `backplane_latency`, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Servers {
    /// Server hosts; above 1 every scenario has a balancer in front of them.
    pub replicas: u32,
    pub backplane: Backplane,
    /// How long a shared backplane takes to bring an event to every replica.
    pub backplane_latency: Duration,
}

impl Default for Servers {
    fn default() -> Self {
        Self {
            replicas: 1,
            backplane: Backplane::Shared,
            backplane_latency: DEFAULT_BACKPLANE_LATENCY,
        }
    }
}

/// A Redis pub/sub hop inside one data centre.
pub const DEFAULT_BACKPLANE_LATENCY: Duration = Duration::from_millis(2);

/// AWS ALB's default idle timeout.
pub const DEFAULT_BALANCER_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The most replicas a profile may ask for (each is a simulated host: cost grows with hosts).
pub const MAX_REPLICAS: u32 = 32;

/// The requirements every run is checked against: the profile's `[requirements]`, with the keys it
/// leaves out assumed.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Requirements {
    pub bidirectional: bool,
    pub server_push: bool,
    /// The latency budget.
    #[serde(serialize_with = "serialize_duration")]
    pub latency: Duration,
    /// Which percentile of deliveries must arrive within `latency`: 50, 95 or 99.
    pub latency_percentile: u32,
    pub max_lost: f64,
    pub max_upstream_lost: f64,
    pub max_requests_per_second: Option<f64>,
    /// The most open connections one server (replica) may hold at once.
    pub max_open_connections_per_server: Option<f64>,
    /// The most reconnect attempts per second during a rolling deploy.
    pub max_reconnects_per_second: Option<f64>,
    /// How soon after a restart every client must be served again.
    #[serde(serialize_with = "serialize_optional_duration")]
    pub max_served_again: Option<Duration>,
    /// Each key the profile did not give, with how its value was chosen.
    pub assumed: Vec<Assumption>,
}

/// A requirement the profile did not state, and how its value was chosen.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Assumption {
    pub key: &'static str,
    pub how: String,
}

/// A number without a needless `.0`: `4`, `0.5`.
fn plain_number(x: f64) -> String {
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::duration::format(*d))
}

fn serialize_optional_duration<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => serialize_duration(d, s),
        None => s.serialize_none(),
    }
}

/// The latency budget assumed when a profile states none: a typical budget for live data on screen.
pub const ASSUMED_LATENCY: Duration = Duration::from_secs(1);

/// Clients sending at least this many messages a minute each count as "both sides send frequently"
/// when the profile does not say.
pub const ASSUMED_BIDIRECTIONAL_PER_MINUTE: f64 = 1.0;

impl Requirements {
    /// Validates `[requirements]` (absent: everything assumed) against the workload it describes.
    fn resolve(
        section: Option<&crate::profile::RequirementsSection>,
        workload: &crate::profile::WorkloadSection,
        err: &dyn Fn(&str, String) -> InputError,
    ) -> Result<Requirements, InputError> {
        let given = section.cloned().unwrap_or_default();
        let mut assumed = Vec::new();
        let bidirectional = match given.bidirectional {
            Some(b) => b,
            None => {
                let b = workload.upstream_per_minute >= ASSUMED_BIDIRECTIONAL_PER_MINUTE;
                assumed.push(Assumption {
                    key: "bidirectional",
                    how: format!(
                        "{b}, from the upstream rate: each client sends {} messages a minute ({} at {} \
                         or more)",
                        plain_number(workload.upstream_per_minute),
                        if b { "frequent" } else { "frequent only" },
                        plain_number(ASSUMED_BIDIRECTIONAL_PER_MINUTE)
                    ),
                });
                b
            }
        };
        let server_push = match given.server_push {
            Some(b) => b,
            None => {
                assumed.push(Assumption {
                    key: "server_push",
                    how: "true: the workload publishes events to every client unasked".into(),
                });
                true
            }
        };
        let latency = match given.latency {
            Some(d) if d.0.is_zero() => {
                return Err(err(
                    "requirements.latency",
                    "must be longer than zero".into(),
                ))
            }
            Some(d) => d.0,
            None => {
                assumed.push(Assumption {
                    key: "latency",
                    how: format!(
                        "{}, a typical budget for live data on screen",
                        crate::duration::format(ASSUMED_LATENCY)
                    ),
                });
                ASSUMED_LATENCY
            }
        };
        let latency_percentile = match given.latency_percentile {
            Some(p @ (50 | 95 | 99)) => p as u32,
            Some(p) => {
                return Err(err(
                    "requirements.latency_percentile",
                    format!("must be 50, 95 or 99 (got {p})"),
                ))
            }
            None => {
                assumed.push(Assumption {
                    key: "latency_percentile",
                    how: "95, the default".into(),
                });
                95
            }
        };
        let fraction = |key: &'static str,
                        value: Option<f64>,
                        assumed: &mut Vec<Assumption>|
         -> Result<f64, InputError> {
            match value {
                Some(v) if v.is_finite() && (0.0..=1.0).contains(&v) => Ok(v),
                Some(v) => Err(err(
                    &format!("requirements.{key}"),
                    format!("must be a fraction between 0 and 1 (got {v})"),
                )),
                None => {
                    assumed.push(Assumption {
                        key,
                        how: "0, the default: nothing may be lost".into(),
                    });
                    Ok(0.0)
                }
            }
        };
        let max_lost = fraction("max_lost", given.max_lost, &mut assumed)?;
        // Without upstream traffic there is nothing to lose: no assumption worth listing.
        let upstream_given = given
            .max_upstream_lost
            .or((workload.upstream_per_minute == 0.0).then_some(0.0));
        let max_upstream_lost = fraction("max_upstream_lost", upstream_given, &mut assumed)?;
        let max_requests_per_second = match given.max_requests_per_second {
            Some(v) if v.is_finite() && v > 0.0 => Some(v),
            Some(v) => {
                return Err(err(
                    "requirements.max_requests_per_second",
                    format!("must be more than 0 (got {v})"),
                ))
            }
            None => None,
        };
        let max_open_connections_per_server = match given.max_open_connections_per_server {
            Some(v) if v.is_finite() && v >= 1.0 => Some(v),
            Some(v) => {
                return Err(err(
                    "requirements.max_open_connections_per_server",
                    format!("must be at least 1 (got {v})"),
                ))
            }
            None => None,
        };
        let max_reconnects_per_second = match given.max_reconnects_per_second {
            Some(v) if v.is_finite() && v > 0.0 => Some(v),
            Some(v) => {
                return Err(err(
                    "requirements.max_reconnects_per_second",
                    format!("must be more than 0 (got {v})"),
                ))
            }
            None => None,
        };
        let max_served_again = match given.max_served_again {
            Some(d) if d.0 > Duration::ZERO => Some(d.0),
            Some(d) => {
                return Err(err(
                    "requirements.max_served_again",
                    format!("must be longer than 0s (got {d})"),
                ))
            }
            None => None,
        };
        Ok(Requirements {
            bidirectional,
            server_push,
            latency,
            latency_percentile,
            max_lost,
            max_upstream_lost,
            max_requests_per_second,
            max_open_connections_per_server,
            max_reconnects_per_second,
            max_served_again,
            assumed,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub latency: Duration,
    pub jitter: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub events_per_second: f64,
    pub event_bytes: usize,
    pub arrival: Arrival,
    pub upstream_per_minute: f64,
    pub upstream_bytes: usize,
    /// Clients arrive at seeded moments spread over this long; events are published after it.
    pub client_ramp: Duration,
    /// Upstream messages wait in an outbox until acknowledged, and are resent after a reconnect.
    pub upstream_acks: bool,
}

/// Every transport's own knobs, and the policies they share.
#[derive(Clone, Debug, PartialEq)]
pub struct TransportSettings {
    pub polling_interval: Duration,
    pub long_poll_hold: Duration,
    pub sse_heartbeat: Option<Duration>,
    pub sse_retry: Duration,
    pub sse_accel_buffering_off: bool,
    /// The SSE client's silence limit before it declares the stream dead.
    pub sse_client_timeout: Option<Duration>,
    pub ws_ping_interval: Option<Duration>,
    pub ws_ping_timeout: Duration,
    pub ws_fallback: Fallback,
    pub ws_resume: bool,
    pub reconnect: Reconnect,
    /// How long an HTTP client waits beyond the expected answer time before giving up.
    pub request_timeout: Duration,
    /// Events the server keeps for resuming clients.
    pub history: usize,
    /// LTE-like high-power tail after each packet.
    pub radio_tail: Duration,
}

/// Exponential backoff with jitter, as Socket.IO and Phoenix clients do.
#[derive(Clone, Debug, PartialEq)]
pub struct Reconnect {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
    pub jitter: f64,
}

impl Reconnect {
    /// Delay before reconnect attempt `attempt` (0-based), with `unit` a uniform random number in [0, 1).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.initial.as_secs_f64() * self.factor.powi(attempt.min(64) as i32);
        let capped = base.min(self.max.as_secs_f64());
        let spread = capped * self.jitter * (2.0 * unit - 1.0);
        Duration::from_secs_f64((capped + spread).max(0.0))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Simulation {
    pub tick: Duration,
    pub client_hosts: u32,
    /// Step in lookahead windows (`[simulation] lookahead = "auto"`) rather than tick by tick.
    pub lookahead: bool,
}

/// One named network situation; every transport is run in each.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub nat: Option<Nat>,
    pub proxy: Option<Proxy>,
    pub switch: Option<Switch>,
    pub restart: Option<Restart>,
    /// The load balancer in front of the replicas (always present when there is more than one).
    pub balancer: Option<Balancer>,
    /// A rolling deploy over the replicas.
    pub deploy: Option<Deploy>,
    /// Replicas added while running.
    pub scale_out: Option<ScaleOut>,
}

/// `[scenario.scale_out]`, validated: `add` replicas start at `at` (within the measured run).
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleOut {
    pub at: Duration,
    pub add: u32,
    /// What the new replicas' histories start with.
    pub history: crate::profile::ScaleOutHistory,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Deploy {
    pub at: Duration,
    pub every: Duration,
    /// Zero: replicas stop without draining.
    pub drain: Duration,
    pub down: Duration,
    /// Over how long from the drain's start the replica's connections close (zero: all at once).
    pub close_spread: Duration,
}

impl Deploy {
    /// When the last of `replicas` is back up.
    pub fn last_up(&self, replicas: u32) -> Duration {
        self.at + self.every * replicas.saturating_sub(1) + self.drain + self.down
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Balancer {
    pub policy: BalancePolicy,
    /// A connection silent both ways this long is closed.
    pub idle_timeout: Duration,
    /// How long a replica that stopped without a drain stays in rotation (zero: noticed at once).
    pub health_check: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Nat {
    pub idle_timeout: Duration,
    /// What happens to traffic on a forgotten mapping.
    pub expired: NatExpiry,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Proxy {
    /// The preset the settings came from, if any (for the report).
    pub like: Option<ProxyPreset>,
    pub buffer_bytes: usize,
    pub honor_accel_buffering: bool,
    pub block_websocket: bool,
    pub read_timeout: Option<Duration>,
    pub upstream_http: UpstreamHttp,
    pub pass_upgrade: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Switch {
    pub every: Duration,
    pub outage: Duration,
    /// The client's connections fail at once at the switch (it is told); false: they die silently.
    pub notify: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Restart {
    pub at: Duration,
    pub down: Duration,
}

/// One simulation to execute: a scenario, a transport and a seed.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    pub scenario: usize,
    pub transport: TransportKind,
    pub seed: u64,
}

impl Scenario {
    /// Short tags for the faults in play, for tables and charts.
    pub fn faults(&self) -> Vec<&'static str> {
        let mut faults = Vec::new();
        if self.nat.is_some() {
            faults.push("nat");
        }
        if self.proxy.is_some() {
            faults.push("proxy");
        }
        if self.switch.is_some() {
            faults.push("switch");
        }
        if self.restart.is_some() {
            faults.push("restart");
        }
        if self.balancer.is_some() {
            faults.push("balancer");
        }
        if self.deploy.is_some() {
            faults.push("deploy");
        }
        if self.scale_out.is_some() {
            faults.push("scale-out");
        }
        faults
    }
}

/// `[server]`'s replica keys: 1 to [`MAX_REPLICAS`] replicas, a backplane latency under a minute.
fn resolve_servers(
    section: &crate::profile::ServerSection,
    err: &dyn Fn(&str, String) -> InputError,
) -> Result<Servers, InputError> {
    let replicas = match section.replicas {
        None => 1,
        Some(n) if (1..=MAX_REPLICAS as i64).contains(&n) => n as u32,
        Some(n) => {
            return Err(err(
                "server.replicas",
                format!("must be between 1 and {MAX_REPLICAS} (got {n})"),
            ))
        }
    };
    let backplane_latency = section
        .backplane_latency
        .map_or(DEFAULT_BACKPLANE_LATENCY, |d| d.0);
    if backplane_latency > Duration::from_secs(60) {
        return Err(err(
            "server.backplane_latency",
            "must be at most 60s".into(),
        ));
    }
    Ok(Servers {
        replicas,
        backplane: section.backplane.unwrap_or_default(),
        backplane_latency,
    })
}

/// A scenario's balancer: as `[scenario.balancer]` says, or the defaults when there are replicas to
/// balance and the scenario does not say; none for one server without the section.
fn resolve_balancer(
    section: Option<&crate::profile::BalancerSection>,
    servers: &Servers,
    key: &dyn Fn(&str) -> String,
    positive: &dyn Fn(&str, Duration) -> Result<Duration, InputError>,
) -> Result<Option<Balancer>, InputError> {
    let section = match section {
        Some(s) => s.clone(),
        None if servers.replicas > 1 => crate::profile::BalancerSection::default(),
        None => return Ok(None),
    };
    let idle_timeout = match section.idle_timeout {
        Some(d) => positive(&key("balancer.idle_timeout"), d.0)?,
        None => DEFAULT_BALANCER_IDLE_TIMEOUT,
    };
    // Any length is valid: zero is a balancer that notices a stopped replica at once.
    let health_check = section.health_check.map_or(Duration::ZERO, |d| d.0);
    Ok(Some(Balancer {
        policy: section.policy.unwrap_or_default(),
        idle_timeout,
        health_check,
    }))
}

impl Plan {
    /// Parses and validates profile text; `label` names it in errors (usually its path).
    pub fn from_text(label: &str, text: &str) -> Result<Plan, InputError> {
        let source = Source {
            path: label.into(),
            text: text.to_string(),
        };
        let profile: Profile = source.parse()?;
        Plan::from_profile(&profile, &source)
    }

    /// Validates a parsed profile. Errors point at the offending key in `source`.
    pub fn from_profile(profile: &Profile, source: &Source) -> Result<Plan, InputError> {
        let err = |key: &str, message: String| source.error_at(key, message);
        let p = profile;

        if p.name.trim().is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        check_report_name(&p.name).map_err(|m| err("name", m))?;
        let seed = u64::try_from(p.seed).map_err(|_| err("seed", "must be 0 or more".into()))?;
        let duration = p.duration.0;
        if duration.is_zero() {
            return Err(err("duration", "must be longer than zero".into()));
        }
        if duration > Duration::from_secs(7 * 24 * 3600) {
            return Err(err(
                "duration",
                "must be at most a week of simulated time".into(),
            ));
        }
        if p.clients < 1 {
            return Err(err(
                "clients",
                format!("must be at least 1 (got {})", p.clients),
            ));
        }
        if p.clients > 100_000 {
            return Err(err(
                "clients",
                format!("must be at most 100000 (got {})", p.clients),
            ));
        }
        let transports = match &p.transports {
            None => TransportKind::ALL.to_vec(),
            Some(list) if list.is_empty() => {
                return Err(err("transports", "lists no transport".into()))
            }
            Some(list) => dedup(list),
        };

        let w = &p.workload;
        if !(w.events_per_second.is_finite() && w.events_per_second > 0.0) {
            return Err(err(
                "workload.events_per_second",
                format!("must be more than 0 (got {})", w.events_per_second),
            ));
        }
        if w.events_per_second > 1000.0 {
            return Err(err(
                "workload.events_per_second",
                "must be at most 1000".into(),
            ));
        }
        let event_bytes = bytes_in_range(w.event_bytes, 64, 1 << 20)
            .map_err(|m| err("workload.event_bytes", m))?;
        if !(w.upstream_per_minute.is_finite() && w.upstream_per_minute >= 0.0) {
            return Err(err(
                "workload.upstream_per_minute",
                format!("must be 0 or more (got {})", w.upstream_per_minute),
            ));
        }
        let upstream_bytes = bytes_in_range(w.upstream_bytes, 64, 1 << 20)
            .map_err(|m| err("workload.upstream_bytes", m))?;

        let positive = |key: &str, d: Duration| {
            if d.is_zero() {
                Err(err(key, "must be longer than zero".into()))
            } else {
                Ok(d)
            }
        };
        let within_run = |key: &str, d: Duration| {
            if d >= duration {
                Err(err(
                    key,
                    format!(
                        "{} is not shorter than the run ({}): it would never fire",
                        crate::duration::format(d),
                        crate::duration::format(duration)
                    ),
                ))
            } else {
                Ok(d)
            }
        };
        let polling_interval = positive("polling.interval", p.polling.interval.0)?;
        within_run("polling.interval", polling_interval)?;
        let long_poll_hold = positive("long_polling.hold", p.long_polling.hold.0)?;
        let sse_heartbeat = match p.sse.heartbeat.0 {
            Some(d) => Some(within_run("sse.heartbeat", positive("sse.heartbeat", d)?)?),
            None => None,
        };
        let sse_retry = p.sse.retry.0;
        let sse_client_timeout = match p.sse.client_timeout {
            Some(explicit) => match explicit.0 {
                Some(d) => Some(positive("sse.client_timeout", d)?),
                None => None,
            },
            None => sse_heartbeat.map(|h| h * 2 + p.network.latency.0 * 2),
        };
        if let (Some(timeout), Some(heartbeat)) = (sse_client_timeout, sse_heartbeat) {
            if timeout <= heartbeat {
                return Err(err(
                    "sse.client_timeout",
                    "must be longer than sse.heartbeat, or every idle stream looks dead".into(),
                ));
            }
        }
        let ws_ping_interval = match p.websocket.ping_interval.0 {
            Some(d) => Some(within_run(
                "websocket.ping_interval",
                positive("websocket.ping_interval", d)?,
            )?),
            None => None,
        };
        let ws_ping_timeout = positive("websocket.ping_timeout", p.websocket.ping_timeout.0)?;

        let r = &p.reconnect;
        let initial = positive("reconnect.initial", r.initial.0)?;
        if r.max.0 < initial {
            return Err(err(
                "reconnect.max",
                "must not be shorter than reconnect.initial".into(),
            ));
        }
        if !(r.factor.is_finite() && r.factor >= 1.0 && r.factor <= 10.0) {
            return Err(err(
                "reconnect.factor",
                format!("must be between 1 and 10 (got {})", r.factor),
            ));
        }
        if !(r.jitter.is_finite() && (0.0..=1.0).contains(&r.jitter)) {
            return Err(err(
                "reconnect.jitter",
                format!("must be between 0 and 1 (got {})", r.jitter),
            ));
        }
        let history = usize::try_from(p.server.history)
            .ok()
            .filter(|h| (1..=10_000_000).contains(h))
            .ok_or_else(|| {
                err(
                    "server.history",
                    format!("must be between 1 and 10000000 (got {})", p.server.history),
                )
            })?;

        let tick = positive("simulation.tick", p.simulation.tick.0)?;
        if tick > Duration::from_millis(100) {
            return Err(err("simulation.tick", "must be at most 100ms".into()));
        }
        if p.network.latency.0 + p.network.jitter.0 > Duration::from_secs(60) {
            return Err(err(
                "network.latency",
                "latency plus jitter must be at most 60s".into(),
            ));
        }
        let client_hosts = u32::try_from(p.simulation.client_hosts)
            .ok()
            .filter(|h| (1..=64).contains(h))
            .ok_or_else(|| err("simulation.client_hosts", "must be between 1 and 64".into()))?;

        let servers = resolve_servers(&p.server, &err)?;

        let mut scenarios = Vec::new();
        for (i, s) in p.scenario.iter().enumerate() {
            let key = |k: &str| format!("scenario[{i}].{k}");
            if s.name.trim().is_empty() {
                return Err(err(&key("name"), "must not be empty".into()));
            }
            if scenarios
                .iter()
                .any(|other: &Scenario| other.name == s.name)
            {
                return Err(err(
                    &key("name"),
                    format!("`{}` names two scenarios", s.name),
                ));
            }
            let nat = match &s.nat {
                Some(n) => Some(Nat {
                    idle_timeout: positive(&key("nat.idle_timeout"), n.idle_timeout.0)?,
                    expired: n.expired.unwrap_or_default(),
                }),
                None => None,
            };
            let proxy = match &s.proxy {
                Some(x) => {
                    let r = x.resolve();
                    Some(Proxy {
                        like: x.like,
                        buffer_bytes: bytes_in_range(r.buffer_bytes, 0, 1 << 24)
                            .map_err(|m| err(&key("proxy.buffer_bytes"), m))?,
                        honor_accel_buffering: r.honor_accel_buffering,
                        block_websocket: r.block_websocket,
                        read_timeout: match r.read_timeout {
                            Some(d) => Some(positive(&key("proxy.read_timeout"), d)?),
                            None => None,
                        },
                        upstream_http: r.upstream_http,
                        pass_upgrade: r.pass_upgrade,
                    })
                }
                None => None,
            };
            let switch = match &s.switch {
                Some(x) => {
                    let every = positive(&key("switch.every"), x.every.0)?;
                    if x.outage.0 >= every {
                        return Err(err(
                            &key("switch.outage"),
                            "must be shorter than switch.every".into(),
                        ));
                    }
                    Some(Switch {
                        every,
                        outage: x.outage.0,
                        notify: x.notify.unwrap_or(true),
                    })
                }
                None => None,
            };
            let restart = match &s.restart {
                Some(x) => {
                    let at = within_run(&key("restart.at"), x.at.0)?;
                    let down = positive(&key("restart.down"), x.down.0)?;
                    Some(Restart { at, down })
                }
                None => None,
            };
            let balancer = resolve_balancer(s.balancer.as_ref(), &servers, &key, &positive)?;
            let deploy = match &s.deploy {
                Some(_) if servers.replicas < 2 => {
                    return Err(err(
                        &key("deploy"),
                        "a rolling deploy needs `[server] replicas` of 2 or more".into(),
                    ))
                }
                Some(x) => Some(Deploy {
                    at: within_run(&key("deploy.at"), x.at.0)?,
                    every: positive(&key("deploy.every"), x.every.0)?,
                    drain: x.drain.map_or(Duration::ZERO, |d| d.0),
                    down: match x.down {
                        Some(d) => positive(&key("deploy.down"), d.0)?,
                        None => Duration::from_secs(2),
                    },
                    close_spread: match x.close_spread {
                        Some(spread) if spread.0 > x.drain.map_or(Duration::ZERO, |d| d.0) => {
                            return Err(err(
                                &key("deploy.close_spread"),
                                "must not be longer than deploy.drain (the closes happen while \
                                 the replica drains)"
                                    .into(),
                            ))
                        }
                        Some(spread) => spread.0,
                        None => Duration::ZERO,
                    },
                }),
                None => None,
            };
            if let Some(d) = &deploy {
                // The last replica must be back inside the run, or the deploy is never whole.
                let back = d.last_up(servers.replicas);
                if back >= duration {
                    return Err(err(
                        &key("deploy.every"),
                        format!(
                            "the rolling deploy's last replica is back at {} (at + every × {} + drain \
                             + down), not before the run ends ({}): start it earlier, space the \
                             replicas closer or run longer",
                            crate::duration::format(back),
                            servers.replicas - 1,
                            crate::duration::format(duration)
                        ),
                    ));
                }
            }
            let scale_out = match &s.scale_out {
                Some(_) if balancer.is_none() => {
                    return Err(err(
                        &key("scale_out"),
                        "a scale-out needs a balancer: `[server] replicas` of 2 or more, or a \
                         `[scenario.balancer]`"
                            .into(),
                    ))
                }
                Some(x) => {
                    let room = MAX_REPLICAS - servers.replicas;
                    let add = u32::try_from(x.add)
                        .ok()
                        .filter(|a| (1..=room).contains(a))
                        .ok_or_else(|| {
                            err(
                                &key("scale_out.add"),
                                format!(
                                    "must be between 1 and {room} (at most {MAX_REPLICAS} replicas \
                                     in all), got {}",
                                    x.add
                                ),
                            )
                        })?;
                    let history = x.history.unwrap_or_default();
                    if history == crate::profile::ScaleOutHistory::Backplane
                        && servers.backplane != crate::profile::Backplane::Shared
                    {
                        return Err(err(
                            &key("scale_out.history"),
                            "\"backplane\" replays the shared backplane: it needs \
                             `[server] backplane = \"shared\"`"
                                .into(),
                        ));
                    }
                    Some(ScaleOut {
                        at: within_run(&key("scale_out.at"), x.at.0)?,
                        add,
                        history,
                    })
                }
                None => None,
            };
            scenarios.push(Scenario {
                name: s.name.clone(),
                description: s.description.clone().unwrap_or_default(),
                nat,
                proxy,
                switch,
                restart,
                balancer,
                deploy,
                scale_out,
            });
        }
        if scenarios.is_empty() {
            scenarios.push(Scenario {
                name: "baseline".into(),
                balancer: resolve_balancer(None, &servers, &|k| k.to_string(), &|_, d| Ok(d))?,
                ..Scenario::default()
            });
        }

        Ok(Plan {
            profile_path: source.path.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            seed,
            seeds: 1,
            duration,
            clients: p.clients as u32,
            transports,
            network: Network {
                latency: p.network.latency.0,
                jitter: p.network.jitter.0,
            },
            workload: Workload {
                events_per_second: w.events_per_second,
                event_bytes,
                arrival: w.arrival,
                upstream_per_minute: w.upstream_per_minute,
                upstream_bytes,
                client_ramp: within_run("workload.client_ramp", w.client_ramp.0)?,
                upstream_acks: w.upstream_acks,
            },
            settings: TransportSettings {
                polling_interval,
                long_poll_hold,
                sse_heartbeat,
                sse_retry,
                sse_accel_buffering_off: p.sse.accel_buffering_off,
                sse_client_timeout,
                ws_ping_interval,
                ws_ping_timeout,
                ws_fallback: p.websocket.fallback,
                ws_resume: p.websocket.resume,
                reconnect: Reconnect {
                    initial,
                    max: r.max.0,
                    factor: r.factor,
                    jitter: r.jitter,
                },
                request_timeout: positive("reconnect.request_timeout", r.request_timeout.0)?,
                history,
                radio_tail: p.radio.tail.0,
            },
            scenarios,
            simulation: Simulation {
                tick,
                client_hosts,
                lookahead: p.simulation.lookahead == crate::profile::Lookahead::Auto,
            },
            requirements: Requirements::resolve(p.requirements.as_ref(), w, &err)?,
            population: match p.population {
                None => None,
                Some(n) if n >= p.clients && n <= 1_000_000_000 => Some(n as u64),
                Some(n) => {
                    return Err(err(
                        "population",
                        format!(
                            "must be at least `clients` ({}) and at most 1000000000 (got {n})",
                            p.clients
                        ),
                    ))
                }
            },
            servers,
        })
    }

    /// Every run the plan asks for, scenario-major, in a fixed order.
    pub fn runs(&self) -> Vec<RunSpec> {
        let mut runs = Vec::new();
        for scenario in 0..self.scenarios.len() {
            for &transport in &self.transports {
                for index in 0..self.seeds.max(1) {
                    runs.push(RunSpec {
                        scenario,
                        transport,
                        seed: self.seed_number(index),
                    });
                }
            }
        }
        runs
    }

    /// The `index`-th seed of the plan: the profile's seed first, then seeds derived from it.
    pub fn seed_number(&self, index: u32) -> u64 {
        if index == 0 {
            self.seed
        } else {
            crate::world::derive_seed(self.seed, 0x5EED_0000 + u64::from(index))
        }
    }
}

/// A report folder name must stay inside its parent folder.
pub fn check_report_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` cannot name a report folder: use letters, digits, `-`, `_` and `.` (not first)"
        ))
    }
}

fn bytes_in_range(value: i64, min: i64, max: i64) -> Result<usize, String> {
    if value < min || value > max {
        Err(format!(
            "must be between {min} and {max} bytes (got {value})"
        ))
    } else {
        Ok(value as usize)
    }
}

fn dedup(list: &[TransportKind]) -> Vec<TransportKind> {
    let mut out = Vec::new();
    for &t in list {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Result<Plan, InputError> {
        Plan::from_text("t.toml", text)
    }

    const BASE: &str = "name = \"t\"\nduration = \"1m\"\nclients = 3\n";

    #[test]
    fn defaults_give_one_baseline_scenario_and_all_transports() {
        let plan = plan(BASE).unwrap();
        assert_eq!(plan.scenarios.len(), 1);
        assert_eq!(plan.scenarios[0].name, "baseline");
        assert_eq!(plan.transports, TransportKind::ALL.to_vec());
        assert_eq!(plan.runs().len(), 4);
    }

    #[test]
    fn impossible_values_are_located() {
        let e = plan("name = \"t\"\nduration = \"1m\"\nclients = 0\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("clients")));
        let e = plan(&format!("{BASE}[workload]\nevents_per_second = -2.0\n")).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(5), Some("workload.events_per_second"))
        );
        let e = plan(&format!("{BASE}[sse]\nheartbeat = \"2m\"\n")).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(5), Some("sse.heartbeat")));
        assert!(e.message.contains("not shorter than the run"), "{e}");
        let e = plan("name = \"../x\"\nduration = \"1m\"\nclients = 1\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("name"));
    }

    #[test]
    fn scenario_errors_name_the_array_entry() {
        let text = format!("{BASE}[[scenario]]\nname = \"a\"\n[[scenario]]\nname = \"a\"\n");
        let e = plan(&text).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(7), Some("scenario[1].name"))
        );
    }

    #[test]
    fn scale_out_keys_are_validated_and_located() {
        let ok = plan(&format!(
            "{BASE}[server]\nreplicas = 2\n[[scenario]]\nname = \"a\"\n[scenario.scale_out]\n\
             at = \"30s\"\nadd = 2\n"
        ))
        .unwrap();
        assert_eq!(
            ok.scenarios[0].scale_out,
            Some(ScaleOut {
                at: Duration::from_secs(30),
                add: 2,
                history: crate::profile::ScaleOutHistory::None,
            })
        );
        assert!(ok.scenarios[0].faults().contains(&"scale-out"));
        // One server and no balancer: nothing to add replicas behind.
        let e = plan(&format!(
            "{BASE}[[scenario]]\nname = \"a\"\n[scenario.scale_out]\nat = \"30s\"\nadd = 1\n"
        ))
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("scenario[0].scale_out"));
        assert!(e.message.contains("balancer"), "{e}");
        // A balancer in front of one server is enough.
        let one = plan(&format!(
            "{BASE}[[scenario]]\nname = \"a\"\n[scenario.balancer]\n[scenario.scale_out]\n\
             at = \"30s\"\nadd = 1\n"
        ))
        .unwrap();
        assert_eq!(one.scenarios[0].scale_out.as_ref().map(|s| s.add), Some(1));
        for add in ["0", "-1", "31"] {
            let e = plan(&format!(
                "{BASE}[server]\nreplicas = 2\n[[scenario]]\nname = \"a\"\n\
                 [scenario.scale_out]\nat = \"30s\"\nadd = {add}\n"
            ))
            .unwrap_err();
            assert_eq!(
                (e.line, e.key.as_deref()),
                (Some(10), Some("scenario[0].scale_out.add")),
                "add = {add}: {e}"
            );
        }
        let e = plan(&format!(
            "{BASE}[server]\nreplicas = 2\n[[scenario]]\nname = \"a\"\n[scenario.scale_out]\n\
             at = \"1m\"\nadd = 1\n"
        ))
        .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(9), Some("scenario[0].scale_out.at"))
        );
        let e = plan(&format!(
            "{BASE}[server]\nreplicas = 2\n[[scenario]]\nname = \"a\"\n[scenario.scale_out]\n\
             at = \"10s\"\nadd = 1\nremove = 1\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("remove"), "{e}");
        let e = plan(&format!(
            "{BASE}[server]\nreplicas = 2\nbackplane = \"none\"\n[[scenario]]\nname = \"a\"\n\
             [scenario.scale_out]\nat = \"10s\"\nadd = 1\nhistory = \"backplane\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(12), Some("scenario[0].scale_out.history"))
        );
        let e = plan(&format!(
            "{BASE}[server]\nreplicas = 2\n[[scenario]]\nname = \"a\"\n[scenario.scale_out]\n\
             at = \"10s\"\nadd = 1\nhistory = \"redis\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("scenario[0].scale_out.history"));
    }

    #[test]
    fn replicas_and_balancer_keys_are_validated_and_located() {
        let plan_ok = plan(BASE).unwrap();
        assert_eq!(plan_ok.servers, Servers::default());
        assert_eq!(
            plan_ok.scenarios[0].balancer, None,
            "one server: no balancer"
        );
        let text = format!(
            "{BASE}[server]\nreplicas = 3\nbackplane = \"none\"\nbackplane_latency = \"5ms\"\n\n\
             [[scenario]]\nname = \"a\"\n[[scenario]]\nname = \"b\"\n[scenario.balancer]\n\
             policy = \"sticky\"\nidle_timeout = \"30s\"\n"
        );
        let p = plan(&text).unwrap();
        assert_eq!(p.servers.replicas, 3);
        assert_eq!(p.servers.backplane, Backplane::None);
        assert_eq!(p.servers.backplane_latency, Duration::from_millis(5));
        assert_eq!(
            p.scenarios[0].balancer,
            Some(Balancer {
                policy: BalancePolicy::RoundRobin,
                idle_timeout: DEFAULT_BALANCER_IDLE_TIMEOUT,
                health_check: Duration::ZERO,
            }),
            "replicas get a balancer with the defaults"
        );
        assert_eq!(
            p.scenarios[1].balancer,
            Some(Balancer {
                policy: BalancePolicy::Sticky,
                idle_timeout: Duration::from_secs(30),
                health_check: Duration::ZERO,
            })
        );
        let e = plan(&format!("{BASE}[server]\nreplicas = 0\n")).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(5), Some("server.replicas"))
        );
        let e = plan(&format!("{BASE}[server]\nbackplane = \"redis\"\n")).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(5), Some("server.backplane"))
        );
        let e = plan(&format!("{BASE}[server]\nbackplane_latency = \"2m\"\n")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("server.backplane_latency"));
        let e = plan(&format!(
            "{BASE}[[scenario]]\nname = \"a\"\n[scenario.balancer]\nidle_timeout = \"0s\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(7), Some("scenario[0].balancer.idle_timeout"))
        );
        let e = plan(&format!(
            "{BASE}[[scenario]]\nname = \"a\"\n[scenario.balancer]\npolicy = \"random\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("scenario[0].balancer.policy"));
        let e = plan(&format!(
            "{BASE}[[scenario]]\nname = \"a\"\n[scenario.deploy]\nat = \"10s\"\nevery = \"5s\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("scenario[0].deploy"));
        assert!(e.message.contains("replicas"), "{e}");
        let e = plan(&format!(
            "{BASE}[server]\nreplicas = 2\n[[scenario]]\nname = \"a\"\n[scenario.deploy]\n\
             at = \"2m\"\nevery = \"5s\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(9), Some("scenario[0].deploy.at"))
        );
        // A deploy whose last replica would come back after the run never completes.
        let e = plan(&format!(
            "{BASE}[server]\nreplicas = 3\n[[scenario]]\nname = \"a\"\n[scenario.deploy]\n\
             at = \"40s\"\nevery = \"10s\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(10), Some("scenario[0].deploy.every"))
        );
        assert!(e.message.contains("back at 62s"), "{e}");
        // Closes spread over longer than the drain would fall after the stop.
        let deploy = |extra: &str| {
            plan(&format!(
                "{BASE}[server]\nreplicas = 2\n[[scenario]]\nname = \"a\"\n[scenario.deploy]\n\
                 at = \"10s\"\nevery = \"5s\"\n{extra}"
            ))
        };
        let e = deploy("drain = \"2s\"\nclose_spread = \"3s\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(12), Some("scenario[0].deploy.close_spread"))
        );
        assert!(e.message.contains("drain"), "{e}");
        let ok = deploy("drain = \"3s\"\nclose_spread = \"3s\"\n").unwrap();
        let d = ok.scenarios[0].deploy.as_ref().unwrap();
        assert_eq!(
            (d.drain, d.close_spread),
            (Duration::from_secs(3), Duration::from_secs(3))
        );
        let plain = deploy("").unwrap();
        assert_eq!(
            plain.scenarios[0].deploy.as_ref().unwrap().close_spread,
            Duration::ZERO
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_spreads_it() {
        let r = Reconnect {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            factor: 2.0,
            jitter: 0.0,
        };
        let delays: Vec<u64> = (0..6).map(|a| r.delay(a, 0.3).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 8, 8]);
        let jittered = Reconnect { jitter: 0.5, ..r };
        assert_eq!(jittered.delay(1, 0.0), Duration::from_secs(1));
        assert_eq!(jittered.delay(1, 0.5), Duration::from_secs(2));
        assert!(jittered.delay(1, 0.999) < Duration::from_secs(3));
    }
}
