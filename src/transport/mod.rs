//! Transports: the four ways to push live data, each a real implementation with a client half and a
//! server half behind one trait.
mod kind;

pub use kind::TransportKind;
