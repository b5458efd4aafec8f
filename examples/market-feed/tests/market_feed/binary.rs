//! The `market-feed` binary: it serves where `--listen` says, stops cleanly on Ctrl-C, and
//! refuses a bad address with a clear message and a failing exit status.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use market_feed::contract::feed::{FeedClient, FeedOutbound, FeedParams};
use wfs_runtime::client::ClientError;

use crate::{WAIT, ping};

const BINARY: &str = env!("CARGO_BIN_EXE_market-feed");

/// Kills the server it holds when the test ends, passed or not.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_where_listen_says_until_ctrl_c() {
    let mut child = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--tick-ms", "50"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("market-feed starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut running = Running(child);
    // Its first line names the address it serves: `... serving ws://127.0.0.1:PORT/v1/feed ...`.
    let line = tokio::time::timeout(
        WAIT,
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stderr).read_line(&mut line).map(|_| line)
        }),
    )
    .await
    .expect("market-feed reports its address in time")
    .expect("the reading task ends")
    .expect("stderr is readable");
    let url = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("ws://"))
        .and_then(|rest| rest.strip_suffix("/v1/feed"))
        .unwrap_or_else(|| panic!("a ws:// URL in {line:?}"));
    let mut client = tokio::time::timeout(
        WAIT,
        FeedClient::connect(&format!("ws://{url}"), &FeedParams::default()),
    )
    .await
    .expect("the handshake finishes in time")
    .expect("the binary accepts the connection");
    client.send_ping(&ping(3)).await.expect("ping sent");
    match tokio::time::timeout(WAIT, client.recv()).await {
        Ok(Ok(FeedOutbound::Pong(pong))) => assert_eq!(pong.req_id.0, 3),
        other => panic!("a pong, not {other:?}"),
    }
    // Ctrl-C: every WebSocket is closed with 1001, then the process ends well.
    let pid = running.0.id().to_string();
    let status = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "SIGINT sent to {pid}");
    match tokio::time::timeout(WAIT, client.recv()).await {
        Ok(Err(ClientError::Closed { code, .. })) => assert_eq!(code, 1001),
        other => panic!("a close with 1001, not {other:?}"),
    }
    // Gone, rather than left to answer the close: the server need not wait for it.
    drop(client);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(status) = running.0.try_wait().expect("the server's status") {
            assert!(status.success(), "exits with 0 after Ctrl-C: {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "exits within {WAIT:?} of Ctrl-C"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[test]
fn a_bad_listen_address_is_refused_with_a_clear_message() {
    for (address, expected) in [
        (
            "localhost",
            "invalid value 'localhost' for '--listen <IP:PORT>'",
        ),
        ("127.0.0.1:99999", "invalid value '127.0.0.1:99999'"),
        // Not an address of this machine: parsed, but it cannot be bound.
        ("192.0.2.1:9000", "cannot listen on 192.0.2.1:9000"),
    ] {
        let output = Command::new("timeout")
            .args(["30", BINARY, "--listen", address])
            .output()
            .expect("market-feed runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{address}: refused");
        assert!(stderr.contains(expected), "{address}: {stderr}");
    }
}
