//! `--vary KEY=VALUES`: what a sweep varies, parsed from the command line.
//!
//! `VALUES` is a range with a step, `START..END:STEP` (`5s..60s:5s`, `100..1000:100`, `0.1..0.5:0.1`),
//! or a comma list (`30s,45s,60s`, `0.1,0.5`, `true,false`, `off,15s`). Ranges are stepped in whole
//! units (microseconds for durations, the finest decimal place written for numbers), so that there is no
//! floating-point drift: the end is included exactly when it falls on the grid. The syntax is a contract
//! with users' scripts.
//!
//! Pure parsing only: whether the key exists in a profile and whether a value suits it is decided by
//! [`super::apply`] and the profile's own validation.

use std::fmt;
use std::time::Duration;

/// Most values one `--vary` may give, and most points a whole grid may have.
pub const MAX_POINTS: usize = 1000;

/// One value a parameter takes, typed as it will be written into the profile.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Written as a TOML string with a unit (`"5s"`).
    Duration(Duration),
    /// A whole number (also a number written with a zero fraction, `2.0`).
    Integer(i64),
    /// A number with a fraction.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// Anything else, written as a TOML string (`off`, `poisson`).
    Text(String),
}

impl Value {
    /// The value as TOML.
    pub fn toml(&self) -> toml_edit::Value {
        match self {
            Value::Duration(d) => duration_text(*d).into(),
            Value::Integer(i) => (*i).into(),
            Value::Float(f) => (*f).into(),
            Value::Bool(b) => (*b).into(),
            Value::Text(t) => t.as_str().into(),
        }
    }

    /// The value as JSON (`sweep.json`): durations as `"5s"` strings, numbers as numbers.
    pub fn json(&self) -> serde_json::Value {
        match self {
            Value::Duration(d) => duration_text(*d).into(),
            Value::Integer(i) => (*i).into(),
            Value::Float(f) => (*f).into(),
            Value::Bool(b) => (*b).into(),
            Value::Text(t) => t.as_str().into(),
        }
    }

    /// Where the value sits on a numeric axis: seconds for durations, the number itself for numbers;
    /// `None` for booleans and text.
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Duration(d) => Some(d.as_secs_f64()),
            Value::Integer(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Bool(_) | Value::Text(_) => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Duration(d) => f.write_str(&duration_text(*d)),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Text(t) => f.write_str(t),
        }
    }
}

/// A duration as a sweep writes it: in seconds from one second up (`60s`, `1.5s`, not `1m`), so that
/// the values of one range read alike; `500ms` and `40us` below.
pub fn duration_text(d: Duration) -> String {
    let micros = d.as_micros();
    if micros == 0 {
        "0s".to_string()
    } else if micros >= 1_000_000 && micros.is_multiple_of(1_000) {
        let text = format!("{:.3}", micros as f64 / 1e6);
        format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
    } else if micros.is_multiple_of(1_000) {
        format!("{}ms", micros / 1_000)
    } else {
        format!("{micros}us")
    }
}

/// One part of a dotted key: a name, and for arrays of tables an index (`scenario[1]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub index: Option<usize>,
}

/// One `--vary`: the key as the user wrote it, its parts, and the values in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameter {
    /// The dotted key as written (`sse.heartbeat`, `scenario[1].nat.idle_timeout`).
    pub key: String,
    pub path: Vec<Segment>,
    pub values: Vec<Value>,
}

impl Parameter {
    /// Whether every value is a duration (the axis is then in seconds).
    pub fn is_duration(&self) -> bool {
        self.values.iter().all(|v| matches!(v, Value::Duration(_)))
    }

    /// Whether every value has a place on a numeric axis.
    pub fn is_numeric(&self) -> bool {
        self.values.iter().all(|v| v.number().is_some())
    }
}

/// Parses one `--vary KEY=VALUES` argument.
pub fn parse_vary(text: &str) -> Result<Parameter, String> {
    let (key, spec) = text.split_once('=').ok_or_else(|| {
        format!("`{text}` is not KEY=VALUES: write e.g. sse.heartbeat=5s..60s:5s or clients=10,100")
    })?;
    let key = key.trim();
    let path = parse_key(key)?;
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(format!("`{key}=` gives no values"));
    }
    let values = if spec.contains("..") {
        parse_range(spec)?
    } else {
        parse_list(spec)?
    };
    Ok(Parameter {
        key: key.to_string(),
        path,
        values,
    })
}

/// Parses a dotted key; only `scenario` takes an index.
pub fn parse_key(key: &str) -> Result<Vec<Segment>, String> {
    if key.is_empty() {
        return Err("the key is missing: write e.g. sse.heartbeat=5s..60s:5s".into());
    }
    let mut segments = Vec::new();
    for (i, part) in key.split('.').enumerate() {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => {
                let digits = rest.strip_suffix(']').ok_or_else(|| {
                    format!("`{key}`: `{part}` has an unclosed `[` (write scenario[1])")
                })?;
                let index = digits.parse::<usize>().map_err(|_| {
                    format!("`{key}`: `[{digits}]` is not an index (write scenario[1])")
                })?;
                (name, Some(index))
            }
            None => (part, None),
        };
        let bare = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !bare {
            return Err(format!(
                "`{key}` is not a dotted key like sse.heartbeat or scenario[1].nat.idle_timeout"
            ));
        }
        if index.is_some() && !(i == 0 && name == "scenario") {
            return Err(format!(
                "`{key}`: only `scenario` takes an index (e.g. scenario[1].nat.idle_timeout)"
            ));
        }
        segments.push(Segment {
            name: name.to_string(),
            index,
        });
    }
    Ok(segments)
}

/// A comma list; each item is typed on its own (`off,15s` mixes text and a duration).
fn parse_list(spec: &str) -> Result<Vec<Value>, String> {
    let mut values: Vec<Value> = Vec::new();
    for item in spec.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("`{spec}` has an empty value"));
        }
        let value = list_value(item);
        if values.contains(&value) {
            return Err(format!("`{spec}` lists {value} twice"));
        }
        values.push(value);
    }
    if values.len() > MAX_POINTS {
        return Err(format!(
            "`{spec}` gives {} values; at most {MAX_POINTS}",
            values.len()
        ));
    }
    Ok(values)
}

fn list_value(item: &str) -> Value {
    if item == "true" || item == "false" {
        return Value::Bool(item == "true");
    }
    if let Some((mantissa, scale)) = decimal(item) {
        return number(mantissa, scale);
    }
    if let Ok(d) = crate::duration::parse(item) {
        return Value::Duration(d);
    }
    let unquoted = item
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(item);
    Value::Text(unquoted.to_string())
}

/// A plain decimal (`-12`, `0.25`) as (digits without the point, digits after the point).
fn decimal(text: &str) -> Option<(i128, u32)> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits_only = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) || fraction.len() > 9 {
        return None;
    }
    let mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
    let mantissa = if text.starts_with('-') {
        -mantissa
    } else {
        mantissa
    };
    Some((mantissa, fraction.len() as u32))
}

/// `mantissa / 10^scale` as an integer when it is whole (and fits), else as a float.
fn number(mantissa: i128, scale: u32) -> Value {
    let unit = 10i128.pow(scale);
    if mantissa % unit == 0 {
        if let Ok(i) = i64::try_from(mantissa / unit) {
            return Value::Integer(i);
        }
    }
    Value::Float(mantissa as f64 / unit as f64)
}

/// What a range endpoint or step is.
enum Bound {
    /// Microseconds.
    Duration(i128),
    /// (mantissa, scale) of a plain decimal.
    Number(i128, u32),
}

fn bound(spec: &str, what: &str, text: &str) -> Result<Bound, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!(
            "`{spec}` has no {what}: write START..END:STEP, e.g. 5s..60s:5s"
        ));
    }
    if let Some((mantissa, scale)) = decimal(text) {
        return Ok(Bound::Number(mantissa, scale));
    }
    if let Some(positive) = text.strip_prefix('-') {
        if crate::duration::parse(positive).is_ok() {
            return Err(format!(
                "`{spec}`: the {what} {text} is negative; durations are 0 or more"
            ));
        }
    }
    match crate::duration::parse(text) {
        Ok(d) => Ok(Bound::Duration(d.as_micros() as i128)),
        Err(e) => Err(format!(
            "`{spec}`: the {what} `{text}` is neither a number nor a duration ({e})"
        )),
    }
}

/// `START..END:STEP`, both ends included when END is on the grid.
fn parse_range(spec: &str) -> Result<Vec<Value>, String> {
    let (start, rest) = spec
        .split_once("..")
        .ok_or_else(|| format!("`{spec}` is not START..END:STEP"))?;
    let (end, step) = rest.split_once(':').ok_or_else(|| {
        format!("`{spec}` has no step: write START..END:STEP, e.g. 5s..60s:5s or 100..1000:100")
    })?;
    let bounds = [
        bound(spec, "start", start)?,
        bound(spec, "end", end)?,
        bound(spec, "step", step)?,
    ];
    let durations = bounds
        .iter()
        .filter(|b| matches!(b, Bound::Duration(_)))
        .count();
    if durations != 0 && durations != 3 {
        let plain = [start, end, step]
            .iter()
            .zip(&bounds)
            .find(|(_, b)| matches!(b, Bound::Number(..)))
            .map_or("", |(t, _)| t.trim());
        return Err(format!(
            "`{spec}` mixes durations and plain numbers: `{plain}` has no unit (write e.g. 5s..60s:5s)"
        ));
    }
    // Everything in whole units: microseconds, or the finest decimal place written.
    let scale = bounds
        .iter()
        .map(|b| match b {
            Bound::Number(_, s) => *s,
            Bound::Duration(_) => 0,
        })
        .max()
        .unwrap_or(0);
    let units: Vec<i128> = bounds
        .iter()
        .map(|b| match b {
            Bound::Duration(us) => *us,
            Bound::Number(m, s) => m * 10i128.pow(scale - s),
        })
        .collect();
    let (first, last, step) = (units[0], units[1], units[2]);
    if step <= 0 {
        return Err(format!(
            "`{spec}`: the step must be more than zero (got {})",
            step_text(step)
        ));
    }
    if first > last {
        return Err(format!(
            "`{spec}`: the start {} is after the end {}: write the smaller value first",
            start.trim(),
            end.trim()
        ));
    }
    let count = (last - first) / step + 1;
    if count > MAX_POINTS as i128 {
        return Err(format!(
            "`{spec}` gives {count} values; at most {MAX_POINTS} (use a larger step)"
        ));
    }
    let values = (0..count)
        .map(|k| {
            let unit = first + k * step;
            if durations == 3 {
                Value::Duration(Duration::from_micros(unit as u64))
            } else {
                number(unit, scale)
            }
        })
        .collect();
    Ok(values)
}

fn step_text(step: i128) -> String {
    if step == 0 {
        "0".into()
    } else {
        "a negative step".into()
    }
}

/// Every combination of the parameters' values, as indices into each parameter's values: the first
/// parameter outermost, the last changing fastest.
pub fn grid(parameters: &[Parameter]) -> Result<Vec<Vec<usize>>, String> {
    let total = parameters
        .iter()
        .try_fold(1usize, |n, p| n.checked_mul(p.values.len()))
        .filter(|n| *n <= MAX_POINTS)
        .ok_or_else(|| {
            let sizes: Vec<String> = parameters
                .iter()
                .map(|p| p.values.len().to_string())
                .collect();
            format!(
                "the grid has {} points; at most {MAX_POINTS}",
                sizes.join(" × ")
            )
        })?;
    let mut points = Vec::with_capacity(total);
    for n in 0..total {
        let mut rest = n;
        let mut indices = vec![0; parameters.len()];
        for (i, p) in parameters.iter().enumerate().rev() {
            indices[i] = rest % p.values.len();
            rest /= p.values.len();
        }
        points.push(indices);
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<String> {
        parse_vary(text)
            .unwrap()
            .values
            .iter()
            .map(|v| v.to_string())
            .collect()
    }

    fn error(text: &str) -> String {
        parse_vary(text).unwrap_err()
    }

    #[test]
    fn duration_ranges_include_the_end_on_the_grid() {
        assert_eq!(
            values("sse.heartbeat=5s..60s:5s"),
            ["5s", "10s", "15s", "20s", "25s", "30s", "35s", "40s", "45s", "50s", "55s", "60s"]
        );
        assert_eq!(values("sse.heartbeat=5s..62s:20s"), ["5s", "25s", "45s"]);
        assert_eq!(
            values("polling.interval=500ms..2s:500ms"),
            ["500ms", "1s", "1.5s", "2s"]
        );
        assert_eq!(values("x=1m..2m:30s"), ["60s", "90s", "120s"]);
        assert_eq!(values("x=0s..1ms:500us"), ["0s", "500us", "1ms"]);
        assert_eq!(values("x=5s..5s:1s"), ["5s"]);
    }

    #[test]
    fn number_ranges_step_without_drift() {
        assert_eq!(
            values("clients=100..1000:300"),
            ["100", "400", "700", "1000"]
        );
        assert_eq!(
            values("reconnect.jitter=0.1..0.5:0.1"),
            ["0.1", "0.2", "0.3", "0.4", "0.5"]
        );
        assert_eq!(values("x=0..1:0.25"), ["0", "0.25", "0.5", "0.75", "1"]);
        assert_eq!(values("x=-2..2:2"), ["-2", "0", "2"]);
        let p = parse_vary("workload.events_per_second=0.5..2:0.5").unwrap();
        assert_eq!(
            p.values,
            [
                Value::Float(0.5),
                Value::Integer(1),
                Value::Float(1.5),
                Value::Integer(2)
            ]
        );
    }

    #[test]
    fn lists_type_each_value() {
        let p = parse_vary("scenario.nat.idle_timeout = 30s, 45s,60s").unwrap();
        assert_eq!(p.key, "scenario.nat.idle_timeout");
        assert_eq!(
            p.values,
            [30, 45, 60].map(|s| Value::Duration(Duration::from_secs(s)))
        );
        let p = parse_vary("sse.accel_buffering_off=true,false").unwrap();
        assert_eq!(p.values, [Value::Bool(true), Value::Bool(false)]);
        let p = parse_vary("sse.heartbeat=off,15s").unwrap();
        assert_eq!(
            p.values,
            [
                Value::Text("off".into()),
                Value::Duration(Duration::from_secs(15))
            ]
        );
        assert!(!p.is_numeric());
        let p = parse_vary("reconnect.jitter=0.1,0.5,1").unwrap();
        assert_eq!(
            p.values,
            [Value::Float(0.1), Value::Float(0.5), Value::Integer(1)]
        );
        assert_eq!(
            values("workload.arrival=poisson,uniform"),
            ["poisson", "uniform"]
        );
        assert_eq!(values("clients=7"), ["7"]);
    }

    #[test]
    fn keys_take_an_index_only_on_scenario() {
        let p = parse_vary("scenario[1].nat.idle_timeout=30s").unwrap();
        assert_eq!(p.path[0].index, Some(1));
        assert_eq!(p.path.len(), 3);
        assert!(error("sse[0].heartbeat=5s").contains("only `scenario` takes an index"));
        assert!(error("scenario[x].nat.idle_timeout=5s").contains("not an index"));
        assert!(error("sse..heartbeat=5s").contains("not a dotted key"));
        assert!(error("=5s").contains("key is missing"));
    }

    #[test]
    fn bad_ranges_say_what_is_wrong() {
        assert!(error("sse.heartbeat").contains("is not KEY=VALUES"));
        assert!(error("sse.heartbeat=").contains("gives no values"));
        assert!(error("sse.heartbeat=5s..60s").contains("has no step"));
        assert!(error("sse.heartbeat=5s..60s:0s").contains("step must be more than zero"));
        assert!(error("clients=1..10:-1").contains("step must be more than zero"));
        assert!(error("sse.heartbeat=5s..60s:-5s").contains("negative"));
        let e = error("sse.heartbeat=60s..5s:5s");
        assert!(e.contains("start 60s is after the end 5s"), "{e}");
        let e = error("sse.heartbeat=5s..60:5s");
        assert!(
            e.contains("mixes durations and plain numbers: `60` has no unit"),
            "{e}"
        );
        let e = error("sse.heartbeat=5s..60x:5s");
        assert!(
            e.contains("the end `60x` is neither a number nor a duration"),
            "{e}"
        );
        assert!(error("x=..5:1").contains("has no start"));
        assert!(error("clients=1..100000:1").contains("gives 100000 values; at most 1000"));
        assert!(error("x=30s,,60s").contains("empty value"));
        assert!(error("x=30s,30s").contains("lists 30s twice"));
    }

    #[test]
    fn the_grid_varies_the_last_parameter_fastest_and_is_bounded() {
        let a = parse_vary("a=1,2").unwrap();
        let b = parse_vary("b=x,y,z").unwrap();
        assert_eq!(
            grid(&[a.clone(), b.clone()]).unwrap(),
            [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
        );
        assert_eq!(grid(&[]).unwrap(), [Vec::<usize>::new()]);
        let big = parse_vary("c=1..100:1").unwrap();
        let e = grid(&[big.clone(), big]).unwrap_err();
        assert!(e.contains("100 × 100 points; at most 1000"), "{e}");
    }
}
