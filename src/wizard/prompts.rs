//! The interactive layer: inquire prompts for the questions in [`QUESTIONS`], and nothing more.
//!
//! Every question shows its help text and the current answer as the default; Esc goes back to the
//! previous question, and a final review menu lets the user change any answer before accepting. Input is
//! checked with [`Answers::set`], the same parser an answers file goes through. This module holds no
//! decision logic and writes no files; it returns answers and yes/no choices.

use inquire::error::InquireError;
use inquire::ui::RenderConfig;
use inquire::validator::Validation;
use inquire::{Confirm, Select, Text};

use super::answers::{Answers, Kind, Question, QUESTIONS};

/// What became of a prompt session.
pub enum Asked<T> {
    /// The user answered.
    Answered(T),
    /// The user pressed Ctrl-C.
    Interrupted,
}

/// Colours for the prompts; none when `color` is false (`NO_COLOR`).
pub fn configure(color: bool) {
    let config = if color {
        RenderConfig::default_colored()
    } else {
        RenderConfig::empty()
    };
    inquire::set_global_render_config(config);
}

/// One question; `Ok(None)` when the user pressed Esc (go back).
fn ask(q: &Question, a: &Answers, back_hint: &str) -> Result<Option<String>, InquireError> {
    let help = format!("{}{back_hint}", q.help);
    let current = a.get(q.key);
    let result = match q.kind {
        Kind::YesNo => Confirm::new(q.prompt)
            .with_default(current == "yes")
            .with_help_message(&help)
            .prompt()
            .map(|yes| {
                if yes {
                    "yes".to_string()
                } else {
                    "no".to_string()
                }
            }),
        Kind::Choice(options) => {
            let start = options.iter().position(|o| *o == current).unwrap_or(0);
            Select::new(q.prompt, options.to_vec())
                .with_starting_cursor(start)
                .with_help_message(&help)
                .without_filtering()
                .prompt()
                .map(str::to_string)
        }
        Kind::Text => {
            let key = q.key;
            let probe = a.clone();
            Text::new(q.prompt)
                .with_default(&current)
                .with_help_message(&help)
                .with_validator(move |input: &str| {
                    let mut trial = probe.clone();
                    Ok(match trial.set(key, input) {
                        Ok(()) => Validation::Valid,
                        Err(message) => Validation::Invalid(message.into()),
                    })
                })
                .prompt()
        }
    };
    match result {
        Ok(text) => Ok(Some(text)),
        Err(InquireError::OperationCanceled) => Ok(None),
        Err(e) => Err(e),
    }
}

fn store(a: &mut Answers, q: &Question, text: &str) -> Result<(), InquireError> {
    // The validators above already accepted the text; a refusal here would be a bug, reported as such.
    a.set(q.key, text)
        .map_err(|m| InquireError::InvalidConfiguration(format!("{}: {m}", q.key)))
}

/// Asks every relevant question in order, Esc going back one, then the review menu.
pub fn ask_all(mut a: Answers) -> Result<Asked<Answers>, InquireError> {
    let mut i = 0;
    while i < QUESTIONS.len() {
        let q = &QUESTIONS[i];
        if !(q.relevant)(&a) {
            i += 1;
            continue;
        }
        let hint = if i == 0 {
            ""
        } else {
            " · Esc: previous question"
        };
        match ask(q, &a, hint) {
            Ok(Some(text)) => {
                store(&mut a, q, &text)?;
                i += 1;
            }
            Ok(None) => {
                // Back to the previous question that is relevant now.
                i = (0..i)
                    .rev()
                    .find(|&j| (QUESTIONS[j].relevant)(&a))
                    .unwrap_or(0);
            }
            Err(InquireError::OperationInterrupted) => return Ok(Asked::Interrupted),
            Err(e) => return Err(e),
        }
    }
    review(a)
}

const ACCEPT: &str = "Accept these answers";

/// The review menu: accept, or pick an answer to change.
fn review(mut a: Answers) -> Result<Asked<Answers>, InquireError> {
    loop {
        let relevant: Vec<&Question> = QUESTIONS.iter().filter(|q| (q.relevant)(&a)).collect();
        let mut options = vec![ACCEPT.to_string()];
        options.extend(
            relevant
                .iter()
                .map(|q| format!("Change {} = {}", q.key, a.get(q.key))),
        );
        let choice = Select::new("Review your answers:", options)
            .with_help_message("↑↓ to move, Enter to choose")
            .without_filtering()
            .with_page_size(QUESTIONS.len() + 1)
            .raw_prompt();
        let index = match choice {
            Ok(option) => option.index,
            Err(InquireError::OperationCanceled) => continue,
            Err(InquireError::OperationInterrupted) => return Ok(Asked::Interrupted),
            Err(e) => return Err(e),
        };
        if index == 0 {
            return Ok(Asked::Answered(a));
        }
        let q = relevant[index - 1];
        match ask(q, &a, " · Esc: back to the review") {
            Ok(Some(text)) => store(&mut a, q, &text)?,
            Ok(None) => {}
            Err(InquireError::OperationInterrupted) => return Ok(Asked::Interrupted),
            Err(e) => return Err(e),
        }
    }
}

/// A yes/no question outside the answers (overwrite? run now?).
pub fn confirm(message: &str, default: bool, help: &str) -> Result<Asked<bool>, InquireError> {
    match Confirm::new(message)
        .with_default(default)
        .with_help_message(help)
        .prompt()
    {
        Ok(yes) => Ok(Asked::Answered(yes)),
        Err(InquireError::OperationCanceled) => Ok(Asked::Answered(false)),
        Err(InquireError::OperationInterrupted) => Ok(Asked::Interrupted),
        Err(e) => Err(e),
    }
}

/// Free text starting from `initial` (editable); erasing it all gives an empty string.
pub fn text(message: &str, initial: &str, help: &str) -> Result<Asked<String>, InquireError> {
    match Text::new(message)
        .with_initial_value(initial)
        .with_help_message(help)
        .prompt()
    {
        Ok(text) => Ok(Asked::Answered(text)),
        Err(InquireError::OperationCanceled) => Ok(Asked::Answered(String::new())),
        Err(InquireError::OperationInterrupted) => Ok(Asked::Interrupted),
        Err(e) => Err(e),
    }
}
