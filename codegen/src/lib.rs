//! wfs-codegen: typed WebSocket servers, clients and HTML docs from AsyncAPI documents.
//!
//! The flow is one parsed [`model::Contract`] feeding every output, so the Rust code, the docs
//! and the run-time validators can never disagree about what the contract says:
//!
//! ```text
//! YAML/JSON ──► model (load, $ref, 2.x → 3.x, checks) ──► rust (types, channel traits, client)
//!                                                     └─► docs (HTML)
//! ```
//!
//! Every problem in a document is reported with its file, line, column and JSON pointer, all
//! of them at once ([`Error::Contract`]); nothing in here panics on bad input.
//!
//! What follows is the crate's README: how to use the generator from your own crate.
#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod build_script;
pub mod docs;
mod error;
pub mod model;
pub mod rust;

pub use build_script::{OUTPUT_FILE, build};
pub use error::{Diagnostic, Error, Result};
pub use model::Contract;
pub use rust::{Generator, Settings};
