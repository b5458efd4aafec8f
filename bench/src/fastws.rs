//! Baseline (e): a second ceiling, on `fastwebsockets` instead of tokio-tungstenite, in the
//! shape of [`crate::ceiling`] (one task per connection, a bounded queue, no framework), to
//! show whether another WebSocket library moves the limit.
//!
//! Same addresses and behaviour as the ceiling: `/ws/v1/echo` sends every message back;
//! `/ws/v1/alert?city_uuid=U` subscribes to `U`; `GET /publish?city=U&message=M` sends
//! `{"message":M}` to every subscriber of `U` (serialised once, shared by every queue);
//! `/ws/v1/chat?city_uuid=U` is `U`'s room, every text frame going to every member as it came.
//! The handshake is the ceiling's own (fastwebsockets' `upgrade` feature would bring hyper-util,
//! pin-project and a third base64 for the same few lines). Messages are capped at 64 KiB, as
//! the ceiling's; fastwebsockets' read buffer is its fixed 8 KiB (not configurable in 0.10).
//!
//! Unlike tungstenite, fastwebsockets' `read_frame` is not cancel-safe, so a subscriber cannot
//! `select!` between it and its queue. Its stream is split into the `TcpStream`'s owned halves
//! (no lock), and one task drives a read loop and a write loop side by side: whichever ends
//! first ends the connection. Subscribers do not answer pings (the load generator sends none):
//! the answer would have to cross from the read loop to the write loop. A subscriber's queue
//! is registered before the 101 is written (the ceiling registers it just after), so a client
//! that sees the 101 misses no alert.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use fastwebsockets::{
    FragmentCollector, FragmentCollectorRead, Frame, OpCode, Payload, Role, WebSocket,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::ceiling::{Topics, read_handshake};

/// The largest message accepted, as the ceiling's.
const MAX_MESSAGE: usize = 64 * 1024;

type State = Topics<Bytes>;

/// Serves on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let state = Arc::new(State::default());
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(connection(stream, state.clone()));
    }
}

async fn connection(mut stream: TcpStream, state: Arc<State>) {
    let Some((accept, path, topic)) = read_handshake(&mut stream, &state).await else {
        return;
    };
    // Subscribed before the 101 goes out: once a client is in, it misses nothing.
    let subscription = topic.as_ref().map(|(topic, _)| state.subscribe(topic));
    let upgraded = stream.write_all(accept.as_bytes()).await.is_ok();
    let mut socket = WebSocket::after_handshake(stream, Role::Server);
    socket.set_max_message_size(MAX_MESSAGE);
    match (topic, subscription) {
        (Some((topic, forward)), Some((id, queue))) => {
            if upgraded {
                subscriber(socket, &state, &topic, queue, forward).await;
            }
            state.unsubscribe(&topic, id);
        }
        _ if !upgraded => {}
        _ if path == "/ws/v1/echo" => echo(socket).await,
        _ => {
            let _ = socket.write_frame(Frame::close(1000, b"")).await;
        }
    }
}

/// Sends every message back as it came; the collector joins fragments (and checks the UTF-8
/// of whole text messages), as tungstenite does for the ceiling.
async fn echo(socket: WebSocket<TcpStream>) {
    let mut socket = FragmentCollector::new(socket);
    while let Ok(frame) = socket.read_frame().await {
        if frame.opcode == OpCode::Close {
            break;
        }
        let reply = matches!(frame.opcode, OpCode::Text | OpCode::Binary);
        if reply && socket.write_frame(frame).await.is_err() {
            break;
        }
    }
}

/// A subscriber of `topic` (a city, or a room), fed by `queue`; a chat member (`forward`) also
/// publishes every text frame it sends to the topic.
async fn subscriber(
    mut socket: WebSocket<TcpStream>,
    state: &State,
    topic: &str,
    mut queue: mpsc::Receiver<Bytes>,
    forward: bool,
) {
    // Close and ping frames come to us instead of being answered from the read half (see the
    // module's comment): a close ends the connection.
    socket.set_auto_close(false);
    socket.set_auto_pong(false);
    let (source, mut sink) = socket.split(TcpStream::into_split);
    let mut source = FragmentCollectorRead::new(source);
    let read = async {
        let mut no_obligation = |_: Frame<'_>| std::future::ready(Ok::<(), Infallible>(()));
        loop {
            match source.read_frame(&mut no_obligation).await {
                Ok(frame) if frame.opcode == OpCode::Close => break,
                Ok(frame) if forward && frame.opcode == OpCode::Text => {
                    state.publish(topic, Bytes::copy_from_slice(&frame.payload));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    };
    let write = async {
        while let Some(frame) = queue.recv().await {
            if sink
                .write_frame(Frame::text(Payload::Borrowed(&frame)))
                .await
                .is_err()
            {
                break;
            }
        }
    };
    tokio::select! {
        () = read => {}
        () = write => {}
    }
}
