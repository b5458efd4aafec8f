//! The life of one WebSocket connection: upgrade, read and write loop, keepalive, limits, close.
//!
//! One task per connection does everything (reads, drains the outbound queue, pings), which
//! keeps the memory per idle connection small. Close codes follow RFC 6455 and the contract:
//! 1003 for a frame that is not JSON text, 1007 for JSON that breaks the contract, 1009 for a
//! frame over the size limit, 1013 for a client too slow to read, 1001 on idle timeout or
//! shutdown, 1011 for an internal error; for frames that break RFC 6455 itself, 1002 (protocol
//! error) or 1007 (text that is not UTF-8), with a reason that names the fault.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use poem::web::websocket::{Message, WebSocket, WebSocketConfig, WebSocketStream};
use poem::{FromRequest, IntoResponse, Request, Response};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::connection::{Connection, Queue};
use crate::observe::{Observer, Refusal, Tally};
use crate::serve::Decode;
use crate::{Reject, Violations};

/// Limits and timings of every connection of a server.
#[derive(Debug)]
pub struct Config {
    /// Largest message accepted, in bytes (larger: close 1009).
    pub max_message_size: usize,
    /// Largest single frame accepted, in bytes.
    pub max_frame_size: usize,
    /// Read buffer per connection. tungstenite's default (128 KiB) would cost over 1 GiB at
    /// 10,000 connections. 2 KiB holds this contract's frames (a few hundred bytes) in one read;
    /// larger ones take more reads. Measured: 9.2 KiB per idle connection with 4 KiB, 7.1 with
    /// 2 KiB (docs/benchmarks.md).
    pub read_buffer_size: usize,
    /// Bytes of outgoing frames gathered before they are written to the socket; a flush
    /// writes what is gathered in any case, and the socket task flushes after every reply and
    /// after each batch of queued frames. 0 writes every frame on its own (one `write` call per
    /// frame); 2 KiB lets a burst of alerts (a few hundred bytes each) go out several frames
    /// per call. The buffer keeps the size it grew to, so this is also what a connection that
    /// received a burst holds on to.
    pub write_buffer_size: usize,
    /// Frames queued per connection before it counts as too slow (close 1013).
    pub outbound_queue: usize,
    /// How often an idle connection is pinged.
    pub ping_interval: Duration,
    /// A connection that sent nothing (not even a pong) for this long is closed (1001).
    pub idle_timeout: Duration,
    /// Open connections allowed; more are refused with HTTP 503.
    pub max_connections: usize,
    /// How long closing may take (flushing queued frames, waiting for the peer's close).
    pub close_timeout: Duration,
    /// How long a client may take to finish a request head (and, over TLS, the handshake
    /// before it); the first request of a connection and each next one on a kept-alive one.
    /// A client that is slower is disconnected (slowloris).
    pub header_timeout: Duration,
    /// Open connections (WebSockets included) from one client IP address; more are answered
    /// 503 and closed.
    pub max_connections_per_ip: usize,
    /// Connections that have not yet sent a complete request head; when full, the oldest of
    /// them is closed to make room. 0: half the process's file-descriptor limit.
    pub max_pending_connections: usize,
    active: AtomicUsize,
    /// Set once by [`Config::shut_down`]; every connection closes with 1001 when it flips.
    shutdown: watch::Sender<bool>,
    /// Told of every connection and refusal, when a server set one ([`Config::observe`]).
    observer: OnceLock<Arc<dyn Observer>>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_message_size: 64 * 1024,
            max_frame_size: 64 * 1024,
            read_buffer_size: 2 * 1024,
            write_buffer_size: 2 * 1024,
            outbound_queue: 256,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            max_connections: 10_000,
            close_timeout: Duration::from_secs(2),
            header_timeout: Duration::from_secs(10),
            max_connections_per_ip: 256,
            max_pending_connections: 0,
            active: AtomicUsize::new(0),
            shutdown: watch::channel(false).0,
            observer: OnceLock::new(),
        }
    }
}

impl Config {
    /// Connections open right now.
    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Closes every connection with 1001 (after the frames already queued) and refuses new
    /// ones with 503. Resolves when no connection is left, or after `close_timeout` twice over.
    pub async fn shut_down(&self) {
        self.shutdown.send_replace(true);
        let deadline = Instant::now() + self.close_timeout * 2;
        while self.active_connections() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Resolves once [`Config::shut_down`] was called: streams that are not WebSockets (SSE)
    /// end on it too.
    pub async fn shutting_down(&self) {
        let mut receiver = self.shutdown.subscribe();
        let _ = receiver.wait_for(|down| *down).await;
    }

    /// Sets the observer told of every connection from now on; `false` if one was already set
    /// (the first stays).
    pub fn observe(&self, observer: Arc<dyn Observer>) -> bool {
        self.observer.set(observer).is_ok()
    }

    fn refused(&self, request: &Request, refusal: Refusal) {
        if let Some(observer) = self.observer.get() {
            observer.refused(request, refusal);
        }
    }

    /// Whether a shutdown has begun (new connections and streams are refused).
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn websocket(&self) -> WebSocketConfig {
        let mut config = WebSocketConfig::default();
        config.read_buffer_size = self.read_buffer_size;
        config.write_buffer_size = self.write_buffer_size;
        config.max_message_size = Some(self.max_message_size);
        config.max_frame_size = Some(self.max_frame_size);
        config
    }
}

/// A frame the contract does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Not valid JSON text.
    NotJson(String),
    /// A binary frame: the contract speaks JSON text.
    Binary,
    /// Valid JSON that matches none of the messages this address receives.
    Contract(Vec<Violations>),
}

impl FrameError {
    /// The close code a server answers this with when it does not send an error message.
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::NotJson(_) | FrameError::Binary => 1003,
            FrameError::Contract(_) => 1007,
        }
    }

    /// A short reason for the close frame (at most 123 bytes, as RFC 6455 allows).
    pub fn close_reason(&self) -> String {
        let reason = match self {
            FrameError::NotJson(_) => "Frame is not valid JSON.".to_owned(),
            FrameError::Binary => "Binary frames are not supported; send JSON text.".to_owned(),
            FrameError::Contract(_) => format!("Message does not match the contract: {self}"),
        };
        truncate_reason(reason)
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::NotJson(error) => write!(f, "not valid JSON: {error}"),
            FrameError::Binary => f.write_str("binary frame"),
            FrameError::Contract(violations) => {
                let lines: Vec<String> = violations.iter().map(ToString::to_string).collect();
                f.write_str(&lines.join(" | "))
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Cuts a close reason to the 123 bytes a close frame can carry, on a character boundary.
pub fn truncate_reason(mut reason: String) -> String {
    if reason.len() > 123 {
        let mut end = 120;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push_str("...");
    }
    reason
}

/// What a handler tells the client when it fails: a close code and reason. The reason is what
/// the client reads; anything internal belongs in the log, not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelError {
    /// The close code (1008 policy violation, 1011 internal error, 4000-4999 the
    /// application's own).
    pub code: u16,
    /// The close reason the client reads.
    pub reason: String,
}

impl ChannelError {
    /// Close the connection with `code` and `reason`.
    pub fn close(code: u16, reason: impl Into<String>) -> ChannelError {
        ChannelError {
            code,
            reason: reason.into(),
        }
    }

    /// 1011: something went wrong on the server; log the details, tell the client only this.
    pub fn internal() -> ChannelError {
        ChannelError::close(1011, "Internal server error.")
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "close {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for ChannelError {}

/// Parses a text frame as JSON.
pub fn parse_json(text: &str) -> Result<Value, FrameError> {
    serde_json::from_str(text).map_err(|error| FrameError::NotJson(error.to_string()))
}

/// What the generated code plugs into [`upgrade`]: one per endpoint (channel address). The socket
/// loop parses and decodes every text frame itself, so a handler only sees messages the
/// contract allows ([`SocketHandler::on_message`]) or why a frame is not one
/// ([`SocketHandler::on_invalid`]).
pub trait SocketHandler: Send + Sync + 'static {
    /// The messages this address receives (one channel's inbound enum, or an enum of the
    /// inbound enums of the channels that share the address).
    type Inbound: Decode + Send;

    /// The connection is open: before any frame is read.
    fn on_open(&self, connection: &Connection) -> impl Future<Output = ()> + Send;

    /// A text frame that decoded as one of the address's messages.
    fn on_message(
        &self,
        connection: &Connection,
        message: Self::Inbound,
    ) -> impl Future<Output = ()> + Send;

    /// A frame the contract does not allow: not JSON, binary, or none of the messages.
    fn on_invalid(
        &self,
        connection: &Connection,
        error: FrameError,
    ) -> impl Future<Output = ()> + Send;

    /// The connection has ended (after its close, or when it dropped).
    fn on_close(&self, connection: &Connection) -> impl Future<Output = ()> + Send;
}

/// Answers a handshake that was refused: an HTTP status, or an upgrade followed by a close.
pub async fn refuse(request: &Request, config: Arc<Config>, reject: Reject) -> Response {
    match reject {
        Reject::Http { status, body } => plain_response(status, body),
        Reject::Close { code, reason } => {
            let websocket = match WebSocket::from_request_without_body(request).await {
                Ok(websocket) => websocket,
                Err(error) => return not_a_handshake(request, &error),
            };
            let reason = truncate_reason(reason);
            websocket
                .config(config.websocket())
                .on_upgrade(move |stream| async move {
                    let (mut sink, mut source) = stream.split();
                    let _ = sink.send(Message::close_with(code, reason)).await;
                    // Wait (bounded) for the client's close so it reads ours cleanly.
                    let _ = tokio::time::timeout(config.close_timeout, async {
                        while let Some(Ok(message)) = source.next().await {
                            if message.is_close() {
                                break;
                            }
                        }
                    })
                    .await;
                })
                .into_response()
        }
    }
}

/// Why a request to a channel address cannot be upgraded, in plain text. poem answers some of
/// these with a 500 (an HTTP/1.0 request has no upgrade), and the others with a bare
/// `invalid protocol`.
fn not_a_handshake(request: &Request, error: &poem::Error) -> Response {
    if request.version() < poem::http::Version::HTTP_11 {
        return plain_response(
            400,
            "WebSocket handshakes need HTTP/1.1 or later (RFC 6455).".to_owned(),
        );
    }
    let version = request.header("sec-websocket-version");
    if version.is_some_and(|version| version.trim() != "13") {
        // RFC 6455 4.4: say which version the server speaks.
        let mut response = plain_response(
            426,
            "Unsupported WebSocket version; this server speaks version 13.".to_owned(),
        );
        response.headers_mut().insert(
            "sec-websocket-version",
            poem::http::HeaderValue::from_static("13"),
        );
        return response;
    }
    let reason = match error.downcast_ref::<poem::error::WebSocketError>() {
        Some(poem::error::WebSocketError::InvalidProtocol) | None => {
            "Not a WebSocket handshake: send GET with Connection: Upgrade, Upgrade: websocket, \
             Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key."
        }
        Some(poem::error::WebSocketError::UpgradeError(_)) => {
            "This connection cannot be upgraded to a WebSocket."
        }
    };
    plain_response(400, reason.to_owned())
}

fn plain_response(status: u16, body: String) -> Response {
    let status =
        poem::http::StatusCode::from_u16(status).unwrap_or(poem::http::StatusCode::FORBIDDEN);
    Response::builder()
        .status(status)
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

/// Upgrades `request` and runs the connection with `handler` until it ends.
pub async fn upgrade<H: SocketHandler>(
    request: &Request,
    config: Arc<Config>,
    handler: H,
) -> Response {
    if config.is_shutting_down() {
        config.refused(request, Refusal::ShuttingDown);
        return plain_response(503, "Server is shutting down.".to_owned());
    }
    if config.active.load(Ordering::Relaxed) >= config.max_connections {
        config.refused(request, Refusal::AtCapacity);
        return plain_response(
            503,
            "Server is at its connection limit; try again later.".to_owned(),
        );
    }
    let websocket = match WebSocket::from_request_without_body(request).await {
        Ok(websocket) => websocket,
        Err(error) => {
            config.refused(request, Refusal::NotWebSocket);
            return not_a_handshake(request, &error);
        }
    };
    config.active.fetch_add(1, Ordering::Relaxed);
    let guard = ActiveGuard(config.clone());
    let watch = config
        .observer
        .get()
        .map(|observer| (observer.clone(), observer.opened(request)));
    websocket
        .config(config.websocket())
        .on_upgrade(move |stream| async move {
            run(stream, &guard.0, handler, Tally::new(watch)).await;
            drop(guard);
        })
        .into_response()
}

/// Counts an upgraded connection until dropped, whether or not the upgrade completes.
struct ActiveGuard(Arc<Config>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn run<H: SocketHandler>(
    mut stream: WebSocketStream,
    config: &Config,
    handler: H,
    mut tally: Tally,
) {
    let connection = Connection::new(config.outbound_queue);
    let queue = connection.queue();
    handler.on_open(&connection).await;
    let mut keepalive =
        tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    let mut last_seen = Instant::now();
    // Made once, not per pass of the loop: each of these fires at most once.
    let mut shutdown = config.shutdown.subscribe();
    let shut_down = async move { shutdown.wait_for(|down| *down).await.is_ok() };
    let close_wanted = connection.close_wanted();
    let queued = queue.ready.notified();
    tokio::pin!(shut_down, close_wanted, queued);

    // One stream, not split: a branch's future is dropped before its body runs, so a body may
    // write to the stream that another branch reads from.
    let close = 'serving: loop {
        tokio::select! {
            biased;
            () = &mut queued => {
                if write_queued(&mut stream, queue, &mut tally).await.is_err() {
                    break 'serving None;
                }
                // Re-armed after draining: a frame queued meanwhile left a permit behind.
                queued.set(queue.ready.notified());
            }
            () = &mut close_wanted => break connection.take_close_request(),
            _ = &mut shut_down => break Some((1001, "Server is shutting down.".to_owned())),
            inbound = stream.next() => {
                last_seen = Instant::now();
                match inbound {
                    Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                        tally.frame_in();
                        // A reply is written here, by the loop that read the request, instead
                        // of waking this loop through the queue's `Notify`. It still goes
                        // through the queue, behind any frame queued before it: order holds.
                        queue.replying(true);
                        match message {
                            Message::Text(text) => match H::Inbound::from_text(&text) {
                                Ok(message) => handler.on_message(&connection, message).await,
                                Err(error) => handler.on_invalid(&connection, error).await,
                            },
                            _ => handler.on_invalid(&connection, FrameError::Binary).await,
                        }
                        queue.replying(false);
                        if write_queued(&mut stream, queue, &mut tally).await.is_err() {
                            break None;
                        }
                    }
                    // tungstenite queues the pong itself; flushing sends it.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        if stream.flush().await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        tally.code = frame.map_or(1005, |(code, _)| code.into());
                        break None;
                    }
                    None => break None,
                    Some(Err(error)) => {
                        break read_error_close(&error)
                            .map(|(code, reason)| (code, reason.to_owned()));
                    }
                }
            }
            _ = keepalive.tick() => {
                if last_seen.elapsed() >= config.idle_timeout {
                    break Some((1001, "Idle timeout.".to_owned()));
                }
                if stream.send(Message::Ping(Vec::new())).await.is_err() {
                    break None;
                }
            }
        }
    };

    match close {
        Some((code, reason)) => {
            tally.code = code;
            let _ = tokio::time::timeout(config.close_timeout, async {
                // Frames accepted before the close are still delivered.
                if write_queued(&mut stream, queue, &mut tally).await.is_err() {
                    return;
                }
                if stream
                    .send(Message::close_with(code, truncate_reason(reason)))
                    .await
                    .is_err()
                {
                    return;
                }
                while let Some(Ok(message)) = stream.next().await {
                    if message.is_close() {
                        break;
                    }
                }
            })
            .await;
        }
        None => {
            let _ = tokio::time::timeout(config.close_timeout, stream.close()).await;
        }
    }
    connection.mark_ended();
    handler.on_close(&connection).await;
    drop(tally); // reports the close, after the handler let go of the connection
}

/// The close code and reason for an error tungstenite met while reading, as RFC 6455 and the
/// Autobahn reference servers answer it: 1002 for a protocol error, 1007 for text that is not
/// UTF-8, 1009 for a message over the limit. `None` when the peer is simply gone.
///
/// poem hands tungstenite's errors on as text only (`io::Error::other(error.to_string())`),
/// so this reads tungstenite's messages; a unit test pins each one against tungstenite's own
/// errors, so an upgrade that rewords them fails there rather than here.
pub fn read_error_close(error: &std::io::Error) -> Option<(u16, &'static str)> {
    let text = error.to_string();
    if text.starts_with("Space limit exceeded") {
        return Some((1009, "Message too big."));
    }
    if text.starts_with("UTF-8 encoding error") {
        return Some((1007, "Text is not valid UTF-8."));
    }
    let problem = text.strip_prefix("WebSocket protocol error: ")?;
    let reason = match problem {
        "Connection reset without closing handshake" => return None,
        "Reserved bits are non-zero" => "Reserved bits set without an extension.",
        "Received an unmasked frame from client" => "Client frames must be masked.",
        "Fragmented control frame" => "Control frames must not be fragmented.",
        "Control frame too big (payload must be 125 bytes or less)" => {
            "Control frames carry at most 125 bytes."
        }
        "Continue frame but nothing to continue" => "Continuation frame with nothing to continue.",
        _ if problem.starts_with("Unknown control frame type")
            || problem.starts_with("Unknown data frame type")
            || problem.starts_with("Encountered invalid opcode") =>
        {
            "Unknown opcode."
        }
        _ if problem.starts_with("While waiting for more fragments") => {
            "Expected a continuation frame."
        }
        _ => "WebSocket protocol error.",
    };
    Some((1002, reason))
}

/// Frames written between two flushes at most, so that a queue refilled as fast as it drains
/// still sees its frames flushed (and their count reported) in bounded batches.
const CORK: usize = 64;

/// Writes every queued frame, flushing once per batch rather than once per frame: a burst
/// (fan-out, chat) goes out in as few writes as the write buffer allows, as uWebSockets corks
/// its writes. `feed` waits while the socket cannot take more (tungstenite flushes before it
/// accepts a frame once a write would block), so a slow reader still leaves its frames in the
/// bounded queue, which fills and closes it with 1013. Frames count as out once flushed.
async fn write_queued(
    stream: &mut WebSocketStream,
    queue: &Queue,
    tally: &mut Tally,
) -> Result<(), std::io::Error> {
    loop {
        let mut fed = 0;
        while fed < CORK {
            let Some(frame) = queue.pop() else { break };
            stream.feed(text_message(&frame)).await?;
            fed += 1;
        }
        if fed == 0 {
            return Ok(());
        }
        stream.flush().await?;
        for _ in 0..fed {
            tally.frame_out();
        }
    }
}

/// A queued frame as a WebSocket text message. poem's `Message::Text` holds a `String`, so this
/// copies; frames are serde_json output, valid UTF-8 by construction.
fn text_message(frame: &bytes::Bytes) -> Message {
    Message::Text(String::from_utf8_lossy(frame).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_close_frame() {
        let long = "é".repeat(100);
        let cut = truncate_reason(long);
        assert!(cut.len() <= 123, "{}", cut.len());
        assert!(cut.ends_with("..."));
        assert_eq!(truncate_reason("short".to_owned()), "short");
    }

    #[test]
    fn tungstenite_read_errors_get_rfc_6455_close_codes() {
        use tokio_tungstenite::tungstenite::error::{CapacityError, Error, ProtocolError};
        use tokio_tungstenite::tungstenite::protocol::frame::coding::Data;
        // As poem passes them on.
        let close = |error: Error| read_error_close(&std::io::Error::other(error.to_string()));
        let protocol = |error: ProtocolError| close(Error::Protocol(error));
        assert_eq!(
            close(Error::Utf8("invalid utf-8 sequence".to_owned())),
            Some((1007, "Text is not valid UTF-8."))
        );
        assert_eq!(
            close(Error::Capacity(CapacityError::MessageTooLong {
                size: 2,
                max_size: 1
            })),
            Some((1009, "Message too big."))
        );
        assert_eq!(
            protocol(ProtocolError::NonZeroReservedBits),
            Some((1002, "Reserved bits set without an extension."))
        );
        assert_eq!(
            protocol(ProtocolError::UnmaskedFrameFromClient),
            Some((1002, "Client frames must be masked."))
        );
        assert_eq!(
            protocol(ProtocolError::FragmentedControlFrame),
            Some((1002, "Control frames must not be fragmented."))
        );
        assert_eq!(
            protocol(ProtocolError::ControlFrameTooBig),
            Some((1002, "Control frames carry at most 125 bytes."))
        );
        for opcode in [
            ProtocolError::InvalidOpcode(3),
            ProtocolError::UnknownControlFrameType(11),
            ProtocolError::UnknownDataFrameType(3),
        ] {
            assert_eq!(protocol(opcode), Some((1002, "Unknown opcode.")));
        }
        assert_eq!(
            protocol(ProtocolError::UnexpectedContinueFrame),
            Some((1002, "Continuation frame with nothing to continue."))
        );
        assert_eq!(
            protocol(ProtocolError::ExpectedFragment(Data::Text)),
            Some((1002, "Expected a continuation frame."))
        );
        assert_eq!(protocol(ProtocolError::ResetWithoutClosingHandshake), None);
        assert_eq!(
            close(Error::Io(std::io::ErrorKind::ConnectionReset.into())),
            None
        );
    }

    #[test]
    fn frame_errors_know_their_close_codes() {
        assert_eq!(FrameError::NotJson(String::new()).close_code(), 1003);
        assert_eq!(FrameError::Binary.close_code(), 1003);
        assert_eq!(FrameError::Contract(Vec::new()).close_code(), 1007);
    }
}
