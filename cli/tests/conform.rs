//! `asyncapi-rs conform` and `asyncapi-rs mock` as a CI job runs them: the mock of a document
//! started as a process, conform against it (exit 0, the JUnit file), conform of another
//! document against it (exit 1), usage errors (exit 2), and Ctrl-C ending the mock (exit 0).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

mod common;
use common::run;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `asyncapi-rs mock FILE` on a free port, once it accepts connections; killed when dropped.
struct Mock {
    child: Child,
    port: u16,
}

impl Mock {
    fn start(file: &str) -> Mock {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_asyncapi-rs"))
            .args(["mock", file, "--listen", &format!("127.0.0.1:{port}")])
            .args(["--interval", "300ms"])
            .current_dir(root())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the mock starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the mock does not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Mock { child, port }
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn conform_against_the_mock_of_the_same_document_passes_and_of_another_fails() {
    let mock = Mock::start("asyncapi/v1-schema.yaml");
    let server = format!("ws://127.0.0.1:{}", mock.port);
    let junit =
        std::env::temp_dir().join(format!("asyncapi-rs-conform-{}.xml", std::process::id()));
    let junit_arg = junit.display().to_string();
    let args = [
        "conform",
        "asyncapi/v1-schema.yaml",
        "--server",
        &server,
        "--timeout",
        "2s",
        "--param",
        "city_uuid=df257fd6-63a5-5b69-b454-73da5d1224c2",
        "--header",
        "X-Conform: yes",
        "--junit",
        &junit_arg,
    ];
    let output = run(&args);
    let stdout = &output.stdout;
    assert_eq!(output.code, 0, "{stdout}{}", output.stderr);
    assert!(stdout.contains("0 violation(s)"), "{stdout}");
    assert!(
        stdout.contains("city_uuid=df257fd6-63a5-5b69-b454-73da5d1224c2"),
        "the --param is used: {stdout}"
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    let _ = std::fs::remove_file(&junit);
    assert!(xml.contains("failures=\"0\""), "{xml}");

    // Another document's channels are not there: each handshake is refused (404), exit 1.
    let output = run(&[
        "conform",
        "conform/tests/fixtures/city-feed.yaml",
        "--server",
        &server,
        "--timeout",
        "1s",
    ]);
    let stdout = &output.stdout;
    assert_eq!(output.code, 1, "{stdout}");
    assert!(stdout.contains("refused with HTTP 404"), "{stdout}");
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "conform",
                "asyncapi/v1-schema.yaml",
                "--server",
                "ws://127.0.0.1:9",
                "--token-env",
                "ASYNCAPI_RS_TEST_NO_SUCH_VARIABLE",
            ],
            "`ASYNCAPI_RS_TEST_NO_SUCH_VARIABLE` is not set",
        ),
        (
            &[
                "conform",
                "asyncapi/v1-schema.yaml",
                "--server",
                "http://127.0.0.1:9",
            ],
            "ws:// or wss://",
        ),
        (
            &[
                "conform",
                "asyncapi/v1-schema.yaml",
                "--server",
                "ws://x",
                "--param",
                "nameless",
            ],
            "expected NAME=VALUE",
        ),
        (
            &[
                "conform",
                "asyncapi/v1-schema.yaml",
                "--server",
                "ws://x",
                "--trigger",
                "sendAlrt=wfs alert",
            ],
            "`sendAlrt` is not a send operation of the contract (its send operations: sendAlert",
        ),
        (
            &["mock", "asyncapi/v1-schema.yaml", "--on-invalid", "ignore"],
            "expected close or log",
        ),
    ];
    for (args, why) in cases {
        let output = run(args);
        assert_eq!(output.code, 2, "{args:?}: {}", output.stderr);
        assert!(output.stderr.contains(why), "{args:?}: {}", output.stderr);
    }
}

#[test]
fn the_mock_logs_its_frames_and_ends_on_ctrl_c() {
    let mut mock = Mock::start("asyncapi/v1-schema.yaml");
    let pid = mock.child.id().to_string();
    let status = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = mock.child.try_wait().expect("waiting") {
            break status;
        }
        assert!(Instant::now() < deadline, "the mock ignores Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut mock.child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(stderr.contains("serving ws://127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("/ws/v1/chat (chat)"), "{stderr}");
    assert!(
        !stderr.contains("\u{1b}["),
        "no colours when stderr is not a terminal: {stderr}"
    );
}
