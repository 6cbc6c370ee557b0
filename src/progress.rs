//! The progress bar shown on stderr while `simulate` runs: one overall bar over every run's simulated
//! time, naming the run under way. Nothing is drawn when stderr is not a terminal or with `--quiet`, and
//! no colour is used when `NO_COLOR` is set.
//!
//! A thin layer over indicatif; it decides nothing about the simulation and never writes to stdout.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether output may use colour: `NO_COLOR` set to anything but the empty string forbids it
/// (<https://no-color.org>). Takes the variable's value so it can be tested without the environment.
pub fn colour_allowed(no_color: Option<&std::ffi::OsStr>) -> bool {
    no_color.is_none_or(|v| v.is_empty())
}

/// The bar's indicatif template, with or without colour.
pub fn template(colour: bool) -> &'static str {
    if colour {
        "{msg:.bold} [{bar:32.cyan/blue}] {percent:>3}% · {elapsed} elapsed, ~{eta} left"
    } else {
        "{msg} [{bar:32}] {percent:>3}% · {elapsed} elapsed, ~{eta} left"
    }
}

/// Progress over all runs of a plan (several may be under way at once, on several threads). Dropping
/// it clears the bar.
pub struct Progress {
    bar: ProgressBar,
    /// Each run's name ("mobile × sse").
    runs: Vec<String>,
    run_ms: u64,
    /// Simulated milliseconds each run has reached.
    reached: Vec<u64>,
    done_ms: u64,
    current: Option<usize>,
}

impl Progress {
    /// A bar over `runs` runs of `duration` simulated time each; drawn only if `visible`.
    pub fn new(visible: bool, colour: bool, runs: Vec<String>, duration: Duration) -> Self {
        let run_ms = duration.as_millis().max(1) as u64;
        let total = run_ms * runs.len() as u64;
        let bar = if visible {
            let style = ProgressStyle::with_template(template(colour))
                .expect("the progress template is valid")
                .progress_chars("=> ");
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(style)
        } else {
            ProgressBar::hidden()
        };
        Self {
            bar,
            reached: vec![0; runs.len()],
            runs,
            run_ms,
            done_ms: 0,
            current: None,
        }
    }

    /// Run `index` (of the plan's runs) has reached simulated time `at`.
    pub fn update(&mut self, index: usize, at: Duration) {
        let at_ms = (at.as_millis() as u64).min(self.run_ms);
        let Some(reached) = self.reached.get_mut(index) else {
            return;
        };
        // The simulation reports every simulated second; redraw at most every tenth of one.
        if at_ms < *reached + 100 && self.current == Some(index) {
            return;
        }
        self.done_ms += at_ms.saturating_sub(*reached);
        *reached = at_ms.max(*reached);
        if self.current != Some(index) {
            self.current = Some(index);
            let name = self.runs.get(index).map_or("", String::as_str);
            self.bar
                .set_message(format!("[{}/{}] {name}", index + 1, self.runs.len()));
        }
        self.bar.set_position(self.done_ms);
    }

    /// Simulated milliseconds done over all runs (what the bar shows).
    pub fn position(&self) -> u64 {
        self.done_ms
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn no_color_turns_colour_off_unless_empty() {
        assert!(colour_allowed(None));
        assert!(colour_allowed(Some(OsStr::new(""))));
        assert!(!colour_allowed(Some(OsStr::new("1"))));
        assert!(
            !template(false).contains('.'),
            "no style directives without colour"
        );
        assert!(ProgressStyle::with_template(template(true)).is_ok());
        assert!(ProgressStyle::with_template(template(false)).is_ok());
    }

    #[test]
    fn a_hidden_bar_still_follows_runs_in_parallel() {
        let mut p = Progress::new(
            false,
            false,
            vec!["a × sse".into(), "b × sse".into()],
            Duration::from_secs(10),
        );
        p.update(0, Duration::from_secs(5));
        assert_eq!(p.bar.position(), 5_000);
        p.update(0, Duration::from_millis(5_050));
        assert_eq!(
            p.bar.position(),
            5_000,
            "updates closer than 100 ms are skipped"
        );
        // Runs proceed side by side on several threads: the bar adds up what each has done.
        p.update(1, Duration::from_secs(1));
        assert_eq!(p.bar.position(), 6_000);
        p.update(0, Duration::from_secs(10));
        assert_eq!(p.position(), 11_000);
    }
}
