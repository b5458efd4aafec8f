//! Project automation, run as `cargo xtask <command>`:
//! - `codegen --input FILE [--out DIR]`: run the generator on any AsyncAPI document;
//! - `docs [--input FILE] [--out DIR] [--check]`: render the HTML docs;
//! - `ci`: everything CI runs (format, lints, every test, contract and docs checks).

mod codegen;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("codegen") => codegen::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <codegen|docs|ci> [options]\n\n  codegen --input FILE [--out DIR]   generate Rust from an AsyncAPI document"
            );
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
