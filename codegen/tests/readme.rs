//! The five steps of `codegen/README.md`, taken as a new user would: its snippets become a
//! crate of their own (Cargo.toml, build.rs, src/contract.rs, src/echo.rs, src/main.rs) over a
//! contract with the one `echo` channel the README describes, and that crate must build. So the
//! README cannot drift from the generator's and the runtime's API.
//!
//! The crate lives under cargo's temporary folder for tests and is checked offline against the
//! workspace's lock file, like the corpus crate (`tests/corpus.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The contract the README's snippets are written for: `echo` at `/ws/echo`, whose receive
/// operation `receiveEcho` replies with an `EchoMessage`.
const CONTRACT: &str = r#"asyncapi: 3.0.0
info:
  title: Echo
  version: 1.0.0
channels:
  echo:
    address: /ws/echo
    messages:
      echo:
        payload:
          $ref: '#/components/schemas/EchoMessage'
operations:
  receiveEcho:
    action: receive
    channel:
      $ref: '#/channels/echo'
    reply:
      channel:
        $ref: '#/channels/echo'
components:
  schemas:
    EchoMessage:
      description: Any JSON value, sent back as it was received.
"#;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The fenced code blocks of `text`: (language line, body), in order.
fn code_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(language)) => current = Some((language.to_owned(), String::new())),
            (Some(_), Some(_)) => blocks.extend(current.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

#[test]
fn the_readme_steps_build_a_crate() {
    let readme = std::fs::read_to_string(workspace_root().join("codegen/README.md")).unwrap();
    // The five steps, then the client example; the before/after excerpts that follow are not
    // whole files.
    let blocks = code_blocks(&readme);
    let [
        (toml_language, manifest),
        (_, build),
        (_, contract),
        (_, echo),
        (_, main),
        (_, client),
        ..,
    ] = blocks.as_slice()
    else {
        panic!("codegen/README.md should open with six code blocks, found {blocks:?}");
    };
    assert_eq!(toml_language, "toml", "the first block is the manifest");

    let crate_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme-check");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    let runtime = workspace_root().join("runtime").canonicalize().unwrap();
    let codegen = workspace_root().join("codegen").canonicalize().unwrap();
    let manifest = manifest
        .replace("../wfs/runtime", &runtime.display().to_string())
        .replace("../wfs/codegen", &codegen.display().to_string());
    let files = [
        (
            "Cargo.toml",
            format!(
                "[package]\nname = \"readme-check\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
                 publish = false\n\n[workspace]\n\n{manifest}"
            ),
        ),
        ("asyncapi.yaml", CONTRACT.to_owned()),
        ("build.rs", build.clone()),
        ("src/contract.rs", contract.clone()),
        ("src/echo.rs", echo.clone()),
        (
            "src/main.rs",
            // The client example is a fragment: it runs inside a function of its own.
            format!(
                "{main}\n#[allow(dead_code)]\nasync fn client(message: contract::types::EchoMessage) \
                 -> Result<(), wfs_runtime::client::ClientError> {{\n{client}    Ok(())\n}}\n"
            ),
        ),
    ];
    for (path, text) in files {
        std::fs::write(crate_dir.join(path), text).unwrap();
    }
    std::fs::copy(
        workspace_root().join("Cargo.lock"),
        crate_dir.join("Cargo.lock"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO"))
        .args(["check", "--quiet", "--offline", "--message-format", "short"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", crate_dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "the README's snippets do not build:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
