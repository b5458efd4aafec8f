//! `asyncapi-rs conform` and `asyncapi-rs mock` as a CI job runs them: the mock of a document
//! started as a process, conform against it (exit 0, the JUnit file), conform of another
//! document against it (exit 1), usage errors (exit 2), and Ctrl-C ending the mock (exit 0).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{run, wait_within};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `asyncapi-rs mock FILE` on a port of its own choosing (`--listen 127.0.0.1:0`), once it
/// says where it listens; killed when dropped. Its stderr is read line by line from the start.
struct Mock {
    child: Child,
    port: u16,
    /// Every stderr line, as the mock writes them (the reader ends with the mock).
    stderr: mpsc::Receiver<String>,
    /// The lines read before the address was found.
    early: Vec<String>,
}

impl Mock {
    fn start(file: &str) -> Mock {
        let mut child = Command::new(env!("CARGO_BIN_EXE_asyncapi-rs"))
            .args(["mock", file, "--listen", "127.0.0.1:0"])
            .args(["--interval", "300ms"])
            .current_dir(root())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the mock starts");
        let pipe = child.stderr.take().expect("piped stderr");
        let (lines, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut early = Vec::new();
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the mock said nowhere where it listens: {early:?}"));
            // "mock of FILE on ws://127.0.0.1:PORT (Ctrl-C stops it)"
            let port = line
                .split_once(" on ws://127.0.0.1:")
                .and_then(|(_, rest)| rest.split(' ').next())
                .and_then(|port| port.parse().ok());
            early.push(line);
            if let Some(port) = port {
                break port;
            }
        };
        Mock {
            child,
            port,
            stderr,
            early,
        }
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
    let status =
        wait_within(&mut mock.child, Duration::from_secs(10)).expect("the mock ignores Ctrl-C");
    assert_eq!(status.code(), Some(0));
    // The reader has the rest: the mock has ended, so its pipe is closed.
    let mut lines = std::mem::take(&mut mock.early);
    while let Ok(line) = mock.stderr.recv_timeout(Duration::from_secs(5)) {
        lines.push(line);
    }
    let stderr = lines.join("\n");
    assert!(stderr.contains("serving ws://127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("/ws/v1/chat (chat)"), "{stderr}");
    assert!(
        !stderr.contains("\u{1b}["),
        "no colours when stderr is not a terminal: {stderr}"
    );
}
