//! Server-Sent Events (`/sse/v1/alert`): the same alerts as the WebSocket channel, byte for
//! byte, with the alert id as the event id; `Last-Event-ID` resumes with no gap and no
//! duplicate; the handshake follows the WebSocket's rules; a closed stream leaves nothing
//! behind.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use uuid::Uuid;
use wfs::contract::alert::{AlertClient, AlertParams};

use crate::server::{InFlightAlert, TestServer, eventually, within};

/// One event: its `id:` and its `data:` lines joined.
#[derive(Debug, Clone, PartialEq)]
struct SseEvent {
    id: Option<String>,
    data: String,
}

/// A minimal SSE client over HTTP/1.1 (the body is chunked).
struct SseClient {
    reader: BufReader<TcpStream>,
    /// De-chunked body text not yet parsed into events.
    text: String,
}

impl SseClient {
    /// Opens the stream; `Err((status, body))` when the server refuses it.
    async fn open(
        server: &TestServer,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<SseClient, (u16, String)> {
        let mut stream = within("connect", TcpStream::connect(server.address))
            .await
            .expect("connect");
        let mut request = format!(
            "GET /sse/v1/alert?{query} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n",
            server.address
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        within("write", stream.write_all(request.as_bytes()))
            .await
            .expect("write");
        let mut reader = BufReader::new(stream);
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            within("response head", reader.read_line(&mut line))
                .await
                .expect("read");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let status: u16 = head[0].split(' ').nth(1).unwrap().parse().unwrap();
        let header = |name: &str| {
            head.iter().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_ascii_lowercase())
            })
        };
        if status != 200 {
            let length: usize = header("content-length")
                .and_then(|length| length.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            within("body", reader.read_exact(&mut body))
                .await
                .expect("body");
            return Err((status, String::from_utf8_lossy(&body).into_owned()));
        }
        assert_eq!(
            header("content-type").as_deref(),
            Some("text/event-stream"),
            "{head:?}"
        );
        assert_eq!(header("transfer-encoding").as_deref(), Some("chunked"));
        Ok(SseClient {
            reader,
            text: String::new(),
        })
    }

    /// The next event with data (comments and `retry:` are skipped); `None` at the end.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut event = SseEvent {
                    id: None,
                    data: String::new(),
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(id) = line.strip_prefix("id:") {
                        event.id = Some(id.trim_start().to_owned());
                    } else if let Some(data) = line.strip_prefix("data:") {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(data.strip_prefix(' ').unwrap_or(data));
                        has_data = true;
                    }
                }
                if has_data {
                    return Some(event);
                }
                continue;
            }
            // One chunk: its size line, its bytes, CRLF.
            let mut size = String::new();
            if within("chunk size", self.reader.read_line(&mut size))
                .await
                .ok()?
                == 0
            {
                return None;
            }
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 {
                return None;
            }
            let mut chunk = vec![0; size + 2];
            within("chunk", self.reader.read_exact(&mut chunk))
                .await
                .ok()?;
            chunk.truncate(size);
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    async fn next_event(&mut self) -> SseEvent {
        self.next()
            .await
            .expect("an event, not the end of the stream")
    }
}

fn query(server: &TestServer, city: Uuid) -> String {
    format!(
        "city_uuid={city}&access_token={}",
        server.token(&server.alice)
    )
}

#[tokio::test]
async fn sse_streams_the_websocket_alerts_byte_for_byte_with_the_alert_id() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let tokyo = server.city("Tokyo").await.uuid;
    let mut stream = SseClient::open(&server, &query(&server, cairo), &[])
        .await
        .expect("opened");
    let params = AlertParams {
        city_uuid: cairo,
        access_token: server.token(&server.bob),
        since: None,
    };
    let mut socket = within("subscribe", AlertClient::connect(&server.base_url, &params))
        .await
        .expect("accepted");
    eventually("both subscribed", || {
        server.app.hub.stats().subscribers == 2
    })
    .await;

    for message in ["Hail storm is coming!", "Zürich ☔", "line\nbreak"] {
        server.app.publish_alert(tokyo, "elsewhere").await.unwrap();
        let alert = server
            .app
            .publish_alert(cairo, message)
            .await
            .unwrap()
            .unwrap();
        let frame = within("frame", socket.raw().recv_text()).await.unwrap();
        let event = stream.next_event().await;
        assert_eq!(event.data, frame, "the same JSON as the WebSocket");
        assert_eq!(event.id, Some(alert.id.to_string()));
        let value: serde_json::Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(value["message"], message);
    }
}

/// A stream of `city`'s alerts resuming after alert `id` (`Last-Event-ID`).
async fn resume_after(server: &TestServer, city: Uuid, id: impl std::fmt::Display) -> SseClient {
    let last_event_id = id.to_string();
    SseClient::open(
        server,
        &query(server, city),
        &[("Last-Event-ID", &last_event_id)],
    )
    .await
    .expect("opened")
}

#[tokio::test]
async fn last_event_id_resumes_after_that_alert_without_gap_or_duplicate() {
    const BEFORE: usize = 30;
    const DURING: usize = 60;
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let mut ids = Vec::new();
    for index in 0..BEFORE {
        let alert = server
            .app
            .publish_alert(cairo, &format!("#{index}"))
            .await
            .unwrap()
            .unwrap();
        ids.push(alert.id.get());
    }
    // Resume after the 10th; alerts keep coming while the history is being sent.
    let resume = ids[9];
    let publisher = {
        let app = server.app.clone();
        tokio::spawn(async move {
            for index in BEFORE..BEFORE + DURING {
                app.publish_alert(cairo, &format!("#{index}"))
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
            app.publish_alert(cairo, "end").await.unwrap();
        })
    };
    let mut stream = resume_after(&server, cairo, resume).await;
    let mut expected = 10;
    loop {
        let event = stream.next_event().await;
        let value: serde_json::Value = serde_json::from_str(&event.data).unwrap();
        let message = value["message"].as_str().unwrap();
        if message == "end" {
            break;
        }
        assert_eq!(message, format!("#{expected}"), "a gap or a duplicate");
        assert_eq!(event.id, Some(value["id"].to_string()));
        expected += 1;
    }
    assert_eq!(
        expected,
        BEFORE + DURING,
        "every alert after the resumed one"
    );
    within("publisher", publisher).await.unwrap();
}

#[tokio::test]
async fn an_alert_that_went_by_before_the_stream_joined_but_was_not_yet_committed_is_replayed() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let first = server.app.publish_alert(cairo, "seen").await.unwrap();
    let in_flight = InFlightAlert::start(&server, cairo, "in flight").await;
    let mut stream = resume_after(&server, cairo, first.unwrap().id.get()).await;
    in_flight.commit_later().await;
    server.app.publish_alert(cairo, "live").await.unwrap();
    for expected in ["in flight", "live"] {
        let event = stream.next_event().await;
        let value: serde_json::Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(value["message"], expected, "a gap or a duplicate");
    }
}

#[tokio::test]
async fn a_stream_whose_history_cannot_be_read_ends_so_that_the_client_resumes() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let first = server.app.publish_alert(cairo, "seen").await.unwrap();
    let first = first.unwrap().id.get();
    // A first stream has the user and the city cached, as handshakes keep them.
    let _first_stream = resume_after(&server, cairo, first).await;
    server.app.store.close().await;
    let mut stream = resume_after(&server, cairo, first).await;
    assert!(
        within("the stream's end", stream.next()).await.is_none(),
        "no history, and no silent gap either"
    );
}

#[tokio::test]
async fn the_handshake_follows_the_websocket_rules() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let token = server.token(&server.alice);
    let open = |query: String, origin: Option<&'static str>| {
        let server = &server;
        async move {
            let headers: Vec<(&str, &str)> = origin.iter().map(|o| ("Origin", *o)).collect();
            SseClient::open(server, &query, &headers).await
        }
    };
    let unknown = Uuid::nil();
    let cases = [
        (
            format!("city_uuid={cairo}"),
            None,
            403,
            "Token is missing.".to_owned(),
        ),
        (
            format!("city_uuid={cairo}&access_token=x"),
            None,
            403,
            "Token".to_owned(),
        ),
        (
            format!("city_uuid=1&access_token={token}"),
            None,
            400,
            "Query parameter city_uuid is missing or is invalid.".to_owned(),
        ),
        (
            format!("access_token={token}"),
            None,
            400,
            "Query parameter city_uuid is missing or is invalid.".to_owned(),
        ),
        (
            format!("city_uuid={unknown}&access_token={token}"),
            None,
            404,
            format!("City with {unknown} doesn't exist."),
        ),
        (
            query(&server, cairo),
            Some("http://evil.example"),
            403,
            "Origin not allowed".to_owned(),
        ),
    ];
    for (query, origin, status, needle) in cases {
        match open(query.clone(), origin).await {
            Ok(_) => panic!("{query} opened; expected {status} {needle}"),
            Err((got, body)) => {
                assert_eq!(got, status, "{query}: {body}");
                assert!(body.contains(&needle), "`{body}` lacks `{needle}`");
            }
        }
    }
    let own = format!("http://localhost:{}", server.address.port());
    assert!(
        SseClient::open(&server, &query(&server, cairo), &[("Origin", &own)])
            .await
            .is_ok(),
        "the service's own pages may open a stream"
    );
}

#[tokio::test]
async fn a_closed_stream_leaves_nothing_behind_and_shutdown_ends_streams() {
    // Streams that went away are noticed when a keep-alive comment cannot be written.
    let mut config = wfs_runtime::Config::default();
    config.ping_interval = std::time::Duration::from_millis(100);
    let server = TestServer::start_with(config).await;
    let cairo = server.city("Cairo").await.uuid;
    for _ in 0..20 {
        let stream = SseClient::open(&server, &query(&server, cairo), &[])
            .await
            .expect("opened");
        drop(stream);
    }
    let mut stream = SseClient::open(&server, &query(&server, cairo), &[])
        .await
        .expect("opened");
    eventually("dropped streams are gone", || {
        server.app.hub.stats().subscribers == 1
    })
    .await;
    server.app.publish_alert(cairo, "still here").await.unwrap();
    assert!(stream.next_event().await.data.contains("still here"));
    let app = server.app.clone();
    server.shut_down().await;
    assert_eq!(stream.next().await, None, "the stream ends on shutdown");
    eventually("nothing left", || app.hub.stats().subscribers == 0).await;
}
