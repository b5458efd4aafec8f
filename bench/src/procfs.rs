//! What the server process costs, read from `/proc/<pid>`: resident memory and open sockets.

use serde::Serialize;

/// Resident memory of `pid` in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Sockets `pid` holds open (listeners, connections, its Redis links): entries of
/// `/proc/<pid>/fd` that link to `socket:[...]`.
pub fn sockets(pid: u32) -> Option<usize> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        entries
            .filter_map(Result::ok)
            .filter(|entry| {
                std::fs::read_link(entry.path())
                    .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
            })
            .count(),
    )
}

/// CPU time (user + system) that `pid` has used, in seconds; `None` for this process's own
/// pid reads `/proc/self`. Clock ticks are taken as 100 per second (`CLK_TCK` on Linux).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU used by the server and by the load generator over one phase, as a share of one core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CpuUse {
    pub seconds: f64,
    pub server_cpu_s: Option<f64>,
    pub client_cpu_s: Option<f64>,
}

/// Starts measuring CPU use of `server` and of this process.
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    started: std::time::Instant,
    server_pid: Option<u32>,
    server: Option<f64>,
    client: Option<f64>,
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            started: std::time::Instant::now(),
            server_pid,
            server: server_pid.and_then(|pid| cpu_seconds(Some(pid))),
            client: cpu_seconds(None),
        }
    }

    pub fn stop(&self) -> CpuUse {
        let since = |before: Option<f64>, now: Option<f64>| Some(now? - before?);
        CpuUse {
            seconds: self.started.elapsed().as_secs_f64(),
            server_cpu_s: since(
                self.server,
                self.server_pid.and_then(|pid| cpu_seconds(Some(pid))),
            ),
            client_cpu_s: since(self.client, cpu_seconds(None)),
        }
    }
}

/// A server's memory and sockets at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub rss_kib: Option<u64>,
    pub sockets: Option<usize>,
}

impl Snapshot {
    pub fn of(pid: Option<u32>) -> Snapshot {
        match pid {
            Some(pid) => Snapshot {
                rss_kib: rss_kib(pid),
                sockets: sockets(pid),
            },
            None => Snapshot::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        let _listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        assert!(sockets(me).is_some_and(|count| count >= 1));
        assert!(cpu_seconds(Some(me)).is_some() && cpu_seconds(None).is_some());
    }
}
