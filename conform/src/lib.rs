//! asyncapi-conform: checks a running WebSocket server against an AsyncAPI contract, and
//! serves a mock of any AsyncAPI document.
//!
//! [`run`] drives a server through every channel it can reach over WebSocket, in one pass:
//! - the handshake with valid parameters (from `--param`, the document's examples, defaults or
//!   enums, or made from the schema) succeeds, and with each parameter broken (wrong format,
//!   out of its enum or range, a required one missing) is refused, with an HTTP 4xx or a close
//!   after the upgrade ([`Refusal`] says which is expected);
//! - every example of every receive operation is sent; where the operation has a reply, the
//!   reply arrives within the timeout, matches the reply's messages and carries the request's
//!   correlation id where the document defines one;
//! - every frame the server sends matches one of the messages it may send there (a violation
//!   names the JSON pointer of the failing field); [`Trigger`] commands make it send and the
//!   announced operation must then be seen;
//! - frames that break each receive message (a required field missing, a wrong type, a value
//!   out of range, not JSON) neither crash the connection (1006, 1011) nor draw an undeclared
//!   answer.
//!
//! The [`Report`] lists every check per channel, renders as text or JUnit XML, and counts the
//! [`Report::violations`]. [`mock::serve`] is the other side: a server made from the document.
//!
//! ```no_run
//! # async fn check() -> Result<(), Box<dyn std::error::Error>> {
//! let contract = wfs_codegen::Contract::load("asyncapi/v1-schema.yaml")?;
//! let mut options = asyncapi_conform::Options::new("ws://127.0.0.1:8000");
//! options.params.push(("city_uuid".into(), "df257fd6-63a5-5b69-b454-73da5d1224c2".into()));
//! let report = asyncapi_conform::run(&contract, &options).await;
//! print!("{}", report.render_text());
//! assert_eq!(report.violations(), 0);
//! # Ok(()) }
//! ```

mod engine;
pub mod mock;
mod options;
mod params;
mod report;
mod schema;
mod surface;
mod wire;

pub use engine::run;
pub use mock::{Mock, MockOptions, OnInvalid};
pub use options::{Options, Refusal, Trigger, split_pair};
pub use report::{Check, Kind, Outcome, Report};
pub use schema::Problem;

/// What can go wrong outside the checks themselves (which all end up in the [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The mock could not listen where asked.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// This crate's results.
pub type Result<T> = std::result::Result<T, Error>;
