//! What both CLI test binaries share: running `asyncapi-rs` to its end with a deadline, both
//! pipes read while it runs (so a large output cannot block it).

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a run printed, and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with `args` in the workspace root; fails the test after a minute.
pub fn run(args: &[&str]) -> Run {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut child = Command::new(env!("CARGO_BIN_EXE_asyncapi-rs"))
        .args(args)
        .current_dir(root)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    // Read both pipes while waiting, so a large output cannot block the child.
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });
    let status = wait_within(&mut child, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("asyncapi-rs {args:?} did not end within a minute"));
    let run = Run {
        code: status.code().expect("the binary exited (no signal)"),
        stdout: out.join().expect("stdout reader").expect("stdout is UTF-8"),
        stderr: err.join().expect("stderr reader").expect("stderr is UTF-8"),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "asyncapi-rs {args:?} panicked:\n{}",
        run.stderr
    );
    run
}

/// Waits for `child` to end, for at most `limit`; `None` (and the child killed) if it did not.
pub fn wait_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for the binary") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
