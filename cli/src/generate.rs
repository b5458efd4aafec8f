//! `generate FILE [-o DIR]` (and `cargo xtask codegen`): the Rust code of a document.
//!
//! The code goes to stdout, or to `DIR/<file stem>.rs` with a "wrote ..." line on stdout.
//! Errors and warnings go to stderr, so that printing the code to a file stays clean; a
//! document with errors writes nothing and ends with [`Outcome::Problems`].

use std::path::Path;
use std::time::Instant;

use crate::{Outcome, Ui, generate_code, load, write_into};

/// Generates the Rust code of `input` into `out` (or stdout).
pub fn generate(input: &Path, out: Option<&Path>, ui: &Ui) -> anyhow::Result<Outcome> {
    let loaded = load(input, ui)?;
    let Some(contract) = &loaded.contract else {
        loaded.errors.iter().for_each(|error| ui.error(error));
        loaded
            .warnings
            .iter()
            .for_each(|warning| ui.warning(warning));
        return Ok(Outcome::Problems);
    };
    let started = Instant::now();
    let generated = generate_code(input, contract, ui)?;
    let generate_ms = started.elapsed().as_secs_f64() * 1000.0;
    let code = match generated {
        Ok(code) => code,
        Err(errors) => {
            errors.iter().for_each(|error| ui.error(error));
            loaded
                .warnings
                .iter()
                .for_each(|warning| ui.warning(warning));
            return Ok(Outcome::Problems);
        }
    };
    ui.done();
    ui.timing(input, loaded.load_ms, generate_ms);
    loaded
        .warnings
        .iter()
        .for_each(|warning| ui.warning(warning));
    match out {
        Some(dir) => {
            let stem = input
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_else(|| "contract".to_owned());
            let path = write_into(dir, &format!("{stem}.rs"), &code)?;
            if !ui.quiet() {
                println!("wrote {}", path.display());
            }
        }
        None => print!("{code}"),
    }
    Ok(Outcome::Ok)
}
