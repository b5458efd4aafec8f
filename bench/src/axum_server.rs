//! Baseline (d): what a Rust user would write with axum instead, the way axum's own WebSocket
//! examples do it (`examples/websockets` and `examples/chat`): a `Router`, `WebSocketUpgrade`
//! extractors, `axum::serve`, and a `tokio::sync::broadcast` channel per city whose receivers
//! each get a task of their own.
//!
//! Same addresses as the ceiling: `/ws/v1/echo` sends every text or binary message back;
//! `/ws/v1/alert?city_uuid=U` subscribes to `U`; `GET /publish?city=U&message=M` sends
//! `{"message":M}` to every subscriber of `U` and answers 200 with their count;
//! `/ws/v1/chat?city_uuid=U` is `U`'s room, every text message going to every member (itself
//! included) as it came.
//!
//! Not tuned beyond what a typical user writes, with two exceptions made so that the figures
//! compare the framework rather than a setting: the read buffer is 4 KiB (tungstenite's default
//! of 128 KiB per connection, which axum passes on, would dominate the idle memory figure; wfs
//! and the ceiling read through 4 KiB), and messages are capped at 64 KiB like theirs. Sockets
//! get `TCP_NODELAY` as the ceiling's do (axum's `ListenerExt::tap_io` documents exactly this).
//! The broadcast channels hold 256 messages, the ceiling's queue bound (the chat example's 100
//! would drop alerts of the burst); a receiver that lags skips what it missed, as the
//! `Lagged` error says, rather than ending its connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{any, get};
use axum::serve::ListenerExt;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// Per-connection settings (see the module's comment).
const READ_BUFFER: usize = 4 * 1024;
const MAX_MESSAGE: usize = 64 * 1024;
/// Messages a city's channel holds for its slowest receiver.
const CHANNEL: usize = 256;

#[derive(Default)]
struct AppState {
    cities: Mutex<HashMap<String, broadcast::Sender<String>>>,
}

impl AppState {
    /// The channel of `topic`, made on first use.
    fn channel(&self, topic: &str) -> broadcast::Sender<String> {
        let mut cities = self.cities.lock().unwrap_or_else(PoisonError::into_inner);
        cities
            .entry(topic.to_owned())
            .or_insert_with(|| broadcast::channel(CHANNEL).0)
            .clone()
    }
}

#[derive(Deserialize)]
struct CityQuery {
    city_uuid: String,
}

#[derive(Deserialize)]
struct PublishQuery {
    city: String,
    message: String,
}

/// Serves on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let state = Arc::new(AppState::default());
    let app = Router::new()
        .route("/ws/v1/echo", any(echo_handler))
        .route("/ws/v1/alert", any(alert_handler))
        .route("/ws/v1/chat", any(chat_handler))
        .route("/publish", get(publish))
        .with_state(state);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

fn configured(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
}

async fn echo_handler(ws: WebSocketUpgrade) -> Response {
    configured(ws).on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = matches!(message, Message::Text(_) | Message::Binary(_));
        if reply && socket.send(message).await.is_err() {
            break;
        }
    }
}

async fn alert_handler(
    ws: WebSocketUpgrade,
    Query(query): Query<CityQuery>,
    State(state): State<Arc<AppState>>,
) -> Response {
    // Subscribed before the 101 goes out: once a client is in, it misses nothing.
    let channel = state.channel(&query.city_uuid);
    let rx = channel.subscribe();
    configured(ws).on_upgrade(move |socket| member(socket, channel, rx, false))
}

async fn chat_handler(
    ws: WebSocketUpgrade,
    Query(query): Query<CityQuery>,
    State(state): State<Arc<AppState>>,
) -> Response {
    // Rooms are channels of their own, apart from the alerts of the same city.
    let channel = state.channel(&format!("chat:{}", query.city_uuid));
    let rx = channel.subscribe();
    configured(ws).on_upgrade(move |socket| member(socket, channel, rx, true))
}

/// A subscriber of `channel` (`rx`), as the chat example has it: a task sending what the
/// channel brings, a task reading (and, for a chat member, `forward`ing every text message to
/// the channel); when either ends, the other is aborted.
async fn member(
    socket: WebSocket,
    channel: broadcast::Sender<String>,
    mut rx: broadcast::Receiver<String>,
    forward: bool,
) {
    let (mut sender, mut receiver) = socket.split();
    let mut send_task = tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(text) => {
                    if sender.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    let mut recv_task = tokio::spawn(async move {
        while let Some(Ok(message)) = receiver.next().await {
            match message {
                Message::Text(text) if forward => {
                    let _ = channel.send(text.to_string());
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    });
    tokio::select! {
        _ = &mut send_task => recv_task.abort(),
        _ = &mut recv_task => send_task.abort(),
    }
}

async fn publish(Query(query): Query<PublishQuery>, State(state): State<Arc<AppState>>) -> String {
    let frame = serde_json::json!({ "message": query.message }).to_string();
    let channel = state
        .cities
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&query.city)
        .cloned();
    // `send` fails only when nobody listens: then nobody got it.
    let delivered = channel.map_or(0, |channel| channel.send(frame).unwrap_or(0));
    format!("{delivered}\n")
}
