//! tungstenite's WebSocket protocol driven straight on an async connection, by the one task
//! that owns it: the stream and sink every server socket reads and writes through.
//!
//! tokio-tungstenite's `WebSocketStream` lets its stream and its sink be polled from two tasks,
//! so it gives tungstenite a proxy waker with two slots and, on every poll, registers the
//! caller's waker in both slots of both proxies (four atomic registrations per read, as many
//! per write); a wake-up then goes through the proxy to both. A server socket is read and
//! written by its own task only, so here the task's waker goes to the connection as it is: no
//! proxy, no registration beyond the one tokio's reactor makes. Profiled on the echo path,
//! the proxies were the largest single cost in user space after the JSON (about 3 % of the
//! server's CPU per echo).
//!
//! Everything else is tungstenite's `WebSocketContext`, as tokio-tungstenite drives it: the
//! same frames, limits, automatic pongs and close handshake, the same errors, and the same
//! `Stream` and `Sink` behaviour (the stream ends after the close or the first error).

// The protocol steps return tungstenite's own `Result`, whose error type is tungstenite's to
// size, not ours.
#![allow(clippy::result_large_err)]

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};

/// A server's WebSocket on `S` (poem's upgraded connection), for one task.
pub(crate) struct SocketStream<S> {
    io: S,
    protocol: WebSocketContext,
    /// The stream yielded its last item (after a close or an error).
    ended: bool,
    /// `false` once a write would have blocked: the next `poll_ready` flushes first.
    ready: bool,
    /// A close frame is queued; closing now only flushes.
    closing: bool,
}

/// `S` seen as blocking `Read` and `Write` for tungstenite, within one poll: a write or read
/// that would wait registers `cx`'s waker with the connection and reports `WouldBlock`.
struct Polled<'a, 'b, S> {
    io: &'a mut S,
    cx: &'a mut Context<'b>,
}

impl<S: AsyncRead + Unpin> Read for Polled<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut *self.io).poll_read(self.cx, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(error)) => Err(error),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<S: AsyncWrite + Unpin> Write for Polled<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match Pin::new(&mut *self.io).poll_flush(self.cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// `WouldBlock` is `Pending` (the waker is registered); anything else is the outcome.
fn pending_if_would_block<T>(result: Result<T, WsError>) -> Poll<Result<T, WsError>> {
    match result {
        Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        other => Poll::Ready(other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> SocketStream<S> {
    /// The server side of a WebSocket whose handshake is done.
    pub(crate) fn new(io: S, config: WebSocketConfig) -> SocketStream<S> {
        SocketStream {
            io,
            protocol: WebSocketContext::new(Role::Server, Some(config)),
            ended: false,
            ready: true,
            closing: false,
        }
    }

    /// Whether a frame given now goes straight into tungstenite's buffer: no write has blocked
    /// since the last flush (so `poll_ready` would answer at once).
    pub(crate) fn takes_frames(&self) -> bool {
        self.ready
    }

    /// Runs one step of the protocol with the connection seen through `cx`.
    fn with<R>(
        &mut self,
        cx: &mut Context<'_>,
        step: impl FnOnce(&mut WebSocketContext, &mut Polled<'_, '_, S>) -> R,
    ) -> R {
        let mut polled = Polled {
            io: &mut self.io,
            cx,
        };
        step(&mut self.protocol, &mut polled)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for SocketStream<S> {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match std::task::ready!(pending_if_would_block(
            this.with(cx, |protocol, io| protocol.read(io))
        )) {
            Ok(message) => Poll::Ready(Some(Ok(message))),
            Err(error) => {
                this.ended = true;
                match error {
                    WsError::AlreadyClosed | WsError::ConnectionClosed => Poll::Ready(None),
                    error => Poll::Ready(Some(Err(error))),
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for SocketStream<S> {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        if this.ready {
            return Poll::Ready(Ok(()));
        }
        // A write blocked: flush what is buffered before taking more.
        let flushed = std::task::ready!(pending_if_would_block(
            this.with(cx, |protocol, io| protocol.flush(io))
        ));
        this.ready = true;
        Poll::Ready(flushed)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), WsError> {
        let this = self.get_mut();
        // `Sink` gives no context here. A write that would block leaves the frame in
        // tungstenite's buffer; the `poll_ready` or `poll_flush` that must follow retries it
        // with the task's waker, so nothing waits on this one.
        let mut no_context = Context::from_waker(Waker::noop());
        match this.with(&mut no_context, |protocol, io| protocol.write(io, message)) {
            Ok(()) => {
                this.ready = true;
                Ok(())
            }
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                this.ready = false;
                Ok(())
            }
            Err(error) => {
                this.ready = true;
                Err(error)
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        let flushed = std::task::ready!(pending_if_would_block(
            this.with(cx, |protocol, io| protocol.flush(io))
        ));
        this.ready = true;
        // The close handshake just completed: flushed, not failed.
        Poll::Ready(match flushed {
            Err(WsError::ConnectionClosed) => Ok(()),
            other => other,
        })
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        this.ready = true;
        let closed = if this.closing {
            // The close frame is queued already; flushing drives the handshake on.
            this.with(cx, |protocol, io| protocol.flush(io))
        } else {
            this.with(cx, |protocol, io| protocol.close(io, None))
        };
        match closed {
            Ok(()) | Err(WsError::ConnectionClosed) => Poll::Ready(Ok(())),
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                this.closing = true;
                Poll::Pending
            }
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}
