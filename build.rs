//! Generates the contract's Rust code (`$OUT_DIR/contract.rs`) from `asyncapi/v1-schema.yaml`.
//!
//! A broken contract stops the build with one `cargo::error=` line per problem, each naming
//! the file, line and column; no panic, no backtrace. What only deserves attention (a
//! parameter the address does not use) is a `cargo::warning=` line, located the same way.

use std::path::Path;

const CONTRACT: &str = "asyncapi/v1-schema.yaml";

fn main() {
    println!("cargo::rerun-if-changed={CONTRACT}");
    let settings = wfs_codegen::Settings::default().with_source_name(CONTRACT);
    let generator = wfs_codegen::Generator::new(settings);
    let contract = match wfs_codegen::Contract::load(CONTRACT) {
        Ok(contract) => contract,
        Err(error) => return report(&error),
    };
    // Every file the contract references, so editing a shared file regenerates too.
    for file in &contract.files {
        println!("cargo::rerun-if-changed={}", file.display());
    }
    // Warnings do not stop the build; each names its file, line and column like an error.
    for warning in &contract.warnings {
        println!("cargo::warning={warning}");
    }
    match generator.generate(&contract) {
        Ok(code) => {
            let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("contract.rs");
            if let Err(error) = std::fs::write(&out, code) {
                println!("cargo::error=cannot write {}: {error}", out.display());
            }
        }
        Err(error) => report(&error),
    }
}

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
