//! Baseline (a): the ceiling for our stack. A minimal echo and broadcast server on tokio and
//! tokio-tungstenite, the WebSocket library under poem, with no framework, no validation, no
//! auth and no store: what is left is the cost of WebSocket itself on tokio.
//!
//! It serves the same addresses as wfs: `/ws/v1/echo` sends every frame back as it came;
//! `/ws/v1/alert?city_uuid=U` subscribes to `U` (any string). `GET /publish?city=U&message=M`
//! sends `{"message":M}` to every subscriber of `U`, serialised once. `/ws/v1/chat?city_uuid=U`
//! is `U`'s room: every text frame a member sends goes, as it came, to every member (itself
//! included), with no parsing, no check and no rate limit. Each connection has one
//! task and a bounded queue (256 frames, as wfs), and the same 4 KiB read buffer as wfs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Each topic's subscribers, by id, with the sending side of their bounded queues (256 frames,
/// as wfs), for frames of type `F`: what the raw baselines ((a) here, (e) on fastwebsockets)
/// fan out through.
pub(crate) struct Topics<F> {
    topics: Mutex<HashMap<String, HashMap<u64, mpsc::Sender<F>>>>,
    next_id: AtomicU64,
}

impl<F> Default for Topics<F> {
    fn default() -> Topics<F> {
        Topics {
            topics: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        }
    }
}

impl<F: Clone> Topics<F> {
    /// A new subscriber of `topic`: its id and its queue.
    pub(crate) fn subscribe(&self, topic: &str) -> (u64, mpsc::Receiver<F>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, queue) = mpsc::channel(256);
        self.topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(topic.to_owned())
            .or_default()
            .insert(id, sender);
        (id, queue)
    }

    pub(crate) fn unsubscribe(&self, topic: &str, id: u64) {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(senders) = topics.get_mut(topic) {
            senders.remove(&id);
            if senders.is_empty() {
                topics.remove(topic);
            }
        }
    }

    /// Queues `frame` for every subscriber of `topic` with room: how many took it.
    pub(crate) fn publish(&self, topic: &str, frame: F) -> usize {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        topics.get(topic).map_or(0, |senders| {
            senders
                .values()
                .filter(|sender| sender.try_send(frame.clone()).is_ok())
                .count()
        })
    }
}

type State = Topics<Utf8Bytes>;

/// One connection's place in a topic: its id there and its bounded queue.
struct Subscription {
    topic: String,
    id: u64,
    queue: mpsc::Receiver<Utf8Bytes>,
}

/// Serves on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let state = Arc::new(State::default());
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(connection(stream, state.clone()));
    }
}

/// The request line and headers of an HTTP request (the client sends nothing more before
/// our answer: a handshake or a `GET /publish`).
pub(crate) async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !head.windows(4).any(|window| window == b"\r\n\r\n") {
            let read = stream.read(&mut chunk).await.ok()?;
            if read == 0 || head.len() > 16 * 1024 {
                return None;
            }
            head.extend_from_slice(&chunk[..read]);
        }
        String::from_utf8(head).ok()
    })
    .await
    .ok()
    .flatten()
}

pub(crate) fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |at: usize| {
            bytes
                .get(at..at + 2)
                .and_then(|pair| std::str::from_utf8(pair).ok())
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        };
        match (bytes[index], hex(index + 1)) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                index += 1;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) async fn answer(stream: &mut TcpStream, status: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// What a client of a raw-TCP baseline (this ceiling, and (e) on fastwebsockets) asks for.
pub(crate) enum Asked {
    /// `GET /publish?city=&message=`: `{"message":M}`, serialised once, for `city`'s topic.
    Publish { city: String, frame: String },
    /// A WebSocket handshake: the `101` to answer it with, its path, and the topic it joins
    /// (`/ws/v1/alert`: its city's; `/ws/v1/chat`: its room, whose members also forward).
    Upgrade {
        accept: String,
        path: String,
        topic: Option<(String, bool)>,
    },
}

/// Reads a request head and says what it asks for. A request that is neither a publication
/// nor a handshake is answered here (400, 404), and so is `None`, like a client that went away.
pub(crate) async fn read_request(stream: &mut TcpStream) -> Option<Asked> {
    let head = read_head(stream).await?;
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path == "/publish" {
        let (Some(city), Some(message)) =
            (query_value(query, "city"), query_value(query, "message"))
        else {
            answer(stream, "400 Bad Request", "city and message are needed\n").await;
            return None;
        };
        let frame = serde_json::json!({ "message": message }).to_string();
        return Some(Asked::Publish { city, frame });
    }
    let key = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    });
    let Some(key) = key else {
        answer(stream, "404 Not Found", "not found\n").await;
        return None;
    };
    // Rooms are topics of their own, apart from the alert topics of the same city.
    let topic = match (path, query_value(query, "city_uuid")) {
        ("/ws/v1/alert", Some(city)) => Some((city, false)),
        ("/ws/v1/chat", Some(city)) => Some((format!("chat:{city}"), true)),
        _ => None,
    };
    let accept = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    Some(Asked::Upgrade {
        accept,
        path: path.to_owned(),
        topic,
    })
}

/// A handshake to answer, read from a raw baseline's new connection: the `101`, the path and
/// the topic it joins (see [`Asked::Upgrade`]). A publication is delivered through `topics` and
/// answered here, as is anything else that is no handshake: `None`.
pub(crate) async fn read_handshake<F: Clone + From<String>>(
    stream: &mut TcpStream,
    topics: &Topics<F>,
) -> Option<(String, String, Option<(String, bool)>)> {
    let _ = stream.set_nodelay(true);
    match read_request(stream).await? {
        Asked::Publish { city, frame } => {
            let delivered = topics.publish(&city, F::from(frame));
            answer(stream, "200 OK", &format!("{delivered}\n")).await;
            None
        }
        Asked::Upgrade {
            accept,
            path,
            topic,
        } => Some((accept, path, topic)),
    }
}

async fn connection(mut stream: TcpStream, state: Arc<State>) {
    let Some((accept, path, topic)) = read_handshake(&mut stream, &state).await else {
        return;
    };
    // Subscribed before the 101 is written, as wfs does: a client that is connected misses
    // nothing published after.
    let subscription = topic.map(|(topic, forward)| {
        let (id, queue) = state.subscribe(&topic);
        (Subscription { topic, id, queue }, forward)
    });
    if stream.write_all(accept.as_bytes()).await.is_err() {
        if let Some((subscription, _)) = subscription {
            state.unsubscribe(&subscription.topic, subscription.id);
        }
        return;
    }
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4 * 1024;
    config.write_buffer_size = 0;
    config.max_message_size = Some(64 * 1024);
    config.max_frame_size = Some(64 * 1024);
    let socket = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await;
    match (path.as_str(), subscription) {
        ("/ws/v1/echo", _) => echo(socket).await,
        (_, Some((subscription, forward))) => {
            subscriber(socket, &state, subscription, forward).await
        }
        _ => {
            let mut socket = socket;
            let _ = socket.close(None).await;
        }
    }
}

async fn echo(mut socket: WebSocketStream<TcpStream>) {
    while let Some(Ok(message)) = socket.next().await {
        if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err() {
            break;
        }
    }
}

/// A subscriber of `subscription`'s topic; a chat member (`forward`) also publishes every text
/// frame it sends to the topic.
async fn subscriber(
    socket: WebSocketStream<TcpStream>,
    state: &State,
    mut subscription: Subscription,
    forward: bool,
) {
    let (mut sink, mut source) = socket.split();
    loop {
        tokio::select! {
            frame = subscription.queue.recv() => match frame {
                Some(frame) => if sink.send(Message::Text(frame)).await.is_err() { break },
                None => break,
            },
            message = source.next() => match message {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(Message::Text(text))) if forward => {
                    state.publish(&subscription.topic, text);
                }
                Some(Ok(_)) => {}
            },
        }
    }
    state.unsubscribe(&subscription.topic, subscription.id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            query_value("city=a&message=bench%2D1+x", "message").as_deref(),
            Some("bench-1 x")
        );
        assert_eq!(query_value("city=a", "message"), None);
    }
}
