//! A minimal Server-Sent Events reader for the load generator: one HTTP/1.1 `GET` on a fresh
//! connection, the response head checked, then the body read as it comes (de-chunked when the
//! server chunks it) and cut into events. Written by hand, like [`crate::http`], so that the
//! cost per event on the load generator's side is small and visible; it reads what wfs sends
//! (`data:`, `id:`, `retry:` and comment lines), not every corner of the SSE specification.

use std::collections::VecDeque;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::scenarios::WAIT;

/// An open event stream.
#[derive(Debug)]
pub struct SseStream {
    stream: TcpStream,
    chunked: bool,
    /// Bytes read and not yet de-chunked.
    raw: Vec<u8>,
    /// Body bytes not yet cut into events.
    body: Vec<u8>,
    /// What is left of the chunk being read; 0 when a size line comes next.
    remaining: usize,
    /// A chunk's closing CRLF is still to skip.
    skip_crlf: bool,
    /// The last chunk (size 0) came: the stream has ended.
    ended: bool,
    events: VecDeque<String>,
}

/// Opens `path` (path and query) on `address` as an event stream; fails unless the answer is
/// 200. Bounded by [`WAIT`].
pub async fn open(address: SocketAddr, path: &str) -> anyhow::Result<SseStream> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    );
    let opening = async {
        let mut stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::with_capacity(1024);
        let mut chunk = [0u8; 2048];
        let end = loop {
            if let Some(end) = find(&raw, b"\r\n\r\n") {
                break end;
            }
            if raw.len() > 16 * 1024 {
                bail!("response head over 16 KiB");
            }
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                bail!("closed before the response head ended");
            }
            raw.extend_from_slice(&chunk[..read]);
        };
        anyhow::Ok((stream, raw, end))
    };
    let (stream, mut raw, end) = tokio::time::timeout(WAIT, opening)
        .await
        .context("no SSE response head within 10 s")??;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("no status code")?;
    if status != 200 {
        bail!(
            "SSE refused (HTTP {status}): {}",
            String::from_utf8_lossy(&raw[end + 4..])
        );
    }
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    raw.drain(..end + 4);
    Ok(SseStream {
        stream,
        chunked,
        raw,
        body: Vec::new(),
        remaining: 0,
        skip_crlf: false,
        ended: false,
        events: VecDeque::new(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

impl SseStream {
    /// The `data:` of the next event that has one (lines joined by `\n`); `None` when the
    /// stream ends or breaks. Not bounded: callers race it against their own deadline.
    pub async fn next_data(&mut self) -> Option<String> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            let read = self.stream.read(&mut chunk).await.ok()?;
            if read == 0 {
                return None;
            }
            self.feed(&chunk[..read]);
        }
    }

    /// Takes bytes off the wire: de-chunks them and cuts complete events out of the body.
    fn feed(&mut self, bytes: &[u8]) {
        if self.chunked {
            self.raw.extend_from_slice(bytes);
            self.dechunk();
        } else {
            self.body.extend_from_slice(bytes);
        }
        self.body.retain(|&byte| byte != b'\r');
        while let Some(end) = find(&self.body, b"\n\n") {
            let block: Vec<u8> = self.body.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|value| value.strip_prefix(' ').unwrap_or(value))
                .collect();
            if !data.is_empty() {
                self.events.push_back(data.join("\n"));
            }
        }
    }

    fn dechunk(&mut self) {
        loop {
            if self.remaining > 0 {
                let take = self.remaining.min(self.raw.len());
                if take == 0 {
                    return;
                }
                self.body.extend(self.raw.drain(..take));
                self.remaining -= take;
                self.skip_crlf = self.remaining == 0;
                continue;
            }
            if self.skip_crlf {
                if self.raw.len() < 2 {
                    return;
                }
                self.raw.drain(..2);
                self.skip_crlf = false;
                continue;
            }
            let Some(line_end) = find(&self.raw, b"\r\n") else {
                return;
            };
            let size = std::str::from_utf8(&self.raw[..line_end])
                .ok()
                .and_then(|line| usize::from_str_radix(line.split(';').next()?.trim(), 16).ok());
            self.raw.drain(..line_end + 2);
            match size {
                Some(0) | None => {
                    self.ended = true;
                    return;
                }
                Some(size) => self.remaining = size,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream whose socket is never read: `feed` is driven by hand.
    async fn detached(chunked: bool) -> SseStream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        SseStream {
            stream,
            chunked,
            raw: Vec::new(),
            body: Vec::new(),
            remaining: 0,
            skip_crlf: false,
            ended: false,
            events: VecDeque::new(),
        }
    }

    #[tokio::test]
    async fn events_are_cut_across_chunk_and_read_boundaries() {
        let mut stream = detached(true).await;
        let body = "retry: 2000\n\n: keep-alive\n\ndata: {\"a\":1}\nid: 7\n\ndata: two\r\ndata: lines\r\n\r\n";
        let mut wire = Vec::new();
        for piece in body.as_bytes().chunks(9) {
            wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            wire.extend_from_slice(piece);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        for byte in wire {
            stream.feed(&[byte]);
        }
        let events: Vec<String> = stream.events.drain(..).collect();
        assert_eq!(events, ["{\"a\":1}", "two\nlines"]);
        assert!(stream.ended);

        let mut plain = detached(false).await;
        plain.feed(b"data: x\n");
        assert!(plain.events.is_empty());
        plain.feed(b"\n");
        assert_eq!(plain.events.pop_front().as_deref(), Some("x"));
    }
}
