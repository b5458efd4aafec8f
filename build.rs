//! Generates the contract's Rust code (`$OUT_DIR/contract.rs`) from `asyncapi/v1-schema.yaml`.
//!
//! A broken contract stops the build with one `cargo::error=` line per problem, each naming
//! the file, line and column; no panic, no backtrace. What only deserves attention (a
//! parameter the address does not use) is a `cargo::warning=` line, located the same way.
//! [`wfs_codegen::build`] does all of it, as it does for any crate built on the generator.

fn main() {
    wfs_codegen::build("asyncapi/v1-schema.yaml");
}
