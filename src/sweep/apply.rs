//! Setting a varied value in the profile text, as if the user had edited the file: a dotted key is
//! written with `toml_edit`, and the edited text then goes through the profile's ordinary validation
//! (which refuses unknown keys and impossible values, naming the key).
//!
//! Where a value lands:
//! - `sse.heartbeat`, `clients`, `workload.events_per_second`: that key, creating its table (`[sse]`)
//!   when the profile leaves it to defaults.
//! - `scenario[1].nat.idle_timeout`: that scenario, creating `[scenario.nat]` in it when missing.
//! - `scenario.nat.idle_timeout`: every scenario that already has a `[scenario.nat]` table. A fault is
//!   not added to scenarios that do not have it (a clean baseline stays clean); if no scenario has the
//!   table, it is an error that says to name one with `scenario[i]`. A key directly in the scenario
//!   (`scenario.description`) is set in every scenario.
//!
//! Text editing only: no file access, no validation beyond the document's shape.

use toml_edit::{DocumentMut, InlineTable, Item};

use super::vary::{Segment, Value};

/// Sets `path` to `value` in `document` (see the module documentation for where it lands).
pub fn apply(
    document: &mut DocumentMut,
    key: &str,
    path: &[Segment],
    value: &Value,
) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        return Err("the key is missing".into());
    };
    if first.name != "scenario" {
        return set(document.as_item_mut(), key, path, value, true);
    }
    if rest.is_empty() {
        return Err(format!(
            "`{key}` is a list of tables: vary a key inside it, e.g. scenario.nat.idle_timeout"
        ));
    }
    let scenarios = document
        .get_mut("scenario")
        .and_then(Item::as_array_of_tables_mut)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| format!("`{key}`: the profile has no [[scenario]]"))?;
    match first.index {
        Some(i) => {
            let count = scenarios.len();
            let table = scenarios.get_mut(i).ok_or_else(|| {
                format!(
                    "`{key}`: the profile has {count} scenario{} (scenario[0] to scenario[{}])",
                    if count == 1 { "" } else { "s" },
                    count - 1
                )
            })?;
            let mut item = Item::Table(std::mem::take(table));
            let result = set(&mut item, key, rest, value, true);
            if let Item::Table(t) = item {
                *table = t;
            }
            result
        }
        None => {
            let mut touched = 0;
            for table in scenarios.iter_mut() {
                let mut item = Item::Table(std::mem::take(table));
                let result = if has_tables(&item, &rest[..rest.len() - 1]) {
                    touched += 1;
                    set(&mut item, key, rest, value, false)
                } else {
                    Ok(())
                };
                if let Item::Table(t) = item {
                    *table = t;
                }
                result?;
            }
            if touched == 0 {
                let table: Vec<&str> = rest[..rest.len() - 1]
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect();
                return Err(format!(
                    "`{key}`: no [[scenario]] has a [scenario.{}] table; add one to the scenarios that \
                     should have it, or name one: scenario[0].{}",
                    table.join("."),
                    rest.iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(".")
                ));
            }
            Ok(())
        }
    }
}

/// Whether the tables named by `path` all exist below `item`.
fn has_tables(item: &Item, path: &[Segment]) -> bool {
    let mut current = item;
    for segment in path {
        match current.get(segment.name.as_str()) {
            Some(next) if next.is_table_like() => current = next,
            _ => return false,
        }
    }
    true
}

/// Sets `path` below `item`, creating missing tables when `create` is set.
fn set(
    item: &mut Item,
    key: &str,
    path: &[Segment],
    value: &Value,
    create: bool,
) -> Result<(), String> {
    let mut current = item;
    let (leaf, tables) = path
        .split_last()
        .ok_or_else(|| "the key is missing".to_string())?;
    for segment in tables {
        let inline = current.is_inline_table();
        let table = current
            .as_table_like_mut()
            .ok_or_else(|| format!("`{key}`: `{}` is not a table", segment.name))?;
        if table.get(&segment.name).is_none() {
            if !create {
                return Err(format!("`{key}`: there is no table `{}`", segment.name));
            }
            let new = if inline {
                Item::Value(toml_edit::Value::InlineTable(InlineTable::new()))
            } else {
                toml_edit::table()
            };
            table.insert(&segment.name, new);
        }
        current = table
            .get_mut(&segment.name)
            .filter(|next| next.is_table_like())
            .ok_or_else(|| format!("`{key}`: `{}` is a value, not a table", segment.name))?;
    }
    let table = current
        .as_table_like_mut()
        .ok_or_else(|| format!("`{key}`: the key's parent is not a table"))?;
    if let Some(existing) = table.get(&leaf.name) {
        if existing.is_table_like() || existing.is_array_of_tables() {
            return Err(format!(
                "`{key}` is a table: vary a key inside it (e.g. sse.heartbeat)"
            ));
        }
    }
    table.insert(&leaf.name, Item::Value(value.toml()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::vary::parse_vary;

    fn edit(text: &str, vary: &str) -> Result<String, String> {
        let parameter = parse_vary(vary).unwrap();
        let mut document: DocumentMut = text.parse().unwrap();
        apply(
            &mut document,
            &parameter.key,
            &parameter.path,
            &parameter.values[0],
        )?;
        Ok(document.to_string())
    }

    fn plan(text: &str) -> crate::scenario::Plan {
        crate::scenario::Plan::from_text("p.toml", text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    const BASE: &str =
        "name = \"x\"\nduration = \"1m\"\nclients = 3\n\n[sse]\nheartbeat = \"15s\" # keep-alive\n";

    const SCENARIOS: &str = "\
[[scenario]]
name = \"clean\"

[[scenario]]
name = \"nat\"
[scenario.nat]
idle_timeout = \"60s\"

[[scenario]]
name = \"nat-proxy\"
nat = { idle_timeout = \"90s\" }
";

    #[test]
    fn top_level_and_section_keys_are_set_or_created() {
        let text = edit(BASE, "sse.heartbeat=5s").unwrap();
        assert_eq!(
            plan(&text).settings.sse_heartbeat,
            Some(std::time::Duration::from_secs(5))
        );
        let text = edit(BASE, "clients=42").unwrap();
        assert_eq!(plan(&text).clients, 42);
        let text = edit(BASE, "polling.interval=2s").unwrap();
        assert_eq!(plan(&text).settings.polling_interval.as_secs(), 2);
        let text = edit(BASE, "workload.events_per_second=2.5").unwrap();
        assert_eq!(plan(&text).workload.events_per_second, 2.5);
        let text = edit(BASE, "workload.events_per_second=3").unwrap();
        assert_eq!(plan(&text).workload.events_per_second, 3.0);
        let text = edit(BASE, "sse.accel_buffering_off=true").unwrap();
        assert!(plan(&text).settings.sse_accel_buffering_off);
        let text = edit(BASE, "sse.heartbeat=off").unwrap();
        assert_eq!(plan(&text).settings.sse_heartbeat, None);
    }

    #[test]
    fn scenario_keys_go_to_scenarios_that_have_the_table() {
        let text = format!("{BASE}\n{SCENARIOS}");
        let p = plan(&edit(&text, "scenario.nat.idle_timeout=45s").unwrap());
        let timeouts: Vec<Option<u64>> = p
            .scenarios
            .iter()
            .map(|s| s.nat.as_ref().map(|n| n.idle_timeout.as_secs()))
            .collect();
        assert_eq!(
            timeouts,
            [None, Some(45), Some(45)],
            "the clean scenario stays clean"
        );

        let p = plan(&edit(&text, "scenario[0].nat.idle_timeout=30s").unwrap());
        let timeouts: Vec<Option<u64>> = p
            .scenarios
            .iter()
            .map(|s| s.nat.as_ref().map(|n| n.idle_timeout.as_secs()))
            .collect();
        assert_eq!(timeouts, [Some(30), Some(60), Some(90)]);

        let p = plan(&edit(&text, "scenario.description=same").unwrap());
        assert!(p.scenarios.iter().all(|s| s.description == "same"));
    }

    #[test]
    fn impossible_targets_are_errors() {
        let text = format!("{BASE}\n{SCENARIOS}");
        let e = edit(&text, "scenario.switch.every=30s").unwrap_err();
        assert!(
            e.contains("no [[scenario]] has a [scenario.switch] table"),
            "{e}"
        );
        assert!(e.contains("scenario[0].switch.every"), "{e}");
        let e = edit(&text, "scenario[3].nat.idle_timeout=30s").unwrap_err();
        assert!(
            e.contains("has 3 scenarios (scenario[0] to scenario[2])"),
            "{e}"
        );
        let e = edit(BASE, "scenario.nat.idle_timeout=30s").unwrap_err();
        assert!(e.contains("the profile has no [[scenario]]"), "{e}");
        let e = edit(BASE, "sse=5s").unwrap_err();
        assert!(e.contains("is a table"), "{e}");
        let e = edit(BASE, "sse.heartbeat.every=5s").unwrap_err();
        assert!(e.contains("is a value, not a table"), "{e}");
    }

    #[test]
    fn unknown_keys_fail_validation_with_the_key_named() {
        let text = edit(BASE, "sse.heartbeet=5s").unwrap();
        let e = crate::scenario::Plan::from_text("p.toml", &text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sse.heartbeet"), "{e}");
        assert!(e.message.contains("unknown field `heartbeet`"), "{e}");
        let text = edit(BASE, "polling.intervals=5s").unwrap();
        assert!(crate::scenario::Plan::from_text("p.toml", &text).is_err());
    }
}
