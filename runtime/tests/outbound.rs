//! The socket task's writing of queued frames, over a real WebSocket on 127.0.0.1:0: a burst
//! queued from elsewhere (as fan-out queues it) arrives whole and in order, though it is
//! written in batches and flushed once per batch; and a client that stops reading still fills
//! the bounded queue, is closed with 1013, and first gets every frame accepted before that (one
//! that never reads again is let go within the close timeout). A reply, written by the loop
//! that read the request, comes after the frames queued before it, and not at all once a close
//! is asked for. Keepalive pings, written by the same loop, are spread over the ping interval
//! across connections.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use wfs_runtime::serve::{Candidate, Reply, reply};
use wfs_runtime::socket::{Config, FrameError, SocketHandler, upgrade};
use wfs_runtime::{Connection, Decode, Frame, SendError, Violations};

const WAIT: Duration = Duration::from_secs(10);

/// The number of the frame the handler answers each request with.
const REPLY: usize = 1_000_000;

/// Any JSON: a request, answered with one reply. `{"first": k}` asks the handler to queue `k`
/// frames of its own before it replies, as a chat member's own message is queued to it;
/// `{"close": true}` asks it to close the connection (4000) before it replies.
struct Request(Value);

impl Decode for Request {
    fn decode(value: Candidate<'_>) -> Result<Self, Vec<Violations>> {
        Ok(Request(value.into_value()))
    }
}

/// Hands every opened connection to the test, which queues frames on it from its own task.
struct Opened(mpsc::UnboundedSender<Connection>);

impl SocketHandler for Opened {
    type Inbound = Request;

    async fn on_open(&self, connection: &Connection) {
        let _ = self.0.send(connection.clone());
    }

    /// Replies to every request, as echo does: the reply goes back to the loop that read it.
    async fn on_message(&self, connection: &Connection, request: Request) -> Option<Reply> {
        let first = request.0["first"].as_u64().unwrap_or(0) as usize;
        for n in 0..first {
            connection.send_frame(&frame(n, 0)).unwrap();
        }
        if request.0["close"] == true {
            connection.close(4000, "Asked to.");
        }
        reply(connection, Ok(json!({ "n": REPLY, "padding": "" })))
    }

    async fn on_invalid(&self, _: &Connection, _: FrameError) {}

    async fn on_close(&self, _: &Connection) {}
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One WebSocket address served on 127.0.0.1:0, and the connections it opened, in order.
struct Served {
    address: std::net::SocketAddr,
    opened: mpsc::UnboundedReceiver<Connection>,
}

/// Serves one WebSocket address with `config`.
async fn serve(config: Config) -> Served {
    let config = Arc::new(config);
    let (opened, connections) = mpsc::unbounded_channel();
    let endpoint = wfs_runtime::poem::endpoint::make(move |request: wfs_runtime::poem::Request| {
        let config = config.clone();
        let opened = opened.clone();
        async move { upgrade(&request, config, Opened(opened)).await }
    });
    let route = wfs_runtime::poem::Route::new().at("/ws", endpoint);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = wfs_runtime::poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(wfs_runtime::poem::Server::new_with_acceptor(acceptor).run(route));
    Served {
        address,
        opened: connections,
    }
}

impl Served {
    /// Connects a client, and returns it with the server's handle on the connection.
    async fn connect(&mut self) -> (Client, Connection) {
        let (client, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async(format!("ws://{}/ws", self.address)),
        )
        .await
        .expect("handshake timed out")
        .expect("handshake failed");
        let connection = tokio::time::timeout(WAIT, self.opened.recv())
            .await
            .expect("no connection opened")
            .expect("server gone");
        (client, connection)
    }
}

/// Serves one WebSocket address with `config` and connects one client to it.
async fn connect(config: Config) -> (Client, Connection) {
    serve(config).await.connect().await
}

/// Frame `n` of a test: its number, and `padding` bytes so that a few fill a socket's buffers.
fn frame(n: usize, padding: usize) -> Frame<Value> {
    Frame::new(&json!({ "n": n, "padding": "x".repeat(padding) })).unwrap()
}

/// The next frame the client reads: its number, or the close code when it is a close.
async fn next(client: &mut Client) -> Result<usize, Option<u16>> {
    match tokio::time::timeout(WAIT, client.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => {
            let value: Value = serde_json::from_str(text.as_str()).unwrap();
            Ok(value["n"].as_u64().unwrap() as usize)
        }
        Ok(Some(Ok(Message::Close(frame)))) => Err(frame.map(|frame| frame.code.into())),
        other => panic!("expected a text or close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn a_burst_of_queued_frames_arrives_whole_and_in_order() {
    let mut config = Config::default();
    config.outbound_queue = 1_000;
    let (mut client, connection) = connect(config).await;
    // Queued at once, more than one batch, and more than the write buffer holds: written in
    // several writes, flushed per batch.
    for n in 0..1_000 {
        connection.send_frame(&frame(n, 100)).unwrap();
    }
    for n in 0..1_000 {
        assert_eq!(next(&mut client).await, Ok(n));
    }
    // Then one more on its own: nothing was left unflushed behind the burst.
    connection.send_frame(&frame(1_000, 0)).unwrap();
    assert_eq!(next(&mut client).await, Ok(1_000));
}

#[tokio::test]
async fn a_client_that_stops_reading_fills_the_queue_and_gets_1013_after_its_frames() {
    let mut config = Config::default();
    config.outbound_queue = 16;
    config.close_timeout = WAIT;
    let (mut client, connection) = connect(config).await;
    // The client reads nothing while frames are queued fifteen at a time (one short of the
    // queue), the socket task writing between the bursts: once the socket's buffers are full,
    // writing waits and the queue fills. 4,000 frames of 16 KiB (64 MiB) are far more than
    // loopback buffers hold. In bursts, the socket fills with frames still queued behind the
    // one it blocked on: the task must wait for room before it takes the next, or the close,
    // which gives up the wait, would lose that frame (taking it first fails here every time).
    let mut accepted = 0;
    let refused = 'filling: loop {
        for _ in 0..15 {
            assert!(accepted < 4_000, "the queue never filled");
            match connection.send_frame(&frame(accepted, 16 * 1024)) {
                Ok(()) => accepted += 1,
                Err(error) => break 'filling error,
            }
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(refused, SendError::TooSlow);
    assert!(accepted >= 16, "only {accepted} frames were accepted");
    // Every frame accepted before the queue filled, in order, then the close.
    for n in 0..accepted {
        assert_eq!(next(&mut client).await, Ok(n));
    }
    assert_eq!(next(&mut client).await, Err(Some(1013)));
}

#[tokio::test]
async fn a_client_that_never_reads_again_is_let_go_once_its_queue_fills() {
    let mut config = Config::default();
    config.outbound_queue = 16;
    config.close_timeout = Duration::from_millis(500);
    let (client, connection) = connect(config).await;
    // As above, but the client never reads again: the socket task waits on a write that will
    // never complete while the queue fills and the connection is closed with 1013.
    let mut accepted = 0;
    loop {
        assert!(accepted < 4_000, "the queue never filled");
        if connection.send_frame(&frame(accepted, 16 * 1024)).is_err() {
            break;
        }
        accepted += 1;
        tokio::task::yield_now().await;
    }
    // The server gives up on it within its close timeout: the task ends and lets go of the
    // connection (its slot and its socket), though the client still holds its end open.
    tokio::time::timeout(WAIT, connection.closed())
        .await
        .expect("the socket task still waits on a client that reads nothing");
    drop(client);
}

#[tokio::test]
async fn a_reply_follows_the_frames_queued_before_it_and_each_request_gets_one() {
    let (mut client, connection) = connect(Config::default()).await;
    for n in 0..200 {
        connection.send_frame(&frame(n, 100)).unwrap();
    }
    client.send(Message::text("{}")).await.unwrap();
    for n in 0..200 {
        assert_eq!(next(&mut client).await, Ok(n));
    }
    assert_eq!(next(&mut client).await, Ok(REPLY));
    // Requests back to back, nothing else queued: nothing but the reading loop writes them.
    for _ in 0..3 {
        client.send(Message::text("{}")).await.unwrap();
    }
    for _ in 0..3 {
        assert_eq!(next(&mut client).await, Ok(REPLY));
    }
    // Frames the handler queued itself before replying go out first, the reply behind them.
    client.send(Message::text(r#"{"first": 3}"#)).await.unwrap();
    for n in 0..3 {
        assert_eq!(next(&mut client).await, Ok(n));
    }
    assert_eq!(next(&mut client).await, Ok(REPLY));
}

#[tokio::test]
async fn no_reply_goes_out_once_the_handler_asked_for_a_close() {
    let (mut client, _connection) = connect(Config::default()).await;
    client
        .send(Message::text(r#"{"close": true}"#))
        .await
        .unwrap();
    assert_eq!(next(&mut client).await, Err(Some(4000)));
}

/// When the client's next ping arrived (reading also answers it, as any client does).
async fn next_ping(client: &mut Client) -> tokio::time::Instant {
    match tokio::time::timeout(WAIT, client.next()).await {
        Ok(Some(Ok(Message::Ping(_)))) => tokio::time::Instant::now(),
        other => panic!("expected a ping, got {other:?}"),
    }
}

#[tokio::test]
async fn keepalive_pings_are_spread_over_the_interval_and_come_once_per_interval() {
    let mut config = Config::default();
    // 32 slices, 50 ms apart; each connection is pinged in the one its id falls in.
    let interval = Duration::from_millis(1_600);
    config.ping_interval = interval;
    let mut served = serve(config).await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(served.connect().await);
    }
    // Ids count up across the test process, so eight connections opened in a row fall in
    // several slices (other tests take ids in between, never all but one of each 32).
    let slices: std::collections::BTreeSet<u64> = clients
        .iter()
        .map(|(_, connection)| connection.id() % 32)
        .collect();
    assert!(slices.len() >= 2, "all in one slice: {slices:?}");
    let pings = futures_util::future::join_all(clients.into_iter().map(
        |(mut client, connection)| async move {
            let first = next_ping(&mut client).await;
            let second = next_ping(&mut client).await;
            drop(connection);
            (first, second)
        },
    ))
    .await;
    // Slices are 50 ms apart; pinging every connection in the same instant puts all the
    // first pings within a few milliseconds of each other.
    let earliest = pings.iter().map(|(first, _)| *first).min().unwrap();
    let latest = pings.iter().map(|(first, _)| *first).max().unwrap();
    assert!(
        latest - earliest >= Duration::from_millis(25),
        "the first pings came within {:?} of each other",
        latest - earliest
    );
    // A connection is pinged once a round, not in every slice. A busy machine may delay a
    // first ping, never bring the next one forward by half an interval.
    for (first, second) in pings {
        assert!(
            second - first >= interval / 2,
            "two pings {:?} apart",
            second - first
        );
    }
}
