//! rtsim: choose how a web application pushes live data to its clients — short polling, long polling,
//! Server-Sent Events or WebSockets — and prove the choice in deterministic network simulations of real
//! implementations.
//!
//! # Layout
//! The modules follow the data flow, in pipeline order:
//! - [`duration`], [`profile`]: the profile TOML as the user wrote it; errors name file, line and key.
//! - [`scenario`]: the validated [`scenario::Plan`] — units resolved, impossible values refused, and the
//!   list of runs (scenario × transport × seed).
//! - [`world`]: one turmoil simulation per run — the server host (or replicas behind a load balancer
//!   and their backplane), client hosts carrying many simulated users each, and the middleboxes of the
//!   scenario. The only module that knows turmoil.
//! - [`hub`]: the server's event publisher and bounded history; [`server`]: the HTTP/1.1 endpoint that
//!   routes requests to transports; [`net`]: connections as transports see them, with byte counting.
//! - [`transport`]: the four transports behind one trait, each a client half and a server half speaking
//!   the real wire protocol (HTTP/1.1, `text/event-stream`, RFC 6455; the WebSocket fallback speaks
//!   engine.io's polling sessions).
//! - [`recorder`]: what happened, stamped with simulated time; [`metrics`]: the numbers made from it.
//! - [`decision`]: the brief's tree, the mitigation rules and the verdict — every run checked against
//!   the profile's `[requirements]`, one decision out; shared by the report and the wizard.
//! - [`report`]: the results as a terminal table and a report folder — `summary.json`, CSV exports,
//!   SVG/PNG charts, `index.html` and `report.md` — written atomically.
//! - [`simulate`]: the `simulate` command tying these together, telling [`progress`] (the stderr bar)
//!   how far it got; [`runner`] runs the simulations on all cores; [`stats`] averages repeated runs
//!   with confidence intervals; [`shard`] splits a run list over machines and merges the results;
//!   [`cli`]: composes the commands' own clap arguments and dispatches.
//! - [`sweep`]: the `sweep` command: the same pipeline over a grid of edited profiles, one pool of runs
//!   for all grid points, metrics charted against the varied key and crossovers between transports.
//! - [`serve`]: the same server and transports on real TCP for real clients (browsers, `curl`), with a
//!   demo page; the only module that reads the wall clock.
//! - [`wizard`]: questions as data → pure decision function → recommendation + a profile for `simulate`.
//! - [`alarm`]: one timer task for many deadlines, under the hub's long-poll holds and the clients'
//!   request timeouts.
pub mod alarm;
pub mod cli;
pub mod decision;
pub mod duration;
pub mod hub;
pub mod metrics;
pub mod net;
pub mod profile;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod serve;
pub mod server;
pub mod shard;
pub mod simulate;
pub mod stats;
pub mod sweep;
#[cfg(test)]
mod test_support;
pub mod transport;
pub mod wizard;
pub mod world;
