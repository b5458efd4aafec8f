//! CORS for the parts of the service a page on another origin may call: the SSE alert stream
//! (`/sse/v1/alert`) and the REST API (`/api`), preflights included.
//!
//! The old deployment served its pages on port 8000 and streamed alerts from port 8001, so its
//! alert page opened `EventSource` across origins; Chromium refuses that stream unless the
//! answer carries `Access-Control-Allow-Origin`. Only the configured allowed origins
//! ([`AccessPolicy::origin_allowed`], the same list the WebSocket handshakes use) get one: the
//! Host/Origin gate ([`crate::http::Gate`]) refuses every other origin on these paths with
//! WIRE.md's plain 403 before this middleware runs. poem's own `Cors` does the protocol work.
//!
//! No credentials mode: tokens travel in the query (`access_token`) or the `Authorization`
//! header, never in cookies, so `Access-Control-Allow-Credentials` is not needed.

use std::sync::Arc;

use poem::http::Method;
use poem::middleware::Cors;

use crate::http::AccessPolicy;

/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: i32 = 600;

/// The CORS middleware for `policy`'s allowed origins.
pub fn cors(policy: &AccessPolicy) -> Cors {
    let policy = Arc::new(policy.clone());
    Cors::new()
        .allow_origins_fn(move |origin| policy.origin_allowed(origin))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        // What the pages and scripts send: a bearer token, JSON bodies, and the id an
        // `EventSource` resumes from.
        .allow_headers(["authorization", "content-type", "last-event-id"])
        // Read by clients that back off (429, 503).
        .expose_header("retry-after")
        .allow_credentials(false)
        .max_age(PREFLIGHT_MAX_AGE)
}
