//! `asyncapi.yaml` passes the official AsyncAPI parser (npm `@asyncapi/parser` 3.6 or later),
//! through the repository's `scripts/check-asyncapi.sh`, as the v1 contract does.

use std::path::Path;
use std::process::Command;

#[test]
fn the_document_passes_the_official_asyncapi_parser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let document = "examples/market-feed/asyncapi.yaml";
    // Bounded like every wait: npm installs the parser into a temporary folder first.
    let output = Command::new("timeout")
        .args(["300", "bash", "scripts/check-asyncapi.sh", document])
        .current_dir(&root)
        .output()
        .expect("bash and timeout run (npm is installed by `cargo xtask ci`)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the official parser refused {document}:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(&format!("ok: {document}")), "{stdout}");
}
