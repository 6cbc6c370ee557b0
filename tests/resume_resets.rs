//! A resume the server cannot honour is signalled, and the simulation counts it: clients cut off by
//! network switches longer than the server's (tiny) history covers are told of the gap on every
//! transport, and `resume_resets` reports it. With a history that covers the outages, there is none.

use rtsim::metrics::RunMetrics;
use rtsim::scenario::Plan;
use rtsim::transport::TransportKind;

fn simulate(history: usize) -> Vec<(TransportKind, RunMetrics)> {
    let profile = format!(
        r#"
name = "resets"
seed = 3
duration = "90s"
clients = 10

[workload]
events_per_second = 20.0
event_bytes = 100
arrival = "uniform"

[polling]
interval = "1s"

[websocket]
resume = true

[server]
history = {history}

[[scenario]]
name = "switching"
[scenario.switch]
every = "30s"
outage = "3s"
"#
    );
    let plan = Plan::from_text("resets.toml", &profile).unwrap_or_else(|e| panic!("{e}"));
    let report = rtsim::simulate::simulate(&plan, &mut |_, _, _| {}).expect("simulation runs");
    report
        .runs
        .into_iter()
        .map(|r| (r.transport, r.metrics))
        .collect()
}

#[test]
fn gaps_beyond_the_history_are_counted_as_resume_resets() {
    for (kind, m) in simulate(5) {
        // 3 s outages at 20 events/s lose ~60 events; 5 are kept.
        assert!(
            m.reconnects > 0,
            "{kind}: the switches broke sessions: {m:?}"
        );
        assert!(
            m.resume_resets > 0,
            "{kind}: gaps were signalled and counted: {m:?}"
        );
        assert!(m.lost > 0, "{kind}: and events were indeed lost");
    }
    for (kind, m) in simulate(100_000) {
        assert_eq!(
            m.resume_resets, 0,
            "{kind}: everything could be replayed: {m:?}"
        );
    }
}
