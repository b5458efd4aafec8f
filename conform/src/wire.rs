//! The client side of one WebSocket connection under test: the handshake (with what a refusal
//! looked like), and a reader task that judges every frame the server sends against the
//! endpoint's declared messages as it arrives, so nothing the server says goes unchecked
//! whatever the engine is waiting for.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::surface::Endpoint;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Which connection a frame came on (the main one is the one whose frames make the push check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Main,
    Probe,
}

/// A frame the server sent, as judged on arrival.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub endpoint: usize,
    pub role: Role,
    /// The frame's text (`<binary, N bytes>` for binary frames).
    pub text: String,
    /// `None` when the frame is not JSON (or binary).
    pub value: Option<Value>,
    /// Indexes of the endpoint's outbound messages it matches; empty: undeclared.
    pub matches: Vec<usize>,
    /// Why it is undeclared, when it is.
    pub why: Option<String>,
    pub at: Instant,
}

/// What a connection reports to whoever drives it.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    Frame(Seen),
    /// The connection ended: the server's close code and reason, or 1006 without a close frame.
    Closed {
        code: u16,
        reason: String,
    },
}

/// Every frame of the run, in arrival order.
pub(crate) type Log = Arc<Mutex<Vec<Seen>>>;

/// How an upgrade went.
pub(crate) enum Opened {
    Open(Conn),
    /// The server answered the upgrade with an HTTP status.
    Refused {
        status: u16,
        body: String,
    },
    /// No answer (connection refused, timeout, not HTTP ...).
    Failed(String),
}

/// An open connection: the writing half, and the events of the reader task.
pub(crate) struct Conn {
    sink: SplitSink<Ws, Message>,
    pub events: mpsc::UnboundedReceiver<Event>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    pub async fn send_text(&mut self, text: String) -> Result<(), String> {
        self.sink
            .send(Message::text(text))
            .await
            .map_err(|error| error.to_string())
    }

    /// Sends a normal close (1000) and gives the server `wait` to answer it.
    pub async fn close(mut self, wait: Duration) {
        let _ = tokio::time::timeout(wait, self.sink.close()).await;
        let deadline = Instant::now() + wait;
        while let Ok(Some(event)) =
            tokio::time::timeout_at(deadline.into(), self.events.recv()).await
        {
            if matches!(event, Event::Closed { .. }) {
                break;
            }
        }
    }

    /// Events queued so far are dropped (so a wait only sees what follows).
    pub fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            out.push(event);
        }
        out
    }

    /// The next event before `deadline`, `None` at the deadline.
    pub async fn next_before(&mut self, deadline: Instant) -> Option<Event> {
        match tokio::time::timeout_at(deadline.into(), self.events.recv()).await {
            Ok(Some(event)) => Some(event),
            // The reader ended without a Closed event (aborted): the connection is gone.
            Ok(None) => Some(Event::Closed {
                code: 1006,
                reason: "connection ended".to_owned(),
            }),
            Err(_) => None,
        }
    }
}

/// Opens `url` with `headers`; frames are judged against `endpoint` and logged in `log`.
pub(crate) async fn open(
    url: &str,
    headers: &[(String, String)],
    timeout: Duration,
    endpoint: (usize, Arc<Endpoint>),
    role: Role,
    log: Log,
) -> Opened {
    let mut request = match url.into_client_request() {
        Ok(request) => request,
        Err(error) => return Opened::Failed(format!("bad URL `{url}`: {error}")),
    };
    for (name, value) in headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                request.headers_mut().append(name, value);
            }
            _ => return Opened::Failed(format!("header `{name}` is not a valid HTTP header")),
        }
    }
    let connected = match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(request))
        .await
    {
        Err(_) => return Opened::Failed(format!("no answer to the upgrade within {timeout:?}")),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            let body = response
                .body()
                .as_ref()
                .map(|body| String::from_utf8_lossy(body).trim().to_owned())
                .unwrap_or_default();
            return Opened::Refused {
                status: response.status().as_u16(),
                body,
            };
        }
        Ok(Err(error)) => return Opened::Failed(error.to_string()),
        Ok(Ok((ws, _))) => ws,
    };
    let (sink, mut stream) = connected.split();
    let (sender, events) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        let (index, endpoint) = endpoint;
        let mut closed = None;
        loop {
            let message = stream.next().await;
            let (text, value) = match message {
                Some(Ok(Message::Text(text))) => {
                    let text = text.to_string();
                    let value = serde_json::from_str::<Value>(&text).ok();
                    (text, value)
                }
                Some(Ok(Message::Binary(bytes))) => {
                    (format!("<binary, {} bytes>", bytes.len()), None)
                }
                Some(Ok(Message::Close(frame))) => {
                    closed = Some(match frame {
                        Some(frame) => (u16::from(frame.code), frame.reason.to_string()),
                        // A close frame without a code is "no status received".
                        None => (1005, String::new()),
                    });
                    continue;
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => {
                    if closed.is_none() {
                        closed = Some((1006, error.to_string()));
                    }
                    break;
                }
                None => break,
            };
            let matches = value
                .as_ref()
                .map(|value| endpoint.classify(value))
                .unwrap_or_default();
            let why = match (&value, matches.is_empty()) {
                (_, false) => None,
                (Some(value), true) => Some(endpoint.why_undeclared(value)),
                (None, true) => Some("not a JSON text frame".to_owned()),
            };
            let seen = Seen {
                endpoint: index,
                role,
                text,
                value,
                matches,
                why,
                at: Instant::now(),
            };
            if let Ok(mut log) = log.lock() {
                log.push(seen.clone());
            }
            let _ = sender.send(Event::Frame(seen));
        }
        let (code, reason) = closed.unwrap_or((1006, "closed without a close frame".to_owned()));
        let _ = sender.send(Event::Closed { code, reason });
    });
    Opened::Open(Conn {
        sink,
        events,
        reader,
    })
}
