//! Fuzz-style tests on stable Rust: seeded random and mutated inputs to the request parser
//! (raw HTTP over TCP to a real server), the query-parameter parser, the token parser and each
//! channel's frame decoder (as functions, and as frames on real connections). The property is
//! the same everywhere: no panic, and every outcome is one of the documented answers.
//!
//! A seeded loop on `fastrand` (already in the tree) rather than proptest: proptest would add
//! a dozen crates to build for shrinking, and a failing case here prints its seed and its input,
//! which is enough to replay it. `WFS_FUZZ_SEED` picks another seed and `WFS_FUZZ_CASES` more
//! cases (the defaults keep `cargo test` to a few seconds and the same inputs every run).

use std::net::SocketAddr;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wfs::auth::{Jwt, TokenKind};
use wfs::contract::alert::{AlertInbound, AlertParams};
use wfs::contract::chat::{ChatInbound, ChatParams};
use wfs::contract::echo::{EchoClient, EchoInbound, EchoParams};
use wfs_runtime::client::ClientError;
use wfs_runtime::serve::Candidate;
use wfs_runtime::{Decode, Handshake, socket::parse_json};

use crate::server::{TestServer, within};

fn seed() -> u64 {
    std::env::var("WFS_FUZZ_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5eed_f022)
}

fn cases(default: usize) -> usize {
    std::env::var("WFS_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

/// What HTTP, URLs, JSON and tokens are made of, so that random input gets past the first
/// byte of each parser.
const ALPHABET: &[u8] = b"GETPOST /?&=%:;.,-_+*\r\n\t HTTP/1.0 {}[]\"'\\0123456789abcdefxyzABCXYZ";

/// Random text from [`ALPHABET`], now and then a character outside ASCII.
fn random_text(rng: &mut fastrand::Rng, max: usize) -> String {
    (0..rng.usize(0..=max))
        .map(|_| match rng.u8(0..20) {
            0 => rng.char(..),
            _ => char::from(ALPHABET[rng.usize(..ALPHABET.len())]),
        })
        .collect()
}

/// A byte for an edit: mostly from [`ALPHABET`], a quarter of the time any byte.
fn random_byte(rng: &mut fastrand::Rng) -> u8 {
    match rng.u8(0..4) {
        0 => rng.u8(..),
        _ => ALPHABET[rng.usize(..ALPHABET.len())],
    }
}

fn random_bytes(rng: &mut fastrand::Rng, max: usize) -> Vec<u8> {
    (0..rng.usize(0..=max)).map(|_| rng.u8(..)).collect()
}

/// One to three random edits of `input`: a byte changed, inserted or removed, a cut, a piece
/// repeated (which makes duplicate headers and parameters, among others).
fn mutate(rng: &mut fastrand::Rng, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..rng.usize(1..=3) {
        let at = rng.usize(..=bytes.len());
        match rng.u8(0..5) {
            0 if at < bytes.len() => bytes[at] = random_byte(rng),
            1 => bytes.insert(at, random_byte(rng)),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            3 => bytes.truncate(at.max(bytes.len() / 2)),
            _ => {
                let start = rng.usize(..=bytes.len());
                let end = (start + rng.usize(0..40)).min(bytes.len());
                let piece = bytes[start..end].to_vec();
                bytes.splice(at..at, piece);
            }
        }
    }
    bytes
}

/// A random JSON value, at most `depth` deep.
fn random_json(rng: &mut fastrand::Rng, depth: u8) -> serde_json::Value {
    use serde_json::Value;
    match rng.u8(0..if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2 => serde_json::json!(rng.i64(..)),
        3 => serde_json::json!(rng.f64() * 1e6),
        4 => Value::String(random_text(rng, 40)),
        5 => Value::Array(
            (0..rng.usize(0..4))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let keys = ["message", "type", "id", "since", &random_text(rng, 8)];
            Value::Object(
                (0..rng.usize(0..4))
                    .map(|_| {
                        (
                            keys[rng.usize(..keys.len())].to_owned(),
                            random_json(rng, depth - 1),
                        )
                    })
                    .collect(),
            )
        }
    }
}

/// Statuses the service documents (README, WIRE.md): success, redirects of the docs, the
/// 4xx of bad input, 503 (limits, shutdown, store down), 505 for an HTTP version it does not
/// speak (hyper's own answer). Never 500.
const DOCUMENTED: &[u16] = &[
    101, 200, 201, 204, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 408, 411, 413, 414,
    415, 422, 426, 429, 431, 503, 505,
];

/// Writes `input` and reads what the server answers until it closes (at once for what it
/// refuses, after the header timeout for what is left incomplete or kept alive), or for 3 s
/// (a stream or a WebSocket stays open). Ending the request side instead would make hyper
/// drop the connection unanswered.
async fn exchange(server: SocketAddr, input: &[u8]) -> String {
    let mut stream = within("connect", tokio::net::TcpStream::connect(server))
        .await
        .expect("connect");
    // The server may answer and close before reading all of it.
    let _ = stream.write_all(input).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        stream.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn random_requests_get_a_documented_answer_never_a_500() {
    let mut config = wfs_runtime::Config::default();
    config.header_timeout = std::time::Duration::from_secs(1);
    let server = TestServer::start_with(config).await;
    let cairo = server.city("Cairo").await.uuid;
    let token = server.token(&server.alice);
    let host = format!("Host: {}", server.address);
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13";
    let login = r#"{"username":"alice","password":"alice-password"}"#;
    let valid: Vec<Vec<u8>> = [
        format!("GET /health HTTP/1.1\r\n{host}\r\n\r\n"),
        format!("GET /ws/v1/echo HTTP/1.1\r\n{host}\r\n{upgrade}\r\n\r\n"),
        format!("GET /ws/v1/alert?city_uuid={cairo}&access_token={token}&since=1 HTTP/1.1\r\n{host}\r\n{upgrade}\r\n\r\n"),
        format!("GET /ws/v1/chat?city_uuid={cairo}&access_token={token} HTTP/1.1\r\n{host}\r\nOrigin: {}\r\n{upgrade}\r\n\r\n", server.http_url),
        format!("POST /api/jwt/obtain HTTP/1.1\r\n{host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{login}", login.len()),
        format!("GET /api/v1/cities/{cairo}/alerts?limit=5 HTTP/1.1\r\n{host}\r\nAuthorization: Bearer {token}\r\n\r\n"),
        format!("GET /sse/v1/alert?city_uuid={cairo}&access_token={token} HTTP/1.1\r\n{host}\r\n\r\n"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let inputs: Vec<Vec<u8>> = (0..cases(300))
        .map(|_| match rng.u8(0..6) {
            0 => random_bytes(&mut rng, 600),
            1 => random_text(&mut rng, 600).into_bytes(),
            _ => {
                let base = &valid[rng.usize(..valid.len())];
                mutate(&mut rng, base)
            }
        })
        .collect();
    // 150 at a time: an exchange can take 3 s.
    let (mut accepted, mut refused) = (0, 0);
    for (chunk, inputs) in inputs.chunks(150).enumerate() {
        let answers = futures_util::future::join_all(
            inputs.iter().map(|input| exchange(server.address, input)),
        )
        .await;
        for (index, (input, answer)) in inputs.iter().zip(answers).enumerate() {
            let case = chunk * 150 + index;
            for line in answer
                .split("\r\n")
                .filter(|line| line.starts_with("HTTP/1."))
            {
                let status = line
                    .split(' ')
                    .nth(1)
                    .and_then(|status| status.parse::<u16>().ok());
                assert!(
                    status.is_some_and(|status| DOCUMENTED.contains(&status)),
                    "seed {seed} case {case}: `{line}` for {:?}",
                    String::from_utf8_lossy(input)
                );
                match status {
                    Some(100..400) => accepted += 1,
                    _ => refused += 1,
                }
            }
        }
    }
    // The inputs reach both sides of the parser, not just its first byte.
    assert!(
        accepted >= 5 && refused >= 5,
        "{accepted} accepted, {refused} refused"
    );
    let (status, _) = health(server.address).await;
    assert_eq!(status, 200, "the server still answers");
}

async fn health(server: SocketAddr) -> (u16, String) {
    let answer = exchange(
        server,
        format!("GET /health HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[test]
fn random_query_strings_give_parameters_or_named_problems() {
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let names = ["city_uuid", "access_token", "since", "x"];
    let good = [
        "5b0f3d4e-8c1a-4f7e-9d2b-3a6c1e8f0b47",
        "5B0F3D4E-8C1A-4F7E-9D2B-3A6C1E8F0B47",
        "42",
        "a.b.c",
    ];
    for case in 0..cases(2000) {
        let query: String = (0..rng.usize(0..5))
            .map(|_| {
                let name = names[rng.usize(..names.len())];
                let value = match rng.u8(0..3) {
                    0 => good[rng.usize(..good.len())].to_owned(),
                    1 => {
                        let base = good[rng.usize(..good.len())];
                        String::from_utf8_lossy(&mutate(&mut rng, base.as_bytes())).into_owned()
                    }
                    _ => random_text(&mut rng, 40),
                };
                format!("{name}={}&", wfs_runtime::client::encode(&value))
            })
            .collect::<String>()
            + &random_text(&mut rng, 10).replace([' ', '\r', '\n', '\t'], "");
        let Ok(uri) = poem::http::Uri::try_from(format!("/ws/v1/alert?{query}")) else {
            // Not a URI hyper would hand on: the socket test covers those.
            continue;
        };
        let request = poem::Request::builder().uri(uri).finish();
        let handshake = Handshake::from_request(&request, &[]);
        let context = || format!("seed {seed} case {case}: {query}");
        match AlertParams::from_handshake(&handshake) {
            Ok(params) => {
                let given = handshake.query("city_uuid").expect("a city was given");
                assert_eq!(
                    wfs_runtime::params::uuid(given).ok(),
                    Some(params.city_uuid),
                    "{}",
                    context()
                );
            }
            Err(error) => {
                assert!(!error.problems.is_empty(), "{}", context());
                for problem in &error.problems {
                    assert!(
                        ["city_uuid", "access_token", "since"].contains(&problem.name.as_str()),
                        "{}: {problem:?}",
                        context()
                    );
                }
            }
        }
        match ChatParams::from_handshake(&handshake) {
            Ok(_) => assert!(handshake.query("city_uuid").is_some(), "{}", context()),
            Err(error) => assert!(!error.problems.is_empty(), "{}", context()),
        }
        let _ = EchoParams::from_handshake(&handshake).expect("echo takes no parameters");
    }
}

#[test]
fn random_and_mangled_tokens_are_refused_with_a_reason() {
    let jwt = Jwt::new(
        b"a secret for the fuzz test".to_vec(),
        std::time::Duration::from_secs(600),
        std::time::Duration::from_secs(600),
    )
    .expect("a valid secret");
    let valid = jwt.issue(7, TokenKind::Access);
    let wrapped = base64::engine::general_purpose::STANDARD.encode(&valid);
    let segment = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    for case in 0..cases(3000) {
        let token = match rng.u8(0..5) {
            0 => random_text(&mut rng, 300),
            1 => String::from_utf8_lossy(&mutate(&mut rng, valid.as_bytes())).into_owned(),
            2 => String::from_utf8_lossy(&mutate(&mut rng, wrapped.as_bytes())).into_owned(),
            3 => {
                base64::engine::general_purpose::STANDARD.encode(mutate(&mut rng, valid.as_bytes()))
            }
            _ => (0..3)
                .map(|_| segment.encode(random_json(&mut rng, 2).to_string()))
                .collect::<Vec<_>>()
                .join("."),
        };
        match jwt.verify(&token, TokenKind::Access) {
            // Only the real token (give or take what `verify` documents it forgives:
            // surrounding blanks, the Base64 wrapping) carries claims.
            Ok(claims) => assert_eq!(claims.id, 7, "seed {seed} case {case}: {token:?}"),
            Err(error) => {
                assert!(!error.is_server_error(), "seed {seed} case {case}");
                assert!(
                    !error.to_string().is_empty(),
                    "seed {seed} case {case}: a reason"
                );
            }
        }
    }
}

#[test]
fn random_frames_decode_to_a_message_or_violations() {
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let valid = [
        r#"{"message":"hi"}"#,
        r#"{"message":"Zürich ☔","extra":[1,2]}"#,
        r#""a string""#,
    ];
    for case in 0..cases(5000) {
        let value = match rng.u8(0..3) {
            0 => random_json(&mut rng, 3),
            _ => {
                let text = match rng.bool() {
                    true => random_text(&mut rng, 80),
                    false => {
                        let base = valid[rng.usize(..valid.len())];
                        String::from_utf8_lossy(&mutate(&mut rng, base.as_bytes())).into_owned()
                    }
                };
                match parse_json(&text) {
                    Ok(value) => value,
                    // Not JSON: the documented answer is close 1003.
                    Err(error) => {
                        assert_eq!(error.close_code(), 1003, "seed {seed} case {case}");
                        continue;
                    }
                }
            }
        };
        let context = format!("seed {seed} case {case}: {value}");
        match EchoInbound::decode(Candidate::Shared(&value)) {
            // What decodes re-encodes to something that decodes again.
            Ok(message) => {
                let again = serde_json::to_value(&message).expect("encodes");
                assert!(
                    EchoInbound::decode(Candidate::Owned(again)).is_ok(),
                    "{context}"
                );
            }
            Err(violations) => assert!(!violations.is_empty(), "{context}"),
        }
        let shared: Result<ChatInbound, _> = decoded_alike(&value, &context);
        match shared {
            Ok(ChatInbound::ChatMessage(message)) => {
                let length = message.message.chars().count();
                assert!((1..=4096).contains(&length), "{context}");
            }
            Err(violations) => assert!(!violations.is_empty(), "{context}"),
        }
        assert!(
            AlertInbound::decode(Candidate::Owned(value)).is_err(),
            "{context}"
        );
    }
}

/// What a client decodes (a channel's outbound enum of several messages, tried in turn or picked
/// by their `type`) comes out the same whether the decoder may keep the value or only borrows
/// it: the client and the socket loop move it, the debug check of each sent frame borrows it.
#[test]
fn random_outbound_frames_decode_the_same_owned_or_shared() {
    use wfs::contract::alert::AlertOutbound;
    use wfs::contract::chat::ChatOutbound;

    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    // One of each outbound message of the two channels, as the contract's examples give them.
    let valid = [
        r#"{"type":"alert","message":"Hail storm is coming!","id":42,"city_uuid":"5b0f3d4e-8c1a-4f7e-9d2b-3a6c1e8f0b47","created_at":"2025-06-01T14:03:27Z"}"#,
        r#"{"type":"chat","message":"Anyone else seeing this rain?","user":"alice","city_uuid":"5b0f3d4e-8c1a-4f7e-9d2b-3a6c1e8f0b47","sent_at":"2025-06-01T14:05:10Z"}"#,
        r#"{"type":"welcome","message":"Welcome in Cairo chat.","city_uuid":"5b0f3d4e-8c1a-4f7e-9d2b-3a6c1e8f0b47"}"#,
        r#"{"type":"error","message":"Too many messages, slow down.","code":"rate_limited"}"#,
    ];
    let mut decoded = 0;
    for case in 0..cases(5000) {
        let base = valid[rng.usize(..valid.len())];
        let text = match rng.u8(0..4) {
            0 => base.to_owned(),
            _ => String::from_utf8_lossy(&mutate(&mut rng, base.as_bytes())).into_owned(),
        };
        let Ok(value) = parse_json(&text) else {
            continue;
        };
        let context = format!("seed {seed} case {case}: {value}");
        let alert: Result<AlertOutbound, _> = decoded_alike(&value, &context);
        let chat: Result<ChatOutbound, _> = decoded_alike(&value, &context);
        decoded += usize::from(alert.is_ok()) + usize::from(chat.is_ok());
    }
    // Both ways were compared on messages, not only on refusals.
    assert!(decoded > cases(5000) / 10, "only {decoded} decoded");
}

/// `value` decoded as `T` from a borrowed value, after checking that the decoder which may keep
/// the value (the socket loop's and the client's case) gives the same message or violations.
fn decoded_alike<T>(
    value: &serde_json::Value,
    context: &str,
) -> Result<T, Vec<wfs_runtime::Violations>>
where
    T: Decode + PartialEq + std::fmt::Debug,
{
    let shared = T::decode(Candidate::Shared(value));
    assert_eq!(
        T::decode(Candidate::Owned(value.clone())),
        shared,
        "{context}"
    );
    shared
}

#[tokio::test]
async fn random_frames_on_real_connections_get_a_reply_an_error_or_a_close_with_a_code() {
    let server = TestServer::start().await;
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut echo: Option<EchoClient> = None;
    let (mut replies, mut closes) = (0, 0);
    for case in 0..cases(200) {
        let client = match &mut echo {
            Some(client) => client,
            None => echo.insert(
                within(
                    "echo",
                    EchoClient::connect(&server.base_url, &EchoParams::default()),
                )
                .await
                .expect("accepted"),
            ),
        };
        let text = match rng.u8(0..3) {
            0 => random_text(&mut rng, 100),
            1 => random_json(&mut rng, 3).to_string(),
            _ => serde_json::json!({ "message": random_text(&mut rng, 30) }).to_string(),
        };
        within("send", client.raw().send_text(text.clone()))
            .await
            .expect("send");
        match within("an answer", client.raw().recv_text()).await {
            Ok(reply) => {
                let sent = parse_json(&text).expect("only JSON is echoed");
                let got = parse_json(&reply).expect("the reply is JSON");
                assert_eq!(got, sent, "seed {seed} case {case}");
                replies += 1;
            }
            Err(ClientError::Closed { code, reason }) => {
                assert!(
                    [1003, 1007, 1009].contains(&code),
                    "seed {seed} case {case}: close {code} {reason} for {text:?}"
                );
                echo = None;
                closes += 1;
            }
            Err(other) => panic!("seed {seed} case {case}: {other} for {text:?}"),
        }
    }
    assert!(
        replies > 10 && closes > 10,
        "{replies} replies, {closes} closes"
    );
}

/// What a chat or alert connection may answer a random frame with: a message of the channel
/// (checked against the contract), or a close with one of the documented codes.
async fn documented_answer(
    client: &mut wfs_runtime::client::Client,
    decode: fn(&serde_json::Value) -> bool,
    context: &str,
) -> bool {
    match within("an answer", client.recv_text()).await {
        Ok(reply) => {
            let value = parse_json(&reply).expect("the server sends JSON");
            assert!(decode(&value), "{context}: {reply} is not in the contract");
            true
        }
        Err(ClientError::Closed { code, reason }) => {
            // 1003 not JSON, 1007 breaks the contract, 1009 too big, 1008 repeated abuse.
            assert!(
                [1003, 1007, 1008, 1009].contains(&code),
                "{context}: close {code} {reason}"
            );
            false
        }
        Err(other) => panic!("{context}: {other}"),
    }
}

#[tokio::test]
async fn random_frames_on_chat_and_alert_connections_get_documented_answers() {
    use wfs::contract::alert::{AlertClient, AlertOutbound};
    use wfs::contract::chat::{ChatClient, ChatOutbound};
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut chat: Option<ChatClient> = None;
    let mut alert: Option<AlertClient> = None;
    for case in 0..cases(100) {
        let text = match rng.u8(0..3) {
            0 => random_text(&mut rng, 100),
            1 => random_json(&mut rng, 3).to_string(),
            _ => serde_json::json!({ "message": random_text(&mut rng, 30) }).to_string(),
        };
        let context = format!("seed {seed} case {case}: {text:?}");
        if chat.is_none() {
            let params = ChatParams {
                city_uuid: cairo,
                access_token: server.token(&server.alice),
            };
            let mut client = within("chat", ChatClient::connect(&server.base_url, &params))
                .await
                .expect("accepted");
            within("welcome", client.recv()).await.expect("a welcome");
            chat = Some(client);
        }
        if alert.is_none() {
            let params = AlertParams {
                city_uuid: cairo,
                access_token: server.token(&server.alice),
                since: None,
            };
            alert = Some(
                within("alert", AlertClient::connect(&server.base_url, &params))
                    .await
                    .expect("accepted"),
            );
        }
        if let Some(client) = &mut chat {
            within("send", client.raw().send_text(text.clone()))
                .await
                .expect("send");
            let decode =
                |value: &serde_json::Value| ChatOutbound::decode(Candidate::Shared(value)).is_ok();
            if !documented_answer(client.raw(), decode, &context).await {
                chat = None;
            }
        }
        if let Some(client) = &mut alert {
            within("send", client.raw().send_text(text.clone()))
                .await
                .expect("send");
            let decode =
                |value: &serde_json::Value| AlertOutbound::decode(Candidate::Shared(value)).is_ok();
            if !documented_answer(client.raw(), decode, &context).await {
                alert = None;
            }
        }
    }
}
