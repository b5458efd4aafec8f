//! The PostgreSQL cluster of one benchmark run (`cargo xtask bench --server wfs-pg`), the way
//! the contract suite starts one (`tests/contract/postgres.rs`): Debian's server binaries,
//! `initdb` into a temporary folder, listening on 127.0.0.1 only on a free port, pinned to
//! the server's core. It is stopped whatever happens: by [`Drop`] when the run ends or fails
//! (SIGINT, PostgreSQL's fast shutdown, then SIGKILL if it lingers), and by a watchdog shell
//! if the xtask itself is killed, so no server outlives the run. Every step is bounded.
//!
//! The settings are PostgreSQL's defaults but two: `synchronous_commit=off`, so that a commit
//! does not wait for its WAL to reach the disk, as wfs's SQLite (WAL, `synchronous=NORMAL`)
//! does not wait either (both keep every commit if the process crashes; PostgreSQL can lose
//! the last few hundred milliseconds of commits on a power cut, SQLite the last ones since a
//! checkpoint); and `max_connections=100`.

use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Where Debian installs each PostgreSQL version's binaries: `<here>/<version>/bin`.
pub const INSTALL_ROOT: &str = "/usr/lib/postgresql";

/// The database wfs uses in the cluster.
const DATABASE: &str = "wfs";

/// How long the cluster may take to be made, to start, and to stop.
const INIT_LIMIT: Duration = Duration::from_secs(120);
const START_LIMIT: Duration = Duration::from_secs(60);
const STOP_LIMIT: Duration = Duration::from_secs(20);

/// A running cluster; dropping it stops the server and removes its files.
pub struct Postgres {
    postmaster: Child,
    watchdog: Option<Child>,
    dir: PathBuf,
    url: String,
    version: String,
}

/// The newest `<root>/<version>/bin` that holds `postgres` and `initdb`.
pub fn binaries(root: &Path) -> anyhow::Result<PathBuf> {
    let missing = || {
        format!(
            "PostgreSQL's server is not installed (no {}/<version>/bin/postgres and initdb); \
             `--server wfs-pg` needs it: apt-get install postgresql (Debian's package, which \
             also makes the `postgres` user the server runs as)",
            root.display()
        )
    };
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .with_context(missing)?
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("postgres").is_file() && bin.join("initdb").is_file())
        .collect();
    // Newest last: "9.6" < "15" needs a numeric sort of the major version.
    versions.sort_by_key(|bin| {
        bin.parent()
            .and_then(Path::file_name)
            .and_then(|name| name.to_str())
            .and_then(|name| name.split('.').next()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().with_context(missing)
}

/// The user and group ids to run the server as: PostgreSQL refuses to run as root, so as root
/// this is the `postgres` user (from `/etc/passwd`); otherwise this process's own (`None`).
fn run_as() -> anyhow::Result<Option<(u32, u32)>> {
    let me = std::fs::metadata("/proc/self").context("cannot read /proc/self")?;
    if me.uid() != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").context("cannot read /etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                ["postgres", _, uid, gid, ..] => Some((uid.parse().ok()?, gid.parse().ok()?)),
                _ => None,
            }
        })
        .map(Some)
        .context(
            "no `postgres` user to run PostgreSQL as (it refuses to run as root): \
             apt-get install postgresql makes it",
        )
}

/// Runs `command` to its end, for at most `limit` (then kills it); answers its output (a few
/// lines, which the pipes hold until it has ended and they are read).
fn run_bounded(mut command: Command, limit: Duration, what: &str) -> anyhow::Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {what}"))?;
    super::wait_bounded(&mut child, limit, what)?;
    child
        .wait_with_output()
        .with_context(|| format!("{what}: no output"))
}

/// Sends SIGINT to `pid` (PostgreSQL's fast shutdown: sessions are ended, then a checkpoint).
fn interrupt(pid: u32) -> bool {
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

impl Postgres {
    /// Makes a cluster under the system's temporary folder with the newest binaries under
    /// `install_root`, starts it (on `core` with taskset, when given; its log into `log`),
    /// and creates wfs's database in it.
    pub fn start(install_root: &Path, core: Option<&str>, log: &Path) -> anyhow::Result<Postgres> {
        let bin = binaries(install_root)?;
        let owner = run_as()?;
        let mut command = Command::new(bin.join("postgres"));
        command.arg("--version");
        // "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
        let version = run_bounded(command, Duration::from_secs(10), "postgres --version")
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("wfs-bench-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        // From here on the folder is removed whatever happens, by `Drop` or by this guard.
        let mut cleanup = Cleanup(Some(dir.clone()));
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .with_context(|| format!("cannot give {} to the postgres user", dir.display()))?;
        }
        let as_owner = |command: &mut Command| {
            if let Some((uid, gid)) = owner {
                command.uid(uid).gid(gid);
            }
            command.current_dir(&dir);
        };
        let data = dir.join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale"])
            .args(["--no-sync", "-D"])
            .arg(&data);
        as_owner(&mut initdb);
        let output = run_bounded(initdb, INIT_LIMIT, "initdb")?;
        if !output.status.success() {
            bail!(
                "initdb failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }

        let port = super::free_port()?;
        let mut command = match core {
            Some(core) => {
                let mut command = Command::new("taskset");
                command.args(["-c", core]).arg(bin.join("postgres"));
                command
            }
            None => Command::new(bin.join("postgres")),
        };
        command
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args(["-c", "synchronous_commit=off"])
            .args(["-c", "max_connections=100"]);
        as_owner(&mut command);
        let file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let postmaster = command.spawn().context("cannot start postgres")?;
        let pid = postmaster.id();
        let mut postgres = Postgres {
            postmaster,
            watchdog: None,
            dir: dir.clone(),
            url: format!("postgres://postgres@127.0.0.1:{port}/{DATABASE}"),
            version,
        };
        cleanup.0 = None;
        postgres.watchdog = watchdog(pid, &dir);

        // Ready when `createdb` gets through (it is refused while the server starts up).
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = postgres.postmaster.try_wait()? {
                bail!(
                    "postgres exited at start ({status}); its log: {}",
                    log.display()
                );
            }
            let mut createdb = Command::new(bin.join("createdb"));
            createdb
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                .arg(DATABASE)
                .env("PGCONNECT_TIMEOUT", "5");
            let output = run_bounded(createdb, Duration::from_secs(15), "createdb")?;
            if output.status.success() {
                return Ok(postgres);
            }
            if Instant::now() > deadline {
                bail!(
                    "PostgreSQL did not accept `createdb {DATABASE}` within {START_LIMIT:?}: {} (log: {})",
                    String::from_utf8_lossy(&output.stderr).trim(),
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `postgres://postgres@127.0.0.1:<port>/wfs`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The postmaster's pid: its process tree is the database's CPU time.
    pub fn pid(&self) -> u32 {
        self.postmaster.id()
    }

    /// What `postgres --version` says, for the report.
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let deadline = Instant::now() + STOP_LIMIT;
        let mut stopped = false;
        if interrupt(self.postmaster.id()) {
            while Instant::now() < deadline {
                if matches!(self.postmaster.try_wait(), Ok(Some(_)) | Err(_)) {
                    stopped = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if !stopped {
            eprintln!("warning: PostgreSQL did not stop within {STOP_LIMIT:?}; killing it");
            let _ = self.postmaster.kill();
            let _ = self.postmaster.wait();
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes a folder when dropped, unless emptied first.
struct Cleanup(Option<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A shell that outlives this process if it is killed (SIGKILL, or Ctrl-C, which it ignores):
/// once this process is gone it stops the postmaster `pid` (SIGINT, then SIGKILL after 15 s)
/// and removes `dir`. `Drop` kills it when the run ends normally.
fn watchdog(pid: u32, dir: &Path) -> Option<Child> {
    let script = format!(
        "trap '' INT TERM HUP; \
         while kill -0 {me} 2>/dev/null; do sleep 1; done; \
         kill -INT {pid} 2>/dev/null; \
         i=0; while kill -0 {pid} 2>/dev/null && [ $i -lt 30 ]; do sleep 0.5; i=$((i+1)); done; \
         kill -KILL {pid} 2>/dev/null; rm -rf '{dir}'",
        me = std::process::id(),
        dir = dir.display(),
    );
    // Not waited for here on purpose: `Drop` kills and waits for it.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_name_the_package() {
        let empty = std::env::temp_dir().join(format!("wfs-no-pg-{}", std::process::id()));
        std::fs::create_dir_all(empty.join("15/bin")).unwrap();
        let error = binaries(&empty).unwrap_err().to_string();
        assert!(error.contains("apt-get install postgresql"), "{error}");
        let error = binaries(&empty.join("absent")).unwrap_err().to_string();
        assert!(error.contains("apt-get install postgresql"), "{error}");
        let _ = std::fs::remove_dir_all(empty);
    }

    /// A real cluster, where Debian's postgresql is installed (skipped elsewhere): it accepts
    /// connections, and once dropped its server is gone and its folder removed.
    #[test]
    fn a_cluster_starts_and_is_stopped_when_dropped() {
        if binaries(Path::new(INSTALL_ROOT)).is_err() {
            eprintln!("skipped: PostgreSQL is not installed");
            return;
        }
        let log = std::env::temp_dir().join(format!("wfs-pg-test-{}.log", std::process::id()));
        let postgres = Postgres::start(Path::new(INSTALL_ROOT), None, &log).expect("starts");
        let port: u16 = postgres
            .url()
            .rsplit(':')
            .next()
            .and_then(|rest| rest.split('/').next())
            .and_then(|port| port.parse().ok())
            .expect("a port in the URL");
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        assert!(
            std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5)).is_ok(),
            "PostgreSQL listens on {address}"
        );
        let (pid, dir) = (postgres.pid(), postgres.dir.clone());
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(postgres);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "postgres stopped"
        );
        assert!(!dir.exists(), "its folder removed");
        assert!(
            std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err(),
            "nothing listens on {address} any more"
        );
        let _ = std::fs::remove_file(log);
    }
}
