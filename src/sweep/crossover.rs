//! Crossovers: where two transports' values of a metric meet as the varied parameter changes
//! ("polling matches SSE's requests_per_second at polling.interval ≈ 38 s").
//!
//! Pure functions over series of numbers. Between grid points the series are taken to be straight
//! lines, so a crossing between two points is placed by linear interpolation; a meeting exactly on a
//! grid point is reported there. Series that are equal at the start or the end of the range (both 0
//! lost events, say) do not meet there: only a change of which one is higher, or an interior touch,
//! counts.

/// Which of the two series was higher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Higher {
    A,
    B,
}

/// How two series meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The higher one becomes the lower one.
    Crossing,
    /// They meet and part again with the same one higher.
    Touch,
}

/// One meeting of series `a` and `b`.
#[derive(Clone, Debug, PartialEq)]
pub struct Meeting {
    pub kind: Kind,
    /// The parameter value where they meet (interpolated between grid points, or a grid point).
    pub at: f64,
    /// When they are equal over several grid points: the last of them (`at` is the first).
    pub until: Option<f64>,
    /// Whether `at` lies between grid points (the value is then an estimate).
    pub interpolated: bool,
    /// The metric's value where they meet.
    pub value: f64,
    /// Which was higher just before (at smaller parameter values).
    pub before: Higher,
    /// Which is higher just after.
    pub after: Higher,
}

/// How far apart two values must be to count as different: the larger of `relative` × the larger
/// value and `absolute` (in the metric's unit). Closer values are "level": neither is higher, so a
/// 51 ms against 50 ms is not a crossover.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    pub relative: f64,
    pub absolute: f64,
}

impl Threshold {
    /// Exact comparison (up to floating-point noise).
    pub const EXACT: Threshold = Threshold {
        relative: 1e-9,
        absolute: 1e-12,
    };

    /// The meaningful difference for `metric` (a dotted summary.json path): 5 % of the larger value,
    /// and at least 5 ms for times (latencies in ms, durations in s), one for counts of events,
    /// requests or connections (a fraction of one is noise); rates and ratios have no floor.
    pub fn for_metric(metric: &str) -> Threshold {
        let field = metric.split('.').next().unwrap_or(metric);
        let absolute = if field.ends_with("_ms") {
            5.0
        } else if field.ends_with("_s") {
            0.005
        } else if field.contains("per_") {
            0.0
        } else {
            1.0
        };
        Threshold {
            relative: 0.05,
            absolute,
        }
    }

    /// The sentence that explains the threshold in reports.
    pub const EXPLAINED: &'static str = "Two transports count as different only where their values \
        differ by more than 5 % of the larger one, by more than 5 ms for times, and by more than one for \
        counts such as lost or reconnects: a smaller difference is noise, not a crossover.";
}

/// Where series `a` and `b`, sampled at increasing `xs`, meet. Points where either is `None` (not
/// measured) are left out. Values within a relative 1e-9 of each other are equal.
pub fn meetings(xs: &[f64], a: &[Option<f64>], b: &[Option<f64>]) -> Vec<Meeting> {
    meetings_beyond(xs, a, b, Threshold::EXACT)
}

/// [`meetings`], with values closer than `threshold` taken as level.
pub fn meetings_beyond(
    xs: &[f64],
    a: &[Option<f64>],
    b: &[Option<f64>],
    threshold: Threshold,
) -> Vec<Meeting> {
    let points: Vec<(f64, f64, f64)> = xs
        .iter()
        .zip(a.iter().zip(b))
        .filter_map(|(&x, (a, b))| Some((x, (*a)?, (*b)?)))
        .filter(|(x, a, b)| x.is_finite() && a.is_finite() && b.is_finite())
        .collect();
    let sign = |(_, a, b): (f64, f64, f64)| {
        let tolerance = (threshold.relative * a.abs().max(b.abs())).max(threshold.absolute);
        if (a - b).abs() <= tolerance {
            0
        } else if a > b {
            1
        } else {
            -1
        }
    };
    let higher = |s: i32| if s > 0 { Higher::A } else { Higher::B };
    let mut found = Vec::new();
    // The last point where they differed: its index and which was higher.
    let mut last: Option<(usize, i32)> = None;
    for (k, &point) in points.iter().enumerate() {
        let s = sign(point);
        if s == 0 {
            continue;
        }
        if let Some((p, before)) = last {
            let kind = if s == before {
                Kind::Touch
            } else {
                Kind::Crossing
            };
            if k == p + 1 {
                if kind == Kind::Crossing {
                    let (x0, a0, b0) = points[p];
                    let (x1, a1, b1) = point;
                    let (d0, d1) = (a0 - b0, a1 - b1);
                    let t = d0 / (d0 - d1);
                    found.push(Meeting {
                        kind,
                        at: x0 + (x1 - x0) * t,
                        until: None,
                        interpolated: true,
                        value: a0 + (a1 - a0) * t,
                        before: higher(before),
                        after: higher(s),
                    });
                }
            } else {
                let (x, a, _) = points[p + 1];
                found.push(Meeting {
                    kind,
                    at: x,
                    until: (k > p + 2).then(|| points[k - 1].0),
                    interpolated: false,
                    value: a,
                    before: higher(before),
                    after: higher(s),
                });
            }
        }
        last = Some((k, s));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_below_the_threshold_is_not_a_crossover() {
        let xs = [1.0, 2.0, 3.0];
        // 1 ms apart, changing sides: noise.
        let a = some(&[50.0, 51.0, 50.0]);
        let b = some(&[51.0, 50.0, 51.0]);
        assert_eq!(
            meetings(&xs, &a, &b).len(),
            2,
            "exact comparison sees two crossings"
        );
        let latency = Threshold::for_metric("latency_ms.p50");
        assert!(meetings_beyond(&xs, &a, &b, latency).is_empty());
        // A real crossing survives it.
        let a = some(&[10.0, 100.0, 1000.0]);
        let b = some(&[500.0, 500.0, 500.0]);
        assert_eq!(meetings_beyond(&xs, &a, &b, latency).len(), 1);
        assert_eq!(Threshold::for_metric("lost").absolute, 1.0);
        assert_eq!(Threshold::for_metric("requests_per_second").absolute, 0.0);
    }

    fn some(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().copied().map(Some).collect()
    }

    #[test]
    fn a_crossing_between_points_is_interpolated() {
        // Polling's request rate falls as its interval grows; SSE's stays put.
        let xs = [10.0, 20.0, 30.0, 40.0, 50.0];
        let polling = some(&[10.0, 5.0, 3.0, 2.0, 1.0]);
        let sse = some(&[2.5, 2.5, 2.5, 2.5, 2.5]);
        let found = meetings(&xs, &polling, &sse);
        assert_eq!(found.len(), 1, "{found:?}");
        let m = &found[0];
        assert_eq!(m.kind, Kind::Crossing);
        assert!((m.at - 35.0).abs() < 1e-9, "{m:?}");
        assert!((m.value - 2.5).abs() < 1e-9);
        assert!(m.interpolated && m.until.is_none());
        assert_eq!((m.before, m.after), (Higher::A, Higher::B));
    }

    #[test]
    fn no_crossing_and_equal_ends_find_nothing() {
        let xs = [1.0, 2.0, 3.0];
        assert!(meetings(&xs, &some(&[3.0, 2.0, 1.0]), &some(&[0.5, 0.5, 0.5])).is_empty());
        // Both lose nothing at first, then one starts losing: they part, they do not cross.
        assert!(meetings(&xs, &some(&[0.0, 0.0, 4.0]), &some(&[0.0, 0.0, 0.0])).is_empty());
        assert!(meetings(&xs, &some(&[0.0, 0.0, 0.0]), &some(&[0.0, 0.0, 0.0])).is_empty());
        assert!(meetings(&[], &[], &[]).is_empty());
    }

    #[test]
    fn touching_on_a_grid_point_is_a_touch() {
        let xs = [1.0, 2.0, 3.0];
        let found = meetings(&xs, &some(&[3.0, 1.0, 3.0]), &some(&[1.0, 1.0, 1.0]));
        assert_eq!(
            found,
            [Meeting {
                kind: Kind::Touch,
                at: 2.0,
                until: None,
                interpolated: false,
                value: 1.0,
                before: Higher::A,
                after: Higher::A,
            }]
        );
    }

    #[test]
    fn crossing_exactly_on_grid_points_and_over_a_plateau() {
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0];
        let found = meetings(&xs, &some(&[3.0, 2.0, 2.0, 2.0, 1.0]), &some(&[2.0; 5]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, Kind::Crossing);
        assert_eq!((found[0].at, found[0].until), (2.0, Some(4.0)));
        assert!(!found[0].interpolated);
    }

    #[test]
    fn several_crossings_are_all_found_in_order() {
        let xs = [0.0, 1.0, 2.0, 3.0];
        let found = meetings(&xs, &some(&[0.0, 2.0, 0.0, 2.0]), &some(&[1.0; 4]));
        let at: Vec<f64> = found.iter().map(|m| m.at).collect();
        assert_eq!(at, [0.5, 1.5, 2.5]);
        assert_eq!(found[0].before, Higher::B);
        assert_eq!(found[1].before, Higher::A);
    }

    #[test]
    fn unmeasured_points_are_skipped() {
        let xs = [1.0, 2.0, 3.0];
        let found = meetings(&xs, &[Some(2.0), None, Some(0.0)], &some(&[1.0; 3]));
        assert_eq!(found.len(), 1);
        assert!((found[0].at - 2.0).abs() < 1e-9);
    }
}
