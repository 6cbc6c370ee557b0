//! Holding the recommendation against the simulation: the report's verdict, word for word.
//!
//! The verdict in `summary.json` is made by [`crate::decision`] — the same tree and rules that made the
//! wizard's recommendation — so "the simulation agrees" or "disagrees" is that verdict, never a
//! second opinion. This module reads it (a JSON value in, sentences out); reading the file and
//! printing belong to the caller.

use serde_json::Value;

use crate::transport::TransportKind;

/// The verdict's sentences for the wizard: a first line saying whether the simulation agrees with
/// `recommended`, then the verdict's reasons as the report gives them.
pub fn verdict_lines(recommended: TransportKind, summary: &Value) -> Vec<String> {
    let Some(verdict) = summary.get("verdict") else {
        return vec![
            "The simulation summary has no `verdict`, so the recommendation could not be checked."
                .to_string(),
        ];
    };
    let text = |key: &str| verdict.get(key).and_then(Value::as_str).unwrap_or("");
    let confirmed = verdict
        .get("confirmed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let agrees = confirmed && text("transport") == recommended.name();
    let mut out = vec![format!(
        "The simulation {}: {}",
        if agrees { "agrees" } else { "disagrees" },
        text("headline")
    )];
    out.extend(
        verdict
            .get("reasons")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn agreement_is_the_verdict_confirming_the_recommendation() {
        let summary = json!({"verdict": {"transport": "sse", "candidate": "sse", "confirmed": true,
            "headline": "SSE: the tree's pick, confirmed.", "reasons": ["one", "two"]}});
        assert_eq!(
            verdict_lines(TransportKind::Sse, &summary),
            vec![
                "The simulation agrees: SSE: the tree's pick, confirmed.",
                "one",
                "two"
            ]
        );
        let other = json!({"verdict": {"transport": "long-polling", "candidate": "sse",
            "confirmed": false, "headline": "Long polling: …", "reasons": []}});
        assert!(
            verdict_lines(TransportKind::Sse, &other)[0].starts_with("The simulation disagrees")
        );
        assert!(verdict_lines(TransportKind::Sse, &json!({}))[0].contains("no `verdict`"));
    }
}
