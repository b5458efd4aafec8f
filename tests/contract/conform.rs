//! `asyncapi-conform` against the real `wfs serve` process with the v1 contract, as a CI job
//! would run it: every channel's handshake rules, the examples and their replies, every frame
//! pushed, the robustness probes, and alerts triggered through the `wfs alert` command line.
//! Nothing may be reported.

use std::time::Duration;

use asyncapi_conform::{Kind, Options, Outcome, Trigger};

use crate::process::RunningWfs;
use crate::server::exchange;

/// Cairo, one of the six cities every database starts with.
const CAIRO: &str = "df257fd6-63a5-5b69-b454-73da5d1224c2";

/// The admin's access token, from `POST /api/jwt/obtain` (retried while the server creates the
/// admin right after it starts listening).
async fn admin_token(port: u16) -> String {
    let body = r#"{"username":"admin","password":"admin-password-for-tests"}"#;
    let request = format!(
        "POST /api/jwt/obtain HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let response = exchange(stream, &request).await;
        if response.status == 200 {
            let start = response.body.find('{').expect("a JSON body");
            let end = response.body.rfind('}').expect("a JSON body");
            let value: serde_json::Value =
                serde_json::from_str(&response.body[start..=end]).expect("JSON");
            return value["access"]
                .as_str()
                .expect("an access token")
                .to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no token: {} {}",
            response.status,
            response.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn wfs_serve_conforms_to_its_contract() {
    let server = RunningWfs::start(&[]).await;
    let token = admin_token(server.port).await;
    let contract = wfs_codegen::Contract::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/asyncapi/v1-schema.yaml"
    ))
    .expect("the contract loads");
    let mut options = Options::new(server.ws_url());
    options
        .params
        .push(("city_uuid".to_owned(), CAIRO.to_owned()));
    options.token = Some(token.clone());
    // Room for a loaded CI machine: nothing here waits the full timeout when wfs conforms.
    options.timeout = Duration::from_secs(10);
    // `wfs alert` from "elsewhere": the admin's token, no data directory.
    let alert = format!(
        "sendAlert={} alert --city-uuid {CAIRO} --message 'Conform alert' --server http://127.0.0.1:{} --token {token}",
        env!("CARGO_BIN_EXE_wfs"),
        server.port
    );
    options
        .triggers
        .push(Trigger::parse(&alert, &contract).expect("sendAlert is a send operation"));
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        asyncapi_conform::run(&contract, &options),
    )
    .await
    .expect("the run ends");
    let text = report.render_text();
    println!("{text}");
    assert_eq!(report.violations(), 0, "{text}");
    // The parts that must have happened, with wfs's own answers (README, "The handshake").
    for expected in [
        "param-refusal city_uuid=not-a-uuid: accepted, then closed with 1008 `Query parameter city_uuid is missing or is invalid.`",
        "param-refusal access_token missing: refused with HTTP 403",
        "param-refusal since=-1: accepted, then closed with 1008",
        "reply receiveEcho example 4: reply `echo`",
        "example receiveChat example 1: sent",
        "robustness echo: not JSON: closed with 1003",
        "robustness chatMessage: required field `message` missing: connection open; frames meanwhile all declared (error)",
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from:\n{text}"
        );
    }
    let trigger = report
        .checks
        .iter()
        .find(|check| check.kind == Kind::Trigger)
        .expect("the trigger ran");
    assert!(
        matches!(&trigger.outcome, Outcome::Passed(seen) if seen.contains("`sendAlert` seen")),
        "{text}"
    );
    assert!(!text.contains(&token), "the token is never printed");
    server.stop().await;
}
