//! From answers and recommendation to a runnable profile: the workload from the answers, a scenario
//! per middlebox the user has, and the settings of every mitigation applied.
//!
//! The profile is built as a [`Profile`] value, mitigation settings are applied through the profile's own
//! serde schema (so a misspelt key cannot slip through), and the final text — a comment header saying
//! where each number comes from, then [`Profile::to_toml`] — is validated with the same
//! `Plan::from_profile` that `rtsim simulate` uses. This module builds text; it never writes files.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::answers::{Answers, LoadBalancer};
use crate::decision::mitigations::polling_interval_for;
use crate::decision::{Recommendation, Setting};
use crate::duration::{self, HumanDuration};
use crate::profile::{
    Backplane, BalancePolicy, BalancerSection, DeploySection, LongPollingSection, NatSection,
    NetworkSection, PollingSection, Profile, ProxyPreset, ProxySection, RadioSection,
    ReconnectSection, RequirementsSection, ScenarioSection, ServerSection, SimulationSection,
    Source, SseSection, SwitchSection, WebSocketSection, WorkloadSection,
};
use crate::scenario::Plan;
use crate::transport::TransportKind;

/// At most this many clients are simulated (the engine runs 10,000 at more than 10× real time); above
/// it the profile's `population` scales the server-side figures to the real count.
pub const SIMULATED_CLIENTS_CAP: i64 = 10_000;

/// Simulated time per run: several 30 s NAT timeouts and a few network switches fit in it.
pub const SIMULATED_DURATION: Duration = Duration::from_secs(300);

fn secs(s: u64) -> HumanDuration {
    HumanDuration(Duration::from_secs(s))
}

/// The scenarios for the user's environment: always `baseline`, then one per middlebox they have.
pub fn scenarios(a: &Answers) -> Vec<ScenarioSection> {
    let mut out = vec![ScenarioSection {
        name: "baseline".into(),
        description: Some("Clean network: the reference for every other scenario.".into()),
        ..ScenarioSection::default()
    }];
    if a.mobile_share > 0.0 {
        out.push(ScenarioSection {
            name: "mobile-nat".into(),
            description: Some(
                "Carrier NAT forgetting TCP mappings idle for 30 s, silently both ways (docs/references.md: \
                 mobile carrier NAT 30–60 s; Linux NAT); every simulated client is behind it."
                    .into(),
            ),
            nat: Some(NatSection { idle_timeout: secs(30), expired: None }),
            ..ScenarioSection::default()
        });
        out.push(ScenarioSection {
            name: "network-switch".into(),
            description: Some(
                "Each client switches between Wi-Fi and cellular about every 2 minutes, 2 s without \
                 network; every TCP connection dies, the client is told, the server is not \
                 (docs/references.md: Wi-Fi → cellular switch)."
                    .into(),
            ),
            switch: Some(SwitchSection { every: secs(120), outage: secs(2), notify: None }),
            ..ScenarioSection::default()
        });
    }
    if a.corporate_proxies {
        out.push(ScenarioSection {
            name: "corporate-proxy".into(),
            description: Some(
                "A corporate proxy that holds streamed responses until 8 KiB gathered, ignores \
                 X-Accel-Buffering and cuts responses silent for 60 s (docs/references.md: proxy presets, \
                 corporate-strict; here it lets WebSocket through)."
                    .into(),
            ),
            proxy: Some(ProxySection {
                block_websocket: Some(false),
                ..ProxySection::like(ProxyPreset::CorporateStrict)
            }),
            ..ScenarioSection::default()
        });
        out.push(ScenarioSection {
            name: "proxy-blocks-websocket".into(),
            description: Some(
                "A proxy that refuses the WebSocket upgrade and does not buffer (docs/references.md: \
                 corporate proxies may not pass the Upgrade header)."
                    .into(),
            ),
            proxy: Some(ProxySection {
                buffer_bytes: Some(0),
                ..ProxySection::like(ProxyPreset::CorporateStrict)
            }),
            ..ScenarioSection::default()
        });
    }
    if a.cdn {
        out.push(ScenarioSection {
            name: "cdn".into(),
            description: Some(
                "A CDN edge like Cloudflare's: streams responses, passes WebSocket and cuts a response \
                 silent for 100 s (docs/references.md: proxy presets, cloudflare)."
                    .into(),
            ),
            proxy: Some(ProxySection::like(ProxyPreset::Cloudflare)),
            ..ScenarioSection::default()
        });
    }
    if a.load_balancer != LoadBalancer::None && a.servers >= 2 {
        out.push(ScenarioSection {
            name: "rolling-deploy".into(),
            description: Some(format!(
                "A rolling deploy: from {} on, the {} servers restart one every {}, each draining for {} \
                 first (no new connections, open ones closed gracefully), as a load balancer's \
                 deregistration delay does (docs/references.md: AWS's default is 300 s).",
                duration::format(DEPLOY_AT),
                a.servers,
                duration::format(deploy_every(a.servers)),
                duration::format(DEPLOY_DRAIN)
            )),
            deploy: Some(DeploySection {
                at: HumanDuration(DEPLOY_AT),
                every: HumanDuration(deploy_every(a.servers)),
                drain: Some(HumanDuration(DEPLOY_DRAIN)),
                down: None,
                close_spread: None,
            }),
            ..ScenarioSection::default()
        });
    }
    // The balancer is in front of the servers in every scenario, as it is in production.
    if let Some(balancer) = balancer_section(a) {
        for scenario in &mut out {
            scenario.balancer = Some(balancer.clone());
        }
    }
    out
}

/// When the rolling deploy starts: after the clients' ramp and a minute of steady state.
pub const DEPLOY_AT: Duration = Duration::from_secs(60);
/// Between two servers' restarts: each is back and refilled before the next one drains.
pub const DEPLOY_EVERY: Duration = Duration::from_secs(30);
/// The last server's restart ends at least this long before the run does, so its reconnects are seen.
pub const DEPLOY_SETTLE: Duration = Duration::from_secs(60);

/// The gap between two servers' restarts: [`DEPLOY_EVERY`], shortened for a large fleet so that every
/// server restarts inside the run, [`DEPLOY_SETTLE`] before its end (whole seconds, at least 1 s: a
/// shorter gap than the drain means servers drain together, as a rolling update with more than one
/// unavailable does).
pub fn deploy_every(servers: i64) -> Duration {
    let room = SIMULATED_DURATION.saturating_sub(DEPLOY_AT + DEPLOY_SETTLE);
    let fit = room.as_secs() / servers.max(1) as u64;
    DEPLOY_EVERY.min(Duration::from_secs(fit.max(1)))
}
/// How long a server drains before it stops.
pub const DEPLOY_DRAIN: Duration = Duration::from_secs(10);
/// The balancer's idle timeout: AWS ALB's default.
pub const BALANCER_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the balancer routes to a server that stopped unannounced: AWS ALB's default health check
/// interval (30 s) × unhealthy threshold (2).
pub const BALANCER_HEALTH_CHECK: Duration = Duration::from_secs(60);

/// Simulated client machines: 4 (cost grows with hosts), or for a sticky balancer, which keeps each
/// client *address* on one server, [`STICKY_HOSTS_PER_SERVER`] per server (at most 64, the profile's
/// limit), so that the addresses spread over the servers as many real clients' would.
pub fn client_hosts(a: &Answers, simulated: i64) -> i64 {
    let hosts = if a.load_balancer == LoadBalancer::Sticky {
        (a.servers * STICKY_HOSTS_PER_SERVER).clamp(4, 64)
    } else {
        4
    };
    simulated.min(hosts)
}

/// Client hosts per server behind a sticky balancer.
pub const STICKY_HOSTS_PER_SERVER: i64 = 4;

/// `[scenario.balancer]` for the answered load balancer; `None` without one.
fn balancer_section(a: &Answers) -> Option<BalancerSection> {
    let policy = match a.load_balancer {
        LoadBalancer::None => return None,
        LoadBalancer::Sticky => BalancePolicy::Sticky,
        LoadBalancer::RoundRobin => BalancePolicy::RoundRobin,
    };
    Some(BalancerSection {
        policy: Some(policy),
        idle_timeout: Some(HumanDuration(BALANCER_IDLE_TIMEOUT)),
        // The rolling deploy drains, so the balancer has deregistered a server before it stops; the
        // health check matters to a user who sets `drain = "0s"` to see what the drain buys.
        health_check: Some(HumanDuration(BALANCER_HEALTH_CHECK)),
    })
}

/// `[server]` for the answers: one server, or the answered number behind the balancer sharing events
/// over a backplane (the state-sharing the sticky-sessions advice names as the alternative).
fn server_section(a: &Answers) -> ServerSection {
    if a.load_balancer == LoadBalancer::None {
        return ServerSection::default();
    }
    ServerSection {
        replicas: Some(a.servers),
        backplane: Some(Backplane::Shared),
        ..ServerSection::default()
    }
}

/// The mitigation settings applied to the profile: those of every transport (so that the comparison is
/// fair), the recommended transport's first, then `TransportKind::ALL` order; a key's first setting wins.
pub fn applied_settings(a: &Answers, chosen: TransportKind) -> Vec<(Setting, &'static str)> {
    let mut out: Vec<(Setting, &'static str)> = Vec::new();
    let order =
        std::iter::once(chosen).chain(TransportKind::ALL.into_iter().filter(|&t| t != chosen));
    for t in order {
        for m in crate::decision::mitigations(&a.situation(), t) {
            for s in m.settings {
                if !out.iter().any(|(seen, _)| seen.key == s.key) {
                    out.push((s, m.id));
                }
            }
        }
    }
    out
}

/// The profile for these answers, with every mitigation's settings applied.
pub fn build_profile(a: &Answers, rec: &Recommendation) -> anyhow::Result<Profile> {
    let simulated = a.clients.min(SIMULATED_CLIENTS_CAP);
    let description = if simulated < a.clients {
        format!(
            "Written by rtsim wizard: {} recommended for {} clients (simulated: {}; server-side figures \
             scaled to {}).",
            rec.transport.name(),
            a.clients,
            simulated,
            a.clients
        )
    } else {
        format!(
            "Written by rtsim wizard: {} recommended for {} clients.",
            rec.transport.name(),
            a.clients
        )
    };
    let profile = Profile {
        name: a.name.clone(),
        description,
        seed: 1,
        duration: HumanDuration(SIMULATED_DURATION),
        clients: simulated,
        transports: None,
        network: NetworkSection::default(),
        workload: WorkloadSection {
            events_per_second: a.changes_per_minute / 60.0,
            event_bytes: a.event_bytes,
            upstream_per_minute: a.upstream_per_minute,
            ..WorkloadSection::default()
        },
        polling: PollingSection {
            interval: HumanDuration(polling_interval_for(&a.situation())),
        },
        long_polling: LongPollingSection::default(),
        sse: SseSection::default(),
        websocket: WebSocketSection::default(),
        reconnect: ReconnectSection::default(),
        server: server_section(a),
        radio: RadioSection::default(),
        simulation: SimulationSection {
            client_hosts: client_hosts(a, simulated),
            ..SimulationSection::default()
        },
        scenario: scenarios(a),
        requirements: Some(requirements(a)),
        population: (simulated < a.clients).then_some(a.clients),
    };
    let mut table = toml::Table::try_from(&profile).context("serialising the profile")?;
    for (setting, _) in applied_settings(a, rec.transport) {
        set_dotted(&mut table, setting.key, setting.value.clone())
            .with_context(|| format!("applying `{}`", setting.key))?;
    }
    toml::Value::Table(table)
        .try_into::<Profile>()
        .context("a mitigation set a key the profile format does not have")
}

/// `[requirements]` from the answers: the tree's inputs and the latency budget; nothing may be lost.
pub fn requirements(a: &Answers) -> RequirementsSection {
    RequirementsSection {
        bidirectional: Some(a.bidirectional),
        server_push: Some(a.server_push),
        latency: Some(a.latency_budget),
        latency_percentile: Some(95),
        max_lost: Some(0.0),
        max_upstream_lost: (a.upstream_per_minute > 0.0).then_some(0.0),
        max_requests_per_second: None,
        max_open_connections_per_server: None,
        max_reconnects_per_second: None,
        max_served_again: None,
    }
}

fn set_dotted(table: &mut toml::Table, key: &str, value: toml::Value) -> anyhow::Result<()> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().context("empty key")?;
    let mut current = table;
    for part in parts {
        current = current
            .entry(part)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("`{part}` is not a table"))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

/// The comment header: what the file is, and where every number comes from.
pub fn header(a: &Answers, rec: &Recommendation, path: &Path) -> String {
    let mut lines = vec![
        format!(
            "{} — written by `rtsim wizard` from the answers below; edit freely.",
            path.display()
        ),
        format!(
            "Recommendation: {} (runner-up: {}). Check it: rtsim simulate {}",
            rec.transport.name(),
            rec.runner_up.transport.name(),
            path.display()
        ),
        String::new(),
        "Where the numbers come from:".into(),
    ];
    let simulated = a.clients.min(SIMULATED_CLIENTS_CAP);
    if a.load_balancer == LoadBalancer::Sticky && client_hosts(a, simulated) > 4 {
        lines.push(format!(
            "  [simulation] client_hosts = {}: a sticky balancer keeps each client address on one server, \
             so the clients are spread over {STICKY_HOSTS_PER_SERVER} simulated machines per server (one \
             machine's clients share an address, as behind one NAT).",
            client_hosts(a, simulated)
        ));
    }
    if simulated < a.clients {
        lines.push(format!(
            "  clients = {simulated}: your {} clients, capped so the simulation runs in minutes (its cost \
             grows with hosts × simulated steps; docs/references.md, the simulator); population = {} \
             scales requests/s, bytes/s and open connections to your count in the report.",
            a.clients, a.clients
        ));
    } else {
        lines.push(format!("  clients = {simulated}: your answer."));
    }
    lines.extend([
        format!(
            "  duration = \"{}\": several 30 s NAT timeouts and network switches fit in one run.",
            duration::format(SIMULATED_DURATION)
        ),
        format!(
            "  workload: events_per_second = {} changes a minute / 60; event_bytes and upstream_per_minute \
             as answered.",
            a.changes_per_minute
        ),
        format!(
            "  polling.interval = \"{}\": half your latency budget ({}), kept between 1s and 60s.",
            duration::format(polling_interval_for(&a.situation())),
            a.latency_budget
        ),
        "  [requirements]: your answers (bidirectional, server push, latency budget at p95); nothing may \
         be lost. The report checks every scenario against them.".into(),
        "  network latency, radio tail and other unset keys: rtsim's defaults (see src/profile.rs).".into(),
    ]);
    if a.load_balancer != LoadBalancer::None {
        lines.push(format!(
            "  [server] replicas = {}: your servers, behind a simulated {} load balancer (in every \
             scenario) that closes connections idle for {}, AWS ALB's default (docs/references.md).",
            a.servers,
            a.load_balancer.name(),
            duration::format(BALANCER_IDLE_TIMEOUT)
        ));
        lines.push(
            "  backplane = \"shared\": every server hears every event (a pub/sub bus such as Redis); set \
             \"none\" to see what clients miss without one."
                .into(),
        );
        if a.servers >= 2 {
            lines.push(format!(
                "  rolling-deploy: the servers restart one at a time from {} on, every {}, each draining \
                 {} first (set drain = \"0s\" to see what the drain buys: the balancer then routes to a \
                 stopped server until its health check fails, 60 s as AWS ALB's defaults).",
                duration::format(DEPLOY_AT),
                duration::format(deploy_every(a.servers)),
                duration::format(DEPLOY_DRAIN)
            ));
        }
    }
    lines.extend(["Mitigations applied (to every transport, so the comparison is fair):".into()]);
    let settings = applied_settings(a, rec.transport);
    if settings.is_empty() {
        lines.push("  none".into());
    }
    for (setting, id) in &settings {
        lines.push(format!("  {} = {}  ({id})", setting.key, setting.value));
    }
    lines.push("Sources of the recommended transport's mitigations:".into());
    for m in &rec.mitigations {
        lines.push(format!("  {}: {}", m.id, m.source));
    }
    lines.push(String::new());
    lines.push("Answers:".into());
    lines.extend(a.to_toml_lines().into_iter().map(|l| format!("  {l}")));
    let mut text: String = lines
        .iter()
        .map(|l| {
            if l.is_empty() {
                "#\n".to_string()
            } else {
                format!("# {l}\n")
            }
        })
        .collect();
    text.push('\n');
    text
}

/// The whole profile file for these answers, validated as `rtsim simulate` would validate it.
pub fn render(a: &Answers, rec: &Recommendation, path: &Path) -> anyhow::Result<String> {
    let profile = build_profile(a, rec)?;
    let text = format!("{}{}", header(a, rec, path), profile.to_toml());
    let source = Source {
        path: path.to_path_buf(),
        text: text.clone(),
    };
    let reparsed: Profile = source
        .parse()
        .context("the wizard wrote a profile it cannot read back (a bug in rtsim)")?;
    Plan::from_profile(&reparsed, &source).context(
        "the wizard wrote a profile that `rtsim simulate` would refuse (a bug in rtsim)",
    )?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::recommend;
    use crate::profile::Fallback;
    use std::path::PathBuf;

    fn plan_for(a: &Answers) -> (String, Plan) {
        let rec = recommend(&a.situation());
        let path = PathBuf::from("profiles/t.toml");
        let text = render(a, &rec, &path).unwrap();
        let source = Source {
            path,
            text: text.clone(),
        };
        let profile: Profile = source.parse().unwrap();
        (text, Plan::from_profile(&profile, &source).unwrap())
    }

    fn names(plan: &Plan) -> Vec<&str> {
        plan.scenarios.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn scenarios_follow_the_environment() {
        let mut a = Answers {
            mobile_share: 0.0,
            load_balancer: LoadBalancer::None,
            ..Answers::default()
        };
        assert_eq!(names(&plan_for(&a).1), ["baseline"]);
        a.mobile_share = 0.2;
        assert_eq!(
            names(&plan_for(&a).1),
            ["baseline", "mobile-nat", "network-switch"]
        );
        a.corporate_proxies = true;
        a.cdn = true;
        a.load_balancer = LoadBalancer::Sticky;
        let (_, plan) = plan_for(&a);
        assert_eq!(
            names(&plan),
            [
                "baseline",
                "mobile-nat",
                "network-switch",
                "corporate-proxy",
                "proxy-blocks-websocket",
                "cdn",
                "rolling-deploy"
            ]
        );
        assert_eq!(
            plan.scenarios[1].nat.as_ref().unwrap().idle_timeout,
            Duration::from_secs(30)
        );
        let blocking = plan.scenarios[4].proxy.as_ref().unwrap();
        assert!(blocking.block_websocket);
        assert!(
            !plan.scenarios[3]
                .proxy
                .as_ref()
                .unwrap()
                .honor_accel_buffering
        );
    }

    #[test]
    fn a_load_balancer_brings_replicas_a_balancer_everywhere_and_a_rolling_deploy() {
        use crate::profile::BalancePolicy;
        for (answer, policy) in [
            (LoadBalancer::Sticky, BalancePolicy::Sticky),
            (LoadBalancer::RoundRobin, BalancePolicy::RoundRobin),
        ] {
            let a = Answers {
                mobile_share: 0.2,
                load_balancer: answer,
                servers: 4,
                ..Answers::default()
            };
            let (text, plan) = plan_for(&a);
            assert_eq!(plan.servers.replicas, 4);
            assert_eq!(plan.servers.backplane, Backplane::Shared);
            for scenario in &plan.scenarios {
                let b = scenario.balancer.as_ref().expect("a balancer everywhere");
                assert_eq!(b.policy, policy, "{}", scenario.name);
                assert_eq!(b.idle_timeout, BALANCER_IDLE_TIMEOUT);
            }
            let deploy = plan
                .scenarios
                .iter()
                .find(|s| s.name == "rolling-deploy")
                .and_then(|s| s.deploy.as_ref())
                .expect("a rolling-deploy scenario");
            assert_eq!(
                (deploy.at, deploy.every, deploy.drain),
                (DEPLOY_AT, DEPLOY_EVERY, DEPLOY_DRAIN)
            );
            // Every replica has restarted, and come back, well inside the run.
            assert!(deploy.at + deploy.every * 3 + deploy.drain + deploy.down < plan.duration);
            assert!(!text.contains("cannot be simulated"), "{text}");
            assert!(text.contains("replicas = 4"), "{text}");
            // Sticky keeps an address on one server: enough client addresses to spread.
            let hosts = if answer == LoadBalancer::Sticky {
                16
            } else {
                4
            };
            assert_eq!(plan.simulation.client_hosts, hosts);
        }
        // A large fleet's restarts are closer together, so that the last one is seen settling.
        for servers in [2, 3, 6, 7, 12, 16] {
            let every = deploy_every(servers);
            let last_drained = DEPLOY_AT + every * (servers as u32 - 1) + DEPLOY_DRAIN;
            assert!(
                last_drained + DEPLOY_SETTLE <= SIMULATED_DURATION,
                "{servers}: {every:?}"
            );
            assert!(every >= Duration::from_secs(1) && every <= DEPLOY_EVERY);
        }
        let alone = Answers {
            load_balancer: LoadBalancer::None,
            ..Answers::default()
        };
        let (text, plan) = plan_for(&alone);
        assert_eq!(plan.servers.replicas, 1);
        assert!(plan.scenarios.iter().all(|s| s.balancer.is_none()));
        assert!(!text.contains("rolling-deploy"), "{text}");
    }

    #[test]
    fn workload_and_mitigations_reach_the_profile() {
        let a = Answers {
            bidirectional: true,
            changes_per_minute: 30.0,
            clients: 50_000,
            upstream_per_minute: 4.0,
            mobile_share: 0.7,
            corporate_proxies: true,
            ..Answers::default()
        };
        let (text, plan) = plan_for(&a);
        assert_eq!(
            plan.clients, 10_000,
            "capped at what the engine runs quickly"
        );
        assert_eq!(plan.population, Some(50_000), "the rest is scaled");
        assert!(
            plan.description.contains("50000 clients (simulated: 10000"),
            "{}",
            plan.description
        );
        assert!(
            plan.workload.upstream_acks,
            "the outbox is proposed for chat"
        );
        let r = &plan.requirements;
        assert!(
            r.bidirectional && r.server_push && r.assumed.is_empty(),
            "{r:?}"
        );
        assert_eq!(r.latency, Duration::from_secs(1));
        assert_eq!(plan.workload.events_per_second, 0.5);
        assert_eq!(plan.workload.upstream_per_minute, 4.0);
        assert_eq!(plan.duration, SIMULATED_DURATION);
        let s = &plan.settings;
        assert_eq!(s.ws_fallback, Fallback::LongPolling);
        assert_eq!(s.ws_ping_interval, Some(Duration::from_secs(20)));
        assert_eq!(s.sse_heartbeat, Some(Duration::from_secs(15)));
        assert!(s.sse_accel_buffering_off);
        assert_eq!(s.long_poll_hold, Duration::from_secs(20));
        assert_eq!(s.reconnect.initial, Duration::from_secs(1));
        assert_eq!(s.reconnect.max, Duration::from_secs(8));
        assert_eq!((s.reconnect.factor, s.reconnect.jitter), (2.0, 0.5));
        assert!(text.starts_with("# profiles/t.toml — written by `rtsim wizard`"));
        assert!(text.contains("#   websocket.fallback = \"long-polling\"  (websocket-fallback)"));
        assert!(text.contains("#   bidirectional = true"));
    }

    #[test]
    fn every_setting_a_rule_can_emit_is_a_real_profile_key() {
        // The broadest environment makes every rule with settings fire for some transport.
        let a = Answers {
            mobile_share: 1.0,
            corporate_proxies: true,
            cdn: true,
            load_balancer: LoadBalancer::RoundRobin,
            ..Answers::default()
        };
        let keys: Vec<&str> = applied_settings(&a, TransportKind::Sse)
            .iter()
            .map(|(s, _)| s.key)
            .collect();
        for expected in [
            "sse.heartbeat",
            "websocket.ping_interval",
            "long_polling.hold",
            "reconnect.initial",
            "server.history",
            "websocket.resume",
            "sse.accel_buffering_off",
            "websocket.fallback",
            "polling.interval",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
        plan_for(&a);
    }

    #[test]
    fn small_populations_are_not_inflated() {
        let a = Answers {
            clients: 3,
            ..Answers::default()
        };
        let (_, plan) = plan_for(&a);
        assert_eq!((plan.clients, plan.simulation.client_hosts), (3, 3));
    }
}
