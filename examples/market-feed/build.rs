//! Generates this crate's contract code (`$OUT_DIR/contract.rs`) from `asyncapi.yaml`, as any
//! crate using wfs-codegen would: load, print warnings, generate, write; every problem of a
//! broken document is one `cargo::error=file:line:column: ...` line, never a panic.

use std::path::Path;

const CONTRACT: &str = "asyncapi.yaml";

fn main() {
    println!("cargo::rerun-if-changed={CONTRACT}");
    let contract = match wfs_codegen::Contract::load(CONTRACT) {
        Ok(contract) => contract,
        Err(error) => return report(&error),
    };
    for file in &contract.files {
        println!("cargo::rerun-if-changed={}", file.display());
    }
    for warning in &contract.warnings {
        println!("cargo::warning={warning}");
    }
    let settings = wfs_codegen::Settings::default().with_source_name(CONTRACT);
    match wfs_codegen::Generator::new(settings).generate(&contract) {
        Ok(code) => {
            let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("contract.rs");
            if let Err(error) = std::fs::write(&out, code) {
                println!("cargo::error=cannot write {}: {error}", out.display());
            }
        }
        Err(error) => report(&error),
    }
}

/// One `cargo::error=` line per located problem (or the error itself when it has none).
fn report(error: &wfs_codegen::Error) {
    match error.diagnostics() {
        [] => println!("cargo::error={error}"),
        problems => {
            for problem in problems {
                println!("cargo::error={problem}");
            }
        }
    }
}
