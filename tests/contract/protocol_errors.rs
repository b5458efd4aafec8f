//! RFC 6455 protocol errors, sent as raw bytes after a real handshake: the server closes with
//! 1002 (protocol error) or 1007 (invalid payload) and a short reason, never a bare drop.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::server::{TestServer, within};

/// A raw TCP connection that completed the echo channel's WebSocket handshake.
async fn upgraded(server: &TestServer) -> TcpStream {
    let mut stream = within("connect", TcpStream::connect(server.address))
        .await
        .expect("connect");
    let request = format!(
        "GET /ws/v1/echo HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.address
    );
    within("handshake", stream.write_all(request.as_bytes()))
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        within("101", stream.read_exact(&mut byte))
            .await
            .expect("the handshake answer");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// A client frame: FIN and opcode byte as given, masked (unless `masked` is false).
pub fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut bytes = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        len @ 0..=125 => bytes.push(mask_bit | len as u8),
        len @ 126..=65535 => {
            bytes.push(mask_bit | 126);
            bytes.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            bytes.push(mask_bit | 127);
            bytes.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        bytes.extend_from_slice(&key);
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        bytes.extend_from_slice(payload);
    }
    bytes
}

/// The close frame the server sends next (skipping pings): (code, reason).
pub async fn server_close(stream: &mut TcpStream) -> (u16, String) {
    within("a close frame", async {
        loop {
            let mut header = [0u8; 2];
            stream.read_exact(&mut header).await.expect("a frame");
            let len = usize::from(header[1] & 0x7f);
            let len = match len {
                126 => usize::from(stream.read_u16().await.expect("length")),
                127 => stream.read_u64().await.expect("length") as usize,
                len => len,
            };
            let mut payload = vec![0u8; len];
            stream.read_exact(&mut payload).await.expect("payload");
            if header[0] & 0x0f == 0x8 {
                let code = payload
                    .get(..2)
                    .map_or(1005, |code| u16::from_be_bytes([code[0], code[1]]));
                let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default());
                return (code, reason.into_owned());
            }
        }
    })
    .await
}

#[tokio::test]
async fn protocol_errors_close_with_1002_or_1007_and_a_reason() {
    let server = TestServer::start().await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "invalid UTF-8 text",
            frame(0x81, &[0x22, 0xff, 0xfe, 0x22], true),
            1007,
            "UTF-8",
        ),
        (
            "unmasked client frame",
            frame(0x81, b"{}", false),
            1002,
            "masked",
        ),
        ("reserved opcode 3", frame(0x83, b"", true), 1002, "opcode"),
        ("reserved opcode 11", frame(0x8b, b"", true), 1002, "opcode"),
        ("reserved bits", frame(0xc1, b"{}", true), 1002, "Reserved"),
        (
            "a 126-byte ping",
            frame(0x89, &[0u8; 126], true),
            1002,
            "125",
        ),
        (
            "a fragmented ping",
            frame(0x09, b"", true),
            1002,
            "fragmented",
        ),
        (
            "a continuation with nothing to continue",
            frame(0x80, b"{}", true),
            1002,
            "continu",
        ),
    ];
    for (what, bytes, code, reason) in cases {
        let mut stream = upgraded(&server).await;
        within("send", stream.write_all(&bytes))
            .await
            .expect("write");
        let (got, said) = server_close(&mut stream).await;
        assert_eq!(got, code, "{what}: {said}");
        assert!(said.contains(reason), "{what}: `{said}` lacks `{reason}`");
    }
}
