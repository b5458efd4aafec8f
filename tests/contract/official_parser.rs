//! The contract passes the official AsyncAPI parser (npm `@asyncapi/parser` 3.6 or later).
//!
//! `scripts/check-asyncapi.sh` installs the parser into a temporary folder and parses the
//! contract; any error diagnostic fails. Bounded by `timeout`, like every wait in these tests.

use std::process::Command;

#[test]
fn the_contract_passes_the_official_asyncapi_parser() {
    let output = Command::new("timeout")
        .args([
            "300",
            "bash",
            "scripts/check-asyncapi.sh",
            "asyncapi/v1-schema.yaml",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("bash and timeout run (npm is installed by `cargo xtask ci`)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the official parser refused the contract:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("ok: asyncapi/v1-schema.yaml"), "{stdout}");
}
