//! The names of the four transports: the list every other module iterates over.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A way for the server to get live data to clients. The serialised names are a contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    Polling,
    LongPolling,
    Sse,
    Websocket,
}

impl TransportKind {
    /// All transports, in the order tables and charts show them.
    pub const ALL: [TransportKind; 4] = [
        TransportKind::Polling,
        TransportKind::LongPolling,
        TransportKind::Sse,
        TransportKind::Websocket,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::LongPolling => "long-polling",
            TransportKind::Sse => "sse",
            TransportKind::Websocket => "websocket",
        }
    }

    /// Human title for reports.
    pub fn title(self) -> &'static str {
        match self {
            TransportKind::Polling => "Short polling",
            TransportKind::LongPolling => "Long polling",
            TransportKind::Sse => "Server-Sent Events",
            TransportKind::Websocket => "WebSocket",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TransportKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TransportKind::ALL
            .into_iter()
            .find(|t| t.name() == s.trim())
            .ok_or_else(|| {
                format!("unknown transport `{s}` (expected polling, long-polling, sse or websocket)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in TransportKind::ALL {
            assert_eq!(t.name().parse::<TransportKind>(), Ok(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{}\"", t.name()));
        }
        assert!("smoke-signals".parse::<TransportKind>().is_err());
    }
}
