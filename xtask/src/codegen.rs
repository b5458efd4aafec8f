//! `cargo xtask codegen --input FILE [--out DIR] [--time]`: the generator on any AsyncAPI
//! document; `--time` prints how long loading and generating took (use a release build).
//!
//! Writes the generated Rust to `DIR/<file stem>.rs` (or prints it when no `--out` is given);
//! a broken document prints one located error per problem and exits 1. Warnings (located the
//! same way) are printed on stderr and do not change the exit status.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

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
    let settings = wfs_codegen::Settings::default().with_source_name(input.display().to_string());
    let started = Instant::now();
    let generated = wfs_codegen::Contract::load(&input).and_then(|contract| {
        let loaded = started.elapsed();
        let code = wfs_codegen::Generator::new(settings).generate(&contract)?;
        if time {
            // Printed, not asserted: build a release xtask to measure what build.rs costs.
            let lines = std::fs::read_to_string(&input)
                .map(|text| text.lines().count())
                .unwrap_or(0);
            eprintln!(
                "timing: {} ({lines} lines): load {:.1} ms, generate {:.1} ms, total {:.1} ms",
                input.display(),
                loaded.as_secs_f64() * 1000.0,
                (started.elapsed() - loaded).as_secs_f64() * 1000.0,
                started.elapsed().as_secs_f64() * 1000.0,
            );
        }
        Ok((contract, code))
    });
    match generated {
        Ok((contract, code)) => {
            // Warnings go to stderr, apart from the code (which may be printed to stdout).
            for warning in &contract.warnings {
                eprintln!("warning: {warning}");
            }
            match out {
                Some(dir) => {
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    let stem = input
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "contract".to_owned());
                    let path = dir.join(format!("{stem}.rs"));
                    std::fs::write(&path, code)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!("wrote {}", path.display());
                }
                None => print!("{code}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            match error.diagnostics() {
                [] => eprintln!("error: {error}"),
                problems => {
                    for problem in problems {
                        eprintln!("error: {problem}");
                    }
                }
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
