//! The life of one WebSocket connection: upgrade, read and write loop, keepalive, limits, close.
//!
//! One task per connection does everything (reads, drains the outbound queue, pings), which
//! keeps the memory per idle connection small. Close codes follow RFC 6455 and the contract:
//! 1003 for a frame that is not JSON text, 1007 for JSON that breaks the contract, 1009 for a
//! frame over the size limit, 1013 for a client too slow to read, 1001 on idle timeout or
//! shutdown, 1011 for an internal error; for frames that break RFC 6455 itself, 1002 (protocol
//! error) or 1007 (text that is not UTF-8), with a reason that names the fault.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use poem::http::{HeaderValue, Method, StatusCode, Version, header};
use poem::{Body, OnUpgrade, Request, Response, Upgraded};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::connection::{Connection, Queue, Registration};
use crate::observe::{Observer, Refusal, Tally};
use crate::serve::{Decode, Reply};
use crate::stream::SocketStream;
use crate::{Reject, Violations};

/// Limits and timings of every connection of a server.
#[derive(Debug)]
pub struct Config {
    /// Largest message accepted, in bytes (larger: close 1009).
    pub max_message_size: usize,
    /// Largest single frame accepted, in bytes.
    pub max_frame_size: usize,
    /// Read buffer per connection. tungstenite's default (128 KiB) would cost over 1 GiB at
    /// 10,000 connections. 1 KiB holds this contract's frames (a few hundred bytes) in one read;
    /// a larger frame takes one read per KiB. tungstenite allocates it up front and zero-fills
    /// it each time the socket is polled for reading (every wake-up, a queued frame's too), so
    /// it costs memory and time per connection. Measured per authenticated subscriber at 10,000:
    /// 6.67 KiB with 2 KiB, 5.63 with 1 KiB (docs/benchmarks.md).
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
    /// How often every connection is pinged: one keepalive round for the whole server
    /// ([`keepalive_rounds`]), spread over the interval in slices, so a connection's first
    /// ping comes within one interval and the next ones one interval apart.
    pub ping_interval: Duration,
    /// A connection that sent nothing (not even a pong) for this long is closed (1001). It is
    /// checked at the keepalive rounds, counting from the first round after the client was
    /// last heard: the close comes at least this long after, and at most this long rounded
    /// up to whole ping intervals, plus one interval.
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
    /// Set once by [`Config::shut_down`]: new connections and streams are refused, SSE
    /// streams end.
    shutdown: watch::Sender<bool>,
    /// The WebSocket connections open now (from their accepted handshake to the end of their
    /// task): their count is [`Config::active_connections`], and a shutdown asks each to close
    /// (1001) as the application would, behind the frames already queued, through the
    /// connection's own waker. Nothing of the shutdown is polled by the socket loop per frame.
    open: Mutex<HashMap<u64, Connection>>,
    /// Told of every connection and refusal, when a server set one ([`Config::observe`]).
    observer: OnceLock<Arc<dyn Observer>>,
    /// The task running the keepalive rounds, started by the first upgrade on its runtime, and
    /// again by the next upgrade if that runtime has ended.
    keepalive: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_message_size: 64 * 1024,
            max_frame_size: 64 * 1024,
            read_buffer_size: 1024,
            write_buffer_size: 2 * 1024,
            outbound_queue: 256,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            max_connections: 10_000,
            close_timeout: Duration::from_secs(2),
            header_timeout: Duration::from_secs(10),
            max_connections_per_ip: 256,
            max_pending_connections: 0,
            shutdown: watch::channel(false).0,
            open: Mutex::new(HashMap::new()),
            observer: OnceLock::new(),
            keepalive: Mutex::new(None),
        }
    }
}

impl Config {
    /// Connections open right now.
    pub fn active_connections(&self) -> usize {
        self.open_connections().len()
    }

    /// Closes every connection with 1001 (after the frames already queued) and refuses new
    /// ones with 503. Resolves when no connection is left, or after `close_timeout` twice over.
    pub async fn shut_down(&self) {
        self.shutdown.send_replace(true);
        for connection in self.open_connections().values() {
            connection.close(1001, SHUTTING_DOWN);
        }
        let deadline = Instant::now() + self.close_timeout * 2;
        while self.active_connections() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn open_connections(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Connection>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
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

/// How many slices a keepalive round is spread over, at most: each connection is pinged in the
/// slice its id falls in, so the round wakes a slice of the connections at a time rather than
/// all of them in one instant (at 62,500 connections an instance, each ping about 10 µs of
/// CPU, that instant would hold a core for over half a second, and every delivery behind it).
const KEEPALIVE_SLICES: u32 = 32;

/// The shortest time between two slices: a shorter ping interval has fewer slices, down to one.
const KEEPALIVE_SLICE_GAP: Duration = Duration::from_millis(50);

/// The slices one round of `interval` is spread over, and the time between two of them.
fn keepalive_slices(interval: Duration) -> (u32, Duration) {
    let fit = interval.as_nanos() / KEEPALIVE_SLICE_GAP.as_nanos();
    let slices = fit.clamp(1, u128::from(KEEPALIVE_SLICES)) as u32;
    (slices, interval / slices)
}

/// Every `ping_interval`, asks each open connection to ping its client and to close if it was
/// not heard for `idle_timeout`, until the server's `Config` is dropped. One task and one timer
/// for the server rather than one per connection: a connection's task then polls no timer on
/// each frame it reads or writes, and carries none (its memory is most of an idle
/// connection's). The round wakes each task through the connection's attention, as a queued
/// frame does, one slice of the connections at a time ([`KEEPALIVE_SLICES`]); a connection is
/// pinged every `ping_interval` all the same. The connections of a slice are listed first and
/// woken after, so new ones are not held up.
async fn keepalive_rounds(config: Weak<Config>) {
    // `interval_at` refuses a zero period; a ping every millisecond is as often as it means.
    let Some(interval) = config
        .upgrade()
        .map(|config| config.ping_interval.max(Duration::from_millis(1)))
    else {
        return;
    };
    let (slices, gap) = keepalive_slices(interval);
    let mut ticks = tokio::time::interval_at(Instant::now() + gap, gap);
    // A slice that falls behind (a busy runtime) is not made up for with a burst of slices.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for slice in (0..u64::from(slices)).cycle() {
        ticks.tick().await;
        let Some(config) = config.upgrade() else {
            return;
        };
        let due: Vec<Connection> = config
            .open_connections()
            .values()
            .filter(|connection| connection.id() % u64::from(slices) == slice)
            .cloned()
            .collect();
        drop(config);
        for connection in due {
            connection.ask_ping();
        }
    }
}

/// Starts the keepalive rounds of `config` on this runtime unless they run already: the first
/// upgrade starts them, and an upgrade after the runtime that ran them ended (a `Config` kept
/// across runtimes) starts them again. One lock per handshake.
fn keep_alive(config: &Arc<Config>) {
    let mut rounds = config
        .keepalive
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if rounds.as_ref().is_none_or(|rounds| rounds.is_finished()) {
        *rounds = Some(tokio::spawn(keepalive_rounds(Arc::downgrade(config))));
    }
}

/// The close reason of every connection a shutdown closes.
const SHUTTING_DOWN: &str = "Server is shutting down.";

/// A connection listed in its [`Config`]'s open ones from its accepted handshake until
/// dropped: when its socket task ends, however it ends, or when the upgrade never completes.
struct Admitted {
    config: Arc<Config>,
    id: u64,
}

impl Admitted {
    /// One that opens while a shutdown runs is asked to close at once: the shutdown may have
    /// gone through the open ones before it was listed.
    fn new(config: Arc<Config>, connection: &Connection) -> Admitted {
        config
            .open_connections()
            .insert(connection.id(), connection.clone());
        if config.is_shutting_down() {
            connection.close(1001, SHUTTING_DOWN);
        }
        Admitted {
            config,
            id: connection.id(),
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.config.open_connections().remove(&self.id);
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
    /// A frame that is not JSON, with serde_json's account of where.
    pub fn not_json(error: serde_json::Error) -> FrameError {
        FrameError::NotJson(error.to_string())
    }

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
    serde_json::from_str(text).map_err(FrameError::not_json)
}

/// What the generated code plugs into [`upgrade`]: one per endpoint (channel address). The socket
/// loop parses and decodes every text frame itself, so a handler only sees messages the
/// contract allows ([`SocketHandler::on_message`]) or why a frame is not one
/// ([`SocketHandler::on_invalid`]).
pub trait SocketHandler: Send + Sync + 'static {
    /// The messages this address receives (one channel's inbound enum, or an enum of the
    /// inbound enums of the channels that share the address).
    type Inbound: Decode + Send;

    /// The handshake is accepted: runs before the `101` answer is sent, so a subscription made
    /// here is live by the time the client knows it is connected. Frames sent here wait in the
    /// queue and go out first. Must not wait for the client, which has no answer yet.
    fn on_open(&self, connection: &Connection) -> impl Future<Output = ()> + Send;

    /// A text frame that decoded as one of the address's messages; what to reply, if anything
    /// ([`crate::serve::reply`]). The socket loop writes the reply itself, straight after the
    /// frames queued before it.
    fn on_message(
        &self,
        connection: &Connection,
        message: Self::Inbound,
    ) -> impl Future<Output = Option<Reply>> + Send;

    /// A frame the contract does not allow: not JSON, binary, or none of the messages.
    fn on_invalid(
        &self,
        connection: &Connection,
        error: FrameError,
    ) -> impl Future<Output = ()> + Send;

    /// The connection has ended (after its close, or when it dropped).
    fn on_close(&self, connection: &Connection) -> impl Future<Output = ()> + Send;
}

/// A connection upgraded to a WebSocket: tungstenite's protocol straight on poem's upgraded
/// connection, driven by the connection's own task ([`SocketStream`]).
///
/// The handshake is answered here rather than by poem's `WebSocket` extractor, whose stream
/// converts every message to and from a `String` (a copy of each frame read and of each frame
/// written, per connection) and hands errors on as text. tungstenite reads text as `Utf8Bytes`
/// slices of its read buffer, writes the one serialised copy of a frame that every subscriber
/// shares, and keeps its errors typed.
type Socket = SocketStream<Upgraded>;

/// A handshake this server answers: the `101` response, and the connection it becomes once
/// that response is sent.
struct Upgrade {
    response: Response,
    upgrade: OnUpgrade,
}

/// Why a request to a channel address is not a handshake this server answers.
enum NotAHandshake {
    /// HTTP/1.0 has no upgrade.
    OldHttp,
    /// A `Sec-WebSocket-Version` other than 13.
    Version,
    /// Not GET, or a header of the handshake missing.
    Malformed,
    /// The connection cannot be taken over (it is not HTTP/1.1 with upgrades).
    NoUpgrade,
}

impl NotAHandshake {
    /// The plain-text answer that says why.
    fn response(self) -> Response {
        match self {
            NotAHandshake::OldHttp => plain_response(
                400,
                "WebSocket handshakes need HTTP/1.1 or later (RFC 6455).".to_owned(),
            ),
            NotAHandshake::Version => {
                let mut response = plain_response(
                    426,
                    "Unsupported WebSocket version; this server speaks version 13.".to_owned(),
                );
                // RFC 6455 4.4: say which version the server speaks.
                response.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
                response
            }
            NotAHandshake::Malformed => plain_response(
                400,
                "Not a WebSocket handshake: send GET with Connection: Upgrade, Upgrade: \
                 websocket, Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key."
                    .to_owned(),
            ),
            NotAHandshake::NoUpgrade => plain_response(
                400,
                "This connection cannot be upgraded to a WebSocket.".to_owned(),
            ),
        }
    }
}

impl Upgrade {
    /// Checks `request` is a WebSocket handshake (RFC 6455 4.2.1) and takes its connection.
    fn accept(request: &Request) -> Result<Upgrade, NotAHandshake> {
        if request.version() < Version::HTTP_11 {
            return Err(NotAHandshake::OldHttp);
        }
        let version = request.header(header::SEC_WEBSOCKET_VERSION);
        if version.is_some_and(|version| version.trim() != "13") {
            return Err(NotAHandshake::Version);
        }
        let key = request.header(header::SEC_WEBSOCKET_KEY);
        let (Some(key), Some(_)) = (key, version) else {
            return Err(NotAHandshake::Malformed);
        };
        if request.method() != Method::GET
            || !has_token(request, header::UPGRADE, "websocket")
            || !has_token(request, header::CONNECTION, "upgrade")
        {
            return Err(NotAHandshake::Malformed);
        }
        let upgrade = request
            .take_upgrade()
            .map_err(|_| NotAHandshake::NoUpgrade)?;
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(
                header::SEC_WEBSOCKET_ACCEPT,
                derive_accept_key(key.trim().as_bytes()),
            )
            .body(Body::empty());
        Ok(Upgrade { response, upgrade })
    }

    /// Runs `serve` on the WebSocket once the `101` is sent, in a task of its own, and returns
    /// the `101` to send. `serve` gets `None` when the upgrade never completes (the client went
    /// away first).
    fn then<F, Fut>(self, config: WebSocketConfig, serve: F) -> Response
    where
        F: FnOnce(Option<Socket>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let Upgrade { response, upgrade } = self;
        tokio::spawn(async move {
            let socket = match upgrade.await {
                Ok(upgraded) => Some(SocketStream::new(upgraded, config)),
                Err(_) => None,
            };
            serve(socket).await;
        });
        response
    }
}

/// Whether a header of `request` named `name` lists `token` (comma-separated, any case, as
/// `Connection: keep-alive, Upgrade` does).
fn has_token(request: &Request, name: header::HeaderName, token: &str) -> bool {
    request.headers().get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .any(|listed| listed.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// Sends a close frame with `code` and `reason`, then reads until the client's close, so that
/// it reads ours cleanly (callers bound it with `close_timeout`).
async fn close_and_wait(stream: &mut Socket, code: u16, reason: String) {
    if stream.send(close_message(code, reason)).await.is_err() {
        return;
    }
    while let Some(Ok(message)) = stream.next().await {
        if message.is_close() {
            break;
        }
    }
}

/// A close frame with `code` and `reason` (cut to what a close frame carries).
fn close_message(code: u16, reason: String) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(truncate_reason(reason)),
    }))
}

/// Answers a handshake that was refused: an HTTP status, or an upgrade followed by a close.
pub async fn refuse(request: &Request, config: Arc<Config>, reject: Reject) -> Response {
    match reject {
        Reject::Http { status, body } => plain_response(status, body),
        Reject::Close { code, reason } => {
            let upgrade = match Upgrade::accept(request) {
                Ok(upgrade) => upgrade,
                Err(refusal) => return refusal.response(),
            };
            upgrade.then(config.websocket(), move |socket| async move {
                let Some(mut socket) = socket else { return };
                let closing = close_and_wait(&mut socket, code, reason);
                let _ = tokio::time::timeout(config.close_timeout, closing).await;
            })
        }
    }
}

fn plain_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or_else(|_| {
        // A `Reject::Http` with a number that is no HTTP status: the server's bug, not the
        // client's, so it is logged and answered as one.
        tracing::error!(
            status,
            "a handshake was refused with an invalid HTTP status"
        );
        StatusCode::INTERNAL_SERVER_ERROR
    });
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
    if config.active_connections() >= config.max_connections {
        config.refused(request, Refusal::AtCapacity);
        return plain_response(
            503,
            "Server is at its connection limit; try again later.".to_owned(),
        );
    }
    let upgrade = match Upgrade::accept(request) {
        Ok(upgrade) => upgrade,
        Err(refusal) => {
            config.refused(request, Refusal::NotWebSocket);
            return refusal.response();
        }
    };
    keep_alive(&config);
    let connection = Connection::new(config.outbound_queue);
    let admitted = Admitted::new(config.clone(), &connection);
    let tally = Tally::new(
        config
            .observer
            .get()
            .map(|observer| (observer.clone(), observer.opened(request))),
    );
    // Opened before the `101` is sent: a client whose handshake is answered is subscribed (or
    // in its room) already, so nothing published after it knows it is connected passes it by.
    handler.on_open(&connection).await;
    upgrade.then(config.websocket(), move |socket| {
        serve(socket, connection, admitted, handler, tally)
    })
}

/// The connection's task: the socket (when the upgrade completed), then the end. It owns what
/// the connection needs, once: the size of this future is most of an idle connection's memory.
async fn serve<H: SocketHandler>(
    socket: Option<Socket>,
    connection: Connection,
    admitted: Admitted,
    handler: H,
    mut tally: Tally,
) {
    if let Some(socket) = socket {
        run(socket, &connection, &admitted.config, &handler, &mut tally).await;
    }
    connection.mark_ended();
    // Boxed: rarely run, so its state is not carried in every connection's task.
    Box::pin(handler.on_close(&connection)).await;
    drop(tally); // reports the close, after the handler let go of the connection
    drop(admitted);
}

/// Serves one WebSocket until it closes: reads, queued frames, keepalive, then the close.
async fn run<H: SocketHandler>(
    mut stream: Socket,
    connection: &Connection,
    config: &Config,
    handler: &H,
    tally: &mut Tally,
) {
    let queue = connection.queue();
    // When the client was last heard, to the keepalive round: a frame read only sets `heard`,
    // and the next round moves `last_seen` to its own time. The clock is read once per round
    // rather than once per frame; the check runs at rounds either way (see
    // `Config::idle_timeout` for the bounds this gives).
    let mut last_seen = Instant::now();
    let mut heard = false;
    let mut registration = Registration::default();

    // One stream, not split: a branch's future is dropped before its body runs, so a body may
    // write to the stream that another branch reads from. Both branches are polled each time
    // the task wakes (for each frame read, each frame queued), so each is cheap to poll: no
    // lock and no timer. Pings come through the connection's attention too
    // ([`keepalive_rounds`]), so an echo or a delivery polls no timer of its own.
    let close = 'serving: loop {
        tokio::select! {
            biased;
            // Frames queued by others (fan-out, replay), a close or a ping asked for.
            () = std::future::poll_fn(|cx| connection.poll_attention(cx, &mut registration)) => {
                let written = write_queued(&mut stream, queue, 0, tally);
                if let Err(close) = unless_closing(connection, &mut registration, written).await {
                    break 'serving close;
                }
                if connection.close_requested() {
                    break connection.take_close_request();
                }
                if connection.take_ping_due() {
                    let now = Instant::now();
                    if std::mem::take(&mut heard) {
                        last_seen = now;
                    }
                    if now.duration_since(last_seen) >= config.idle_timeout {
                        break Some((1001, "Idle timeout.".to_owned()));
                    }
                    let ping = stream.send(Message::Ping(Bytes::new()));
                    if let Err(close) = unless_closing(connection, &mut registration, ping).await {
                        break 'serving close;
                    }
                }
            }
            inbound = stream.next() => {
                heard = true;
                match inbound {
                    Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                        tally.frame_in();
                        // Frames queued while the handler runs (by it, or a delivery) are
                        // written below, so they need not wake this loop.
                        queue.replying(true);
                        let reply = match message {
                            Message::Text(text) => match H::Inbound::from_frame(text) {
                                Ok(message) => handler.on_message(connection, message).await,
                                Err(error) => {
                                    handler.on_invalid(connection, error).await;
                                    None
                                }
                            },
                            _ => {
                                handler.on_invalid(connection, FrameError::Binary).await;
                                None
                            }
                        };
                        queue.replying(false);
                        let mut fed = 0;
                        if let Some(Reply(reply)) = reply {
                            // Written here, by the loop that read the request, when nothing is
                            // queued ahead of it and the socket takes it at once; otherwise
                            // queued behind the frames that were first. Order holds either way.
                            // Once a close is asked for, nothing more is sent: the queue refuses.
                            if !queue.has_pending()
                                && !connection.close_requested()
                                && stream.takes_frames()
                            {
                                if stream.start_send_unpin(Message::Text(reply)).is_err() {
                                    break None;
                                }
                                fed = 1;
                            } else {
                                let _ = connection.send_text(reply);
                            }
                        }
                        let written = write_queued(&mut stream, queue, fed, tally);
                        if let Err(close) =
                            unless_closing(connection, &mut registration, written).await
                        {
                            break 'serving close;
                        }
                    }
                    // tungstenite queues the pong itself; flushing sends it.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        let flushed = stream.flush();
                        if let Err(close) =
                            unless_closing(connection, &mut registration, flushed).await
                        {
                            break 'serving close;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        tally.code = frame.map_or(1005, |frame| frame.code.into());
                        break None;
                    }
                    // Only ever written: reading yields whole messages.
                    Some(Ok(Message::Frame(_))) => {}
                    None => break None,
                    Some(Err(error)) => {
                        break read_error_close(&error)
                            .map(|(code, reason)| (code, reason.to_owned()));
                    }
                }
            }
        }
    };

    // Boxed: run once per connection, so its state is not carried in every connection's task.
    Box::pin(close_socket(stream, close, connection, config, tally)).await;
}

/// Ends the socket: with `close`'s code and reason after the frames already queued, waiting
/// (bounded) for the client's close; or, when the client closed or went away, by answering.
async fn close_socket(
    mut stream: Socket,
    close: Option<(u16, String)>,
    connection: &Connection,
    config: &Config,
    tally: &mut Tally,
) {
    match close {
        Some((code, reason)) => {
            tally.code = code;
            let _ = tokio::time::timeout(config.close_timeout, async {
                // Frames accepted before the close are still delivered.
                if write_queued(&mut stream, connection.queue(), 0, tally)
                    .await
                    .is_ok()
                {
                    close_and_wait(&mut stream, code, reason).await;
                }
            })
            .await;
        }
        None => {
            // The sink's close, not a `Message::Close` sent: after the peer's close tungstenite
            // refuses to send one, and so the close frame it queued in answer would never be
            // flushed; closing the sink flushes it.
            let _ = tokio::time::timeout(config.close_timeout, SinkExt::close(&mut stream)).await;
        }
    }
}

/// The close code and reason for an error tungstenite met while reading, as RFC 6455 and the
/// Autobahn reference servers answer it: 1002 for a protocol error, 1007 for text that is not
/// UTF-8, 1009 for a message over the limit. `None` when the peer is simply gone.
pub fn read_error_close(error: &WsError) -> Option<(u16, &'static str)> {
    let problem = match error {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            return Some((1009, "Message too big."));
        }
        WsError::Utf8(_) => return Some((1007, "Text is not valid UTF-8.")),
        WsError::Protocol(problem) => problem,
        _ => return None,
    };
    let reason = match problem {
        ProtocolError::ResetWithoutClosingHandshake => return None,
        ProtocolError::NonZeroReservedBits => "Reserved bits set without an extension.",
        ProtocolError::UnmaskedFrameFromClient => "Client frames must be masked.",
        ProtocolError::FragmentedControlFrame => "Control frames must not be fragmented.",
        ProtocolError::ControlFrameTooBig => "Control frames carry at most 125 bytes.",
        ProtocolError::UnexpectedContinueFrame => "Continuation frame with nothing to continue.",
        ProtocolError::UnknownControlFrameType(_)
        | ProtocolError::UnknownDataFrameType(_)
        | ProtocolError::InvalidOpcode(_) => "Unknown opcode.",
        ProtocolError::ExpectedFragment(_) => "Expected a continuation frame.",
        _ => "WebSocket protocol error.",
    };
    Some((1002, reason))
}

/// Waits for `write` (queued frames, a ping, a pong), unless a close is asked for first. A
/// client that stops reading leaves a write pending for as long as it holds the connection
/// open, and with it the connection's slot and its socket buffers; its close (1013 once its
/// queue filled, or a shutdown's 1001) must still come. A write that completes at once (nearly
/// all) never looks at the close.
///
/// `Err` is how the socket loop ends: `None` when the write failed (the client is gone), the
/// close asked for otherwise, which `close_socket` then sends behind what is queued, within
/// `close_timeout`.
async fn unless_closing<F>(
    connection: &Connection,
    registration: &mut Registration,
    write: F,
) -> Result<(), Option<(u16, String)>>
where
    F: Future<Output = Result<(), WsError>>,
{
    tokio::select! {
        biased;
        written = write => written.map_err(|_| None),
        () = std::future::poll_fn(|cx| connection.poll_close_requested(cx, registration)) => {
            Err(connection.take_close_request())
        }
    }
}

/// Frames written between two flushes at most, so that a queue refilled as fast as it drains
/// still sees its frames flushed (and their count reported) in bounded batches.
const CORK: usize = 64;

/// Writes every queued frame after the `fed` already given to the stream (a reply), flushing
/// once per batch rather than once per frame (and once for those `fed`, with none queued): a burst
/// (fan-out, chat) goes out in as few writes as the write buffer allows, as uWebSockets corks
/// its writes. Each frame waits until the socket can take more (tungstenite flushes before it
/// accepts a frame once a write would block), so a slow reader still leaves its frames in the
/// bounded queue, which fills and closes it with 1013. Frames count as out once flushed.
///
/// Given up at an `await` (see [`unless_closing`]), it loses no frame: a frame leaves the queue
/// only once the socket has room for it, and then goes into tungstenite's buffer at once.
async fn write_queued(
    stream: &mut Socket,
    queue: &Queue,
    mut fed: usize,
    tally: &mut Tally,
) -> Result<(), WsError> {
    loop {
        while fed < CORK {
            std::future::poll_fn(|cx| stream.poll_ready_unpin(cx)).await?;
            let Some(frame) = queue.pop() else { break };
            // The frame's one serialised copy, shared with every other subscriber of it.
            stream.start_send_unpin(Message::Text(frame))?;
            fed += 1;
        }
        if fed == 0 {
            return Ok(());
        }
        stream.flush().await?;
        tally.frames_out(fed);
        fed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keepalive_round_is_sliced_down_to_one_slice_for_short_intervals() {
        let cases = [
            (Duration::from_secs(30), 32, Duration::from_millis(937)),
            (Duration::from_millis(800), 16, Duration::from_millis(50)),
            (Duration::from_millis(50), 1, Duration::from_millis(50)),
            (Duration::from_millis(1), 1, Duration::from_millis(1)),
        ];
        for (interval, slices, gap) in cases {
            let (found_slices, found_gap) = keepalive_slices(interval);
            assert_eq!(found_slices, slices, "{interval:?}");
            // Whole milliseconds here; the gap itself is `interval / slices` to the nanosecond.
            assert_eq!(found_gap.as_millis(), gap.as_millis(), "{interval:?}");
        }
    }

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
        use tokio_tungstenite::tungstenite::protocol::frame::coding::Data;
        let close = |error: WsError| read_error_close(&error);
        let protocol = |error: ProtocolError| close(WsError::Protocol(error));
        assert_eq!(
            close(WsError::Utf8("invalid utf-8 sequence".to_owned())),
            Some((1007, "Text is not valid UTF-8."))
        );
        assert_eq!(
            close(WsError::Capacity(CapacityError::MessageTooLong {
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
            close(WsError::Io(std::io::ErrorKind::ConnectionReset.into())),
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
