//! One accepted WebSocket connection as the application sees it: a cheap, cloneable handle.
//!
//! Sending never waits: frames go into a bounded queue drained by the connection's own task
//! (see [`crate::socket::upgrade`]). When the queue is full the client is not keeping up; the
//! connection is closed (1013) instead of letting it slow the publisher or other clients.
//!
//! The queue allocates nothing until a frame is queued: most connections (echo, idle
//! subscribers) never hold one, and at 10,000 connections a channel's up-front block would cost
//! 15 MiB.
//!
//! Only [`Frame`]s are queued, and a frame can only be made from a message the contract defines
//! ([`Outgoing`]): there is no public way to put raw text on a socket. The generated
//! `<Channel>Connection` handles take frames of their channel's messages only, so what a server
//! sends, fan-out and replay included, is typed from the value it was built from down to here.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::sync::{Notify, watch};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::{Payload, Violations};

/// Close code used when a client does not read fast enough (RFC 6455 "Try Again Later").
pub const CLOSE_TOO_SLOW: u16 = 1013;

/// What a [`Frame`] can be made of: a message the contract lets a server send.
///
/// Every message type of the contract is one (through [`Payload`], checked against its schema).
/// So are generated enums of several messages (a reply that may be one of several: checked by
/// decoding it as one of them) and `serde_json::Value`, the type of a message whose payload
/// has no schema.
pub trait Outgoing: serde::Serialize {
    /// Checks the message's JSON against the contract: every violation, with where it is.
    fn check(value: &serde_json::Value) -> Result<(), Vec<Violations>>;

    /// The message's wire text: serialised, unless it is JSON text already.
    fn to_text(&self) -> Result<Utf8Bytes, serde_json::Error> {
        serde_json::to_string(self).map(Utf8Bytes::from)
    }
}

impl<T: Payload> Outgoing for T {
    fn check(value: &serde_json::Value) -> Result<(), Vec<Violations>> {
        T::validator()
            .check(value)
            .map_err(|violations| vec![violations])
    }

    fn to_text(&self) -> Result<Utf8Bytes, serde_json::Error> {
        match self.json() {
            Some(json) => Ok(json.text()),
            None => serde_json::to_string(self).map(Utf8Bytes::from),
        }
    }
}

/// A message without a payload schema: the contract allows any JSON.
impl Outgoing for serde_json::Value {
    fn check(_: &serde_json::Value) -> Result<(), Vec<Violations>> {
        Ok(())
    }
}

/// A message serialised once (compact JSON, non-ASCII kept as is) and shareable between
/// connections: cloning a frame clones a reference, not the bytes. It is kept as tungstenite's
/// `Utf8Bytes`, the payload of a text message, so every subscriber's socket writes the one
/// serialised copy: no per-connection copy and no UTF-8 check on the way out.
///
/// `T` is the message's type: a frame keeps it, so a frame of one message cannot be handed to
/// a send, an outlet or a fan-out that expects another.
pub struct Frame<T> {
    text: Utf8Bytes,
    message: PhantomData<fn() -> T>,
}

impl<T: Outgoing> Frame<T> {
    /// Serialises `message` to its wire form. Debug builds (and so the tests) also check it
    /// against the contract, so a server that sends what the contract forbids fails loudly.
    pub fn new(message: &T) -> Result<Frame<T>, SendError> {
        let text = message
            .to_text()
            .map_err(|error| SendError::Serialize(error.to_string()))?;
        if cfg!(debug_assertions) {
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|error| SendError::Serialize(error.to_string()))?;
            T::check(&value).map_err(contract_error)?;
        }
        Ok(Frame {
            text,
            message: PhantomData,
        })
    }

    /// A frame serialised by another process (an instance of the same server, through a
    /// message bus), kept byte for byte so every subscriber gets exactly what the publisher
    /// sent. It is checked against the contract here, in every build: bytes from outside the
    /// process are only a `Frame<T>` once they are known to be a `T`. Once per publication, not
    /// per subscriber.
    pub fn parse(text: Bytes) -> Result<Frame<T>, SendError> {
        let text = Utf8Bytes::try_from(text)
            .map_err(|error| SendError::Contract(format!("not UTF-8 text: {error}")))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|error| SendError::Contract(format!("not JSON: {error}")))?;
        T::check(&value).map_err(contract_error)?;
        Ok(Frame {
            text,
            message: PhantomData,
        })
    }
}

fn contract_error(violations: Vec<Violations>) -> SendError {
    let described: Vec<String> = violations.iter().map(ToString::to_string).collect();
    SendError::Contract(described.join(" | "))
}

impl<T> Frame<T> {
    /// The JSON text of the frame (for transports that carry text another way, like SSE).
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    /// The serialised text itself, for a frame made for one connection (a reply): it is written
    /// or queued as it is, with no reference count to take and drop.
    pub(crate) fn into_text(self) -> Utf8Bytes {
        self.text
    }

    /// The wire bytes, shared (cloning is a reference count, not a copy).
    #[cfg(test)]
    fn bytes(&self) -> Bytes {
        Bytes::from(self.text.clone())
    }
}

impl<T> Clone for Frame<T> {
    fn clone(&self) -> Self {
        Frame {
            text: self.text.clone(),
            message: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Frame<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Frame").field(&self.as_str()).finish()
    }
}

/// Why a frame could not be made or queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The connection is closed, or closing: nothing more is sent on it.
    #[error("the connection is closed")]
    Closed,
    /// The outbound queue was full: the client is closed with 1013.
    #[error("the client is not reading fast enough; the connection is being closed")]
    TooSlow,
    /// serde_json could not serialise the message.
    #[error("the message could not be serialised: {0}")]
    Serialize(String),
    /// The message breaks the contract's schema (checked in debug builds).
    #[error("the message does not match the contract: {0}")]
    Contract(String),
}

/// The frames waiting for the socket task, bounded.
pub(crate) struct Queue {
    frames: Mutex<VecDeque<Utf8Bytes>>,
    capacity: usize,
    /// Whether `frames` holds any, readable without the lock. Set and cleared under it. With
    /// `replying`, it is one side of a two-flag handshake (each side stores its flag, then
    /// loads the other's), so both are accessed `SeqCst`: at least one side sees the other's
    /// store, and a frame pushed while the task stops replying is either drained by it or
    /// wakes it.
    pending: AtomicBool,
    /// Set once the socket has ended: nothing more is queued.
    ended: AtomicBool,
    /// The socket task's waker, woken when a frame is queued or a close is asked for. An
    /// `AtomicWaker` rather than a `Notify`: the task polls it every time it wakes (for every
    /// frame it reads), and a waiting `Notified` takes the `Notify`'s lock on each poll.
    attention: AtomicWaker,
    /// Wake-ups of `attention` so far, counted before each one: the socket task registers
    /// again only when one may have taken its waker ([`Registration`]).
    wakes: AtomicU64,
    /// Set while the socket task runs a handler on an inbound frame: it writes the queue out
    /// itself when the handler returns, so a frame queued meanwhile (a chat message the sender
    /// also gets, a delivery) need not wake it. A push that still reads it set stored
    /// `pending` before the task cleared it and read `pending` (the task clears it before
    /// draining), so its frame is drained; one that reads it stale only wakes the task for
    /// nothing.
    replying: AtomicBool,
    /// Wakes a sender waiting for room ([`Connection::send_frame_waiting`]).
    room: Notify,
    /// Senders waiting for room, so that taking a frame notifies `room` only when one does
    /// (nearly never: replays are short). A waiter counts itself before it tries to push, and
    /// `pop` reads the count after it took a frame, both `SeqCst`: either `pop` sees the waiter
    /// and notifies it, or the waiter's push sees the room `pop` made.
    waiting_for_room: AtomicUsize,
}

/// What the socket task left on its connection's `attention`: its waker, and the wake-up
/// count when it did. Kept by the task, one per connection.
#[derive(Default)]
pub(crate) struct Registration {
    wakes: u64,
    waker: Option<Waker>,
}

enum Refused {
    Full,
    Ended,
}

impl Queue {
    fn new(capacity: usize) -> Queue {
        Queue {
            frames: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            pending: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            attention: AtomicWaker::new(),
            wakes: AtomicU64::new(0),
            replying: AtomicBool::new(false),
            room: Notify::new(),
            waiting_for_room: AtomicUsize::new(0),
        }
    }

    fn push(&self, frame: Utf8Bytes) -> Result<(), Refused> {
        let wake = {
            let mut frames = self
                .frames
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if self.ended.load(Ordering::Acquire) {
                return Err(Refused::Ended);
            }
            if frames.len() >= self.capacity {
                return Err(Refused::Full);
            }
            frames.push_back(frame);
            self.pending.store(true, Ordering::SeqCst);
            !self.replying.load(Ordering::SeqCst)
        };
        if wake {
            self.wake_task();
        }
        Ok(())
    }

    /// Wakes the socket task, counting the wake-up first: a task that reads the count after
    /// this wake-up took its waker sees that it must register again.
    fn wake_task(&self) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.attention.wake();
    }

    /// Leaves the task's waker on `attention`, unless it is there already: the same waker,
    /// registered since the last wake-up (which takes it). A registration is two atomic swaps,
    /// and the task polls its connection every time it wakes, for every frame it reads.
    fn register(&self, cx: &Context<'_>, registration: &mut Registration) {
        // Read before registering: a wake-up counted after this read takes either the waker
        // registered below or the one before, and the next poll sees the count moved.
        let wakes = self.wakes.load(Ordering::SeqCst);
        let same_waker = registration
            .waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        if same_waker && registration.wakes == wakes {
            return;
        }
        self.attention.register(cx.waker());
        registration.wakes = wakes;
        if !same_waker {
            registration.waker = Some(cx.waker().clone());
        }
    }

    /// The socket task is about to run a handler on an inbound frame (`true`), or it has
    /// returned and the task now writes the queue out itself (`false`).
    pub(crate) fn replying(&self, replying: bool) {
        self.replying.store(replying, Ordering::SeqCst);
    }

    /// Whether a frame is queued, read without the lock.
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }

    /// The next frame, if any. An empty queue answers without its lock: draining ends with
    /// that answer, once per wake-up.
    pub(crate) fn pop(&self) -> Option<Utf8Bytes> {
        if !self.pending.load(Ordering::SeqCst) {
            return None;
        }
        let mut frames = self
            .frames
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let frame = frames.pop_front();
        if frames.is_empty() {
            self.pending.store(false, Ordering::SeqCst);
            if frames.capacity() > 16 {
                // A burst is over: give its memory back rather than keep it per connection.
                frames.shrink_to_fit();
            }
        }
        drop(frames);
        if frame.is_some() && self.waiting_for_room.load(Ordering::SeqCst) > 0 {
            self.room.notify_one();
        }
        frame
    }
}

struct Shared {
    id: u64,
    queue: Queue,
    /// The first close requested wins; the socket task reads it after draining the queue.
    close_request: Mutex<Option<(u16, String)>>,
    close_requested: AtomicBool,
    /// Set by the server's keepalive round ([`Connection::ask_ping`]), taken by the socket task.
    ping_due: AtomicBool,
    closed: watch::Sender<bool>,
}

/// A handle on one open WebSocket connection.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.shared.id)
            .finish()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Connection {
    pub(crate) fn new(queue_len: usize) -> Connection {
        let queue = Queue::new(queue_len);
        let (closed, _) = watch::channel(false);
        let shared = Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            queue,
            close_request: Mutex::new(None),
            close_requested: AtomicBool::new(false),
            ping_due: AtomicBool::new(false),
            closed,
        };
        Connection {
            shared: Arc::new(shared),
        }
    }

    /// The queue the socket task drains.
    pub(crate) fn queue(&self) -> &Queue {
        &self.shared.queue
    }

    /// A process-unique id, for logs and registries.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Queues a frame. Never waits; a full queue closes the connection with 1013.
    ///
    /// Any message type is accepted here: this is what the generated `<Channel>Connection`
    /// handles call, and they are the ones that only take their channel's messages.
    pub fn send_frame<T>(&self, frame: &Frame<T>) -> Result<(), SendError> {
        self.send_text(frame.text.clone())
    }

    /// Queues a frame, waiting while the queue is full: for replaying history from a task of
    /// its own, paced by the client. Live fan-out uses [`Connection::send_frame`], which never
    /// waits.
    pub async fn send_frame_waiting<T>(&self, frame: &Frame<T>) -> Result<(), SendError> {
        // Counted while it may wait, also when the caller drops this future.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let counter = &self.shared.queue.waiting_for_room;
        counter.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(counter);
        loop {
            if self.shared.close_requested.load(Ordering::Acquire) {
                return Err(SendError::Closed);
            }
            // Registered before trying, so room made in between is not missed.
            let room = self.shared.queue.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.shared.queue.push(frame.text.clone()) {
                Ok(()) => return Ok(()),
                Err(Refused::Ended) => return Err(SendError::Closed),
                Err(Refused::Full) => {
                    // Woken by the socket task taking a frame, or by the connection ending.
                    tokio::select! {
                        () = &mut room => {}
                        () = self.closed() => return Err(SendError::Closed),
                    }
                }
            }
        }
    }

    /// Queues serialised text: a shared frame's copy, or a reply that cannot be written at once.
    pub(crate) fn send_text(&self, text: Utf8Bytes) -> Result<(), SendError> {
        if self.shared.close_requested.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        match self.shared.queue.push(text) {
            Ok(()) => Ok(()),
            Err(Refused::Full) => {
                self.close_too_slow();
                Err(SendError::TooSlow)
            }
            Err(Refused::Ended) => Err(SendError::Closed),
        }
    }

    /// Closes the connection with 1013 because its client does not read fast enough: what a
    /// full queue does, and what a server does for a client that fell behind elsewhere (a
    /// backlog held during a replay).
    pub fn close_too_slow(&self) {
        self.close(CLOSE_TOO_SLOW, "Client is not reading fast enough.");
    }

    /// Asks for the connection to close with `code` and `reason` once the frames already
    /// queued are written. The first request wins.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        if let Ok(mut request) = self.shared.close_request.lock()
            && request.is_none()
        {
            *request = Some((code, reason.into()));
            self.shared.close_requested.store(true, Ordering::Release);
            self.shared.queue.wake_task();
        }
    }

    /// Whether a close was requested or the socket ended.
    pub fn is_closed(&self) -> bool {
        self.shared.close_requested.load(Ordering::Acquire) || *self.shared.closed.borrow()
    }

    /// Resolves once the socket has ended (for whatever reason).
    pub async fn closed(&self) {
        let mut receiver = self.shared.closed.subscribe();
        // An error means the sender is gone, which also means closed.
        let _ = receiver.wait_for(|closed| *closed).await;
    }

    pub(crate) fn take_close_request(&self) -> Option<(u16, String)> {
        self.shared
            .close_request
            .lock()
            .ok()
            .and_then(|mut r| r.take())
    }

    /// Asks the socket task to check the client was heard lately and to ping it: the server's
    /// keepalive round does, every ping interval, for every open connection.
    pub(crate) fn ask_ping(&self) {
        self.shared.ping_due.store(true, Ordering::Release);
        self.shared.queue.wake_task();
    }

    /// Whether a ping was asked for since the last call.
    pub(crate) fn take_ping_due(&self) -> bool {
        self.shared.ping_due.load(Ordering::Acquire)
            && self.shared.ping_due.swap(false, Ordering::AcqRel)
    }

    /// Ready when the socket task has something to do besides reading: frames are queued, a
    /// close or a ping was asked for.
    pub(crate) fn poll_attention(
        &self,
        cx: &mut Context<'_>,
        registration: &mut Registration,
    ) -> Poll<()> {
        self.poll_until(cx, registration, |shared| {
            shared.queue.pending.load(Ordering::Acquire)
                || shared.close_requested.load(Ordering::Acquire)
                || shared.ping_due.load(Ordering::Acquire)
        })
    }

    /// Ready once a close was asked for.
    pub(crate) fn poll_close_requested(
        &self,
        cx: &mut Context<'_>,
        registration: &mut Registration,
    ) -> Poll<()> {
        self.poll_until(cx, registration, |shared| {
            shared.close_requested.load(Ordering::Acquire)
        })
    }

    /// Ready once `set` holds. Registers the task's waker first, so nothing set in between is
    /// missed.
    fn poll_until(
        &self,
        cx: &mut Context<'_>,
        registration: &mut Registration,
        set: impl Fn(&Shared) -> bool,
    ) -> Poll<()> {
        self.shared.queue.register(cx, registration);
        if set(&self.shared) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Whether a close was asked for (by the application, a full queue or a shutdown).
    pub(crate) fn close_requested(&self) -> bool {
        self.shared.close_requested.load(Ordering::Acquire)
    }

    pub(crate) fn mark_ended(&self) {
        self.shared.close_requested.store(true, Ordering::Release);
        self.shared.queue.ended.store(true, Ordering::Release);
        self.shared.closed.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Validator;

    /// A message type as the generator makes them: serialisable, with its schema.
    #[derive(serde::Serialize)]
    struct Greeting {
        text: String,
    }

    static GREETING: Validator = Validator::new(
        "Greeting",
        r#"{"type":"object","required":["text"],"properties":{"text":{"type":"string","maxLength":5}}}"#,
    );

    impl Payload for Greeting {
        fn validator() -> &'static Validator {
            &GREETING
        }
    }

    #[test]
    fn a_parsed_frame_keeps_the_bytes_it_was_given() {
        // Spacing and key order as another process wrote them: kept, not re-serialised.
        let sent = Bytes::from_static(br#"{ "text" : "h\u00e9" }"#);
        let frame = Frame::<Greeting>::parse(sent.clone()).unwrap();
        assert_eq!(frame.bytes(), sent);
    }

    #[test]
    fn bytes_that_are_not_the_message_are_not_a_frame_of_it() {
        for (text, why) in [
            (
                &br#"{"text":"too long"}"#[..],
                "/text: \"too long\" is longer than 5",
            ),
            (br#"{"other":1}"#, "\"text\" is a required property"),
            (b"not json", "not JSON"),
        ] {
            let error = Frame::<Greeting>::parse(Bytes::from_static(text)).unwrap_err();
            match error {
                SendError::Contract(message) => assert!(message.contains(why), "{message}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_message_without_a_schema_is_any_json() {
        let frame = Frame::new(&serde_json::json!({"anything": [1, "two"]})).unwrap();
        assert_eq!(frame.as_str(), r#"{"anything":[1,"two"]}"#);
    }

    #[tokio::test]
    async fn frames_reach_the_queue_as_serialised_once() {
        let connection = Connection::new(4);
        let frame = Frame::new(&Greeting {
            text: "hé".to_owned(),
        })
        .unwrap();
        connection.send_frame(&frame).unwrap();
        connection.send_frame_waiting(&frame).await.unwrap();
        let first = connection.queue().pop().unwrap();
        let second = connection.queue().pop().unwrap();
        assert_eq!(first, r#"{"text":"hé"}"#);
        // The same allocation, shared: serialised once, whatever the number of sends.
        assert_eq!(first.as_ptr(), second.as_ptr());
    }
}
