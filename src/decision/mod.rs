//! The decision: which transport, and does it hold up in this environment?
//!
//! One module below both the wizard and the report, so the two can never give different answers:
//! - [`tree`]: the design brief's decision tree over a [`Situation`] — the candidate transport and the
//!   path to it, moving up the tree when a requirement rules the leaf out.
//! - [`mitigations`]: the rules that say what an environment demands of a transport.
//! - [`verdict`]: every scenario × transport checked against every requirement, and the one
//!   evidence-backed decision made from those checks.
//!
//! Pure functions: a situation, requirements and measured metrics in; recommendations, checks and
//! sentences out. No terminal, file, clock or simulation here, and nothing from `report` or `wizard`
//! (they call this module, never the other way round).

use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;

pub mod mitigations;
pub mod tree;
pub mod verdict;

pub use mitigations::{mitigations, Mitigation, Setting};
pub use tree::{recommend, Recommendation, RunnerUp};
pub use verdict::{decide, Check, Verdict};

/// How requests are spread over several servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadBalancer {
    /// One server, or nothing in front of the servers.
    None,
    /// A load balancer that keeps each client on one server (session affinity).
    Sticky,
    /// A load balancer that sends each request to any server.
    RoundRobin,
}

impl LoadBalancer {
    /// Every choice, in the order the prompt lists them.
    pub const ALL: [LoadBalancer; 3] = [
        LoadBalancer::None,
        LoadBalancer::Sticky,
        LoadBalancer::RoundRobin,
    ];

    /// The name used in answers files (`"none"`, `"sticky"`, `"round-robin"`).
    pub fn name(self) -> &'static str {
        match self {
            LoadBalancer::None => "none",
            LoadBalancer::Sticky => "sticky",
            LoadBalancer::RoundRobin => "round-robin",
        }
    }
}

/// What the tree and the mitigation rules need to know about an application and its environment —
/// from the wizard's answers, or read off a profile's requirements, workload and scenarios.
#[derive(Clone, Debug, PartialEq)]
pub struct Situation {
    /// Both client and server send messages frequently.
    pub bidirectional: bool,
    /// The server has news the client did not ask for.
    pub server_push: bool,
    /// How often the data changes, changes per minute.
    pub changes_per_minute: f64,
    /// Concurrent clients.
    pub clients: i64,
    /// Size of one update's payload, bytes.
    pub event_bytes: i64,
    /// Messages each client sends to the server, per minute.
    pub upstream_per_minute: f64,
    /// Fraction of clients on mobile networks, 0 to 1.
    pub mobile_share: f64,
    /// Some clients sit behind corporate proxies.
    pub corporate_proxies: bool,
    /// Traffic passes through a CDN or a buffering reverse proxy.
    pub cdn: bool,
    /// What spreads requests over the servers.
    pub load_balancer: LoadBalancer,
    /// Longest acceptable delay between a change and a client seeing it.
    pub latency_budget: HumanDuration,
    /// The server's request budget, requests per second, if there is one.
    pub max_requests_per_second: Option<f64>,
}

impl Default for Situation {
    /// The wizard's default answers.
    fn default() -> Self {
        Self {
            bidirectional: false,
            server_push: true,
            changes_per_minute: 6.0,
            clients: 1000,
            event_bytes: 300,
            upstream_per_minute: 0.0,
            mobile_share: 0.3,
            corporate_proxies: false,
            cdn: false,
            load_balancer: LoadBalancer::RoundRobin,
            latency_budget: HumanDuration(std::time::Duration::from_secs(1)),
            max_requests_per_second: None,
        }
    }
}
