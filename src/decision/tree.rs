//! The design brief's decision tree: which transport a situation calls for, and the path there in words.
//!
//! [`recommend`] turns a [`Situation`] into a [`Recommendation`]: the transport, the path taken through
//! [`TREE`] in words (moving up the tree when a requirement rules the leaf out), the runner-up and when
//! it would win, and the mitigations the environment demands. Pure functions of the situation: no
//! terminal, file or clock here.

use serde::Serialize;

use super::mitigations::{
    change_period, counted, mitigations, num, polling_interval_for, Mitigation,
};
use super::Situation;
use crate::transport::TransportKind;

pub const FREQUENT_CHANGES_PER_MINUTE: f64 = 2.0;

/// A question of the decision tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Step 1: do both client and server send frequently?
    Bidirectional,
    /// Step 2: does the server push data the client did not ask for?
    ServerPush,
    /// Step 3: does the data change more often than every 30 seconds?
    FrequentChanges,
}

/// Where an answer leads: another question, or a transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Ask another question.
    Ask(Step),
    /// The walk ends: this transport.
    Leaf(TransportKind),
}

/// One node of the tree.
#[derive(Clone, Copy, Debug)]
pub struct Branch {
    /// Which question this node asks.
    pub step: Step,
    /// The question as the design brief asks it.
    pub question: &'static str,
    /// Where a yes leads.
    pub yes: Next,
    /// Where a no leads.
    pub no: Next,
}

/// The design brief's decision tree; the walk starts at the first branch.
pub const TREE: [Branch; 3] = [
    Branch {
        step: Step::Bidirectional,
        question: "Need bidirectional communication (both client and server send frequently)?",
        yes: Next::Leaf(TransportKind::Websocket),
        no: Next::Ask(Step::ServerPush),
    },
    Branch {
        step: Step::ServerPush,
        question: "Does the server need to push data to the client?",
        yes: Next::Leaf(TransportKind::Sse),
        no: Next::Ask(Step::FrequentChanges),
    },
    Branch {
        step: Step::FrequentChanges,
        question: "Does data change frequently (more often than every 30 seconds)?",
        yes: Next::Leaf(TransportKind::LongPolling),
        no: Next::Leaf(TransportKind::Polling),
    },
];

/// The transport that would come second, and the condition under which it would be the better choice.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunnerUp {
    /// The second-best transport.
    pub transport: TransportKind,
    /// When it would win, in words tied to the user's own answers.
    pub when: String,
}

/// The tree's recommendation for a situation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    /// The transport the tree leads to.
    pub transport: TransportKind,
    /// The path taken through the tree, one line per question.
    pub path: Vec<String>,
    /// The second-best transport and when it would win.
    pub runner_up: RunnerUp,
    /// What the user's environment demands of the chosen transport, in [`super::mitigations::RULES`] order.
    pub mitigations: Vec<Mitigation>,
    /// Answers that look inconsistent with each other, and what that would change.
    pub notes: Vec<String>,
}

/// The answer to one step, and the figure behind it in words.
pub fn answer(step: Step, a: &Situation) -> (bool, String) {
    match step {
        Step::Bidirectional => {
            let detail = format!(
                "each client sends {}",
                counted(
                    a.upstream_per_minute,
                    "message a minute",
                    "messages a minute"
                )
            );
            (a.bidirectional, detail)
        }
        Step::ServerPush => (a.server_push, String::new()),
        Step::FrequentChanges => {
            let detail = format!(
                "{}, one every {}",
                counted(a.changes_per_minute, "change a minute", "changes a minute"),
                change_period(a)
            );
            (a.changes_per_minute > FREQUENT_CHANGES_PER_MINUTE, detail)
        }
    }
}

/// Walks the tree: the leaf reached and one line per question asked.
pub fn walk(a: &Situation) -> (TransportKind, Vec<String>) {
    let mut path = Vec::new();
    let mut branch = &TREE[0];
    loop {
        let (yes, detail) = answer(branch.step, a);
        let next = if yes { branch.yes } else { branch.no };
        let mut line = format!(
            "{}. {} {}",
            path.len() + 1,
            branch.question,
            if yes { "yes" } else { "no" }
        );
        if !detail.is_empty() {
            line.push_str(&format!(" ({detail})"));
        }
        match next {
            Next::Leaf(transport) => {
                line.push_str(&format!(" → {}", transport.title()));
                path.push(line);
                if transport == TransportKind::Polling {
                    path.push(
                        "Rule of thumb: the simplest approach that meets the requirements.".into(),
                    );
                }
                return (transport, path);
            }
            Next::Ask(step) => {
                path.push(line);
                // TREE lists every step; a missing one would be a typo in the table above (tested).
                branch = TREE
                    .iter()
                    .find(|b| b.step == step)
                    .unwrap_or(&TREE[TREE.len() - 1]);
            }
        }
    }
}

/// The shortest polling interval the tree considers: polling faster than once a second per client
/// is a request storm, not polling.
pub const MIN_POLLING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Why a requirement rules `transport` out in this situation, if one does.
pub fn ruled_out(transport: TransportKind, a: &Situation) -> Option<String> {
    let budget = a.latency_budget.0;
    match transport {
        TransportKind::Polling => {
            let interval = polling_interval_for(a);
            if budget < interval * 2 {
                return Some(format!(
                    "Polling cannot meet a {} latency budget: an event waits up to a whole interval for \
                     the next poll, and polling faster than every {} is a request storm",
                    a.latency_budget,
                    crate::duration::format(MIN_POLLING_INTERVAL)
                ));
            }
            let rate = a.clients as f64 / interval.as_secs_f64();
            match a.max_requests_per_second {
                Some(max) if rate > max => Some(format!(
                    "Polling every {} from {} clients makes about {} requests/s, over the server's \
                     budget of {}",
                    crate::duration::format(interval),
                    a.clients,
                    num(rate.round()),
                    num(max)
                )),
                _ => None,
            }
        }
        TransportKind::LongPolling => {
            let rate = a.clients as f64 * a.changes_per_minute / 60.0;
            match a.max_requests_per_second {
                Some(max) if rate > max => Some(format!(
                    "Long polling answers one request per change per client: about {} requests/s from \
                     {} clients, over the server's budget of {}",
                    num(rate.round()),
                    a.clients,
                    num(max)
                )),
                _ => None,
            }
        }
        TransportKind::Sse | TransportKind::Websocket => None,
    }
}

/// The next transport up the tree (polling → long polling → SSE → WebSocket).
fn up(transport: TransportKind) -> Option<TransportKind> {
    match transport {
        TransportKind::Polling => Some(TransportKind::LongPolling),
        TransportKind::LongPolling => Some(TransportKind::Sse),
        TransportKind::Sse => Some(TransportKind::Websocket),
        TransportKind::Websocket => None,
    }
}

/// The tree's candidate: the leaf [`walk`] reaches, moved up the tree while a requirement rules it
/// out, with the path in words.
pub fn candidate(a: &Situation) -> (TransportKind, Vec<String>) {
    let (mut transport, mut path) = walk(a);
    while let Some(why) = ruled_out(transport, a) {
        let Some(next) = up(transport) else { break };
        path.retain(|line| !line.starts_with("Rule of thumb"));
        path.push(format!("{why} → {}", next.title()));
        transport = next;
    }
    (transport, path)
}

/// The whole recommendation for a set of answers.
pub fn recommend(a: &Situation) -> Recommendation {
    let (transport, path) = candidate(a);
    Recommendation {
        transport,
        path,
        runner_up: runner_up(transport, a),
        mitigations: mitigations(a, transport),
        notes: notes(a),
    }
}

/// The second-best transport for a leaf, and when it would win.
pub fn runner_up(transport: TransportKind, a: &Situation) -> RunnerUp {
    let (transport, when) = match transport {
        TransportKind::Websocket => (
            TransportKind::Sse,
            format!(
                "if clients send rarely enough that ordinary HTTP requests can carry their messages \
                 (now {} a minute each): SSE plus POST needs no upgrade, passes proxies that block it, \
                 and the browser reconnects by itself",
                num(a.upstream_per_minute)
            ),
        ),
        TransportKind::Sse if a.corporate_proxies || a.cdn => (
            TransportKind::LongPolling,
            "if a proxy in the path buffers the stream and cannot be told not to: long polling answers \
             each request whole, so buffering cannot hold events back"
                .to_string(),
        ),
        TransportKind::Sse => (
            TransportKind::Websocket,
            format!(
                "if clients start sending frequently too (now {} each): one \
                 connection then carries both directions",
                counted(a.upstream_per_minute, "message a minute", "messages a minute")
            ),
        ),
        TransportKind::LongPolling => (
            TransportKind::Polling,
            format!(
                "if changes slow to one every 30 s or less (now one every {}) or updates may wait a \
                 whole polling interval: plain short requests, nothing held open, cacheable",
                change_period(a)
            ),
        ),
        TransportKind::Polling => (
            TransportKind::LongPolling,
            format!(
                "if data starts changing more often than every 30 s (now one every {}) or the latency \
                 budget ({}) gets shorter than a sensible polling interval: the server answers as soon \
                 as something changes",
                change_period(a),
                a.latency_budget
            ),
        ),
    };
    RunnerUp { transport, when }
}

/// Answers that pull against each other.
pub fn notes(a: &Situation) -> Vec<String> {
    let mut notes = Vec::new();
    if a.bidirectional && a.upstream_per_minute < 1.0 {
        notes.push(format!(
            "You said both sides send frequently, but each client sends {}: if that \
             is the real figure, answer no to step 1 and SSE with ordinary POST requests may do.",
            counted(
                a.upstream_per_minute,
                "message a minute",
                "messages a minute"
            )
        ));
    }
    if !a.bidirectional && a.upstream_per_minute >= 10.0 {
        notes.push(format!(
            "Each client sends {}: if that counts as frequent, answer yes to step 1 \
             (WebSockets).",
            counted(
                a.upstream_per_minute,
                "message a minute",
                "messages a minute"
            )
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::HumanDuration;
    use std::time::Duration;

    #[test]
    fn requirements_move_the_candidate_up_the_tree() {
        use TransportKind::*;
        let polling = |f: fn(&mut Situation)| {
            let mut a = Situation {
                server_push: false,
                changes_per_minute: 1.0,
                ..Situation::default()
            };
            f(&mut a);
            a
        };
        // (situation, candidate, moves up)
        let cases: Vec<(&str, Situation, TransportKind, usize)> = vec![
            (
                "60 s budget: polling",
                polling(|a| a.latency_budget = HumanDuration(Duration::from_secs(60))),
                Polling,
                0,
            ),
            (
                "200 ms budget: long polling",
                polling(|a| a.latency_budget = HumanDuration(Duration::from_millis(200))),
                LongPolling,
                1,
            ),
            (
                "request budget: long polling, then SSE",
                polling(|a| {
                    a.latency_budget = HumanDuration(Duration::from_millis(200));
                    a.clients = 100_000;
                    a.max_requests_per_second = Some(100.0);
                }),
                Sse,
                2,
            ),
            (
                "push with a tight budget stays SSE",
                Situation {
                    latency_budget: HumanDuration(Duration::from_millis(200)),
                    ..Situation::default()
                },
                Sse,
                0,
            ),
        ];
        for (name, a, expected, moves) in cases {
            let (transport, path) = candidate(&a);
            assert_eq!(transport, expected, "{name}: {path:?}");
            assert_eq!(
                path.iter()
                    .filter(|l| !l.contains('?') && l.contains('→'))
                    .count(),
                moves,
                "{name}: {path:?}"
            );
            assert_eq!(recommend(&a).transport, expected, "{name}");
        }
        let (_, path) = candidate(&polling(|a| {
            a.latency_budget = HumanDuration(Duration::from_millis(200))
        }));
        assert!(
            path.last()
                .unwrap()
                .starts_with("Polling cannot meet a 200ms latency budget"),
            "{path:?}"
        );
    }

    fn answers(f: impl FnOnce(&mut Situation)) -> Situation {
        let mut a = Situation::default();
        f(&mut a);
        a
    }

    #[test]
    fn every_leaf_of_the_tree() {
        use TransportKind::*;
        // (bidirectional, server_push, changes_per_minute) → transport, questions asked
        let cases: &[(bool, bool, f64, TransportKind, usize)] = &[
            (true, true, 20.0, Websocket, 1),
            (true, false, 0.5, Websocket, 1),
            (false, true, 20.0, Sse, 2),
            (false, true, 0.1, Sse, 2),
            (false, false, 20.0, LongPolling, 3),
            (false, false, 2.5, LongPolling, 3),
            (false, false, 2.0, Polling, 3), // exactly every 30 s is not "more often"
            (false, false, 0.5, Polling, 3),
        ];
        for &(bidirectional, server_push, cpm, expected, asked) in cases {
            let a = answers(|a| {
                a.bidirectional = bidirectional;
                a.server_push = server_push;
                a.changes_per_minute = cpm;
                // A budget polling can meet: the tree's leaves, not moves up it.
                a.latency_budget = HumanDuration(Duration::from_secs(60));
            });
            let (transport, path) = walk(&a);
            assert_eq!(
                transport, expected,
                "{bidirectional} {server_push} {cpm}: {path:?}"
            );
            let questions = path.iter().filter(|l| l.contains('?')).count();
            assert_eq!(questions, asked, "{path:?}");
            assert!(
                path.iter()
                    .any(|l| l.ends_with(&format!("→ {}", expected.title()))),
                "{path:?}"
            );
            assert_eq!(recommend(&a).transport, expected);
        }
    }

    #[test]
    fn path_reads_as_words() {
        let a = answers(|a| {
            a.server_push = false;
            a.changes_per_minute = 20.0;
        });
        let (_, path) = walk(&a);
        assert_eq!(
            path,
            vec![
                "1. Need bidirectional communication (both client and server send frequently)? no \
                 (each client sends 0 messages a minute)",
                "2. Does the server need to push data to the client? no",
                "3. Does data change frequently (more often than every 30 seconds)? yes (20 changes a \
                 minute, one every 3s) → Long polling",
            ]
        );
    }

    #[test]
    fn every_step_of_the_tree_is_reachable_and_every_leaf_is_a_transport() {
        let mut leaves: Vec<TransportKind> = TREE
            .iter()
            .flat_map(|b| [b.yes, b.no])
            .filter_map(|n| match n {
                Next::Leaf(t) => Some(t),
                Next::Ask(step) => {
                    assert!(TREE.iter().any(|b| b.step == step));
                    None
                }
            })
            .collect();
        leaves.sort();
        assert_eq!(leaves, TransportKind::ALL.to_vec());
    }

    #[test]
    fn runner_up_differs_and_depends_on_the_environment() {
        use TransportKind::*;
        let plain = Situation::default();
        let proxied = answers(|a| a.corporate_proxies = true);
        let cases = [
            (Websocket, &plain, Sse),
            (Sse, &plain, Websocket),
            (Sse, &proxied, LongPolling),
            (LongPolling, &plain, Polling),
            (Polling, &plain, LongPolling),
        ];
        for (t, a, expected) in cases {
            let r = runner_up(t, a);
            assert_eq!(r.transport, expected, "{t}");
            assert!(r.when.starts_with("if "), "{}", r.when);
        }
    }

    #[test]
    fn notes_flag_answers_that_pull_against_each_other() {
        let a = answers(|a| {
            a.bidirectional = true;
            a.upstream_per_minute = 0.0;
        });
        assert_eq!(notes(&a).len(), 1);
        let a = answers(|a| a.upstream_per_minute = 30.0);
        assert!(notes(&a)[0].contains("answer yes to step 1"));
        assert!(notes(&Situation::default()).is_empty());
    }
}
