//! The mock's log and refusals, in a test binary of its own: the log is captured through a
//! thread-local `tracing` subscriber, which tests running beside it on other threads would
//! race with (callsite interest is shared by the whole process).

use std::path::Path;
use std::time::Duration;

use asyncapi_conform::{MockOptions, mock};
use wfs_codegen::Contract;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_mock_logs_every_frame_and_refuses_what_the_contract_does_not_allow() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The test's runtime runs every task on this thread, so the mock logs here.
    let _guard = tracing::subscriber::set_default(subscriber);
    let contract = Contract::load(manifest().join("../asyncapi/v1-schema.yaml")).expect("loads");
    let mock = mock::serve(&contract, MockOptions::new("127.0.0.1:0".parse().unwrap()))
        .await
        .expect("listens");
    let base = format!("ws://{}", mock.local_addr());

    let (mut echo, _) = tokio_tungstenite::connect_async(format!("{base}/ws/v1/echo"))
        .await
        .expect("echo connects");
    echo.send(Message::text(r#"{"message":"hi"}"#))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), echo.next())
        .await
        .expect("the echo comes back in time");
    assert!(
        matches!(reply, Some(Ok(Message::Text(text))) if text.as_str() == r#"{"message":"hi"}"#)
    );

    // A chat frame that is no chatMessage is closed with 1007, and says why.
    let (mut chat, _) = tokio_tungstenite::connect_async(format!(
        "{base}/ws/v1/chat?city_uuid=df257fd6-63a5-5b69-b454-73da5d1224c2&access_token=t"
    ))
    .await
    .expect("chat connects");
    chat.send(Message::text(r#"{"message":""}"#)).await.unwrap();
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(message)) = chat.next().await {
            if let Message::Close(frame) = message {
                return frame;
            }
        }
        None
    })
    .await
    .expect("the close comes in time")
    .expect("a close frame");
    assert_eq!(u16::from(close.code), 1007);
    assert!(
        close.reason.as_str().contains("/message"),
        "{}",
        close.reason
    );

    // A bad city is refused before the upgrade.
    let refused = tokio_tungstenite::connect_async(format!(
        "{base}/ws/v1/chat?city_uuid=nowhere&access_token=t"
    ))
    .await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(response)) if response.status() == 400),
        "{refused:?}"
    );

    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    for expected in [
        r#"in {"message":"hi"}"#,
        r#"out {"message":"hi"}"#,
        r#"out {"type":"welcome","message":"Welcome in Cairo chat.""#,
        r#"in {"message":""}"#,
        "invalid frame: not a `chatMessage` message",
        "refused: `city_uuid`: `nowhere` does not match its schema",
    ] {
        assert!(log.contains(expected), "`{expected}` not logged:\n{log}");
    }
}
