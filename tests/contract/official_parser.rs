//! The repository's AsyncAPI documents pass the official AsyncAPI parser (npm `@asyncapi/parser`
//! 3.6 or later): the v1 contract and the example service's `examples/market-feed/asyncapi.yaml`.
//!
//! `scripts/check-asyncapi.sh` installs the parser into a temporary folder and parses every
//! document given; any error diagnostic fails. Both documents go through one run, so the suite
//! pays for one `npm install`. Bounded by `timeout`, like every wait in these tests.

use std::process::Command;

const DOCUMENTS: [&str; 2] = [
    "asyncapi/v1-schema.yaml",
    "examples/market-feed/asyncapi.yaml",
];

#[test]
fn every_document_of_the_repository_passes_the_official_asyncapi_parser() {
    let output = Command::new("timeout")
        .args(["300", "bash", "scripts/check-asyncapi.sh"])
        .args(DOCUMENTS)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("bash and timeout run (npm is installed by `cargo xtask ci`)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the official parser refused a document:\n{stdout}\n{stderr}"
    );
    for document in DOCUMENTS {
        assert!(stdout.contains(&format!("ok: {document}")), "{stdout}");
    }
}
