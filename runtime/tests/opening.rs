//! When a connection opens: `on_open` runs before the client gets its `101`, so a client whose
//! handshake is answered is already subscribed (nothing published after it knows it is
//! connected passes it by), and a frame queued there is the first the client reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use wfs_runtime::serve::{Candidate, Reply};
use wfs_runtime::socket::{Config, FrameError, SocketHandler, upgrade};
use wfs_runtime::{Connection, Decode, Frame, Violations};

const WAIT: Duration = Duration::from_secs(10);

struct Anything;

impl Decode for Anything {
    fn decode(_: Candidate<'_>) -> Result<Self, Vec<Violations>> {
        Ok(Anything)
    }
}

/// Opens slowly (as a handler that looks something up does), then marks the connection open
/// and greets it.
struct SlowOpen(Arc<AtomicBool>);

impl SocketHandler for SlowOpen {
    type Inbound = Anything;

    async fn on_open(&self, connection: &Connection) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.0.store(true, Ordering::SeqCst);
        let welcome = Frame::new(&json!({"type": "welcome"})).expect("a frame");
        connection.send_frame(&welcome).expect("queued");
    }

    async fn on_message(&self, _: &Connection, _: Anything) -> Option<Reply> {
        None
    }

    async fn on_invalid(&self, _: &Connection, _: FrameError) {}

    async fn on_close(&self, _: &Connection) {}
}

#[tokio::test]
async fn a_client_is_answered_only_once_its_connection_is_open() {
    let config = Arc::new(Config::default());
    let opened = Arc::new(AtomicBool::new(false));
    let handler_flag = opened.clone();
    let endpoint = wfs_runtime::poem::endpoint::make(move |request: wfs_runtime::poem::Request| {
        let (config, flag) = (config.clone(), handler_flag.clone());
        async move { upgrade(&request, config, SlowOpen(flag)).await }
    });
    let route = wfs_runtime::poem::Route::new().at("/ws", endpoint);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = wfs_runtime::poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(wfs_runtime::poem::Server::new_with_acceptor(acceptor).run(route));

    let (mut client, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{address}/ws")),
    )
    .await
    .expect("handshake timed out")
    .expect("handshake failed");
    // No wait here: the answer itself says the connection is open.
    assert!(
        opened.load(Ordering::SeqCst),
        "the client was answered before on_open had run"
    );
    let first = tokio::time::timeout(WAIT, client.next())
        .await
        .expect("no frame in time")
        .expect("the connection ended")
        .expect("a frame");
    assert_eq!(first, Message::text(r#"{"type":"welcome"}"#));
}
