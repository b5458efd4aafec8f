//! The write system calls a server makes over a window, counted by `perf stat` on the kernel's
//! syscall tracepoints: with the deliveries of the same window, how many frames one write
//! carries ("feed all, flush once" puts several in one).
//!
//! Counting is optional: where `perf` is missing or may not trace, the counts are `None` and
//! the scenario runs on without them.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Serialize;

/// The tracepoints counted: every way a socket write reaches the kernel from Rust (`send` for
/// `TcpStream::write`, `writev` for vectored writes, `sendmsg`) or from a C library (`write`).
const EVENTS: [&str; 4] = [
    "syscalls:sys_enter_sendto",
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_writev",
    "syscalls:sys_enter_sendmsg",
];

/// How long `perf` is given to attach before the window starts, and to print after it.
const ATTACH: Duration = Duration::from_millis(300);
const FINISH: Duration = Duration::from_secs(5);

/// Write calls made by the server over one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriteCalls {
    pub sendto: u64,
    pub write: u64,
    pub writev: u64,
    pub sendmsg: u64,
    /// All four together.
    pub total: u64,
}

/// A running `perf stat -p <pid>`; [`WriteCounter::stop`] ends it and reads its counts.
pub struct WriteCounter {
    perf: Child,
}

impl WriteCounter {
    /// Starts counting the write calls of `pid` (every thread), after giving `perf` a moment
    /// to attach. `None` when `perf` cannot be started or ends at once (no permission, no
    /// tracepoints).
    pub async fn start(pid: u32) -> Option<WriteCounter> {
        let mut perf = Command::new("perf")
            .args(["stat", "-x", ",", "-e", &EVENTS.join(",")])
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        tokio::time::sleep(ATTACH).await;
        if perf.try_wait().ok().flatten().is_some() {
            return None;
        }
        Some(WriteCounter { perf })
    }

    /// Ends the count (SIGINT, on which `perf stat` prints its counts) and reads it; `None`
    /// when `perf` does not finish in time or prints no count.
    pub async fn stop(mut self) -> Option<WriteCalls> {
        let interrupted = Command::new("kill")
            .args(["-INT", &self.perf.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        let deadline = tokio::time::Instant::now() + FINISH;
        let finished = interrupted
            && loop {
                match self.perf.try_wait() {
                    Ok(Some(_)) => break true,
                    Ok(None) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    _ => break false,
                }
            };
        if !finished {
            let _ = self.perf.kill();
            let _ = self.perf.wait();
            return None;
        }
        // perf has ended: its few lines are all in the pipe, read without blocking long.
        let mut text = String::new();
        let mut stderr = self.perf.stderr.take()?;
        std::io::Read::read_to_string(&mut stderr, &mut text).ok()?;
        parse(&text)
    }
}

/// Reads `perf stat -x ,` output: `count,unit,event,...` per line; `<not counted>` and
/// `<not supported>` are not counts.
fn parse(text: &str) -> Option<WriteCalls> {
    let mut calls = WriteCalls::default();
    let mut any = false;
    for line in text.lines() {
        let mut fields = line.split(',');
        let (Some(count), Some(_unit), Some(event)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(count) = count.trim().parse::<u64>() else {
            continue;
        };
        let slot = match event.trim() {
            "syscalls:sys_enter_sendto" => &mut calls.sendto,
            "syscalls:sys_enter_write" => &mut calls.write,
            "syscalls:sys_enter_writev" => &mut calls.writev,
            "syscalls:sys_enter_sendmsg" => &mut calls.sendmsg,
            _ => continue,
        };
        *slot = count;
        any = true;
    }
    calls.total = calls.sendto + calls.write + calls.writev + calls.sendmsg;
    any.then_some(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_csv_lines_are_read() {
        let text = "\n1204,,syscalls:sys_enter_sendto,2003040,100.00,,\n\
                    7,,syscalls:sys_enter_write,2003040,100.00,,\n\
                    <not counted>,,syscalls:sys_enter_writev,0,0.00,,\n\
                    0,,syscalls:sys_enter_sendmsg,2003040,100.00,,\n";
        let calls = parse(text).expect("counts");
        assert_eq!(
            (calls.sendto, calls.write, calls.writev, calls.total),
            (1204, 7, 0, 1211)
        );
        assert_eq!(parse("perf: permission denied\n"), None);
    }
}
