//! A bound on request bodies (the REST API's): a body over the limit is answered 413 with
//! `{"detail"}` having read no more than the limit, and one that does not arrive in time 408.
//!
//! poem-openapi reads a JSON body whole before any handler runs, so without this a 64 MB body
//! is read and parsed before the 401 that refuses it. Nothing the API takes is large: the
//! largest is an alert of 4,096 characters.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use crate::http::json_error;

/// The REST API's body limit: room for the largest alert (4,096 characters, up to 4 bytes of
/// UTF-8 each, or 6 when JSON-escaped), far below what could cost memory.
pub const API_BODY_LIMIT: usize = 32 * 1024;

/// Middleware: reads the body up to `max` bytes (within `timeout`: the server uses its header
/// timeout, so a body cannot be trickled any more than a head) before the endpoint runs.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    max: usize,
    timeout: Duration,
}

impl BodyLimit {
    pub fn new(max: usize, timeout: Duration) -> BodyLimit {
        BodyLimit { max, timeout }
    }
}

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyLimitEndpoint {
            inner,
            limit: *self,
        }
    }
}

pub struct BodyLimitEndpoint<E> {
    inner: E,
    limit: BodyLimit,
}

impl<E: Endpoint> BodyLimitEndpoint<E> {
    fn too_large(&self) -> Response {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The request body is larger than {} bytes.", self.limit.max),
        )
    }
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        // A declared length over the limit is refused before a byte of the body is read.
        let declared = request
            .header("content-length")
            .and_then(|length| length.trim().parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.limit.max as u64) {
            return Ok(self.too_large());
        }
        let body = http_body_util::combinators::BoxBody::<Bytes, std::io::Error>::from(
            request.take_body(),
        );
        let read = tokio::time::timeout(
            self.limit.timeout,
            Limited::new(body, self.limit.max).collect(),
        )
        .await;
        match read {
            Ok(Ok(collected)) => {
                request.set_body(collected.to_bytes());
                self.inner
                    .call(request)
                    .await
                    .map(IntoResponse::into_response)
            }
            // Chunked bodies have no declared length: cut off at the limit.
            Ok(Err(error)) if error.is::<LengthLimitError>() => Ok(self.too_large()),
            Ok(Err(_)) => Ok(json_error(
                StatusCode::BAD_REQUEST,
                "The request body could not be read.",
            )),
            Err(_) => Ok(json_error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "The request body did not arrive within {} seconds.",
                    self.limit.timeout.as_secs()
                ),
            )),
        }
    }
}
