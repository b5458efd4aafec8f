//! [`build`]: the whole `build.rs` of a crate that serves or calls an AsyncAPI contract.
//!
//! Every crate built on the generator needs the same build script: load the document, ask cargo
//! to re-run when any of its files changes, pass warnings on, generate, write
//! `$OUT_DIR/contract.rs`, and turn each problem into a located build error. Written once here,
//! a user's `build.rs` is one call, and this repository's server and example use the same one.

use std::path::{Path, PathBuf};

use crate::{Contract, Error, Generator, Settings};

/// The file, in `OUT_DIR`, that [`build`] writes and `include!` reads.
pub const OUTPUT_FILE: &str = "contract.rs";

/// Generates the Rust code of the contract at `path` (relative to the crate's manifest, as cargo
/// runs build scripts there) into `$OUT_DIR/contract.rs`, speaking to cargo on stdout:
/// - `cargo::rerun-if-changed` for the document and every file it references;
/// - `cargo::warning=file:line:column: ...` for each warning (the build goes on);
/// - `cargo::error=file:line:column: ...` for each problem, all at once (the build stops):
///   a broken contract is a list of located errors, never a panic or a backtrace.
///
/// The whole body of a `build.rs`'s `fn main`:
///
/// ```no_run
/// wfs_codegen::build("asyncapi.yaml");
/// ```
pub fn build(path: &str) {
    println!("cargo::rerun-if-changed={path}");
    for line in directives(path, std::env::var_os("OUT_DIR").map(PathBuf::from)) {
        println!("{line}");
    }
}

/// What [`build`] prints after the first `rerun-if-changed`, one cargo directive a line; the
/// code is written to `out_dir` when there is one and the contract generates.
fn directives(path: &str, out_dir: Option<PathBuf>) -> Vec<String> {
    let mut lines = Vec::new();
    let contract = match Contract::load(path) {
        Ok(contract) => contract,
        Err(error) => return errors(&error),
    };
    // Every file the contract references, so editing a shared file regenerates too.
    for file in &contract.files {
        lines.push(format!("cargo::rerun-if-changed={}", file.display()));
    }
    for warning in &contract.warnings {
        lines.push(format!("cargo::warning={warning}"));
    }
    let settings = Settings::default().with_source_name(path);
    let code = match Generator::new(settings).generate(&contract) {
        Ok(code) => code,
        Err(error) => {
            lines.extend(errors(&error));
            return lines;
        }
    };
    let Some(out_dir) = out_dir else {
        lines.push(
            "cargo::error=OUT_DIR is not set: call wfs_codegen::build from a build script"
                .to_owned(),
        );
        return lines;
    };
    let out = Path::new(&out_dir).join(OUTPUT_FILE);
    if let Err(error) = std::fs::write(&out, code) {
        lines.push(format!(
            "cargo::error=cannot write {}: {error}",
            out.display()
        ));
    }
    lines
}

/// One `cargo::error=` line per located problem (or the error itself when it has none).
fn errors(error: &Error) -> Vec<String> {
    match error.diagnostics() {
        [] => vec![format!("cargo::error={error}")],
        problems => problems
            .iter()
            .map(|problem| format!("cargo::error={problem}"))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn a_good_contract_is_written_to_out_dir_with_its_files_watched() {
        let out = std::env::temp_dir().join(format!("wfs-build-script-{}", std::process::id()));
        std::fs::create_dir_all(&out).expect("a temporary folder");
        let lines = directives(&fixture("generate/reply.yaml"), Some(out.clone()));
        assert!(
            lines
                .iter()
                .all(|line| line.starts_with("cargo::rerun-if-changed=")),
            "{lines:?}"
        );
        let code = std::fs::read_to_string(out.join(OUTPUT_FILE)).expect("contract.rs written");
        assert!(code.contains("pub trait RpcChannel"), "{code}");
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn every_problem_of_a_broken_contract_is_a_located_cargo_error() {
        let lines = directives(&fixture("broken/several-problems.yaml"), None);
        let errors: Vec<&String> = lines
            .iter()
            .filter(|line| line.starts_with("cargo::error="))
            .collect();
        assert!(errors.len() > 1, "{lines:?}");
        for error in errors {
            assert!(
                error.contains("several-problems.yaml:"),
                "not located: {error}"
            );
        }
    }

    #[test]
    fn warnings_are_cargo_warnings_and_the_build_goes_on() {
        let out = std::env::temp_dir().join(format!("wfs-build-warn-{}", std::process::id()));
        std::fs::create_dir_all(&out).expect("a temporary folder");
        let lines = directives(
            &fixture("generate/unused-parameter.yaml"),
            Some(out.clone()),
        );
        assert!(
            lines.iter().any(|line| line.starts_with("cargo::warning=")),
            "{lines:?}"
        );
        assert!(
            !lines.iter().any(|line| line.starts_with("cargo::error=")),
            "{lines:?}"
        );
        assert!(out.join(OUTPUT_FILE).exists());
        let _ = std::fs::remove_dir_all(&out);
    }
}
