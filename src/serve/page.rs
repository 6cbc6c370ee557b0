//! The demo page served at `/`: one self-contained HTML file (inline CSS and JS, nothing fetched from
//! elsewhere) in which the browser's own `fetch`, `EventSource` and `WebSocket` consume the four
//! transports side by side.
//!
//! The page measures each event's delivery delay itself, from the event's `published_us` and a server
//! clock offset it estimates with `/time` round trips; bytes and requests come from the server's
//! socket counters at `/stats`. This module only fills in the profile's settings; it measures nothing.

use super::ServeConfig;

/// The page, with a placeholder for the settings.
const TEMPLATE: &str = include_str!("page.html");
const PLACEHOLDER: &str = "/*RTSIM_CONFIG*/null";

fn millis(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

/// The page for a server running `config`.
pub fn render(config: &ServeConfig) -> String {
    let s = &config.settings;
    let settings = serde_json::json!({
        "profile": config.name,
        "events_per_second": config.workload.events_per_second,
        "event_bytes": config.workload.event_bytes,
        "polling_interval_ms": millis(s.polling_interval),
        "long_poll_hold_ms": millis(s.long_poll_hold),
        "sse_retry_ms": millis(s.sse_retry),
        "sse_heartbeat_ms": s.sse_heartbeat.map(millis),
        "ws_ping_interval_ms": s.ws_ping_interval.map(millis),
        "reconnect_initial_ms": millis(s.reconnect.initial),
        "reconnect_max_ms": millis(s.reconnect.max),
    });
    // `</` inside a script element would end it: a profile name is user text.
    let json = settings.to_string().replace("</", "<\\/");
    TEMPLATE.replacen(PLACEHOLDER, &json, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_filled_in_and_cannot_close_the_script() {
        let mut config = super::super::load_config(None).unwrap();
        config.name = "x</script><b>".to_string();
        let page = render(&config);
        assert!(!page.contains(PLACEHOLDER));
        assert!(page.contains("\"polling_interval_ms\":5000"), "{page}");
        assert!(!page.contains("x</script>"));
        assert_eq!(page.matches("</script>").count(), 1);
    }
}
