//! Holding the recommendation against the simulation's numbers.
//!
//! [`check_against_summary`] reads a `summary.json` value written by `rtsim simulate` and says, in plain
//! words, where the numbers disagree with the recommendation: the recommended transport lost events in
//! one of the user's scenarios, or missed the latency budget. It is pure (a JSON value in, sentences
//! out); reading the file and printing belong to the caller.
//!
//! The summary format is the engine's; this module reads only `runs[].scenario`, `runs[].transport`,
//! `runs[].lost` and `runs[].latency_ms.p95`, and says so when they are missing rather than guessing.

use std::time::Duration;

use serde_json::Value;

use super::decision::Recommendation;
use crate::duration;
use crate::transport::TransportKind;

/// One run's figures that the check needs.
struct Run<'a> {
    scenario: &'a str,
    transport: &'a str,
    lost: Option<f64>,
    p95_ms: Option<f64>,
}

fn runs(summary: &Value) -> Option<Vec<Run<'_>>> {
    let runs = summary.get("runs")?.as_array()?;
    Some(
        runs.iter()
            .filter_map(|run| {
                Some(Run {
                    scenario: run.get("scenario")?.as_str()?,
                    transport: run.get("transport")?.as_str()?,
                    lost: run.get("lost").and_then(Value::as_f64),
                    p95_ms: run
                        .get("latency_ms")
                        .and_then(|l| l.get("p95"))
                        .and_then(Value::as_f64),
                })
            })
            .collect(),
    )
}

/// The disagreements between the recommendation and the simulation, in plain words; empty when the
/// numbers back the recommendation (no events lost, 95th-percentile latency within the budget).
pub fn check_against_summary(
    rec: &Recommendation,
    summary: &Value,
    latency_budget: Duration,
) -> Vec<String> {
    let chosen = rec.transport;
    let Some(runs) = runs(summary) else {
        return vec![
            "The simulation summary has no `runs` list, so the recommendation could not be checked."
                .to_string(),
        ];
    };
    let mine: Vec<&Run> = runs
        .iter()
        .filter(|r| r.transport == chosen.name())
        .collect();
    if mine.is_empty() {
        return vec![format!(
            "The simulation has no run of {} (the recommendation), so it could not be checked.",
            chosen.name()
        )];
    }
    let others_in = |scenario: &str| -> Vec<&Run> {
        runs.iter()
            .filter(|r| r.scenario == scenario && r.transport != chosen.name())
            .collect()
    };
    let budget_ms = latency_budget.as_secs_f64() * 1000.0;
    let mut out = Vec::new();
    for run in mine {
        if let Some(lost) = run.lost.filter(|&l| l > 0.0) {
            let clean: Vec<&str> = others_in(run.scenario)
                .into_iter()
                .filter(|r| r.lost == Some(0.0))
                .map(|r| r.transport)
                .collect();
            out.push(format!(
                "In scenario `{}`, {} (the recommendation) lost {} events{}.",
                run.scenario,
                chosen.name(),
                count(lost),
                lost_none(&clean)
            ));
        }
        if let Some(p95) = run.p95_ms.filter(|&p| p > budget_ms) {
            let within: Vec<&str> = others_in(run.scenario)
                .into_iter()
                .filter(|r| r.p95_ms.is_some_and(|p| p <= budget_ms))
                .map(|r| r.transport)
                .collect();
            out.push(format!(
                "In scenario `{}`, {}'s 95th-percentile latency was {} ms, over your {} budget{}.",
                run.scenario,
                chosen.name(),
                count(p95),
                duration::format(latency_budget),
                if within.is_empty() {
                    String::new()
                } else {
                    format!(" ({} stayed within it)", join(&within))
                }
            ));
        }
    }
    let mine = || runs.iter().filter(|r| r.transport == chosen.name());
    if mine().all(|r| r.lost.is_none()) {
        out.push(format!(
            "The summary does not say how many events {} lost, so losses were not checked.",
            chosen.name()
        ));
    }
    if mine().all(|r| r.p95_ms.is_none()) {
        out.push(format!(
            "The summary gives no 95th-percentile latency for {}, so the latency budget was not \
             checked.",
            chosen.name()
        ));
    }
    out
}

/// Names the transports of a list in the order given: `a`, `a and b`, `a, b and c`.
fn join(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn lost_none(clean: &[&str]) -> String {
    if clean.is_empty() {
        String::new()
    } else {
        format!("; {} lost none there", join(clean))
    }
}

fn count(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{}", value as i64)
    } else {
        format!("{value:.1}")
    }
}

/// A one-line verdict for the report: agreement, or how many disagreements follow.
pub fn headline(transport: TransportKind, disagreements: &[String]) -> String {
    if disagreements.is_empty() {
        format!(
            "The simulation agrees: {} lost no events and stayed within the latency budget in every scenario.",
            transport.name()
        )
    } else {
        format!(
            "The simulation disagrees with the recommendation of {} in {} way{}:",
            transport.name(),
            disagreements.len(),
            if disagreements.len() == 1 { "" } else { "s" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wizard::answers::Answers;
    use crate::wizard::decision::recommend;
    use serde_json::json;

    fn sse_recommendation() -> Recommendation {
        let rec = recommend(&Answers::default());
        assert_eq!(rec.transport, TransportKind::Sse);
        rec
    }

    fn run(scenario: &str, transport: &str, lost: u64, p95: f64) -> Value {
        json!({"scenario": scenario, "transport": transport, "lost": lost,
               "latency_ms": {"p50": p95 / 2.0, "p95": p95, "p99": p95 * 2.0}})
    }

    #[test]
    fn agreement_gives_no_sentences() {
        let summary = json!({"runs": [run("baseline", "sse", 0, 120.0), run("baseline", "polling", 0, 2600.0)]});
        let out = check_against_summary(&sse_recommendation(), &summary, Duration::from_secs(1));
        assert!(out.is_empty(), "{out:?}");
        assert!(headline(TransportKind::Sse, &out).starts_with("The simulation agrees"));
    }

    #[test]
    fn lost_events_are_named_with_the_transports_that_lost_none() {
        let summary = json!({"runs": [
            run("baseline", "sse", 0, 100.0),
            run("mobile-nat", "polling", 0, 900.0),
            run("mobile-nat", "sse", 42, 300.0),
            run("mobile-nat", "websocket", 0, 90.0),
            run("mobile-nat", "long-polling", 3, 200.0),
        ]});
        let out = check_against_summary(&sse_recommendation(), &summary, Duration::from_secs(1));
        assert_eq!(
            out,
            vec!["In scenario `mobile-nat`, sse (the recommendation) lost 42 events; polling and websocket \
                  lost none there."]
        );
        assert!(headline(TransportKind::Sse, &out).contains("in 1 way:"));
    }

    #[test]
    fn latency_over_budget_is_reported() {
        let summary = json!({"runs": [
            run("corporate-proxy", "sse", 0, 8200.0),
            run("corporate-proxy", "long-polling", 0, 400.0),
        ]});
        let out = check_against_summary(&sse_recommendation(), &summary, Duration::from_secs(1));
        assert_eq!(
            out,
            vec!["In scenario `corporate-proxy`, sse's 95th-percentile latency was 8200 ms, over your 1s \
                  budget (long-polling stayed within it)."]
        );
    }

    #[test]
    fn missing_figures_are_said_not_guessed() {
        let rec = sse_recommendation();
        let budget = Duration::from_secs(1);
        assert!(check_against_summary(&rec, &json!({}), budget)[0].contains("no `runs` list"));
        let only_ws = json!({"runs": [run("baseline", "websocket", 0, 10.0)]});
        assert!(check_against_summary(&rec, &only_ws, budget)[0].contains("no run of sse"));
        let bare = json!({"runs": [{"scenario": "baseline", "transport": "sse"}]});
        let out = check_against_summary(&rec, &bare, budget);
        assert_eq!(out.len(), 2);
        assert!(out[0].contains("does not say how many events"), "{out:?}");
        assert!(out[1].contains("latency budget was not checked"), "{out:?}");
    }
}
