//! What the server process costs, read from `/proc/<pid>`: resident memory, open sockets and
//! CPU time (also of a database server's whole process tree, for PostgreSQL).

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

/// What a process has run so far, read twice to measure a window: its user + system time in
/// clock ticks (10 ms: 1.7 % of a six-city fan-out run's 0.6 s), and each of its threads'
/// time on a CPU in nanoseconds (`/proc/<pid>/task/<tid>/schedstat`), the same quantity the
/// ticks are rounded from.
#[derive(Debug, Clone, Default)]
pub struct CpuReading {
    seconds: f64,
    threads: std::collections::HashMap<u32, u64>,
}

impl CpuReading {
    /// `pid`'s reading; `None` reads this process.
    pub fn of(pid: Option<u32>) -> Option<CpuReading> {
        let base = match pid {
            Some(pid) => format!("/proc/{pid}"),
            None => "/proc/self".to_owned(),
        };
        let seconds = cpu_seconds(pid)?;
        let mut threads = std::collections::HashMap::new();
        for (tid, entry) in numbered_entries(&format!("{base}/task")) {
            let on_cpu = std::fs::read_to_string(entry.path().join("schedstat"))
                .ok()
                .and_then(|line| line.split_whitespace().next()?.parse::<u64>().ok());
            if let Some(on_cpu) = on_cpu {
                threads.insert(tid, on_cpu);
            }
        }
        Some(CpuReading { seconds, threads })
    }

    /// CPU seconds run between `self` and `later`: the threads' nanoseconds, matched by thread
    /// id (a thread that started in the window counts whole). A thread that ended in the window
    /// takes what it ran after `self` with it, which the ticks still hold: when they show more
    /// than three ticks beyond the nanoseconds, they are the figure.
    pub fn until(&self, later: &CpuReading) -> f64 {
        let ticks = later.seconds - self.seconds;
        let nanos: u64 = later
            .threads
            .iter()
            .map(|(tid, &now)| now.saturating_sub(self.threads.get(tid).copied().unwrap_or(0)))
            .sum();
        let precise = nanos as f64 / 1e9;
        if later.threads.is_empty() || ticks - precise > 0.03 {
            ticks
        } else {
            precise
        }
    }
}

/// The entries of `dir` named by a number (processes in `/proc`, threads in `task/`), with
/// that number; none when it cannot be read.
fn numbered_entries(dir: &str) -> impl Iterator<Item = (u32, std::fs::DirEntry)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let number = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((number, entry))
        })
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

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces), from
/// field 3 (state) on: index 1 is the parent's pid, 11 and 12 user and system time, 13 and 14
/// those of the children it has waited for.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// CPU time (user + system, in seconds) of `root` and of every process under it: PostgreSQL
/// serves each connection from a process of its own, forked by the postmaster `root`. The
/// children's times are read while they live, and from `root`'s counts of children it has
/// waited for once they have ended, so a backend that ends in the window is still counted.
pub fn tree_cpu_seconds(root: u32) -> Option<f64> {
    let ticks = |fields: &[String], at: &[usize]| -> f64 {
        at.iter()
            .filter_map(|&index| fields.get(index)?.parse::<f64>().ok())
            .sum()
    };
    let own = stat_fields(root)?;
    let mut total = ticks(&own, &[11, 12, 13, 14]);
    // Every process whose ancestry leads to `root` (PostgreSQL's are its direct children).
    let mut parents = vec![root];
    let mut all: Vec<(u32, u32, f64)> = Vec::new();
    for (pid, _) in numbered_entries("/proc") {
        if pid == root {
            continue;
        }
        if let Some(fields) = stat_fields(pid)
            && let Some(parent) = fields.get(1).and_then(|p| p.parse::<u32>().ok())
        {
            all.push((pid, parent, ticks(&fields, &[11, 12])));
        }
    }
    while let Some(parent) = parents.pop() {
        for &(pid, _, cpu) in all.iter().filter(|(_, p, _)| *p == parent) {
            total += cpu;
            parents.push(pid);
        }
    }
    Some(total / 100.0)
}

/// CPU used by the server and by the load generator over one phase, as a share of one core;
/// and by the database server's processes, when it runs apart (PostgreSQL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CpuUse {
    pub seconds: f64,
    pub server_cpu_s: Option<f64>,
    pub client_cpu_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_cpu_s: Option<f64>,
}

/// Starts measuring CPU use of `server` and of this process.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    started: std::time::Instant,
    server_pid: Option<u32>,
    server: Option<CpuReading>,
    client: Option<CpuReading>,
    database_pid: Option<u32>,
    database: Option<f64>,
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            started: std::time::Instant::now(),
            server_pid,
            server: server_pid.and_then(|pid| CpuReading::of(Some(pid))),
            client: CpuReading::of(None),
            database_pid: None,
            database: None,
        }
    }

    /// Also measures the database server whose postmaster (or only process) is `pid`, with
    /// every process under it.
    pub fn with_database(mut self, pid: Option<u32>) -> CpuMeter {
        self.database_pid = pid;
        self.database = pid.and_then(tree_cpu_seconds);
        self
    }

    pub fn stop(&self) -> CpuUse {
        let since = |before: &Option<CpuReading>, pid: Option<u32>| {
            Some(before.as_ref()?.until(&CpuReading::of(pid)?))
        };
        CpuUse {
            seconds: self.started.elapsed().as_secs_f64(),
            server_cpu_s: self
                .server_pid
                .and_then(|pid| since(&self.server, Some(pid))),
            client_cpu_s: since(&self.client, None),
            database_cpu_s: self
                .database_pid
                .and_then(tree_cpu_seconds)
                .zip(self.database)
                .map(|(now, before)| now - before),
        }
    }
}

/// `seconds` of CPU per operation, in µs (none without operations).
pub fn per_operation(seconds: Option<f64>, operations: usize) -> Option<f64> {
    seconds
        .filter(|_| operations > 0)
        .map(|s| s * 1e6 / operations as f64)
}

/// Operations per second over `seconds` (0 for an empty window).
pub fn per_second(operations: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        operations as f64 / seconds
    } else {
        0.0
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

    /// A reading of `seconds` in ticks and of `threads` (id, nanoseconds on a CPU).
    fn reading(seconds: f64, threads: &[(u32, u64)]) -> CpuReading {
        CpuReading {
            seconds,
            threads: threads.iter().copied().collect(),
        }
    }

    #[test]
    fn a_window_is_measured_in_the_threads_nanoseconds() {
        let before = reading(1.00, &[(1, 1_000_000_000), (2, 50_000_000)]);
        // Thread 1 ran 23.4 ms, thread 2 nothing, thread 3 started and ran 5 ms: 28.4 ms, where
        // the ticks say 20.
        let later = reading(1.02, &[(1, 1_023_400_000), (2, 50_000_000), (3, 5_000_000)]);
        assert!((before.until(&later) - 0.0284).abs() < 1e-9);
    }

    #[test]
    fn a_thread_that_ends_in_the_window_leaves_the_figure_to_the_ticks() {
        let before = reading(1.00, &[(1, 1_000_000_000), (2, 200_000_000)]);
        // Thread 2 ran 300 ms more and ended: gone from the list, but in the ticks.
        let later = reading(1.31, &[(1, 1_010_000_000)]);
        assert!((before.until(&later) - 0.31).abs() < 1e-9);
        // Without threads to read, the ticks are all there is.
        assert!((reading(1.0, &[]).until(&reading(1.5, &[])) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn this_process_is_read_thread_by_thread() {
        let me = CpuReading::of(Some(std::process::id())).expect("this process");
        assert!(!me.threads.is_empty() && me.seconds >= 0.0);
        assert!(CpuReading::of(None).is_some_and(|me| !me.threads.is_empty()));
    }

    #[test]
    fn a_process_tree_counts_its_children() {
        let me = std::process::id();
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 5",
            ])
            .spawn()
            .expect("sh runs");
        // The child burns a little CPU, then sleeps: the tree's time then holds the child's.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let own = cpu_seconds(Some(me)).unwrap_or(0.0);
        let mut counted = false;
        while std::time::Instant::now() < deadline && !counted {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let tree = tree_cpu_seconds(me).unwrap_or(0.0);
            counted = tree >= cpu_seconds(Some(child.id())).unwrap_or(0.0) + own
                && cpu_seconds(Some(child.id())).unwrap_or(0.0) > 0.0;
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(counted, "the child's CPU time is not in its parent's tree");
        assert_eq!(tree_cpu_seconds(u32::MAX), None);
    }
}
