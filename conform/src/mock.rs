//! A WebSocket server made from any AsyncAPI document, for client developers who have a
//! contract and no server yet: every reachable channel is served at its address, handshake
//! parameters are checked against their schemas (HTTP 400 otherwise), what clients send is
//! validated (a violation is answered with close 1007, or only logged), replies are built from
//! the examples with the request's correlation id copied in, each send operation's examples are
//! pushed every interval, and every frame is logged (tracing, target `asyncapi_conform::mock`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wfs_codegen::Contract;
use wfs_runtime::address::{Piece, Template};

use crate::schema::{at_pointer, set_pointer};
use crate::surface::{Endpoint, Place, Surface, path_names};
use crate::{Error, Result};

/// What the mock does with a frame that matches no message the server receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnInvalid {
    /// Close the connection with 1007 (invalid payload data) and the reason.
    #[default]
    Close,
    /// Log it as a warning and keep the connection.
    Log,
}

impl std::str::FromStr for OnInvalid {
    type Err = String;

    /// `close` or `log` (as `--on-invalid` takes it).
    fn from_str(text: &str) -> std::result::Result<OnInvalid, String> {
        match text {
            "close" => Ok(OnInvalid::Close),
            "log" => Ok(OnInvalid::Log),
            other => Err(format!("`{other}`: expected close or log")),
        }
    }
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct MockOptions {
    pub listen: SocketAddr,
    /// How often each send operation's examples are pushed (the first time right after the
    /// upgrade).
    pub interval: Duration,
    pub on_invalid: OnInvalid,
}

impl MockOptions {
    /// Defaults: pushes every second, invalid frames closed with 1007.
    pub fn new(listen: SocketAddr) -> MockOptions {
        MockOptions {
            listen,
            interval: Duration::from_secs(1),
            on_invalid: OnInvalid::Close,
        }
    }
}

/// A running mock; stopped when dropped.
#[derive(Debug)]
pub struct Mock {
    local_addr: SocketAddr,
    /// The addresses served, as written in the document.
    addresses: Vec<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Mock {
    /// Where it listens (the port chosen when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The channel addresses served.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Stops accepting and ends every connection.
    pub fn stop(self) {}
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One endpoint as the mock serves it.
struct Served {
    endpoint: Endpoint,
    template: Template,
    /// What each send operation pushes, made once.
    pushes: Vec<(String, Value)>,
    /// The payloads each outbound message may be answered with, made once.
    samples: Vec<Vec<Value>>,
}

/// Binds `options.listen` and serves every reachable channel of `contract`.
pub async fn serve(contract: &Contract, options: MockOptions) -> Result<Mock> {
    let surface = Surface::of(contract);
    for skipped in &surface.skipped {
        tracing::info!(target: "asyncapi_conform::mock", "not served: {skipped}");
    }
    let served: Vec<Served> = surface
        .endpoints
        .into_iter()
        .map(|endpoint| {
            let samples: Vec<Vec<Value>> = endpoint
                .outbound
                .iter()
                .map(|outbound| outbound.message.samples())
                .collect();
            let pushes = endpoint
                .outbound
                .iter()
                .zip(&samples)
                .filter(|(outbound, _)| outbound.pushed)
                .flat_map(|(outbound, samples)| {
                    samples
                        .iter()
                        .map(|sample| (outbound.operation.clone(), sample.clone()))
                })
                .collect();
            Served {
                template: template(&endpoint.address),
                endpoint,
                pushes,
                samples,
            }
        })
        .collect();
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|source| Error::Bind {
            address: options.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind {
        address: options.listen,
        source,
    })?;
    let addresses = served.iter().map(|s| s.endpoint.address.clone()).collect();
    let served = Arc::new(served);
    for endpoint in served.iter() {
        let messages = endpoint
            .endpoint
            .outbound
            .iter()
            .map(|outbound| &outbound.message)
            .chain(
                endpoint
                    .endpoint
                    .inbound
                    .iter()
                    .map(|inbound| &inbound.message),
            );
        for message in messages {
            for (name, problems) in &message.bad_examples {
                tracing::warn!(
                    target: "asyncapi_conform::mock",
                    "example {name} of `{}` does not match its own schema, not used: {}",
                    message.key,
                    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                );
            }
        }
        tracing::info!(
            target: "asyncapi_conform::mock",
            "serving ws://{local_addr}{} ({})",
            endpoint.endpoint.address,
            endpoint.endpoint.name
        );
    }
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        connections.spawn(connection(stream, peer, served.clone(), options.clone()));
                    }
                    Err(error) => {
                        tracing::warn!(target: "asyncapi_conform::mock", "accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    Ok(Mock {
        local_addr,
        addresses,
        task,
    })
}

/// The address as a [`Template`]. Its pieces are leaked: a few bytes per address, once per
/// served document, for a `'static` template shared with the generated servers' matcher.
fn template(address: &str) -> Template {
    let mut pieces = Vec::new();
    let mut rest = address;
    for name in path_names(address) {
        let marker = format!("{{{name}}}");
        if let Some(at) = rest.find(&marker) {
            if at > 0 {
                pieces.push(Piece::Text(leak(&rest[..at])));
            }
            pieces.push(Piece::Param(leak(name)));
            rest = &rest[at + marker.len()..];
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(leak(rest)));
    }
    Template::new(Box::leak(pieces.into_boxed_slice()))
}

fn leak(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

/// Decodes `%XX` escapes (and `+` in queries) into text; bad escapes are kept as written.
fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => {
                let hex = |byte: u8| (byte as char).to_digit(16);
                match (hex(bytes[index + 1]), hex(bytes[index + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        index += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Which endpoint `request` is for, or the refusal to answer it with.
fn route(served: &[Served], request: &Request) -> std::result::Result<usize, (StatusCode, String)> {
    let path = request.uri().path();
    let Some((index, raw)) = served
        .iter()
        .enumerate()
        .find_map(|(index, s)| s.template.parse(path).map(|params| (index, params)))
    else {
        return Err((StatusCode::NOT_FOUND, format!("no channel at {path}")));
    };
    let endpoint = &served[index].endpoint;
    let query: Vec<(String, String)> = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name, true), percent_decode(value, true))
        })
        .collect();
    let mut problems = Vec::new();
    for param in &endpoint.params {
        let value = match param.place {
            Place::Path => raw
                .iter()
                .find(|(name, _)| *name == param.name)
                .map(|(_, value)| percent_decode(value, false)),
            Place::Query => query
                .iter()
                .find(|(name, _)| *name == param.name)
                .map(|(_, value)| value.clone()),
            Place::Header => request
                .headers()
                .get(&param.name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
        };
        match value {
            None if param.required => problems.push(format!("`{}` is required", param.name)),
            None => {}
            Some(value) if !param.accepts(&value) => {
                problems.push(format!(
                    "`{}`: `{value}` does not match its schema",
                    param.name
                ));
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(index)
    } else {
        Err((StatusCode::BAD_REQUEST, problems.join("; ")))
    }
}

// tungstenite's handshake callback returns its (large) error response by value.
#[allow(clippy::result_large_err)]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    served: Arc<Vec<Served>>,
    options: MockOptions,
) {
    let mut routed = None;
    let callback = |request: &Request,
                    response: Response|
     -> std::result::Result<Response, ErrorResponse> {
        match route(&served, request) {
            Ok(index) => {
                routed = Some(index);
                Ok(response)
            }
            Err((status, body)) => {
                tracing::info!(
                    target: "asyncapi_conform::mock",
                    %peer, path = %request.uri().path(), status = status.as_u16(), "refused: {body}"
                );
                let mut refusal = ErrorResponse::new(Some(body));
                *refusal.status_mut() = status;
                Err(refusal)
            }
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let Some(index) = routed else { return };
    let served = &served[index];
    let endpoint = &served.endpoint;
    let channel = endpoint.name.as_str();
    tracing::info!(target: "asyncapi_conform::mock", %peer, channel, "connected");
    let (mut sink, mut stream) = ws.split();
    // The first pushes right after the upgrade (before anything the client sends is read),
    // then one round per interval.
    let mut ticker = tokio::time::interval(options.interval);
    ticker.tick().await;
    let mut outgoing: Vec<String> = served
        .pushes
        .iter()
        .map(|(_, payload)| payload.to_string())
        .collect();
    loop {
        for text in outgoing {
            tracing::info!(target: "asyncapi_conform::mock", %peer, channel, "out {text}");
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
        }
        outgoing = tokio::select! {
            _ = ticker.tick() => served.pushes.iter().map(|(_, payload)| payload.to_string()).collect(),
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    tracing::info!(target: "asyncapi_conform::mock", %peer, channel, "in {}", text.as_str());
                    match answer(served, text.as_str()) {
                        Ok(reply) => reply.into_iter().collect(),
                        Err(why) => {
                            if invalid(&mut sink, peer, channel, &why, options.on_invalid).await {
                                break;
                            }
                            Vec::new()
                        }
                    }
                }
                Some(Ok(Message::Binary(bytes))) => {
                    let why = format!("a binary frame ({} bytes); the contract's messages are JSON text", bytes.len());
                    if invalid(&mut sink, peer, channel, &why, options.on_invalid).await {
                        break;
                    }
                    Vec::new()
                }
                Some(Ok(_)) => Vec::new(),
                Some(Err(_)) | None => break,
            },
        };
    }
    // Let the closing handshake finish, briefly.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    tracing::info!(target: "asyncapi_conform::mock", %peer, channel, "disconnected");
}

/// Answers an invalid frame as `on_invalid` says; `true` when the connection is closing.
async fn invalid<S>(
    sink: &mut S,
    peer: SocketAddr,
    channel: &str,
    why: &str,
    on_invalid: OnInvalid,
) -> bool
where
    S: futures_util::Sink<Message> + Unpin,
{
    tracing::warn!(target: "asyncapi_conform::mock", %peer, channel, "invalid frame: {why}");
    if on_invalid == OnInvalid::Log {
        return false;
    }
    // A close reason is at most 123 bytes.
    let mut reason: String = why.chars().take(120).collect();
    while reason.len() > 123 {
        reason.pop();
    }
    let frame = CloseFrame {
        code: CloseCode::from(1007),
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
    true
}

/// The reply to a frame, if its operation has one; `Err` with why when the frame matches no
/// message the server receives.
fn answer(served: &Served, text: &str) -> std::result::Result<Option<String>, String> {
    let endpoint = &served.endpoint;
    let value: Value = serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    let Some(inbound) = endpoint
        .inbound
        .iter()
        .find(|inbound| inbound.message.accepts(&value))
    else {
        let closest = endpoint
            .inbound
            .iter()
            .map(|inbound| (inbound, inbound.message.problems(&value)))
            .min_by_key(|(_, problems)| problems.len());
        return Err(match closest {
            None => "this channel receives no message".to_owned(),
            Some((inbound, problems)) => format!(
                "not a `{}` message: {}",
                inbound.message.key,
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        });
    };
    // A reply that is the request's own message (echo) sends the request back.
    if inbound
        .reply
        .iter()
        .any(|&reply| Arc::ptr_eq(&endpoint.outbound[reply].message, &inbound.message))
    {
        return Ok(Some(value.to_string()));
    }
    for &reply in &inbound.reply {
        let message = &endpoint.outbound[reply].message;
        let Some(sample) = served.samples[reply].first() else {
            continue;
        };
        let mut reply_value = sample.clone();
        if let Some(request_pointer) = &inbound.message.correlation
            && let Some(id) = at_pointer(&value, request_pointer)
        {
            let pointer = message.correlation.as_ref().unwrap_or(request_pointer);
            let mut with = reply_value.clone();
            if set_pointer(&mut with, pointer, id.clone()) && message.accepts(&with) {
                reply_value = with;
            }
        }
        return Ok(Some(reply_value.to_string()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("a+b%2", false), "a+b%2");
        assert_eq!(percent_decode("%zz%41", false), "%zzA");
    }

    #[test]
    fn templates_match_mixed_segments() {
        let market = template("/v1/marketdata/{symbol}");
        assert_eq!(
            market.parse("/v1/marketdata/btcusd"),
            Some(vec![("symbol", "btcusd")])
        );
        assert_eq!(template("/").parse("/"), Some(vec![]));
    }
}
