//! asyncapi-rs: the wfs generator on its own, for any AsyncAPI document.
//!
//! `asyncapi-rs generate|docs|check|conform|mock FILE` (see [`Cli`]); `cargo xtask codegen|docs` call the same
//! functions ([`generate()`], [`docs()`]), so the repository's own tooling and the installed
//! binary cannot drift apart. Everything here is a thin layer over `wfs-codegen`: loading,
//! generating and rendering are its job; choosing what goes to stdout and stderr, files and
//! exit codes is this crate's.
//!
//! Exit codes: 0 when all went well, 1 when the document has problems (or `docs --check` finds
//! a stale page, or `conform` a violation), 2 when the command could not do its job (bad usage,
//! a file that cannot be read or written).

mod check;
#[cfg(feature = "conform")]
mod conform;
mod docs;
mod generate;
mod ui;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use wfs_codegen::{Contract, Diagnostic, Generator, Settings};

pub use check::check;
#[cfg(feature = "conform")]
pub use conform::{ConformArgs, MockArgs, conform, mock};
pub use docs::{docs, docs_check};
pub use generate::generate;
pub use ui::Ui;

/// How a command ended, when it could do its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No problem (warnings may have been printed).
    Ok,
    /// The document has problems, or a checked file is stale; each was printed.
    Problems,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> ExitCode {
        match outcome {
            Outcome::Ok => ExitCode::SUCCESS,
            Outcome::Problems => ExitCode::from(1),
        }
    }
}

const ABOUT: &str = "Rust code, HTML docs and checks from an AsyncAPI document (2.0 to 2.6, 3.0, 3.1; YAML or JSON)";

const EXAMPLES: &str = "\
Examples:
  asyncapi-rs check asyncapi.yaml                  every problem at once, exit 1 if any
  asyncapi-rs check asyncapi.yaml --format json    the same as JSON, for editors and CI
  asyncapi-rs generate asyncapi.yaml -o src/gen    writes src/gen/asyncapi.rs
  asyncapi-rs docs asyncapi.yaml -o docs           writes docs/index.html
  asyncapi-rs conform asyncapi.yaml --server ws://127.0.0.1:8000   a running server checked
  asyncapi-rs mock asyncapi.yaml --listen 127.0.0.1:9000           a server made from the document

Exit status: 0 ok, 1 the document has problems (conform: a violation), 2 bad usage or a file that
cannot be read or written.";

const GENERATE_EXAMPLES: &str = "\
Examples:
  asyncapi-rs generate asyncapi.yaml > contract.rs   the code on stdout
  asyncapi-rs generate asyncapi.yaml -o src/gen      writes src/gen/asyncapi.rs
  asyncapi-rs generate asyncapi.yaml -v -o /tmp      with progress and timing on stderr

Located errors and warnings go to stderr (file:line:column: message (at /json/pointer));
a document with errors exits 1 and writes nothing.";

const DOCS_EXAMPLES: &str = "\
Examples:
  asyncapi-rs docs asyncapi.yaml -o docs           writes docs/index.html (one self-contained page)
  asyncapi-rs docs asyncapi.yaml > api.html        the page on stdout
  asyncapi-rs docs asyncapi.yaml -o docs --check   exit 1 if docs/index.html is missing or stale";

const CHECK_EXAMPLES: &str = "\
Examples:
  asyncapi-rs check asyncapi.yaml                  errors and warnings, one located line each
  asyncapi-rs check asyncapi.yaml --format json    {\"file\", \"valid\", \"errors\": [...], \"warnings\": [...]}
  asyncapi-rs check asyncapi.yaml -q && echo ok    only the errors

The report goes to stdout. Each finding has file, line, column, pointer (JSON pointer),
message and severity. The Rust generator runs too (nothing is written), so what `generate`
would refuse is an error here. Exit 1 on any error; warnings alone exit 0.";

/// The command line of `asyncapi-rs`.
#[derive(Debug, Parser)]
#[command(name = "asyncapi-rs", version, about = ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    /// Only errors on stderr: no warnings, progress or "wrote ..." lines.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Progress and timing on stderr, even when it is not a terminal.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate the Rust code of a document: types, channel traits, routes, clients.
    #[command(after_help = GENERATE_EXAMPLES)]
    Generate {
        /// The AsyncAPI document (YAML or JSON); `$ref`s to other files are followed.
        file: PathBuf,
        /// Write DIR/<file stem>.rs (DIR is created) instead of printing the code.
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Render the HTML documentation of a document: one page, no external assets.
    #[command(after_help = DOCS_EXAMPLES)]
    Docs {
        /// The AsyncAPI document (YAML or JSON).
        file: PathBuf,
        /// Write DIR/index.html (DIR is created) instead of printing the page.
        #[arg(short, long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Write nothing: exit 1 if DIR/index.html is missing or differs from the page.
        #[arg(long, requires = "out")]
        check: bool,
    },
    /// Parse, resolve and validate a document, and run the generator on it; print every problem.
    #[command(after_help = CHECK_EXAMPLES)]
    Check {
        /// The AsyncAPI document (YAML or JSON).
        file: PathBuf,
        /// How the report is printed on stdout.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Check a running WebSocket server against a document: handshakes, examples and replies,
    /// every frame it sends, triggered sends, frames that break the contract. Exit 1 on any
    /// violation.
    #[cfg(feature = "conform")]
    Conform(ConformArgs),
    /// Serve a mock of a document over WebSocket, for client developers (until Ctrl-C).
    #[cfg(feature = "conform")]
    Mock(MockArgs),
}

/// The format of `check`'s report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One `error:` or `warning:` line per finding, then a summary line.
    Human,
    /// One JSON object (see `check --help`).
    Json,
}

/// Runs a parsed command line; errors that stop a command are printed here (exit 2).
pub fn run(cli: Cli) -> ExitCode {
    // clap's `conflicts_with` misses the pair when one is given before the subcommand and the
    // other after it (both are global), so the conflict is checked here too.
    if cli.quiet && cli.verbose {
        let error = Cli::command().error(
            clap::error::ErrorKind::ArgumentConflict,
            "the argument '--quiet' cannot be used with '--verbose'",
        );
        let _ = error.print();
        return ExitCode::from(2);
    }
    let ui = Ui::new(cli.quiet, cli.verbose);
    let result = match &cli.command {
        Command::Generate { file, out } => generate(file, out.as_deref(), &ui),
        Command::Docs {
            file,
            out: Some(out),
            check: true,
        } => {
            let fix = format!("asyncapi-rs docs {} -o {}", file.display(), out.display());
            docs_check(file, out, &fix, &ui)
        }
        Command::Docs { file, out, .. } => docs(file, out.as_deref(), &ui),
        Command::Check { file, format } => check(file, *format, &ui),
        #[cfg(feature = "conform")]
        Command::Conform(args) => conform(args, &ui),
        #[cfg(feature = "conform")]
        Command::Mock(args) => mock(args, &ui),
    };
    match result {
        Ok(outcome) => outcome.into(),
        Err(error) => {
            ui.error(format_args!("{error:#}"));
            ExitCode::from(2)
        }
    }
}

/// What loading a document found.
pub(crate) struct Loaded {
    /// The contract, when it has no errors.
    contract: Option<Contract>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    load_ms: f64,
}

/// Loads `input`, showing progress. A document with problems is `Ok` (the problems are in
/// [`Loaded::errors`]); only a file that cannot be read at all is an error.
pub(crate) fn load(input: &Path, ui: &Ui) -> anyhow::Result<Loaded> {
    ui.step(format_args!("loading {}… ", input.display()));
    let started = Instant::now();
    let (result, warnings) = Contract::load_with_warnings(input);
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(contract) => {
            ui.loaded(&contract);
            Ok(Loaded {
                contract: Some(contract),
                errors: Vec::new(),
                warnings,
                load_ms,
            })
        }
        // "cannot read FILE: why" already says it all; its source would repeat the why.
        Err(error) if error.diagnostics().is_empty() => Err(anyhow::anyhow!("{error}")),
        Err(error) => Ok(Loaded {
            contract: None,
            errors: error.diagnostics().to_vec(),
            warnings,
            load_ms,
        }),
    }
}

/// Runs the Rust generator on a loaded contract: the code, or every problem it found.
pub(crate) fn generate_code(
    input: &Path,
    contract: &Contract,
    ui: &Ui,
) -> anyhow::Result<Result<String, Vec<Diagnostic>>> {
    ui.step("generating… ");
    // The header names the document as given, so the output does not depend on the checkout.
    let settings = Settings::default().with_source_name(input.display().to_string());
    match Generator::new(settings).generate(contract) {
        Ok(code) => Ok(Ok(code)),
        Err(error) if error.diagnostics().is_empty() => Err(anyhow::anyhow!(
            "generating the code of {}: {error}",
            input.display()
        )),
        Err(error) => Ok(Err(error.diagnostics().to_vec())),
    }
}

/// Creates `dir` (and its parents) and writes `name` in it, naming what failed.
pub(crate) fn write_into(dir: &Path, name: &str, contents: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
