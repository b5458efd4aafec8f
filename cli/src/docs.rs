//! `docs FILE [-o DIR] [--check]` (and `cargo xtask docs`): the HTML page of a document.
//!
//! The page is `DIR/index.html`, written only when it changed (so its timestamp means
//! something), or stdout. With `--check` nothing is written: the page is rendered in memory and
//! compared with the file, so CI catches a contract change whose docs were not regenerated.

use std::path::Path;

use anyhow::Context;

use crate::{Outcome, Ui, load, write_into};

/// Renders the page of `input` into `out/index.html` (or stdout).
pub fn docs(input: &Path, out: Option<&Path>, ui: &Ui) -> anyhow::Result<Outcome> {
    let Some(html) = render(input, ui)? else {
        return Ok(Outcome::Problems);
    };
    let Some(dir) = out else {
        print!("{html}");
        return Ok(Outcome::Ok);
    };
    let target = dir.join("index.html");
    if std::fs::read(&target).is_ok_and(|current| current == html.as_bytes()) {
        if !ui.quiet() {
            println!("{} is up to date", target.display());
        }
    } else {
        let path = write_into(dir, "index.html", &html)?;
        if !ui.quiet() {
            println!("wrote {} ({} bytes)", path.display(), html.len());
        }
    }
    Ok(Outcome::Ok)
}

/// Renders the page of `input` in memory and compares it with `out/index.html`: a missing or
/// stale file is [`Outcome::Problems`], with an error naming it and `fix`, the command that
/// renders it again.
pub fn docs_check(input: &Path, out: &Path, fix: &str, ui: &Ui) -> anyhow::Result<Outcome> {
    let Some(html) = render(input, ui)? else {
        return Ok(Outcome::Problems);
    };
    let target = out.join("index.html");
    match std::fs::read(&target) {
        Ok(current) if current == html.as_bytes() => {
            if !ui.quiet() {
                println!("{} is up to date", target.display());
            }
            Ok(Outcome::Ok)
        }
        Ok(_) => {
            ui.error(format_args!(
                "{} is stale: it does not match {}; run `{fix}` and commit the result",
                target.display(),
                input.display()
            ));
            Ok(Outcome::Problems)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            ui.error(format_args!(
                "{} is missing; run `{fix}` and commit the result",
                target.display()
            ));
            Ok(Outcome::Problems)
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", target.display())),
    }
}

/// The page, or `None` when the document has errors (printed, with its warnings).
fn render(input: &Path, ui: &Ui) -> anyhow::Result<Option<String>> {
    let loaded = load(input, ui)?;
    let Some(contract) = &loaded.contract else {
        loaded.errors.iter().for_each(|error| ui.error(error));
        loaded
            .warnings
            .iter()
            .for_each(|warning| ui.warning(warning));
        return Ok(None);
    };
    ui.step("rendering… ");
    let html = wfs_codegen::docs::render(contract)
        .with_context(|| format!("rendering the docs of {}", input.display()))?;
    ui.done();
    loaded
        .warnings
        .iter()
        .for_each(|warning| ui.warning(warning));
    Ok(Some(html))
}
