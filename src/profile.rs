//! The profile as the user wrote it: serde structs mirroring the TOML file, and loading with errors that
//! name the file, the line and the key.
//!
//! Nothing here decides whether values make sense together; `scenario` validates and resolves units.
//! Field names are a contract with users' files: add keys, never rename or drop one.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::duration::{HumanDuration, OptionalDuration};
use crate::transport::TransportKind;

/// A whole profile file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Reports go to `reports/<name>/` unless `--out` is given.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "defaults::seed")]
    pub seed: i64,
    /// Simulated time per run.
    pub duration: HumanDuration,
    pub clients: i64,
    /// Transports to compare; all four when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transports: Option<Vec<TransportKind>>,
    #[serde(default)]
    pub network: NetworkSection,
    #[serde(default)]
    pub workload: WorkloadSection,
    #[serde(default)]
    pub polling: PollingSection,
    #[serde(default)]
    pub long_polling: LongPollingSection,
    #[serde(default)]
    pub sse: SseSection,
    #[serde(default)]
    pub websocket: WebSocketSection,
    #[serde(default)]
    pub reconnect: ReconnectSection,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub radio: RadioSection,
    #[serde(default)]
    pub simulation: SimulationSection,
    /// Each scenario is run once for each transport. A profile without any runs one clean `baseline`.
    #[serde(default)]
    pub scenario: Vec<ScenarioSection>,
    /// What the application needs; the verdict checks every run against it. Keys left out are assumed
    /// (and the report says how).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<RequirementsSection>,
    /// The real number of concurrent clients `clients` stands for, when more than are simulated: the
    /// server-side figures (requests/s, bytes/s, open connections) are scaled to it in the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<i64>,
}

/// `[requirements]`: what the application needs. These keys are a contract.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementsSection {
    /// Both sides send frequently (the brief's first question).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bidirectional: Option<bool>,
    /// The server has news the client did not ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_push: Option<bool>,
    /// The latency budget: `latency_percentile` of deliveries must arrive within it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<HumanDuration>,
    /// 50, 95 or 99; default 95.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_percentile: Option<i64>,
    /// Fraction of owed deliveries (server → client) that may be lost; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lost: Option<f64>,
    /// Fraction of client → server messages that may be lost; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_upstream_lost: Option<f64>,
    /// The server's request budget, requests per second (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_second: Option<f64>,
    /// The most open connections one server may hold: the busiest replica's peak (the lone server's
    /// without a balancer), scaled to `population` (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_connections_per_server: Option<f64>,
    /// The most reconnect attempts per second the fleet may take during a rolling deploy (its peak
    /// second, scaled to `population`; checked in scenarios with a `[scenario.deploy]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_reconnects_per_second: Option<f64>,
    /// How soon after a replica restart every client must be served again (checked in scenarios
    /// that restart something: a deploy or `[scenario.restart]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_served_again: Option<HumanDuration>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// One-way base latency between a client and the server.
    pub latency: HumanDuration,
    /// Extra random one-way delay, from 0 up to this.
    pub jitter: HumanDuration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arrival {
    /// Exponentially distributed gaps (events arrive as a Poisson process).
    Poisson,
    /// A fixed interval between events.
    Uniform,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadSection {
    /// Events the server publishes per second; each goes to every client.
    pub events_per_second: f64,
    /// Size of one event's payload, bytes.
    pub event_bytes: i64,
    pub arrival: Arrival,
    /// Messages each client sends to the server per minute (chat); 0 = none.
    pub upstream_per_minute: f64,
    pub upstream_bytes: i64,
    /// Clients join at seeded moments spread over this long; measurement starts after it.
    pub client_ramp: HumanDuration,
    /// Clients keep each upstream message in an outbox until the server acknowledges it and resend it
    /// after a reconnect; the server drops duplicates by message id.
    pub upstream_acks: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollingSection {
    pub interval: HumanDuration,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LongPollingSection {
    /// The server answers empty after holding a request this long.
    pub hold: HumanDuration,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SseSection {
    /// A comment line is sent when the stream has been idle this long; `"off"` disables.
    pub heartbeat: OptionalDuration,
    /// Sent to clients as `retry:`, the reconnection delay they should use.
    pub retry: HumanDuration,
    /// Send `X-Accel-Buffering: no` so that buffering proxies (nginx) pass the stream through.
    pub accel_buffering_off: bool,
    /// The client declares the stream dead after this long without a byte; `"off"` never does.
    /// Defaults to twice the heartbeat (off when heartbeats are off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_timeout: Option<OptionalDuration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fallback {
    /// The client retries the upgrade with its backoff.
    None,
    /// The client switches to engine.io's polling transport (Socket.IO's fallback): sessions opened
    /// by a handshake, held on the server that answered it — behind a balancer they need sticky
    /// sessions (`src/transport/engine_io.rs`).
    LongPolling,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketSection {
    /// The server pings this often; `"off"` disables.
    pub ping_interval: OptionalDuration,
    /// Without a ping or message for `ping_interval + ping_timeout` the client declares the connection
    /// dead; the server drops a client whose pong is this late.
    pub ping_timeout: HumanDuration,
    /// What a client does when the upgrade is refused (Socket.IO and SignalR fall back). The
    /// fallback's sessions ping at `ping_interval` (engine.io's 25 s when off) and expire when a pong
    /// is `ping_timeout` late.
    pub fallback: Fallback,
    /// A reconnecting client asks the server to replay from its last event id.
    pub resume: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectSection {
    pub initial: HumanDuration,
    pub max: HumanDuration,
    pub factor: f64,
    /// Fraction of each delay that is randomised (0 = none, 0.5 = ±50 %).
    pub jitter: f64,
    /// How long an HTTP client waits for an answer (beyond a long poll's hold) before it gives the
    /// connection up as dead.
    pub request_timeout: HumanDuration,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Events the server keeps for clients that resume from a cursor or `Last-Event-ID`.
    pub history: i64,
    /// Server hosts behind a load balancer; 1 (the default) is one server and no balancer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    /// How the replicas learn of each other's events; `shared` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backplane: Option<Backplane>,
    /// How long an event takes to reach the replicas over a shared backplane; 2ms when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backplane_latency: Option<HumanDuration>,
}

/// `[server] backplane`: how events published on one replica reach the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backplane {
    /// A pub/sub bus (Redis, NATS): every event reaches every replica's history.
    #[default]
    Shared,
    /// A replica only knows the events published on it.
    None,
}

impl Backplane {
    pub fn as_str(self) -> &'static str {
        match self {
            Backplane::Shared => "shared",
            Backplane::None => "none",
        }
    }
}

/// `[scenario.balancer] policy`: how the load balancer picks a replica for a new connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BalancePolicy {
    /// Each new connection goes to the next replica in turn.
    #[default]
    RoundRobin,
    /// To the replica with the fewest open connections (the lowest-numbered among equals).
    LeastConnections,
    /// By the client's address: the same address always reaches the same replica.
    Sticky,
}

impl BalancePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            BalancePolicy::RoundRobin => "round-robin",
            BalancePolicy::LeastConnections => "least-connections",
            BalancePolicy::Sticky => "sticky",
        }
    }
}

/// `[scenario.balancer]`: the load balancer in front of the replicas (present whenever
/// `[server] replicas` is above 1, with these defaults).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BalancerSection {
    /// `round-robin` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<BalancePolicy>,
    /// A connection silent (both ways) this long is closed; 60s (AWS ALB's default) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<HumanDuration>,
    /// How long a replica that stops without being deregistered first (a deploy without `drain`)
    /// stays in rotation: its health check's interval × unhealthy threshold (AWS ALB: 30 s × 2).
    /// New connections sent to it in that time are refused. "0s" (the default): noticed at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HumanDuration>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RadioSection {
    /// How long a mobile radio stays in its high-power state after the last packet (LTE tail).
    pub tail: HumanDuration,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulationSection {
    /// Simulated time per turmoil step: the resolution of every timestamp.
    pub tick: HumanDuration,
    /// Simulated machines the clients are spread over (many clients share one host: cost grows with
    /// hosts, not connections).
    pub client_hosts: i64,
    /// `"auto"`: step the simulation in lookahead windows (hosts run on their own until the next
    /// message can reach them) and skip a host's tick when it has nothing to do; `"off"`: every
    /// host, one tick at a time. Both give the same results.
    pub lookahead: Lookahead,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lookahead {
    /// Lookahead windows wherever the network's latencies allow them.
    Auto,
    /// Every host steps one tick at a time.
    Off,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSection {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<NatSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxySection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<SwitchSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer: Option<BalancerSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeploySection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out: Option<ScaleOutSection>,
}

/// `[scenario.scale_out]`: replicas added while the run goes on (needs a balancer: `[server]
/// replicas` of 2 or more, or a `[scenario.balancer]`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleOutSection {
    /// When the new replicas start; the balancer sends new connections to them from then on.
    pub at: HumanDuration,
    /// How many replicas are added (1 or more; with the others at most 32 in all).
    pub add: i64,
    /// What a new replica's history starts with; `"none"` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<ScaleOutHistory>,
}

/// A new replica's history at a scale-out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScaleOutHistory {
    /// Empty: it hears the backplane's events from `at` on, as a new Redis pub/sub subscriber does
    /// (pub/sub keeps nothing for later subscribers).
    #[default]
    None,
    /// The events the backplane still holds are replayed into it first, as a Redis Streams reader
    /// can read from any id (needs `backplane = "shared"`).
    Backplane,
}

/// `[scenario.deploy]`: a rolling deploy, the replicas restarted one at a time.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeploySection {
    /// When the first replica starts draining.
    pub at: HumanDuration,
    /// Between two replicas.
    pub every: HumanDuration,
    /// A replica takes no new connections and closes its open ones gracefully (WebSocket 1001, SSE
    /// streams ended) for this long, then stops; 0s (the default) stops it at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<HumanDuration>,
    /// How long a stopped replica takes to come back; 2s when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<HumanDuration>,
    /// Spread the draining replica's connection closes over this long from the drain's start (as
    /// HAProxy's `close-spread-time`), each connection at its own moment; 0s (the default): all at
    /// once. At most `drain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_spread: Option<HumanDuration>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatSection {
    /// A mapping idle this long is forgotten: traffic on it is silently dropped.
    pub idle_timeout: HumanDuration,
    /// What the NAT does with traffic on a forgotten mapping; `drop` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<NatExpiry>,
}

/// What a NAT does when a connection whose mapping it forgot carries traffic again (docs/references.md,
/// "Linux NAT").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatExpiry {
    /// Silent both ways, for ever: stateful carrier firewalls, or Linux with loose pickup off and
    /// INVALID packets dropped.
    #[default]
    Drop,
    /// Whichever side writes next gets its connection reset at once (strict conntrack,
    /// `--random-fully`).
    Reset,
    /// A client write re-creates the mapping and the connection lives on; a server write is reset
    /// (plain MASQUERADE).
    Remap,
}

impl NatExpiry {
    pub fn as_str(self) -> &'static str {
        match self {
            NatExpiry::Drop => "drop",
            NatExpiry::Reset => "reset",
            NatExpiry::Remap => "remap",
        }
    }
}

/// An HTTP proxy in front of the server. Every key is optional: a key left out takes the value of the
/// preset named by `like`, or, without a preset, the value it has always had (see [`ProxySection::resolve`]).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySection {
    /// A preset a user recognises (`nginx`, `nginx-streaming`, `corporate-strict`, `aws-alb`,
    /// `cloudflare`); any key set explicitly overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub like: Option<ProxyPreset>,
    /// Responses are held until this many bytes or the end of the response (0 = no buffering).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer_bytes: Option<i64>,
    /// A response with `X-Accel-Buffering: no` passes unbuffered, as nginx does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub honor_accel_buffering: Option<bool>,
    /// Refuse the WebSocket `Upgrade` with a 403 of the proxy's own, as restrictive proxies do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_websocket: Option<bool>,
    /// An upstream silent this long is cut (nginx `proxy_read_timeout`); a tunnel silent both ways
    /// this long is closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_timeout: Option<OptionalDuration>,
    /// The HTTP version spoken to the upstream (nginx `proxy_http_version`): with `"1.0"` a streamed
    /// response, head and body, is held until `buffer_bytes` gathered; with `"1.1"` it passes as it comes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_http: Option<UpstreamHttp>,
    /// Pass the `Upgrade`/`Connection` headers upstream (nginx needs two `proxy_set_header` lines for
    /// it); when false the server sees a plain GET and its own answer (400) reaches the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_upgrade: Option<bool>,
}

/// nginx's `proxy_http_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum UpstreamHttp {
    #[serde(rename = "1.0")]
    Http10,
    #[serde(rename = "1.1")]
    Http11,
}

/// Proxies users recognise, with their settings as measured or documented (docs/references.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyPreset {
    /// nginx 1.22 defaults, as measured: HTTP/1.0 upstream, 4 KiB buffers, honours
    /// `X-Accel-Buffering`, no upgrade, `proxy_read_timeout` 60 s.
    Nginx,
    /// nginx set up for streaming: `proxy_http_version 1.1`, upgrade headers passed,
    /// `proxy_read_timeout 1h`.
    NginxStreaming,
    /// A restrictive corporate proxy: buffers whatever the response says, refuses WebSocket.
    CorporateStrict,
    /// AWS Application Load Balancer defaults: streams, passes WebSocket, idle timeout 60 s.
    AwsAlb,
    /// Cloudflare's proxy: streams, passes WebSocket, proxy read timeout 100 s.
    Cloudflare,
}

impl ProxyPreset {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyPreset::Nginx => "nginx",
            ProxyPreset::NginxStreaming => "nginx-streaming",
            ProxyPreset::CorporateStrict => "corporate-strict",
            ProxyPreset::AwsAlb => "aws-alb",
            ProxyPreset::Cloudflare => "cloudflare",
        }
    }
}

/// A proxy's settings with every key decided (the preset's, or the historical defaults, under the
/// keys the user set).
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedProxy {
    pub buffer_bytes: i64,
    pub honor_accel_buffering: bool,
    pub block_websocket: bool,
    pub read_timeout: Option<std::time::Duration>,
    pub upstream_http: UpstreamHttp,
    pub pass_upgrade: bool,
}

impl ResolvedProxy {
    /// The settings of a preset; `None`: a proxy without one, as rtsim has always simulated it.
    pub fn preset(like: Option<ProxyPreset>) -> Self {
        let secs = std::time::Duration::from_secs;
        let (buffer_bytes, honor, block, timeout, upstream, upgrade) = match like {
            // Historical defaults: buffer 8 KiB, honour X-Accel-Buffering, 60 s, upgrades pass.
            None => (
                8192,
                true,
                false,
                Some(secs(60)),
                UpstreamHttp::Http10,
                true,
            ),
            Some(ProxyPreset::Nginx) => (
                4096,
                true,
                false,
                Some(secs(60)),
                UpstreamHttp::Http10,
                false,
            ),
            Some(ProxyPreset::NginxStreaming) => (
                4096,
                true,
                false,
                Some(secs(3600)),
                UpstreamHttp::Http11,
                true,
            ),
            Some(ProxyPreset::CorporateStrict) => (
                8192,
                false,
                true,
                Some(secs(60)),
                UpstreamHttp::Http10,
                false,
            ),
            Some(ProxyPreset::AwsAlb) => {
                (0, true, false, Some(secs(60)), UpstreamHttp::Http11, true)
            }
            Some(ProxyPreset::Cloudflare) => {
                (0, true, false, Some(secs(100)), UpstreamHttp::Http11, true)
            }
        };
        Self {
            buffer_bytes,
            honor_accel_buffering: honor,
            block_websocket: block,
            read_timeout: timeout,
            upstream_http: upstream,
            pass_upgrade: upgrade,
        }
    }
}

impl ProxySection {
    /// A section naming only a preset.
    pub fn like(preset: ProxyPreset) -> Self {
        Self {
            like: Some(preset),
            ..Self::default()
        }
    }

    /// Every setting decided: explicit keys first, then the preset's (or the historical) values.
    pub fn resolve(&self) -> ResolvedProxy {
        let base = ResolvedProxy::preset(self.like);
        ResolvedProxy {
            buffer_bytes: self.buffer_bytes.unwrap_or(base.buffer_bytes),
            honor_accel_buffering: self
                .honor_accel_buffering
                .unwrap_or(base.honor_accel_buffering),
            block_websocket: self.block_websocket.unwrap_or(base.block_websocket),
            read_timeout: self.read_timeout.map_or(base.read_timeout, |t| t.0),
            upstream_http: self.upstream_http.unwrap_or(base.upstream_http),
            pass_upgrade: self.pass_upgrade.unwrap_or(base.pass_upgrade),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchSection {
    /// Each client switches networks on average this often (seeded, per client).
    pub every: HumanDuration,
    /// Time with no network at all during a switch.
    #[serde(default = "defaults::outage")]
    pub outage: HumanDuration,
    /// The client is told (a browser's `ERR_NETWORK_CHANGED`, the OS closing a lost network's sockets):
    /// its connections fail at once; false keeps them silently dead. True when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<bool>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RestartSection {
    /// When the server process restarts (a deploy): every connection closes at once.
    pub at: HumanDuration,
    /// How long the server is down before it accepts connections again.
    #[serde(default = "defaults::outage")]
    pub down: HumanDuration,
}

mod defaults {
    use crate::duration::HumanDuration;
    use std::time::Duration;
    pub fn seed() -> i64 {
        1
    }
    pub fn outage() -> HumanDuration {
        HumanDuration(Duration::from_secs(2))
    }
}

fn secs(s: u64) -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(s))
}

fn millis(ms: u64) -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(ms))
}

impl Default for NetworkSection {
    fn default() -> Self {
        Self {
            latency: millis(50),
            jitter: millis(10),
        }
    }
}

impl Default for WorkloadSection {
    fn default() -> Self {
        Self {
            events_per_second: 1.0,
            event_bytes: 200,
            arrival: Arrival::Poisson,
            upstream_per_minute: 0.0,
            upstream_bytes: 100,
            client_ramp: secs(10),
            upstream_acks: false,
        }
    }
}

impl Default for PollingSection {
    fn default() -> Self {
        Self { interval: secs(5) }
    }
}

impl Default for LongPollingSection {
    fn default() -> Self {
        // Phoenix's long-poll timeout is 20 s; 30 s stays under common 60 s proxy/LB idle limits.
        Self { hold: secs(30) }
    }
}

impl Default for SseSection {
    fn default() -> Self {
        // SignalR keep-alive 15 s (docs/references.md); browsers reconnect after ~3 s.
        Self {
            heartbeat: OptionalDuration(Some(std::time::Duration::from_secs(15))),
            retry: secs(3),
            accel_buffering_off: false,
            client_timeout: None,
        }
    }
}

impl Default for WebSocketSection {
    fn default() -> Self {
        Self {
            ping_interval: OptionalDuration(Some(std::time::Duration::from_secs(20))),
            ping_timeout: secs(10),
            fallback: Fallback::None,
            resume: true,
        }
    }
}

impl Default for ReconnectSection {
    fn default() -> Self {
        Self {
            initial: secs(1),
            max: secs(30),
            factor: 2.0,
            jitter: 0.5,
            request_timeout: secs(10),
        }
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            history: 1000,
            replicas: None,
            backplane: None,
            backplane_latency: None,
        }
    }
}

impl Default for RadioSection {
    fn default() -> Self {
        // LTE high-power tail ~10–11.6 s (Huang et al., MobiSys 2012; docs/references.md).
        Self {
            tail: millis(11_600),
        }
    }
}

impl Default for SimulationSection {
    fn default() -> Self {
        Self {
            tick: millis(1),
            client_hosts: 1,
            lookahead: Lookahead::Auto,
        }
    }
}

/// A problem with an input file, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: PathBuf,
    /// 1-based line, when the problem can be pinned to one.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the key at fault, e.g. `sse.heartbeat` or `scenario[2].nat.idle_timeout`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InputError {}

/// The source text of an input file, kept so that errors found after parsing can still be located.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            key: None,
            message: format!("cannot read the file: {e}"),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            text,
        })
    }

    /// Deserialises any TOML document, turning serde's errors into located `InputError`s.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, InputError> {
        let deserializer = toml::Deserializer::new(&self.text);
        serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let (line, column) = match inner.span() {
                Some(span) => {
                    let (l, c) = line_column(&self.text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            InputError {
                file: self.path.clone(),
                line,
                column,
                key: (path != "." && !path.is_empty()).then(|| normalise_path(&path)),
                message: inner.message().trim().to_string(),
            }
        })
    }

    /// An error about the value at `key` (dotted, with `[i]` for arrays of tables), located in the file.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> InputError {
        let position = locate(&self.text, key).map(|offset| line_column(&self.text, offset));
        InputError {
            file: self.path.clone(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

impl Profile {
    /// Reads and parses a profile; values are checked later by `scenario::Plan::from_profile`.
    pub fn load(path: &Path) -> Result<(Self, Source), InputError> {
        let source = Source::read(path)?;
        let profile = source.parse()?;
        Ok((profile, source))
    }

    /// The profile as TOML text (used by the wizard to write profiles).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a profile always serialises")
    }
}

/// serde_path_to_error writes array indices as `scenario[0]` already; keep it, but drop a leading dot.
fn normalise_path(path: &str) -> String {
    path.trim_start_matches('.').to_string()
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Byte offset of the value (or, failing that, the table) that `key` names.
fn locate(text: &str, key: &str) -> Option<usize> {
    let document = toml_edit::ImDocument::parse(text.to_string()).ok()?;
    let mut item: &toml_edit::Item = document.as_item();
    let mut best = None;
    for part in key.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let next = item.get(name)?;
        item = match index {
            Some(i) => match next {
                toml_edit::Item::ArrayOfTables(array) => {
                    let table = array.get(i)?;
                    best = table.span().map(|s| s.start).or(best);
                    // Move into the table as an item for the next key.
                    return locate_in_table(table, key_rest(key, part), best);
                }
                other => other.get(i)?,
            },
            None => next,
        };
        best = item.span().map(|s| s.start).or(best);
    }
    best
}

fn key_rest<'k>(key: &'k str, part: &str) -> &'k str {
    let start = key.find(part).map_or(key.len(), |i| i + part.len());
    key[start..].trim_start_matches('.')
}

fn locate_in_table(table: &toml_edit::Table, rest: &str, best: Option<usize>) -> Option<usize> {
    if rest.is_empty() {
        return best;
    }
    let mut current: &toml_edit::Item = table.get(rest.split('.').next()?)?;
    let mut best = current.span().map(|s| s.start).or(best);
    for part in rest.split('.').skip(1) {
        current = current.get(part)?;
        best = current.span().map(|s| s.start).or(best);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        Source {
            path: PathBuf::from("p.toml"),
            text: text.to_string(),
        }
    }

    const MINIMAL: &str = "name = \"x\"\nduration = \"1m\"\nclients = 10\n";

    #[test]
    fn minimal_profile_takes_defaults() {
        let profile: Profile = source(MINIMAL).parse().unwrap();
        assert_eq!(profile.clients, 10);
        assert_eq!(profile.seed, 1);
        assert_eq!(profile.polling.interval.0.as_secs(), 5);
        assert!(profile.transports.is_none());
    }

    #[test]
    fn unknown_key_names_line_and_table() {
        let text = format!("{MINIMAL}[sse]\nheartbeet = \"15s\"\n");
        let err = source(&text).parse::<Profile>().unwrap_err();
        assert_eq!(err.line, Some(5), "{err}");
        assert!(err.message.contains("unknown field `heartbeet`"), "{err}");
        assert_eq!(err.key.as_deref(), Some("sse.heartbeet"));
    }

    #[test]
    fn wrong_type_names_the_key() {
        let text = "name = \"x\"\nduration = \"1m\"\nclients = \"many\"\n";
        let err = source(text).parse::<Profile>().unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert_eq!(err.key.as_deref(), Some("clients"));
    }

    #[test]
    fn bad_duration_is_located() {
        let text = format!("{MINIMAL}[polling]\ninterval = \"5 parsecs\"\n");
        let err = source(&text).parse::<Profile>().unwrap_err();
        assert_eq!(err.line, Some(5), "{err}");
        assert_eq!(err.key.as_deref(), Some("polling.interval"));
        assert!(err.to_string().starts_with("p.toml:5:"), "{err}");
    }

    #[test]
    fn error_at_finds_nested_and_array_keys() {
        let text = format!(
            "{MINIMAL}[sse]\nheartbeat = \"15s\"\n\n[[scenario]]\nname = \"a\"\n\n[[scenario]]\nname = \"b\"\n[scenario.nat]\nidle_timeout = \"0s\"\n"
        );
        let src = source(&text);
        assert_eq!(src.error_at("sse.heartbeat", "m").line, Some(5));
        assert_eq!(src.error_at("clients", "m").line, Some(3));
        assert_eq!(
            src.error_at("scenario[1].nat.idle_timeout", "m").line,
            Some(13)
        );
        assert_eq!(src.error_at("scenario[0].name", "m").line, Some(8));
    }

    #[test]
    fn profile_round_trips_through_toml() {
        let profile: Profile = source(MINIMAL).parse().unwrap();
        let again: Profile = source(&profile.to_toml()).parse().unwrap();
        assert_eq!(again.to_toml(), profile.to_toml());
    }
}
