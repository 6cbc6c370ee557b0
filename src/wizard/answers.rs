//! The wizard's answers: what the user told us about the application and its environment.
//!
//! One `Answers` value is filled either by the prompts or from an answers file (`--answers`); both go
//! through the same per-key parsers and range checks defined here, so a value the prompts refuse is
//! refused in a file too, and the other way round. The questions themselves (wording, help text, kind
//! of input) are data in [`QUESTIONS`].
//!
//! This module must not touch a terminal or decide anything: it parses, checks and describes.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{self, HumanDuration};
use crate::profile::{InputError, Source};
use crate::scenario::check_report_name;

/// Upper bound for the real number of clients the wizard accepts.
pub const MAX_CLIENTS: i64 = 10_000_000;

pub use crate::decision::LoadBalancer;

/// Servers behind a load balancer when the answers do not say: the smallest fleet in which a rolling
/// deploy always leaves two replicas up.
pub const DEFAULT_SERVERS: i64 = 3;
/// The most servers the wizard simulates (each is a simulated host).
pub const MAX_SERVERS: i64 = 16;

/// Everything the wizard asks. Keys are a contract with answers files: add keys, never rename one.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Answers {
    /// The profile is written to `profiles/<name>.toml` and reported under `reports/<name>/`.
    pub name: String,
    /// Both client and server send messages frequently.
    pub bidirectional: bool,
    /// The server has news the client did not ask for.
    pub server_push: bool,
    /// How often the data changes, changes per minute.
    pub changes_per_minute: f64,
    /// Expected concurrent clients (real count; the profile simulates at most a capped number).
    pub clients: i64,
    /// Size of one update's payload, bytes.
    pub event_bytes: i64,
    /// Messages each client sends to the server, per minute.
    pub upstream_per_minute: f64,
    /// Fraction of clients on mobile networks, 0 to 1.
    pub mobile_share: f64,
    /// Some clients sit behind corporate proxies.
    pub corporate_proxies: bool,
    /// Traffic passes through a CDN.
    pub cdn: bool,
    /// What spreads requests over the servers.
    pub load_balancer: LoadBalancer,
    /// Application servers behind the load balancer (asked only when there is one).
    pub servers: i64,
    /// Longest acceptable delay between a change and a client seeing it.
    pub latency_budget: HumanDuration,
}

impl Answers {
    /// What the decision needs to know, from these answers.
    pub fn situation(&self) -> crate::decision::Situation {
        crate::decision::Situation {
            bidirectional: self.bidirectional,
            server_push: self.server_push,
            changes_per_minute: self.changes_per_minute,
            clients: self.clients,
            event_bytes: self.event_bytes,
            upstream_per_minute: self.upstream_per_minute,
            mobile_share: self.mobile_share,
            corporate_proxies: self.corporate_proxies,
            cdn: self.cdn,
            load_balancer: self.load_balancer,
            latency_budget: self.latency_budget,
            max_requests_per_second: None,
        }
    }
}

impl Default for Answers {
    fn default() -> Self {
        Self {
            name: "my-app".to_string(),
            bidirectional: false,
            server_push: true,
            changes_per_minute: 6.0,
            clients: 1000,
            event_bytes: 300,
            upstream_per_minute: 0.0,
            mobile_share: 0.3,
            corporate_proxies: false,
            cdn: false,
            load_balancer: LoadBalancer::RoundRobin,
            servers: DEFAULT_SERVERS,
            latency_budget: HumanDuration(Duration::from_secs(1)),
        }
    }
}

/// What kind of input a question takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Yes or no.
    YesNo,
    /// One of a fixed list of names.
    Choice(&'static [&'static str]),
    /// Free text, checked by [`Answers::set`].
    Text,
}

/// One question of the wizard, as data.
#[derive(Clone, Copy, Debug)]
pub struct Question {
    /// The answers-file key this question fills.
    pub key: &'static str,
    /// The question as asked.
    pub prompt: &'static str,
    /// Shown under the question: what it means and why it matters.
    pub help: &'static str,
    /// Yes/no, a choice, or free text.
    pub kind: Kind,
    /// Whether the question matters given the answers so far (irrelevant ones are skipped).
    pub relevant: fn(&Answers) -> bool,
}

fn always(_: &Answers) -> bool {
    true
}

fn has_balancer(a: &Answers) -> bool {
    a.load_balancer != LoadBalancer::None
}

/// Every question, in the order the prompts ask them: the decision tree first, then the workload and
/// the environment that decides what goes wrong in production.
pub const QUESTIONS: &[Question] = &[
    Question {
        key: "name",
        prompt: "Name of the application (names the profile and the report folder):",
        help: "letters, digits, `-`, `_` and `.`; the profile goes to profiles/<name>.toml",
        kind: Kind::Text,
        relevant: always,
    },
    Question {
        key: "bidirectional",
        prompt: "Do both client and server send messages frequently (chat, collaborative editing, games)?",
        help: "decision tree step 1: frequent messages in both directions point to WebSockets",
        kind: Kind::YesNo,
        relevant: always,
    },
    Question {
        key: "server_push",
        prompt: "Does the server have news the client did not ask for (notifications, live scores, feeds)?",
        help: "decision tree step 2: server-initiated updates point to Server-Sent Events",
        kind: Kind::YesNo,
        relevant: |a| !a.bidirectional,
    },
    Question {
        key: "changes_per_minute",
        prompt: "How many times a minute does the data change?",
        help: "decision tree step 3: more than 2 a minute (more often than every 30 s) favours long polling \
               over regular polling; also sets the simulated event rate",
        kind: Kind::Text,
        relevant: always,
    },
    Question {
        key: "clients",
        prompt: "How many clients are connected at the same time?",
        help: "the real number; the written profile simulates at most 10000 and scales the server-side figures above that",
        kind: Kind::Text,
        relevant: always,
    },
    Question {
        key: "event_bytes",
        prompt: "How large is one update, in bytes?",
        help: "payload of one message from the server; a buffering proxy holds 4–8 KiB before passing anything",
        kind: Kind::Text,
        relevant: always,
    },
    Question {
        key: "upstream_per_minute",
        prompt: "How many messages does each client send to the server per minute?",
        help: "0 if clients only listen; chat is typically a few a minute",
        kind: Kind::Text,
        relevant: always,
    },
    Question {
        key: "mobile_share",
        prompt: "What fraction of clients are on mobile networks (0 to 1)?",
        help: "carrier NATs drop connections idle for 30–60 s, and phones switch between Wi-Fi and cellular",
        kind: Kind::Text,
        relevant: always,
    },
    Question {
        key: "corporate_proxies",
        prompt: "Are some clients behind corporate proxies?",
        help: "such proxies may buffer streamed responses and refuse the WebSocket upgrade",
        kind: Kind::YesNo,
        relevant: always,
    },
    Question {
        key: "cdn",
        prompt: "Does the traffic pass through a CDN or a buffering reverse proxy?",
        help: "e.g. Cloudflare (read timeout 100 s) or nginx (buffers responses, cuts silent ones at 60 s)",
        kind: Kind::YesNo,
        relevant: always,
    },
    Question {
        key: "load_balancer",
        prompt: "Is there a load balancer in front of several servers?",
        help: "round-robin sends each request anywhere; sticky keeps a client on one server",
        kind: Kind::Choice(&["none", "sticky", "round-robin"]),
        relevant: always,
    },
    Question {
        key: "servers",
        prompt: "How many application servers are behind it?",
        help: "each one is simulated as a replica; the profile restarts them one at a time (a rolling deploy)",
        kind: Kind::Text,
        relevant: has_balancer,
    },
    Question {
        key: "latency_budget",
        prompt: "How late may an update reach a client (e.g. 500ms, 1s, 30s)?",
        help: "the longest acceptable delay from a change to a client seeing it",
        kind: Kind::Text,
        relevant: always,
    },
];

/// Finds a question by its key.
pub fn question(key: &str) -> Option<&'static Question> {
    QUESTIONS.iter().find(|q| q.key == key)
}

impl Answers {
    /// Reads an answers file. Parse errors and out-of-range values name the file, line and key.
    pub fn load(path: &Path) -> Result<Answers, InputError> {
        let source = Source::read(path)?;
        let answers: Answers = source.parse()?;
        answers
            .validate()
            .map_err(|(key, message)| source.error_at(key, message))?;
        Ok(answers)
    }

    /// Checks every value's range; on failure, the key at fault and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for q in QUESTIONS {
            // Every current value is re-checked with the same parser the prompts use.
            let text = self.get(q.key);
            let mut probe = self.clone();
            probe.set(q.key, &text).map_err(|m| (q.key, m))?;
        }
        Ok(())
    }

    /// The current value of `key`, as text that [`Answers::set`] reads back.
    pub fn get(&self, key: &str) -> String {
        match key {
            "name" => self.name.clone(),
            "bidirectional" => yes_no(self.bidirectional).into(),
            "server_push" => yes_no(self.server_push).into(),
            "changes_per_minute" => number(self.changes_per_minute),
            "clients" => self.clients.to_string(),
            "event_bytes" => self.event_bytes.to_string(),
            "upstream_per_minute" => number(self.upstream_per_minute),
            "mobile_share" => number(self.mobile_share),
            "corporate_proxies" => yes_no(self.corporate_proxies).into(),
            "cdn" => yes_no(self.cdn).into(),
            "load_balancer" => self.load_balancer.name().into(),
            "servers" => self.servers.to_string(),
            "latency_budget" => self.latency_budget.to_string(),
            _ => String::new(),
        }
    }

    /// Parses `text` as the value of `key` and stores it if it is in range; otherwise says why not.
    pub fn set(&mut self, key: &str, raw: &str) -> Result<(), String> {
        let text = raw.trim();
        match key {
            "name" => {
                // Untrimmed: a name with spaces around it is refused, not silently changed.
                check_report_name(raw)?;
                self.name = raw.to_string();
            }
            "bidirectional" => self.bidirectional = parse_yes_no(text)?,
            "server_push" => self.server_push = parse_yes_no(text)?,
            "changes_per_minute" => {
                self.changes_per_minute = parse_number(text, 0.01, 60_000.0, "changes a minute")?
            }
            "clients" => self.clients = parse_integer(text, 1, MAX_CLIENTS)?,
            "event_bytes" => self.event_bytes = parse_integer(text, 1, 1 << 20)?,
            "upstream_per_minute" => {
                self.upstream_per_minute = parse_number(text, 0.0, 6_000.0, "messages a minute")?
            }
            "mobile_share" => self.mobile_share = parse_number(text, 0.0, 1.0, "a fraction")?,
            "corporate_proxies" => self.corporate_proxies = parse_yes_no(text)?,
            "cdn" => self.cdn = parse_yes_no(text)?,
            "load_balancer" => {
                self.load_balancer = LoadBalancer::ALL
                    .into_iter()
                    .find(|lb| lb.name() == text)
                    .ok_or_else(|| {
                        format!(
                        "`{text}` is not a load balancer kind (use none, sticky or round-robin)"
                    )
                    })?
            }
            "servers" => self.servers = parse_integer(text, 2, MAX_SERVERS)?,
            "latency_budget" => {
                let d = duration::parse(text)?;
                if d < Duration::from_millis(1) || d > Duration::from_secs(3600) {
                    return Err(format!("must be between 1ms and 1h (got {text})"));
                }
                self.latency_budget = HumanDuration(d);
            }
            other => return Err(format!("`{other}` is not a question of the wizard")),
        }
        Ok(())
    }

    /// The answers as an answers file (a comment per key), for the profile header and for re-use.
    pub fn to_toml_lines(&self) -> Vec<String> {
        QUESTIONS
            .iter()
            .map(|q| {
                let value = match q.kind {
                    Kind::YesNo => (self.get(q.key) == "yes").to_string(),
                    Kind::Choice(_) => format!("\"{}\"", self.get(q.key)),
                    Kind::Text => match q.key {
                        "name" | "latency_budget" => format!("\"{}\"", self.get(q.key)),
                        _ => self.get(q.key),
                    },
                };
                format!("{} = {}", q.key, value)
            })
            .collect()
    }
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// Shortest decimal form that reads back exactly (`6`, `0.7`, `12.5`).
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn parse_yes_no(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "y" | "yes" | "true" => Ok(true),
        "n" | "no" | "false" => Ok(false),
        _ => Err(format!("`{text}` is not yes or no")),
    }
}

fn parse_number(text: &str, min: f64, max: f64, what: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number ({what})"))?;
    if !value.is_finite() || value < min || value > max {
        return Err(format!(
            "must be between {} and {} (got {text})",
            number(min),
            number(max)
        ));
    }
    Ok(value)
}

fn parse_integer(text: &str, min: i64, max: i64) -> Result<i64, String> {
    let value: i64 = text
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number"))?;
    if value < min || value > max {
        return Err(format!("must be between {min} and {max} (got {value})"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn load(text: &str) -> Result<Answers, InputError> {
        let source = Source {
            path: PathBuf::from("a.toml"),
            text: text.to_string(),
        };
        let answers: Answers = source.parse()?;
        answers.validate().map_err(|(k, m)| source.error_at(k, m))?;
        Ok(answers)
    }

    #[test]
    fn empty_file_takes_every_default() {
        assert_eq!(load("").unwrap(), Answers::default());
        assert!(Answers::default().validate().is_ok());
    }

    #[test]
    fn the_issue_example_parses() {
        let a = load(
            "name = \"team-chat\"\nbidirectional = true\nserver_push = true\nchanges_per_minute = 20.0\n\
             clients = 5000\nevent_bytes = 300\nupstream_per_minute = 4.0\nmobile_share = 0.7\n\
             corporate_proxies = false\ncdn = false\nload_balancer = \"round-robin\"\nlatency_budget = \"1s\"\n",
        )
        .unwrap();
        assert_eq!(a.name, "team-chat");
        assert_eq!(a.load_balancer, LoadBalancer::RoundRobin);
        assert_eq!(a.latency_budget.0, Duration::from_secs(1));
        assert_eq!(a.mobile_share, 0.7);
    }

    #[test]
    fn unknown_key_is_located() {
        let e = load("name = \"x\"\nmobile_shares = 0.5\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains("unknown field `mobile_shares`"), "{e}");
    }

    #[test]
    fn out_of_range_values_are_located_and_explained() {
        let cases: &[(&str, &str, usize, &str)] = &[
            ("mobile_share = 1.5\n", "mobile_share", 2, "between 0 and 1"),
            ("clients = 0\n", "clients", 2, "between 1 and"),
            ("event_bytes = -3\n", "event_bytes", 2, "between 1 and"),
            (
                "changes_per_minute = 0.0\n",
                "changes_per_minute",
                2,
                "between 0.01 and",
            ),
            (
                "upstream_per_minute = -1.0\n",
                "upstream_per_minute",
                2,
                "between 0 and",
            ),
            (
                "latency_budget = \"2h\"\n",
                "latency_budget",
                2,
                "between 1ms and 1h",
            ),
            (
                "name = \"../etc\"\n",
                "name",
                2,
                "cannot name a report folder",
            ),
        ];
        for (line, key, at, message) in cases {
            let e = load(&format!("cdn = false\n{line}")).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(*key), "{e}");
            assert_eq!(e.line, Some(*at), "{e}");
            assert!(e.message.contains(message), "{e}");
        }
    }

    #[test]
    fn wrong_types_and_unknown_choices_are_located() {
        let e = load("clients = \"many\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(1), Some("clients")),
            "{e}"
        );
        let e = load("load_balancer = \"random\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(1), Some("load_balancer")),
            "{e}"
        );
        assert!(e.message.contains("round-robin"), "{e}");
        let e = load("latency_budget = \"soon\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("latency_budget"), "{e}");
    }

    #[test]
    fn every_question_round_trips_through_get_and_set() {
        let mut a = Answers::default();
        for q in QUESTIONS {
            let text = a.get(q.key);
            a.set(q.key, &text)
                .unwrap_or_else(|e| panic!("{}: {e}", q.key));
        }
        assert_eq!(a, Answers::default());
        assert!(a.set("colour", "blue").is_err());
        assert!(a.set("bidirectional", "perhaps").is_err());
        assert!(a.set("mobile_share", "NaN").is_err());
    }

    #[test]
    fn every_answers_key_has_a_question_and_the_other_way_round() {
        let table = toml::Table::try_from(Answers::default()).unwrap();
        let mut keys: Vec<&str> = table.keys().map(String::as_str).collect();
        let mut asked: Vec<&str> = QUESTIONS.iter().map(|q| q.key).collect();
        keys.sort();
        asked.sort();
        assert_eq!(keys, asked);
        assert!(QUESTIONS
            .iter()
            .all(|q| question(q.key).is_some() && !q.help.is_empty()));
    }

    #[test]
    fn written_answers_read_back() {
        let mut a = Answers::default();
        a.set("mobile_share", "0.25").unwrap();
        a.set("load_balancer", "sticky").unwrap();
        a.set("latency_budget", "250ms").unwrap();
        let text = a.to_toml_lines().join("\n");
        assert_eq!(load(&text).unwrap(), a);
    }
}
