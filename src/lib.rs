//! rtsim: choose how a web application pushes live data to its clients, and prove the choice in
//! deterministic network simulations of real implementations.
//!
//! # Layout
//! The modules follow the data flow, in pipeline order:
//! - [`duration`], [`profile`]: the profile TOML as the user wrote it, with located errors.
//! - [`scenario`]: the validated plan — units resolved, impossible values refused, runs listed.
//! - [`wizard`]: questions as data → pure decision function → recommendation + a profile for `simulate`.
pub mod cli;
pub mod duration;
pub mod profile;
pub mod scenario;
pub mod simulate;
pub mod transport;
pub mod wizard;
