//! `rtsim wizard`: the design brief's decision tree as a conversation that ends in a runnable profile.
//!
//! # Usage
//! ```text
//! rtsim wizard                                        # interactive: questions, recommendation, profile
//! rtsim wizard --profile-out /tmp/mine.toml           # same, profile written elsewhere
//! rtsim wizard --answers profiles/answers/team-chat.toml          # no prompts (scripts, CI)
//! rtsim wizard --answers answers.toml --json          # the recommendation as JSON on stdout
//! rtsim wizard --answers answers.toml --force         # overwrite a profile that differs
//! ```
//! Interactively, each question shows help text and a default; Esc goes back one question, and a review
//! menu at the end changes any answer. The wizard then prints the recommendation (transport, path through
//! the tree, runner-up, mitigations with reasons and sources, the comparison tables), writes
//! `profiles/<name>.toml` (asking before it overwrites), and offers to run `rtsim simulate` on it; the
//! simulation's numbers are then held against the recommendation and any disagreement is said plainly.
//!
//! An answers file (TOML) may hold any of these keys; the rest take the wizard's defaults:
//! ```toml
//! name = "team-chat"            # profile: profiles/<name>.toml (--profile-out overrides)
//! bidirectional = true          # both sides send frequently
//! server_push = true            # the server has news the client did not ask for
//! changes_per_minute = 20.0     # how often the data changes
//! clients = 5000
//! event_bytes = 300
//! upstream_per_minute = 4.0     # messages each client sends
//! mobile_share = 0.7            # fraction of clients on mobile networks (0..1)
//! corporate_proxies = false     # clients behind corporate proxies
//! cdn = false                   # traffic passes through a CDN
//! load_balancer = "round-robin" # "none", "sticky" or "round-robin"
//! servers = 3                   # behind the load balancer (1 to 16; asked only with one)
//! latency_budget = "1s"
//! ```
//! With `--json` the output is `{"transport", "path", "runner_up", "mitigations", "notes", "scenarios",
//! "profile"}`; `transport`, `path`, `mitigations` and `profile` are a contract. Without a terminal and
//! without `--answers`, the wizard exits with status 2 and explains `--answers`.
//!
//! # Layout
//! - [`answers`]: the answers (serde, defaults, range checks) and the questions as data.
//! - the tree and the mitigation rules are [`crate::decision`]'s, shared with the report.
//! - [`profile_out`]: answers + recommendation → profile text, validated like `rtsim simulate` would.
//! - [`tables`]: comparison and implementation-realities tables, the recommendation in words.
//! - [`check`]: the simulation's verdict (from `summary.json`) against the recommendation.
//! - [`prompts`]: the thin inquire layer.
//!
//! This module is the only one with side effects: it reads the answers file, prints, writes the profile
//! and starts `rtsim simulate` as a child process.

#![warn(missing_docs)]

pub mod answers;
pub mod check;
pub mod profile_out;
pub mod prompts;
pub mod tables;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::decision::{recommend, Mitigation, Recommendation, RunnerUp};
use answers::{Answers, QUESTIONS};
use clap::Args;
use prompts::Asked;

#[derive(Debug, Args)]
/// `rtsim wizard`'s arguments.
pub struct WizardArgs {
    /// Answers file (TOML): run without prompts.
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// With --answers: print the recommendation as JSON.
    #[arg(long, requires = "answers")]
    pub json: bool,
    /// Where to write the profile (default: `profiles/<name>.toml`).
    #[arg(long)]
    pub profile_out: Option<PathBuf>,
    /// With --answers: overwrite an existing profile that differs (interactively the wizard asks).
    #[arg(long, requires = "answers")]
    pub force: bool,
}

/// Exit status when the user interrupts the prompts (Ctrl-C), as shells report SIGINT.
const INTERRUPTED: u8 = 130;

/// Runs `rtsim wizard`.
pub fn run_cli(args: WizardArgs) -> anyhow::Result<ExitCode> {
    match &args.answers {
        Some(path) => run_scripted(path, &args),
        None if !std::io::stdin().is_terminal() => {
            eprintln!("{}", no_terminal_message());
            Ok(ExitCode::from(2))
        }
        None => run_interactive(&args),
    }
}

/// What to say when there is no terminal to ask on.
pub fn no_terminal_message() -> String {
    let keys: Vec<&str> = QUESTIONS.iter().map(|q| q.key).collect();
    format!(
        "error: `rtsim wizard` asks its questions on a terminal, and stdin is not one.\n\
         To run it from a script or CI, put the answers in a TOML file and pass it with --answers:\n\
         \x20 rtsim wizard --answers answers.toml          # recommendation, and profiles/<name>.toml\n\
         \x20 rtsim wizard --answers answers.toml --json   # the recommendation as JSON on stdout\n\
         An example: profiles/answers/team-chat.toml. Keys (any left out take the wizard's defaults):\n\
         \x20 {}",
        keys.join(", ")
    )
}

/// The JSON printed by `--answers --json`.
#[derive(Serialize)]
struct JsonOutput<'a> {
    transport: crate::transport::TransportKind,
    path: &'a [String],
    runner_up: &'a RunnerUp,
    mitigations: &'a [Mitigation],
    notes: &'a [String],
    scenarios: Vec<String>,
    /// Where the profile was written.
    profile: String,
}

fn default_profile_path(a: &Answers) -> PathBuf {
    Path::new("profiles").join(format!("{}.toml", a.name))
}

/// Is there already a file at the profile's path, and does it hold the same text?
#[derive(Debug, PartialEq, Eq)]
enum Existing {
    Absent,
    Same,
    Different,
}

fn existing(path: &Path, text: &str) -> Existing {
    match std::fs::read_to_string(path) {
        Ok(current) if current == text => Existing::Same,
        Ok(_) => Existing::Different,
        Err(_) if path.exists() => Existing::Different,
        Err(_) => Existing::Absent,
    }
}

fn write_profile(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The screen's width: `COLUMNS` when set, else stdout's terminal; `None` for a pipe or a file.
fn screen_columns() -> Option<usize> {
    crate::simulate::columns_from_env().or_else(|| {
        std::io::stdout()
            .is_terminal()
            .then(|| terminal_size::terminal_size().map(|(w, _)| w.0 as usize))
            .flatten()
    })
}

fn color_on_stdout() -> bool {
    tables::use_color(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// `println!` that does not panic when stdout is closed (see [`out`]); needs an `anyhow::Result` caller.
macro_rules! say {
    ($($arg:tt)*) => {
        out(&format!("{}\n", format_args!($($arg)*)))?
    };
}

/// Writes to stdout; a reader that went away (`rtsim wizard ... | head`) is not an error.
fn out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

fn print_recommendation(a: &Answers, rec: &Recommendation, color: bool) -> anyhow::Result<()> {
    let screen = tables::Screen {
        columns: screen_columns(),
        color,
    };
    let mut text = format!(
        "{}\n",
        tables::recommendation_text(rec, screen.text_width())
    );
    text.push_str("The four transports (design brief):\n");
    text.push_str(&tables::comparison_text(rec.transport, screen));
    if let Some(realities) = tables::realities_text(a, rec.transport, screen) {
        text.push_str("\nImplementation realities for your middleboxes:\n");
        text.push_str(&realities);
    }
    out(&text)
}

fn run_scripted(answers_path: &Path, args: &WizardArgs) -> anyhow::Result<ExitCode> {
    let a = Answers::load(answers_path)?;
    let rec = recommend(&a.situation());
    let path = args
        .profile_out
        .clone()
        .unwrap_or_else(|| default_profile_path(&a));
    let text = profile_out::render(&a, &rec, &path)?;
    let status = match existing(&path, &text) {
        Existing::Absent => {
            write_profile(&path, &text)?;
            "written"
        }
        Existing::Same => "unchanged",
        Existing::Different if args.force => {
            write_profile(&path, &text)?;
            "overwritten"
        }
        Existing::Different => anyhow::bail!(
            "{} exists and differs from the profile these answers give; nothing was written. \
             Pass --force to overwrite it, or --profile-out to write elsewhere",
            path.display()
        ),
    };
    if args.json {
        let output = JsonOutput {
            transport: rec.transport,
            path: &rec.path,
            runner_up: &rec.runner_up,
            mitigations: &rec.mitigations,
            notes: &rec.notes,
            scenarios: profile_out::scenarios(&a)
                .into_iter()
                .map(|s| s.name)
                .collect(),
            profile: path.display().to_string(),
        };
        out(&format!("{}\n", serde_json::to_string_pretty(&output)?))?;
        eprintln!("Profile {status}: {}", path.display());
    } else {
        print_recommendation(&a, &rec, color_on_stdout())?;
        out(&format!(
            "\nProfile {status}: {}\nCheck the recommendation: rtsim simulate {}\n",
            path.display(),
            path.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn interrupted() -> anyhow::Result<ExitCode> {
    eprintln!("Interrupted; nothing more was written.");
    Ok(ExitCode::from(INTERRUPTED))
}

fn run_interactive(args: &WizardArgs) -> anyhow::Result<ExitCode> {
    let no_color = std::env::var_os("NO_COLOR");
    prompts::configure(tables::use_color(
        std::io::stderr().is_terminal(),
        no_color.as_deref(),
    ));
    let color = color_on_stdout();
    say!(
        "rtsim wizard: a few questions about your application and its network, then a recommendation \
         and a profile that `rtsim simulate` can check.\nEnter keeps the shown default; Esc goes back.\n"
    );
    let a = match prompts::ask_all(Answers::default()).context("the prompts failed")? {
        Asked::Answered(a) => a,
        Asked::Interrupted => return interrupted(),
    };
    let rec = recommend(&a.situation());
    say!("");
    print_recommendation(&a, &rec, color)?;

    let mut path = args
        .profile_out
        .clone()
        .unwrap_or_else(|| default_profile_path(&a));
    loop {
        let text = profile_out::render(&a, &rec, &path)?;
        match existing(&path, &text) {
            Existing::Absent => {
                write_profile(&path, &text)?;
                say!("\nProfile written: {}", path.display());
                break;
            }
            Existing::Same => {
                say!("\nProfile unchanged: {} already holds it", path.display());
                break;
            }
            Existing::Different => {
                let question = format!("{} exists. Overwrite it?", path.display());
                match prompts::confirm(&question, false, "no: choose another file name")? {
                    Asked::Interrupted => return interrupted(),
                    Asked::Answered(true) => {
                        write_profile(&path, &text)?;
                        say!("\nProfile overwritten: {}", path.display());
                        break;
                    }
                    Asked::Answered(false) => {
                        let suggestion = path.with_extension("new.toml").display().to_string();
                        match prompts::text(
                            "Write the profile to which file instead?",
                            &suggestion,
                            "erase it all to write nothing",
                        )? {
                            Asked::Interrupted => return interrupted(),
                            Asked::Answered(other) if other.trim().is_empty() => {
                                say!("\nNo profile written.");
                                return Ok(ExitCode::SUCCESS);
                            }
                            Asked::Answered(other) => path = PathBuf::from(other.trim()),
                        }
                    }
                }
            }
        }
    }

    let question = format!("Run `rtsim simulate {}` now?", path.display());
    match prompts::confirm(
        &question,
        true,
        "simulates every transport in each of your scenarios",
    )? {
        Asked::Interrupted => return interrupted(),
        Asked::Answered(false) => {
            say!("Later: rtsim simulate {}", path.display());
        }
        Asked::Answered(true) => simulate_and_check(&path, &a, &rec)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `rtsim simulate <path>` as a child process, then holds its summary against the recommendation.
fn simulate_and_check(path: &Path, a: &Answers, rec: &Recommendation) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the rtsim executable")?;
    let status = std::process::Command::new(exe)
        .arg("simulate")
        .arg(path)
        .status()
        .context("cannot start `rtsim simulate`")?;
    if !status.success() {
        say!(
            "\n`rtsim simulate` did not finish ({status}), so the recommendation is unchecked. The profile \
             stays at {}.",
            path.display()
        );
        return Ok(());
    }
    let summary_path = Path::new("reports").join(&a.name).join("summary.json");
    let summary = std::fs::read_to_string(&summary_path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
    let Some(summary) = summary else {
        say!(
            "\nNo readable {} after the run, so the recommendation is unchecked.",
            summary_path.display()
        );
        return Ok(());
    };
    let mut lines = check::verdict_lines(rec.transport, &summary).into_iter();
    if let Some(first) = lines.next() {
        say!("\n{first}");
    }
    for line in lines {
        say!("  - {line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_tells_absent_same_and_different() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        assert_eq!(existing(&path, "x"), Existing::Absent);
        write_profile(&path, "x").unwrap();
        assert_eq!(existing(&path, "x"), Existing::Same);
        assert_eq!(existing(&path, "y"), Existing::Different);
    }

    #[test]
    fn no_terminal_message_explains_answers() {
        let m = no_terminal_message();
        assert!(m.contains("--answers answers.toml"));
        assert!(m.contains("latency_budget"));
    }
}
