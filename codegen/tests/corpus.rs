//! The generator on AsyncAPI documents we did not write (`../shared/asyncapi-corpus`), and on
//! our own fixtures (`tests/fixtures/generate`), whose generated code must compile too.
//!
//! Every document must either generate Rust that compiles with no warning, rustc's or clippy's
//! (default lints), or be refused with errors that are all located `unsupported: ...`; anything
//! else (a panic, an unlocated error, another error, code that does not compile or warns) fails.
//! All generated files go into one throwaway crate under `target/` that is `cargo clippy`ed
//! once, which is much faster than a crate per document. That crate depends on `wfs-runtime`
//! alone, as a user's crate may: the generated code must not need serde, serde_json, uuid,
//! chrono or regress as direct dependencies.

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/asyncapi-corpus")
}

fn corpus_documents() -> Vec<PathBuf> {
    let mut documents = Vec::new();
    for version in ["2.6.0", "3.0.0"] {
        let Ok(entries) = std::fs::read_dir(corpus_dir().join(version)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml" | "json")
            ) {
                documents.push(path);
            }
        }
    }
    documents.sort();
    documents
}

fn fixture_documents() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generate");
    let mut documents: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures folder")
        .flatten()
        .map(|entry| entry.path())
        // A multi-file fixture is a folder whose root document is `main.yaml`.
        .map(|path| {
            if path.is_dir() {
                path.join("main.yaml")
            } else {
                path
            }
        })
        .filter(|path| path.extension().is_some_and(|e| e == "yaml" || e == "json"))
        .filter(|path| path.is_file())
        .collect();
    documents.sort();
    documents
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_corpus_document_and_fixture_generates_code_that_compiles() {
    let corpus = corpus_documents();
    if corpus.is_empty() {
        println!(
            "no corpus at {}; only the fixtures are checked",
            corpus_dir().display()
        );
    }
    let corpus_count = corpus.len();
    let documents: Vec<PathBuf> = corpus.into_iter().chain(fixture_documents()).collect();
    // Under cargo's temporary folder for tests, so a build cache outside the clone
    // (CARGO_TARGET_DIR) keeps this crate's compiled dependencies too.
    let crate_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corpus-check");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();

    let mut modules =
        String::from("//! Code generated from every corpus document, checked together.\n\n");
    let mut generated = 0;
    let mut unsupported = Vec::new();
    for document in &documents {
        let version = document
            .parent()
            .and_then(Path::file_name)
            .unwrap()
            .to_string_lossy();
        let stem = document.file_stem().unwrap().to_string_lossy();
        let module = format!("v{version}_{stem}").replace(['.', '-'], "_");
        let settings =
            wfs_codegen::Settings::default().with_source_name(format!("{version}/{stem}"));
        match wfs_codegen::Generator::new(settings).generate_file(document) {
            Ok((_, code)) => {
                if documents
                    .iter()
                    .position(|d| d == document)
                    .is_some_and(|index| index < corpus_count)
                {
                    generated += 1;
                }
                std::fs::write(crate_dir.join("src").join(format!("{module}.rs")), code).unwrap();
                modules.push_str(&format!(
                    "pub mod {module} {{\n    include!(\"{module}.rs\");\n}}\n"
                ));
            }
            Err(error) => {
                let diagnostics = error.diagnostics();
                assert!(
                    !diagnostics.is_empty()
                        && diagnostics
                            .iter()
                            .all(|d| d.message.starts_with("unsupported") && d.line > 0),
                    "{}: refused without located `unsupported` errors:\n{error}",
                    document.display()
                );
                unsupported.push(format!("{}: {error}", document.display()));
            }
        }
    }
    std::fs::write(crate_dir.join("src/lib.rs"), modules).unwrap();
    let runtime = workspace_root().join("runtime").canonicalize().unwrap();
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        format!(
            r#"[package]
name = "corpus-check"
version = "0.0.0"
edition = "2024"
publish = false

[workspace]

# wfs-runtime only: the generated code must compile without serde, serde_json, uuid, chrono
# or regress as dependencies of the crate that includes it (it reaches them through the
# runtime's re-exports).
[dependencies]
wfs-runtime = {{ path = "{}" }}
"#,
            runtime.display()
        ),
    )
    .unwrap();
    // The workspace's lock file pins the same versions, so the check needs no network.
    std::fs::copy(
        workspace_root().join("Cargo.lock"),
        crate_dir.join("Cargo.lock"),
    )
    .unwrap();

    let output = Command::new(env!("CARGO"))
        .args([
            "clippy",
            "--quiet",
            "--offline",
            "--message-format",
            "short",
        ])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", crate_dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!(
        "corpus: {generated} of {corpus_count} documents fully generate and compile; {} refused as unsupported",
        unsupported.len()
    );
    for line in &unsupported {
        println!("  {line}");
    }
    assert!(
        output.status.success(),
        "generated corpus code does not compile:\n{stderr}"
    );
    assert!(
        !stderr.contains("warning"),
        "generated corpus code compiles with warnings:\n{stderr}"
    );
}
