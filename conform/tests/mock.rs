//! `conform` against `mock` of the same document finds nothing to report, for our contract and
//! for every document of the AsyncAPI corpus with a channel reachable over WebSocket: the two
//! sides agree on what a document says, including documents we did not write.

use std::path::{Path, PathBuf};
use std::time::Duration;

use asyncapi_conform::{MockOptions, OnInvalid, Options, Report, mock};
use wfs_codegen::Contract;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs conform against a mock of `path`; `None` when the document serves no channel.
async fn conform_against_mock(path: &Path, on_invalid: OnInvalid) -> Option<Report> {
    let contract =
        Contract::load(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut mock_options = MockOptions::new("127.0.0.1:0".parse().unwrap());
    mock_options.interval = Duration::from_millis(200);
    mock_options.on_invalid = on_invalid;
    let mock = mock::serve(&contract, mock_options)
        .await
        .expect("the mock listens");
    if mock.addresses().is_empty() {
        return None;
    }
    let mut options = Options::new(format!("ws://{}", mock.local_addr()));
    options.timeout = Duration::from_secs(2);
    options.settle = Duration::from_millis(250);
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        asyncapi_conform::run(&contract, &options),
    )
    .await
    .expect("the run ends");
    // Shown with --nocapture, and when the test fails.
    println!("{}:\n{}", path.display(), report.render_text());
    Some(report)
}

fn assert_clean(path: &Path, report: &Report) {
    assert_eq!(
        report.violations(),
        0,
        "{}:\n{}",
        path.display(),
        report.render_text()
    );
}

#[tokio::test]
async fn our_contract_against_its_mock_has_no_violation() {
    let path = manifest().join("../asyncapi/v1-schema.yaml");
    for on_invalid in [OnInvalid::Close, OnInvalid::Log] {
        let report = conform_against_mock(&path, on_invalid)
            .await
            .expect("channels served");
        assert_clean(&path, &report);
        let text = report.render_text();
        // Every part of the run happened: refusals, replies, pushes, robustness.
        for expected in [
            "param-refusal city_uuid=not-a-uuid: refused with HTTP 400",
            "param-refusal access_token missing: refused with HTTP 400",
            "param-refusal since=-1",
            "reply receiveEcho example 1: reply `echo`",
            "example receiveChat example 1: sent",
            "robustness chatMessage: required field `message` missing",
            "robustness chatMessage: field `message` out of range",
        ] {
            assert!(
                text.contains(expected),
                "`{expected}` missing from:\n{text}"
            );
        }
        let push = report
            .checks
            .iter()
            .find(|check| check.channel == "alert" && check.kind == asyncapi_conform::Kind::Push)
            .expect("alert pushes checked");
        assert!(
            matches!(&push.outcome, asyncapi_conform::Outcome::Passed(text) if text.contains("sendAlert")),
            "{text}"
        );
    }
}

fn documents(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for version in ["2.6.0", "3.0.0"] {
        let Ok(entries) = std::fs::read_dir(dir.join(version)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml" | "json")
            ) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn every_websocket_document_of_the_corpus_against_its_mock_has_no_violation() {
    let copies = documents(&manifest().join("tests/fixtures/corpus"));
    assert_eq!(copies.len(), 5, "the copied WebSocket documents");
    let shared = documents(&manifest().join("../../shared/asyncapi-corpus"));
    // Every copy was chosen for its WebSocket channels: each must be served and checked.
    for path in &copies {
        let report = conform_against_mock(path, OnInvalid::Close)
            .await
            .unwrap_or_else(|| panic!("{} has WebSocket channels to serve", path.display()));
        assert_clean(path, &report);
    }
    // The shared corpus, when it is there, also holds documents of other protocols: those
    // with nothing a WebSocket client can reach are left out.
    for path in &shared {
        if let Some(report) = conform_against_mock(path, OnInvalid::Close).await {
            assert_clean(path, &report);
        }
    }
}
