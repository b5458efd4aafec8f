//! Generates this crate's contract code (`$OUT_DIR/contract.rs`) from `asyncapi.yaml`, as any
//! crate using wfs-codegen does: one call, which watches the document's files, passes warnings
//! on, and turns every problem of a broken document into a `cargo::error=file:line:column: ...`
//! line, never a panic.

fn main() {
    wfs_codegen::build("asyncapi.yaml");
}
