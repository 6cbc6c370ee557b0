//! rtsim: choose how a web application pushes live data to its clients, and prove the choice in
//! deterministic network simulations of real implementations.
//!
//! # Layout
//! The modules follow the data flow, in pipeline order:
//! - [`duration`], [`profile`]: the profile TOML as the user wrote it, with located errors.
//! - [`scenario`]: the validated plan — units resolved, impossible values refused, runs listed.
//! - [`simulate`]: runs every scenario × transport, telling [`progress`] (the stderr bar) how far it got.
//! - [`metrics`]: what a run measured, including the time series and latency distribution for charts.
//! - [`report`]: the results as a terminal table and a report folder — `summary.json`, CSV exports,
//!   SVG/PNG charts, `index.html` and `report.md` — written atomically.
pub mod cli;
pub mod duration;
pub mod profile;
pub mod scenario;
pub mod simulate;
pub mod transport;
pub mod hub;
pub mod metrics;
pub mod progress;
pub mod net;
pub mod recorder;
pub mod server;
pub mod world;
pub mod report;
