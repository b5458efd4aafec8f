//! `cargo xtask codegen --input FILE [--out DIR] [--time]`: the generator on any AsyncAPI
//! document; `--time` prints how long loading and generating took (use a release build).
//!
//! The same code as `asyncapi-rs generate FILE [-o DIR]` ([`asyncapi_rs::generate`]): writes
//! the generated Rust to `DIR/<file stem>.rs` (or prints it when no `--out` is given); a broken
//! document prints one located error per problem and exits 1. Warnings (located the same way)
//! are printed on stderr and do not change the exit status.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let mut input = None;
    let mut out = None;
    let mut time = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--input" => input = Some(PathBuf::from(args.next().context("--input needs a file")?)),
            "--out" => {
                out = Some(PathBuf::from(
                    args.next().context("--out needs a directory")?,
                ))
            }
            "--time" => time = true,
            other => {
                bail!("unknown argument `{other}` (expected --input FILE [--out DIR] [--time])")
            }
        }
    }
    let input = input.context("--input FILE is required")?;
    let ui = asyncapi_rs::Ui::plain(time);
    Ok(asyncapi_rs::generate(&input, out.as_deref(), &ui)?.into())
}
