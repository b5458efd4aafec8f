//! The WebSocket client under the generated typed clients (tokio-tungstenite).
//!
//! It reports what a test or an application needs to tell apart: a refused handshake (with its
//! HTTP status and body), a close (with its code and reason), and a frame the contract does
//! not allow.

use std::fmt;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
pub use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Violations;
use crate::serve::{Candidate, Decode};

/// What went wrong on the client side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The request could not be built (a URL or header that is not valid), or a message
    /// could not be serialised.
    #[error("invalid request: {0}")]
    Request(String),
    /// The server refused the upgrade with an HTTP status.
    #[error("handshake refused with HTTP {status}: {body}")]
    Rejected {
        /// The HTTP status (403 for a bad token, 404 for an unknown path...).
        status: u16,
        /// The response body, as text.
        body: String,
    },
    /// The connection was closed: by the server's close frame (its code and reason), 1005
    /// for a close without a code, 1006 when it dropped without one.
    #[error("connection closed with {code}: {reason}")]
    Closed {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The network or the WebSocket protocol failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// The server sent a binary frame, or text that is not JSON.
    #[error("server sent a frame that is not JSON text: {0}")]
    NotJson(String),
    /// The server sent JSON that is none of the channel's messages.
    #[error("server sent a frame the contract does not allow: {text} ({})", DisplayViolations(.violations))]
    Unexpected {
        /// The frame as received.
        text: String,
        /// Why it is none of the messages, for each one.
        violations: Vec<Violations>,
    },
}

struct DisplayViolations<'a>(&'a [Violations]);

impl fmt::Display for DisplayViolations<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join(" | "))
    }
}

/// An open client connection.
pub struct Client {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// Builds a handshake request: `base` (`ws://host:port`) + `path`, with query and headers.
pub fn request(
    base: &str,
    path: &str,
    query: &[(&str, String)],
    headers: &[(&str, String)],
) -> Result<Request, ClientError> {
    let mut url = format!("{}{}", base.trim_end_matches('/'), path);
    for (index, (name, value)) in query.iter().enumerate() {
        url.push(if index == 0 { '?' } else { '&' });
        url.push_str(&encode(name));
        url.push('=');
        url.push_str(&encode(value));
    }
    let mut request = url
        .into_client_request()
        .map_err(|error| ClientError::Request(error.to_string()))?;
    for (name, value) in headers {
        let value = HeaderValue::from_str(value)
            .map_err(|error| ClientError::Request(error.to_string()))?;
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|error| ClientError::Request(error.to_string()))?;
        request.headers_mut().insert(name, value);
    }
    Ok(request)
}

/// Percent-encodes a query component (RFC 3986 unreserved characters kept).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Client {
    /// Opens a connection; a refused handshake is [`ClientError::Rejected`].
    ///
    /// `wss://` needs the `tls` feature; it then trusts the system's roots. To trust others
    /// (a test CA, a self-signed server), use [`Client::connect_with`].
    pub async fn connect(request: Request) -> Result<Client, ClientError> {
        Client::opened(tokio_tungstenite::connect_async(request).await)
    }

    /// Opens a connection through `connector`, e.g. `Connector::Rustls` with a rustls
    /// `ClientConfig` whose roots hold the server's CA.
    #[cfg(feature = "tls")]
    pub async fn connect_with(
        request: Request,
        connector: tokio_tungstenite::Connector,
    ) -> Result<Client, ClientError> {
        Client::opened(
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
                .await,
        )
    }

    fn opened(
        result: Result<
            (
                WebSocketStream<MaybeTlsStream<TcpStream>>,
                tungstenite::handshake::client::Response,
            ),
            tungstenite::Error,
        >,
    ) -> Result<Client, ClientError> {
        match result {
            Ok((stream, _)) => Ok(Client { stream }),
            Err(tungstenite::Error::Http(response)) => Err(ClientError::Rejected {
                status: response.status().as_u16(),
                body: response
                    .body()
                    .as_ref()
                    .map(|body| String::from_utf8_lossy(body).into_owned())
                    .unwrap_or_default(),
            }),
            Err(error) => Err(ClientError::Transport(error.to_string())),
        }
    }

    /// Sends one text frame as is.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ClientError> {
        self.send_raw(Message::text(text.into())).await
    }

    /// Sends one message of the contract, serialised as JSON text.
    pub async fn send_message<T: serde::Serialize>(
        &mut self,
        message: &T,
    ) -> Result<(), ClientError> {
        let text = serde_json::to_string(message)
            .map_err(|error| ClientError::Request(error.to_string()))?;
        self.send_text(text).await
    }

    /// The next message from the server, decoded as `T` (a channel's outbound enum) and so
    /// checked against the contract: a frame that is not JSON is [`ClientError::NotJson`], one
    /// the contract does not allow [`ClientError::Unexpected`], with the frame's text.
    pub async fn recv_message<T: Decode>(&mut self) -> Result<T, ClientError> {
        let text = self.recv_text().await?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| ClientError::NotJson(error.to_string()))?;
        T::decode(Candidate::Owned(value))
            .map_err(|violations| ClientError::Unexpected { text, violations })
    }

    /// Sends any frame (for tests of what the server does with frames the contract forbids).
    pub async fn send_raw(&mut self, message: Message) -> Result<(), ClientError> {
        self.stream
            .send(message)
            .await
            .map_err(|error| ClientError::Transport(error.to_string()))
    }

    /// The next text frame; pings and pongs are skipped, a close is [`ClientError::Closed`].
    pub async fn recv_text(&mut self) -> Result<String, ClientError> {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
                Some(Ok(Message::Binary(_))) => {
                    return Err(ClientError::NotJson("a binary frame".to_owned()));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(match frame {
                        Some(frame) => ClientError::Closed {
                            code: frame.code.into(),
                            reason: frame.reason.to_string(),
                        },
                        None => ClientError::Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                    });
                }
                Some(Ok(_)) => continue,
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                ))
                | None => {
                    return Err(ClientError::Closed {
                        code: 1006,
                        reason: "connection ended without a close frame".to_owned(),
                    });
                }
                Some(Err(error)) => return Err(ClientError::Transport(error.to_string())),
            }
        }
    }

    /// Closes the connection politely (1000; a close without a code would read as 1005).
    pub async fn close(mut self) -> Result<(), ClientError> {
        let normal = tungstenite::protocol::CloseFrame {
            code: tungstenite::protocol::frame::coding::CloseCode::Normal,
            reason: Default::default(),
        };
        self.stream
            .close(Some(normal))
            .await
            .map_err(|error| ClientError::Transport(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_encode_query_values() {
        let request = request(
            "ws://127.0.0.1:9/",
            "/ws/v1/chat",
            &[
                ("city_uuid", "a b".to_owned()),
                ("access_token", "x+y=".to_owned()),
            ],
            &[("origin", "http://localhost:8000".to_owned())],
        )
        .unwrap();
        assert_eq!(
            request.uri().to_string(),
            "ws://127.0.0.1:9/ws/v1/chat?city_uuid=a%20b&access_token=x%2By%3D"
        );
        assert_eq!(request.headers()["origin"], "http://localhost:8000");
    }
}
