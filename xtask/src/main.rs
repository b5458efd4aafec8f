//! Project automation, run as `cargo xtask <command>`:
//! - `codegen --input FILE [--out DIR] [--time]`: run the generator on any AsyncAPI document;
//! - `docs [--input FILE] [--out DIR] [--check]`: render the HTML docs of a contract;
//! - `ci`: everything CI runs (installs, format, lints, docs check, every test);
//! - `bench [--smoke] [--scenario NAME] [--out FILE]`: the benchmarks (docs/benchmarks.md).

mod bench;
mod ci;
mod codegen;
mod docs;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

  codegen --input FILE [--out DIR] [--time]   generate Rust from any AsyncAPI document
  docs [--input FILE] [--out DIR] [--check]   render the HTML docs (default: the v1 contract into docs/)
  ci                                          everything CI runs: format, clippy, docs check, all tests
  bench [--smoke] [--scenario NAME]           benchmarks of wfs and its baselines (docs/benchmarks.md)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("codegen") => codegen::run(rest),
        Some("docs") => docs::run(rest, &workspace_root()).map(|()| ExitCode::SUCCESS),
        Some("ci") => ci::run(rest, &workspace_root()),
        Some("bench") => bench::run(rest, &workspace_root()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root: xtask's manifest sits one level below it. `cargo run` says where that
/// manifest is now; the path compiled in is only a fallback, since a build cache shared by two
/// checkouts (`CARGO_TARGET_DIR`) may hold an xtask built in the other one, which cargo does
/// not rebuild for a move.
fn workspace_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}
