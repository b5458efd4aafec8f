//! `conform` against a server written for the test from `fixtures/city-feed.yaml`: as the
//! contract says, it passes; with each mistake switched on (an undeclared push, an answer
//! without its correlation id, a bad `city_uuid` accepted, a connection dropped on a frame that
//! is not JSON), each is found and named, and nothing else is.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use asyncapi_conform::{Kind, Options, Outcome, Refusal, Report, Trigger};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wfs_codegen::Contract;

/// The mistakes the server makes.
#[derive(Debug, Clone, Copy, Default)]
struct Wrongs {
    undeclared_push: bool,
    answer_without_req_id: bool,
    answer_with_other_req_id: bool,
    accepts_bad_city: bool,
    drops_on_garbage: bool,
}

fn contract() -> Contract {
    Contract::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/city-feed.yaml"))
        .expect("the fixture loads")
}

fn canonical_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(index, c)| {
            if matches!(index, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// The city feed server on 127.0.0.1:0; stopped when the runtime ends.
async fn city_feed(wrongs: Wrongs) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(session(stream, wrongs));
        }
    });
    address
}

#[allow(clippy::result_large_err)]
async fn session(stream: TcpStream, wrongs: Wrongs) {
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let city = request
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("city_uuid="));
        if request.uri().path() == "/feed"
            && (wrongs.accepts_bad_city || city.is_some_and(canonical_uuid))
        {
            Ok(response)
        } else {
            let mut refusal = ErrorResponse::new(Some("bad city_uuid".to_owned()));
            *refusal.status_mut() = StatusCode::BAD_REQUEST;
            Err(refusal)
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let alert = json!({"type": "alert", "message": "Hail storm is coming!"});
    let _ = sink.send(Message::text(alert.to_string())).await;
    if wrongs.undeclared_push {
        let surprise = json!({"type": "surprise", "message": "not in the contract"});
        let _ = sink.send(Message::text(surprise.to_string())).await;
    }
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
            if wrongs.drops_on_garbage {
                // Gone without a close frame: the client sees 1006.
                return;
            }
            let close = CloseFrame {
                code: CloseCode::Unsupported,
                reason: "not JSON".into(),
            };
            let _ = sink.send(Message::Close(Some(close))).await;
            continue;
        };
        let is_question = value["type"] == "question"
            && value["text"].as_str().is_some_and(|text| !text.is_empty());
        if is_question {
            let mut answer = json!({"type": "answer", "text": "Yes."});
            if wrongs.answer_with_other_req_id {
                answer["req_id"] = json!("someone-else");
            } else if !wrongs.answer_without_req_id {
                answer["req_id"] = value["req_id"].clone();
            }
            let _ = sink.send(Message::text(answer.to_string())).await;
        }
    }
}

async fn conform(address: SocketAddr, configure: impl FnOnce(&mut Options)) -> Report {
    let contract = contract();
    let mut options = Options::new(format!("ws://{address}"));
    options.timeout = Duration::from_secs(1);
    options.settle = Duration::from_millis(200);
    configure(&mut options);
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        asyncapi_conform::run(&contract, &options),
    )
    .await
    .expect("the run ends");
    println!("{}", report.render_text());
    report
}

fn failed<'r>(report: &'r Report, kind: Kind, name: &str) -> &'r str {
    report
        .checks
        .iter()
        .find_map(|check| match &check.outcome {
            Outcome::Failed(why) if check.kind == kind && check.name.contains(name) => {
                Some(why.as_str())
            }
            _ => None,
        })
        .unwrap_or_else(|| {
            panic!(
                "no failed {kind:?} check `{name}` in:\n{}",
                report.render_text()
            )
        })
}

#[tokio::test]
async fn the_server_as_the_contract_says_passes() {
    let report = conform(city_feed(Wrongs::default()).await, |_| {}).await;
    assert_eq!(report.violations(), 0, "{}", report.render_text());
    let text = report.render_text();
    for expected in [
        "param-refusal city_uuid=not-a-uuid: refused with HTTP 400",
        "param-refusal city_uuid missing: refused with HTTP 400",
        "reply ask example 1: reply `answer`",
        "correlation id \"conform-1\" at /req_id",
        "robustness question: not JSON: closed with 1003",
        "push every frame declared: ",
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from:\n{text}"
        );
    }
}

#[tokio::test]
async fn each_mistake_is_found_and_named() {
    let wrongs = Wrongs {
        undeclared_push: true,
        answer_without_req_id: true,
        accepts_bad_city: true,
        drops_on_garbage: true,
        ..Wrongs::default()
    };
    let report = conform(city_feed(wrongs).await, |_| {}).await;
    let why = failed(&report, Kind::Push, "surprise");
    assert!(
        why.contains("undeclared frame") && why.contains("closest"),
        "{why}"
    );
    let why = failed(&report, Kind::Reply, "ask example 1");
    assert!(
        why.contains("carries no correlation id at /req_id"),
        "{why}"
    );
    let why = failed(&report, Kind::ParamRefusal, "city_uuid=not-a-uuid");
    assert!(why.contains("accepted and kept open"), "{why}");
    assert!(
        why.contains("is not a \"uuid\""),
        "names the schema rule: {why}"
    );
    failed(&report, Kind::ParamRefusal, "city_uuid missing");
    let why = failed(&report, Kind::Robustness, "not JSON");
    assert!(why.contains("crashed (1006"), "{why}");
    assert_eq!(report.violations(), 5, "{}", report.render_text());
    let junit = report.junit_xml();
    assert!(
        junit.contains("tests=\"") && junit.contains("failures=\"5\""),
        "{junit}"
    );
    assert!(
        junit.contains("<failure message=\"reply `answer` carries no correlation id"),
        "{junit}"
    );
}

#[tokio::test]
async fn each_mistake_alone_is_the_only_violation() {
    let cases: [(Wrongs, Kind); 5] = [
        (
            Wrongs {
                undeclared_push: true,
                ..Wrongs::default()
            },
            Kind::Push,
        ),
        (
            Wrongs {
                answer_without_req_id: true,
                ..Wrongs::default()
            },
            Kind::Reply,
        ),
        (
            Wrongs {
                answer_with_other_req_id: true,
                ..Wrongs::default()
            },
            Kind::Reply,
        ),
        (
            Wrongs {
                accepts_bad_city: true,
                ..Wrongs::default()
            },
            Kind::ParamRefusal,
        ),
        (
            Wrongs {
                drops_on_garbage: true,
                ..Wrongs::default()
            },
            Kind::Robustness,
        ),
    ];
    for (wrongs, kind) in cases {
        let report = conform(city_feed(wrongs).await, |_| {}).await;
        let kinds: Vec<Kind> = report.failures().map(|check| check.kind).collect();
        assert!(
            !kinds.is_empty() && kinds.iter().all(|found| *found == kind),
            "{wrongs:?}: expected only {kind:?} failures:\n{}",
            report.render_text()
        );
    }
}

#[tokio::test]
async fn an_answer_to_someone_else_is_not_the_reply() {
    let wrongs = Wrongs {
        answer_with_other_req_id: true,
        ..Wrongs::default()
    };
    let report = conform(city_feed(wrongs).await, |_| {}).await;
    let why = failed(&report, Kind::Reply, "ask example 1");
    assert!(
        why.contains(
            "no reply within 1s; replies came with other correlation ids (\"someone-else\")"
        ),
        "{why}"
    );
}

#[tokio::test]
async fn refusal_rules_and_triggers_are_held_to() {
    let address = city_feed(Wrongs::default()).await;
    let contract = contract();
    let report = conform(address, |options| {
        options.expect_param_refusal = Refusal::Close;
        options.triggers = vec![
            Trigger::parse("sendAlert=true", &contract).unwrap(),
            Trigger::parse("sendAlert=exit 3", &contract).unwrap(),
        ];
    })
    .await;
    let why = failed(&report, Kind::ParamRefusal, "city_uuid=not-a-uuid");
    assert!(
        why.contains("refused with HTTP 400, but a close after the upgrade is expected"),
        "{why}"
    );
    let why = failed(&report, Kind::Trigger, "sendAlert: `true`");
    assert!(why.contains("`sendAlert` was not seen"), "{why}");
    let why = failed(&report, Kind::Trigger, "sendAlert: `exit 3`");
    assert!(why.contains("the command failed"), "{why}");

    // A valid handshake the server refuses is a violation too.
    let report = conform(address, |options| {
        options.params = vec![("city_uuid".to_owned(), "nowhere".to_owned())];
    })
    .await;
    let why = failed(&report, Kind::Handshake, "valid parameters");
    assert!(
        why.contains("refused with HTTP 400 `bad city_uuid`"),
        "{why}"
    );

    // A command whose text before `=` is no send operation is one whole command.
    assert_eq!(
        Trigger::parse("echo a=b", &contract),
        Ok(Trigger {
            operation: None,
            command: "echo a=b".to_owned()
        })
    );
    // A word before `=` that names no send operation (a typo) is refused, not run as a shell
    // variable assignment that does nothing.
    let why = Trigger::parse("sendAlrt=wfs alert", &contract).unwrap_err();
    assert!(
        why.contains("`sendAlrt` is not a send operation") && why.contains("sendAlert"),
        "{why}"
    );
}

#[tokio::test]
async fn a_document_with_nothing_to_check_is_a_violation() {
    let contract = Contract::from_text(
        "mqtt.yaml",
        "asyncapi: 3.0.0\ninfo: {title: t, version: '1'}\nservers: {broker: {host: 'h:1883', protocol: mqtt}}\nchannels: {lights: {address: lights/on}}\n",
    )
    .expect("loads");
    let report = asyncapi_conform::run(&contract, &Options::new("ws://127.0.0.1:9")).await;
    assert_eq!(report.violations(), 1, "{}", report.render_text());
    assert!(
        report.notes.iter().any(|note| note.contains("lights")),
        "{:?}",
        report.notes
    );
}
