//! The README's "Changing the contract" walk-through, run for real: its YAML snippet is merged
//! into the contract of a scratch copy of the repository, `cargo build` must fail naming
//! `receive_shout`; its Rust snippet is added to `src/echo.rs`, and the build must pass.
//!
//! The scratch copy builds into this test's own target directory, so the dependencies are not
//! compiled again; see the README for how long it takes. Its own crates get another version
//! (`0.1.0-readme-check`): cargo names a workspace crate's artifacts and build-script output
//! by name, version and path relative to the workspace, so with the same version the scratch
//! build would overwrite the real `contract.rs` in `OUT_DIR` (and the real tree would then
//! miss `receive_shout` until its contract changes again).

use std::path::{Path, PathBuf};
use std::time::Duration;

use saphyr::{LoadableYamlNode, Scalar, Yaml};

/// The two cargo builds together; the first compiles the generator and the runtime again.
const BUILDS_WITHIN: Duration = Duration::from_secs(900);

/// The first fenced block of `language` after `heading` in `markdown`.
fn snippet(markdown: &str, heading: &str, language: &str) -> String {
    let section = markdown
        .split_once(heading)
        .unwrap_or_else(|| panic!("README has no `{heading}`"))
        .1;
    let fence = format!("```{language}\n");
    let start = section
        .find(&fence)
        .unwrap_or_else(|| panic!("no {language} block under `{heading}`"));
    let block = &section[start + fence.len()..];
    let end = block.find("```").expect("the block ends");
    // The blocks sit in a numbered list: drop its indentation.
    let indent = block
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    block[..end]
        .lines()
        .map(|line| line.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `patch` merged into `base`: mappings key by key, anything else replaced.
fn merge<'a>(base: &mut Yaml<'a>, patch: &Yaml<'a>) {
    match (base, patch) {
        (Yaml::Mapping(base), Yaml::Mapping(patch)) => {
            for (key, value) in patch {
                match base.get_mut(key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, patch) => *base = patch.clone(),
    }
}

/// The YAML as JSON (which is YAML too, and which the generator reads the same way).
fn json(yaml: &Yaml<'_>) -> serde_json::Value {
    use serde_json::Value;
    match yaml {
        Yaml::Value(Scalar::FloatingPoint(number)) => {
            serde_json::Number::from_f64(number.into_inner()).map_or(Value::Null, Value::Number)
        }
        Yaml::Value(Scalar::Integer(number)) => Value::from(*number),
        Yaml::Value(Scalar::String(text)) => Value::from(text.as_ref()),
        Yaml::Value(Scalar::Boolean(flag)) => Value::from(*flag),
        Yaml::Sequence(items) => Value::Array(items.iter().map(json).collect()),
        Yaml::Mapping(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let key = match key {
                        Yaml::Value(Scalar::String(text)) => text.to_string(),
                        Yaml::Value(Scalar::Integer(number)) => number.to_string(),
                        other => format!("{other:?}"),
                    };
                    (key, json(value))
                })
                .collect(),
        ),
        Yaml::Tagged(_, inner) => json(inner),
        Yaml::Value(Scalar::Null) | Yaml::Representation(..) | Yaml::BadValue | Yaml::Alias(_) => {
            Value::Null
        }
    }
}

/// Copies the repository's sources (not `target/` nor `.git`) to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("scratch folder");
    for entry in std::fs::read_dir(from).expect("read the repository") {
        let entry = entry.expect("an entry");
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let (source, destination) = (entry.path(), to.join(&name));
        if entry.file_type().expect("a file type").is_dir() {
            copy_tree(&source, &destination);
        } else {
            std::fs::copy(&source, &destination).expect("copy a file");
        }
    }
}

/// `cargo build --lib` in `dir`: (success, stderr).
async fn cargo_build(dir: &Path, target: &Path) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO"))
        .args(["build", "--lib", "--offline", "--quiet", "--color", "never"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .kill_on_drop(true)
        .output()
        .await
        .expect("cargo runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// This test binary's target directory (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .to_path_buf()
}

#[tokio::test]
async fn the_readme_walk_through_of_a_contract_change_holds() {
    // The suite's second pass (on PostgreSQL) tests the stores; the README is the same.
    if crate::postgres::enabled() {
        return;
    }
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(repository.join("README.md")).expect("README.md");
    let yaml = snippet(&readme, "## Changing the contract", "yaml");
    let rust = snippet(&readme, "## Changing the contract", "rust");

    let scratch = std::env::temp_dir().join(format!("wfs-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    copy_tree(repository, &scratch);
    for manifest in ["Cargo.toml", "codegen/Cargo.toml", "runtime/Cargo.toml"] {
        let path = scratch.join(manifest);
        let text = std::fs::read_to_string(&path).expect("a manifest");
        let versioned: Vec<&str> = text
            .lines()
            .map(|line| {
                if line == "version = \"0.1.0\"" {
                    "version = \"0.1.0-readme-check\""
                } else {
                    line
                }
            })
            .collect();
        assert_ne!(
            versioned.join("\n"),
            text.trim_end(),
            "{manifest} has no version 0.1.0"
        );
        std::fs::write(&path, versioned.join("\n") + "\n").expect("manifest written");
    }
    let contract_path = scratch.join("asyncapi/v1-schema.yaml");
    let contract_text = std::fs::read_to_string(&contract_path).expect("the contract");
    let mut contract = Yaml::load_from_str(&contract_text)
        .expect("the contract parses")
        .remove(0);
    let patch = Yaml::load_from_str(&yaml)
        .expect("the README's YAML parses")
        .remove(0);
    merge(&mut contract, &patch);
    std::fs::write(
        &contract_path,
        serde_json::to_string_pretty(&json(&contract)).unwrap(),
    )
    .expect("contract written");

    let target = target_dir();
    let outcome = tokio::time::timeout(BUILDS_WITHIN, async {
        let (built, stderr) = cargo_build(&scratch, &target).await;
        assert!(!built, "the build passed without `receive_shout`");
        assert!(
            stderr.contains("E0046") && stderr.contains("missing: `receive_shout`"),
            "the error names the method to write:\n{stderr}"
        );

        // Step 3: the README's method, in the echo channel's impl.
        let echo_path = scratch.join("src/echo.rs");
        let echo = std::fs::read_to_string(&echo_path).expect("src/echo.rs");
        let end = echo.rfind("\n}").expect("the impl block ends");
        let indented: String = rust.lines().map(|line| format!("\n    {line}")).collect();
        std::fs::write(
            &echo_path,
            format!("{}\n{indented}{}", &echo[..end], &echo[end..]),
        )
        .expect("src/echo.rs written");
        let (built, stderr) = cargo_build(&scratch, &target).await;
        assert!(
            built,
            "the build still fails with `receive_shout`:\n{stderr}"
        );
    })
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    outcome.unwrap_or_else(|_| panic!("the builds took longer than {BUILDS_WITHIN:?}"));
}
