//! Hostile clients against a real `wfs serve` process: half-open connections by the thousand,
//! requests that never finish, too many connections from one address, the file-descriptor
//! limit. The server must close what stalls, refuse what is too much, and keep answering
//! everyone else; and bodies over the REST API's limit, refused unread (in-process server).
//! Loopback only; every wait bounded.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use wfs::contract::echo::{EchoClient, EchoOutbound, EchoParams};
use wfs::contract::types::EchoMessage;

use crate::server::{WAIT, within};

/// A real `wfs serve` process: its own data directory and port, killed when dropped, its log
/// kept. (A process, not an in-process server: these tests attack its descriptors and its
/// accept loop as a whole.)
struct ServeProcess {
    address: SocketAddr,
    pid: u32,
    log: Arc<Mutex<String>>,
    data_dir: std::path::PathBuf,
    _child: tokio::process::Child,
}

impl ServeProcess {
    /// `wfs serve` with `args`, under a file-descriptor limit of `nofile` when given (set with
    /// `prlimit`, hard and soft, so the server cannot raise it).
    async fn start(name: &str, args: &[&str], nofile: Option<u64>) -> ServeProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let data_dir =
            std::env::temp_dir().join(format!("wfs-{name}-{}-{port}", std::process::id()));
        let mut command = match nofile {
            Some(limit) => {
                let mut command = tokio::process::Command::new("prlimit");
                command
                    .arg(format!("--nofile={limit}:{limit}"))
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_wfs"));
                command
            }
            None => tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs")),
        };
        let mut child = command
            .args(["serve", "--listen", &address.to_string(), "--data-dir"])
            .arg(&data_dir)
            .args(args)
            .env("WFS_ADMIN_PASSWORD", "admin-password-for-tests")
            .env("RUST_LOG", "info")
            .env_remove("WFS_LISTEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("wfs serve starts");
        let pid = child.id().expect("a running child");
        let log = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = kept.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        within("the server listens", async {
            while tokio::net::TcpStream::connect(address).await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        ServeProcess {
            address,
            pid,
            log,
            data_dir,
            _child: child,
        }
    }

    /// What the server logged so far.
    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// CPU time (user + system) the server used so far, from /proc.
    fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).expect("/proc");
        // Fields after the command name (which may hold spaces) start at `) `.
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .expect("a stat line")
            .1
            .split(' ')
            .collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A request cut short before the blank line that ends its head.
const HALF_REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

/// A TCP connection to `server` from the loopback address `from` (127.0.0.0/8 is all loopback
/// on Linux, so many client addresses need no setup).
async fn connect_from(from: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .expect("bind a loopback address");
    within("connect", socket.connect(server))
        .await
        .expect("connect")
}

/// `GET /health` from `from`: the status and the body.
async fn health_from(from: Ipv4Addr, server: SocketAddr) -> (u16, String) {
    let mut stream = connect_from(from, server).await;
    within(
        "write",
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
    .await
    .expect("write");
    let response = read_to_end(&mut stream).await;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    (status, response)
}

/// Everything the server sends until it closes (a reset counts as closed).
async fn read_to_end(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let _ = within("the server closes", stream.read_to_end(&mut bytes)).await;
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether the server still holds `stream` open: nothing to read, and no end of stream.
fn still_open(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.try_read(&mut byte), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock)
}

/// An echo round trip through the generated client.
async fn echo_round_trip(server: SocketAddr) {
    let mut client = within(
        "echo connect",
        EchoClient::connect(&format!("ws://{server}"), &EchoParams::default()),
    )
    .await
    .expect("echo handshake accepted");
    let hello: EchoMessage = serde_json::from_value(serde_json::json!({"message": "still here"}))
        .expect("an echo message");
    within("send", client.send_echo(&hello))
        .await
        .expect("send");
    let EchoOutbound::Echo(reply) = within("echo reply", client.recv()).await.expect("a reply");
    assert_eq!(reply, hello);
}

#[tokio::test]
async fn five_thousand_half_open_connections_starve_no_one() {
    // 5,000 sockets on this side too (and the other tests' beside them): where the soft
    // limit is the usual 1,024, raise it to the hard limit, as `wfs serve` does for itself.
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    assert!(
        limit >= 6_000,
        "this test needs 6,000 file descriptors, the limit is {limit}"
    );
    // A long header timeout, so the attack is still held while the others are served.
    let server = ServeProcess::start("slowloris", &["--header-timeout", "120"], None).await;
    // From 20 addresses, 250 each: under the per-address cap (256), as a botnet would.
    let mut attack = Vec::with_capacity(5000);
    for n in 0..5000u32 {
        let from = Ipv4Addr::new(127, 0, 1, 1 + (n / 250) as u8);
        let mut stream = connect_from(from, server.address).await;
        within("half a request", stream.write_all(HALF_REQUEST))
            .await
            .expect("write");
        attack.push(stream);
    }
    echo_round_trip(server.address).await;
    let (status, body) = health_from(Ipv4Addr::LOCALHOST, server.address).await;
    assert_eq!(status, 200, "{body}");
    let open = attack.iter().filter(|stream| still_open(stream)).count();
    assert_eq!(open, 5000, "the attack was held, not dropped");
}

#[tokio::test]
async fn requests_that_never_finish_their_head_are_closed_after_the_header_timeout() {
    let server = ServeProcess::start("header-timeout", &["--header-timeout", "1"], None).await;
    let from = Ipv4Addr::new(127, 0, 3, 1);
    let mut silent = connect_from(from, server.address).await;
    let mut half = connect_from(from, server.address).await;
    within("half", half.write_all(HALF_REQUEST)).await.unwrap();
    // A request trickled a byte at a time never finishes either.
    let mut trickled = connect_from(from, server.address).await;
    let trickle = async {
        within("start", trickled.write_all(HALF_REQUEST))
            .await
            .unwrap();
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if trickled.write_all(b"x").await.is_err() {
                return true;
            }
        }
        false
    };
    // A kept-alive connection that stalls before its second request.
    let mut kept_alive = connect_from(from, server.address).await;
    within(
        "first request",
        kept_alive.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    )
    .await
    .unwrap();
    let mut first = [0u8; 12];
    within("first response", kept_alive.read_exact(&mut first))
        .await
        .unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    assert!(
        within("the trickle is cut off", trickle).await,
        "a trickled request is closed within 4 s"
    );
    for (what, stream) in [
        ("silent", &mut silent),
        ("half", &mut half),
        ("kept alive", &mut kept_alive),
    ] {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the {what} connection is closed");
    }
    let (status, _) = health_from(from, server.address).await;
    assert_eq!(status, 200, "a prompt client is answered");
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_share() {
    let server = ServeProcess::start(
        "per-ip",
        &["--max-connections-per-ip", "10", "--header-timeout", "60"],
        None,
    )
    .await;
    let greedy = Ipv4Addr::new(127, 0, 2, 1);
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(connect_from(greedy, server.address).await);
    }
    let mut eleventh = connect_from(greedy, server.address).await;
    let refused = read_to_end(&mut eleventh).await;
    assert!(
        refused.starts_with("HTTP/1.1 503") && refused.contains("Too many connections"),
        "{refused}"
    );
    let (status, _) = health_from(Ipv4Addr::new(127, 0, 2, 2), server.address).await;
    assert_eq!(status, 200, "another address is served");
    drop(held.pop());
    let mut answered = false;
    for _ in 0..100 {
        if health_from(greedy, server.address).await.0 == 200 {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "a closed connection frees its place");
}

#[tokio::test]
async fn when_the_pending_cap_is_full_the_oldest_stalled_connection_makes_room() {
    let server = ServeProcess::start(
        "pending-cap",
        &["--max-pending-connections", "50", "--header-timeout", "60"],
        None,
    )
    .await;
    let mut stalled = Vec::new();
    for n in 0..60u8 {
        stalled.push(connect_from(Ipv4Addr::new(127, 0, 4, 1 + n / 20), server.address).await);
    }
    let (status, _) = health_from(Ipv4Addr::new(127, 0, 4, 9), server.address).await;
    assert_eq!(status, 200, "a new client is answered");
    // The ten oldest made room for the ten newest, the health check for one more.
    for stream in &mut stalled[..11] {
        read_to_end(stream).await;
    }
    let open = stalled[11..]
        .iter()
        .filter(|stream| still_open(stream))
        .count();
    assert_eq!(open, 49, "the newest are kept");
}

#[tokio::test]
async fn at_the_descriptor_limit_the_accept_loop_pauses_instead_of_spinning() {
    // 128 descriptors: the caps are set above it, so the limit itself is what is reached.
    let server = ServeProcess::start(
        "emfile",
        &[
            "--max-connections-per-ip",
            "1000",
            "--max-pending-connections",
            "1000",
            "--header-timeout",
            "60",
        ],
        Some(128),
    )
    .await;
    // 200: past the limit (128), the rest waiting in the listen backlog.
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(connect_from(Ipv4Addr::new(127, 0, 5, 1), server.address).await);
    }
    // Wait until the server has hit the limit (it says so once), then watch its CPU.
    within("the server reports the limit", async {
        while !server.log().contains("pausing the accept loop") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let before = server.cpu_time();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spent = server.cpu_time() - before;
    // A spinning loop burns what it can get of a core (0.6 to 2 s seen); a pausing one
    // next to nothing (0 seen).
    assert!(
        spent < Duration::from_millis(200),
        "the server used {spent:?} of CPU in 2 s at the descriptor limit"
    );
    drop(flood);
    let mut answered = false;
    for _ in 0..200 {
        let attempt = tokio::time::timeout(
            Duration::from_millis(500),
            health_from(Ipv4Addr::new(127, 0, 5, 2), server.address),
        )
        .await;
        if matches!(attempt, Ok((200, _))) {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        answered,
        "the server answers again once descriptors are free"
    );
}

#[tokio::test]
async fn tls_handshakes_that_never_finish_are_closed_after_the_header_timeout() {
    let server = ServeProcess::start("tls-stall", &["--tls", "--header-timeout", "1"], None).await;
    let from = Ipv4Addr::new(127, 0, 6, 1);
    let mut silent = connect_from(from, server.address).await;
    // The first bytes of a ClientHello record, then nothing.
    let mut half_hello = connect_from(from, server.address).await;
    within(
        "half a hello",
        half_hello.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]),
    )
    .await
    .unwrap();
    for (what, stream) in [("silent", &mut silent), ("half hello", &mut half_hello)] {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the {what} TLS connection is closed");
    }
}

/// Writes `head` and the first `sent` bytes of a body, then reads the answer without sending
/// more: (status, body). The server must answer without the rest.
async fn post_part_of_a_body(server: SocketAddr, head: &str, sent: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(server).await.expect("connect");
    within("head", stream.write_all(head.as_bytes()))
        .await
        .expect("write");
    // The server may answer and close before all of this is written.
    let _ = within("body", stream.write_all(sent)).await;
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    within("an answer", async {
        loop {
            let text = String::from_utf8_lossy(&response);
            if let Some((_, body)) = text.split_once("\r\n\r\n")
                && body.contains('}')
            {
                break;
            }
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => response.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body.to_owned())
}

fn detail(body: &str) -> String {
    let start = body.find('{').unwrap_or(0);
    let value: serde_json::Value = serde_json::from_str(body[start..].trim_end())
        .unwrap_or_else(|error| panic!("not JSON ({error}): {body}"));
    value["detail"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn api_bodies_over_the_limit_get_413_without_being_read() {
    let mut config = wfs_runtime::Config::default();
    config.header_timeout = Duration::from_secs(1);
    let server = crate::server::TestServer::start_with(config).await;
    let chunk = vec![b'x'; 64 * 1024];
    // 64 MB announced, 64 KiB sent.
    let (status, body) = post_part_of_a_body(
        server.address,
        &format!(
            "POST /api/jwt/obtain HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            server.address,
            64 * 1024 * 1024
        ),
        &chunk,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(detail(&body).contains("larger than"), "{body}");
    // Chunked, so nothing announced: cut off at the limit, the end never sent.
    let mut chunks = Vec::new();
    for _ in 0..8 {
        chunks.extend_from_slice(format!("{:x}\r\n", 8 * 1024).as_bytes());
        chunks.extend_from_slice(&chunk[..8 * 1024]);
        chunks.extend_from_slice(b"\r\n");
    }
    let (status, body) = post_part_of_a_body(
        server.address,
        &format!(
            "POST /api/jwt/obtain HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            server.address
        ),
        &chunks,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    // A body that stalls is not waited for beyond the header timeout.
    let (status, body) = post_part_of_a_body(
        server.address,
        &format!(
            "POST /api/jwt/obtain HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
            server.address
        ),
        b"{\"username\":",
    )
    .await;
    assert_eq!(status, 408, "{body}");
    assert!(detail(&body).contains("did not arrive"), "{body}");
    // A body within the limit goes through whole.
    let login = format!(
        r#"{{"username":"admin","password":"{}"}}"#,
        crate::server::ADMIN_PASSWORD
    );
    let (status, body) = post_part_of_a_body(
        server.address,
        &format!(
            "POST /api/jwt/obtain HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            server.address,
            login.len()
        ),
        login.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"access\""), "{body}");
}
