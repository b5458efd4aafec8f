//! `check FILE [--format json]`: every problem of a document at once, as `asyncapi validate` does.
//!
//! The document is loaded (parsed, `$ref`s resolved, validated) and, when that succeeds, the
//! Rust generator runs on it too, writing nothing: what `generate` would refuse is an error here
//! as well. The report is the command's output, so it goes to stdout; progress stays on stderr.

use std::path::Path;

use serde_json::{Value, json};
use wfs_codegen::Diagnostic;

use crate::{Format, Outcome, Ui, generate_code, load};

/// Checks `input` and prints the report in `format`.
pub fn check(input: &Path, format: Format, ui: &Ui) -> anyhow::Result<Outcome> {
    let loaded = load(input, ui)?;
    let mut errors = loaded.errors;
    if let Some(contract) = &loaded.contract
        && let Err(found) = generate_code(input, contract, ui)?
    {
        errors = found;
    }
    ui.done();
    let warnings = loaded.warnings;
    match format {
        Format::Json => println!("{:#}", report(input, &errors, &warnings)),
        Format::Human => {
            for error in &errors {
                println!("error: {error}");
            }
            if !ui.quiet() {
                for warning in &warnings {
                    println!("warning: {warning}");
                }
                let verdict = if errors.is_empty() {
                    "valid"
                } else {
                    "invalid"
                };
                println!(
                    "{}: {verdict}: {} error(s), {} warning(s)",
                    input.display(),
                    errors.len(),
                    warnings.len()
                );
            }
        }
    }
    Ok(if errors.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// The JSON report: `{file, valid, errors: [finding], warnings: [finding]}`.
fn report(input: &Path, errors: &[Diagnostic], warnings: &[Diagnostic]) -> Value {
    json!({
        "file": input.display().to_string(),
        "valid": errors.is_empty(),
        "errors": errors.iter().map(|error| finding(error, "error")).collect::<Vec<_>>(),
        "warnings": warnings.iter().map(|warning| finding(warning, "warning")).collect::<Vec<_>>(),
    })
}

/// One finding: where it is (file, 1-based line and column, JSON pointer), what, how serious.
fn finding(diagnostic: &Diagnostic, severity: &str) -> Value {
    json!({
        "file": diagnostic.file.display().to_string(),
        "line": diagnostic.line,
        "column": diagnostic.column,
        "pointer": diagnostic.pointer,
        "message": diagnostic.message,
        "severity": severity,
    })
}
