//! Statistics over repeated runs: Student-t confidence intervals, and the mean of whole metric sets
//! across seeds with an interval for every number in them.
//!
//! Pure functions over numbers; nothing here runs a simulation.

use serde_json::{Map, Value};

use crate::metrics::RunMetrics;

/// A mean with its 95 % confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// Two-sided 97.5 % quantiles of Student's t for 1..=30 degrees of freedom.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The t quantile for a 95 % two-sided interval with `df` degrees of freedom (tabulated to 30, then
/// coarser steps to the normal 1.96).
fn t_quantile(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T_975[df - 1],
        31..=40 => 2.021,
        41..=60 => 2.000,
        61..=120 => 1.980,
        _ => 1.960,
    }
}

/// Mean and 95 % confidence interval of the mean (Student t). One sample gives a zero-width interval.
pub fn confidence_interval(samples: &[f64]) -> Interval {
    let n = samples.len();
    if n == 0 {
        return Interval {
            mean: 0.0,
            low: 0.0,
            high: 0.0,
        };
    }
    let mean = samples.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Interval {
            mean,
            low: mean,
            high: mean,
        };
    }
    let variance = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t_quantile(n - 1) * (variance / n as f64).sqrt();
    Interval {
        mean,
        low: mean - half,
        high: mean + half,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The mean of several runs' metrics, field by field (whole-number fields rounded to whole numbers),
/// and a JSON object of the same shape giving each number's 95 % interval as `[low, high]`. The time
/// series are the first run's (they are examples, not averaged).
pub fn mean_metrics(runs: &[&RunMetrics]) -> (RunMetrics, Value) {
    let values: Vec<Value> = runs
        .iter()
        .map(|m| serde_json::to_value(m).expect("metrics serialise"))
        .collect();
    let (mean, interval) = combine(&values.iter().collect::<Vec<_>>());
    let mut metrics: RunMetrics =
        serde_json::from_value(mean).expect("the mean has the metrics' shape");
    metrics.timeline = runs.first().map(|m| m.timeline.clone()).unwrap_or_default();
    (metrics, interval)
}

/// Field-wise mean and interval of JSON values of one shape. A number some runs did not measure
/// (`null`) is the mean of the runs that did; `null` in every run stays `null`.
fn combine(values: &[&Value]) -> (Value, Value) {
    let present: Vec<&Value> = values.iter().copied().filter(|v| !v.is_null()).collect();
    let values: &[&Value] = if present.is_empty() { values } else { &present };
    match values.first() {
        Some(Value::Object(first)) => {
            let mut mean = Map::new();
            let mut interval = Map::new();
            for key in first.keys() {
                let column: Vec<&Value> = values.iter().filter_map(|v| v.get(key)).collect();
                let (m, i) = combine(&column);
                mean.insert(key.clone(), m);
                if !i.is_null() {
                    interval.insert(key.clone(), i);
                }
            }
            (Value::Object(mean), Value::Object(interval))
        }
        Some(Value::Number(_)) => {
            let whole = values.iter().all(|v| v.is_u64());
            let samples: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
            let ci = confidence_interval(&samples);
            let mean = if whole {
                Value::from(ci.mean.round() as u64)
            } else {
                Value::from(round3(ci.mean))
            };
            (mean, serde_json::json!([round3(ci.low), round3(ci.high)]))
        }
        Some(other) => ((*other).clone(), Value::Null),
        None => (Value::Null, Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_of_known_samples() {
        // mean 3, s = 1.5811, se = 0.7071, t(4) = 2.776 → ±1.963
        let ci = confidence_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!((ci.mean - 3.0).abs() < 1e-12);
        assert!((ci.low - 1.0371).abs() < 1e-3, "{ci:?}");
        assert!((ci.high - 4.9629).abs() < 1e-3, "{ci:?}");
        // Ten samples 2, 4, …, 20: mean 11, s = 6.0553, se = 1.9149, t(9) = 2.262 → ±4.3315
        let tens: Vec<f64> = (1..=10).map(|i| 2.0 * i as f64).collect();
        let ci = confidence_interval(&tens);
        assert!((ci.high - ci.mean - 4.3315).abs() < 1e-3, "{ci:?}");
    }

    #[test]
    fn degenerate_samples_give_point_intervals() {
        assert_eq!(
            confidence_interval(&[7.0]),
            Interval {
                mean: 7.0,
                low: 7.0,
                high: 7.0
            }
        );
        let same = confidence_interval(&[2.5, 2.5, 2.5]);
        assert_eq!((same.low, same.high), (2.5, 2.5));
    }

    #[test]
    fn metrics_are_averaged_field_by_field() {
        let a = RunMetrics {
            delivered: 10,
            lost: 1,
            requests_per_second: 1.0,
            ..Default::default()
        };
        let mut a = a;
        a.latency_ms.p50 = Some(0.0);
        let mut b = a.clone();
        b.delivered = 13;
        b.lost = 2;
        b.requests_per_second = 2.0;
        b.latency_ms.p50 = Some(100.0);
        let (mean, interval) = mean_metrics(&[&a, &b]);
        assert_eq!(
            mean.delivered, 12,
            "11.5 rounds to a whole number of deliveries"
        );
        assert_eq!(mean.lost, 2);
        assert_eq!(mean.requests_per_second, 1.5);
        assert_eq!(mean.latency_ms.p50, Some(50.0));
        // Not measured in any seed stays not measured; measured in some is their mean.
        assert_eq!(mean.latency_ms.p95, None);
        assert!(interval["latency_ms"].get("p95").is_none());
        let mut c = a.clone();
        c.latency_ms.p50 = None;
        let (mean, _) = mean_metrics(&[&c, &b]);
        assert_eq!(mean.latency_ms.p50, Some(100.0));
        // t(1) = 12.706, se = 0.5 → ±6.353
        assert_eq!(
            interval["requests_per_second"],
            serde_json::json!([-4.853, 7.853])
        );
        assert!(interval["latency_ms"]["p50"].is_array());
    }
}
