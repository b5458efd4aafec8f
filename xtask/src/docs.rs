//! `cargo xtask docs [--input FILE] [--out DIR] [--check]`: the HTML docs of the contract.
//!
//! Renders the contract (by default `asyncapi/v1-schema.yaml`) into `<out>/index.html` (by
//! default `docs/`, committed), with the same code as `asyncapi-rs docs FILE -o DIR [--check]`
//! ([`asyncapi_rs::docs`], [`asyncapi_rs::docs_check`]). With `--check` nothing is written: the
//! page is rendered in memory and compared with the committed one, and a stale or missing file
//! is an error that names it, so CI catches a contract change whose docs were not regenerated.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask docs [--input FILE] [--out DIR] [--check]

  --input FILE  the AsyncAPI document (default: asyncapi/v1-schema.yaml)
  --out DIR     where index.html goes (default: docs/)
  --check       render in memory and fail if DIR/index.html is missing or stale";

/// Runs `docs` with the arguments that follow it on the command line; the defaults are under
/// `root`, the repository (`main.rs` finds it where `cargo run` says, not where xtask was built).
pub fn run(args: &[String], root: &Path) -> anyhow::Result<()> {
    let mut input = root.join("asyncapi/v1-schema.yaml");
    let mut out = root.join("docs");
    let mut check = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--input" => input = PathBuf::from(args.next().context("--input needs a file")?),
            "--out" => out = PathBuf::from(args.next().context("--out needs a directory")?),
            "--check" => check = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let ui = asyncapi_rs::Ui::plain(false);
    let outcome = if check {
        asyncapi_rs::docs_check(&input, &out, "cargo xtask docs", &ui)?
    } else {
        asyncapi_rs::docs(&input, Some(&out), &ui)?
    };
    match outcome {
        asyncapi_rs::Outcome::Ok => Ok(()),
        // What is wrong was printed; `cargo xtask ci` needs an error to stop on.
        asyncapi_rs::Outcome::Problems if check => {
            bail!("the docs in {} are not fresh (see above)", out.display())
        }
        asyncapi_rs::Outcome::Problems => {
            bail!(
                "the docs of {} were not rendered (see above)",
                input.display()
            )
        }
    }
}
