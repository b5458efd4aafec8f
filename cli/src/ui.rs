//! What the commands tell the person running them on stderr: progress, warnings, errors, timing.
//!
//! stdout is kept for what a command produces (generated code, HTML, the `check` report, the
//! JSON a CI job parses), so everything else goes through [`Ui`] to stderr. Progress is shown
//! only when someone is likely to be watching (stderr is a terminal) or asked for it (`-v`),
//! and never with `-q`; errors are always shown.

use std::cell::Cell;
use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::time::Instant;

use wfs_codegen::{Contract, Diagnostic};

/// How much a command says on stderr, and where its progress line stands.
#[derive(Debug)]
pub struct Ui {
    quiet: bool,
    progress: bool,
    timing: bool,
    /// A progress line was started and not ended yet: the next message ends it first.
    line_open: Cell<bool>,
    started: Instant,
}

impl Ui {
    /// The command line's choice: `-q` only errors; `-v` progress and timing; neither, progress
    /// when stderr is a terminal.
    pub fn new(quiet: bool, verbose: bool) -> Ui {
        let progress = !quiet && (verbose || std::io::stderr().is_terminal());
        Ui::with(quiet, progress, verbose && !quiet)
    }

    /// `cargo xtask`'s choice: no progress line; `timing` prints the load and generate times.
    pub fn plain(timing: bool) -> Ui {
        Ui::with(false, false, timing)
    }

    fn with(quiet: bool, progress: bool, timing: bool) -> Ui {
        Ui {
            quiet,
            progress,
            timing,
            line_open: Cell::new(false),
            started: Instant::now(),
        }
    }

    /// Whether `-q` was given: commands leave out their "wrote ..." and summary lines.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Continues the progress line (started by the first call, ended by [`Ui::done`]).
    pub(crate) fn step(&self, text: impl Display) {
        if self.progress {
            let mut stderr = std::io::stderr().lock();
            // A lost progress line is not worth failing a command for.
            let _ = write!(stderr, "{text}");
            let _ = stderr.flush();
            self.line_open.set(true);
        }
    }

    /// What was loaded, on the progress line: a big document shows it is being worked on.
    pub(crate) fn loaded(&self, contract: &Contract) {
        self.step(format_args!(
            "{} file(s), {} channel(s), {} operation(s), {} message(s); ",
            contract.files.len(),
            contract.channels.len(),
            contract.operations.len(),
            contract.messages.len(),
        ));
    }

    /// Ends the progress line with the time since the command started.
    pub(crate) fn done(&self) {
        if self.progress {
            self.step(format_args!(
                "done in {:.0} ms\n",
                self.started.elapsed().as_secs_f64() * 1000.0
            ));
            self.line_open.set(false);
        }
    }

    /// Ends an open progress line, so the next message starts on its own line.
    fn end_line(&self) {
        if self.line_open.replace(false) {
            eprintln!();
        }
    }

    /// A warning (left out with `-q`).
    pub(crate) fn warning(&self, warning: &Diagnostic) {
        if !self.quiet {
            self.end_line();
            eprintln!("warning: {warning}");
        }
    }

    /// An error: always shown.
    pub(crate) fn error(&self, error: impl Display) {
        self.end_line();
        eprintln!("error: {error}");
    }

    /// The timing line of `-v` and `cargo xtask codegen --time` (printed, never asserted: use a
    /// release build to measure what build.rs costs).
    pub(crate) fn timing(&self, input: &std::path::Path, load_ms: f64, generate_ms: f64) {
        if self.timing {
            self.end_line();
            let lines = std::fs::read_to_string(input)
                .map(|text| text.lines().count())
                .unwrap_or(0);
            eprintln!(
                "timing: {} ({lines} lines): load {load_ms:.1} ms, generate {generate_ms:.1} ms, total {:.1} ms",
                input.display(),
                load_ms + generate_ms,
            );
        }
    }
}
