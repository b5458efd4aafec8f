//! A real `wfs serve` process for tests that attack the server as a whole (its descriptors,
//! its accept loop): its own data directory and port, killed when dropped, its log kept.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::server::within;

pub struct ServeProcess {
    pub address: SocketAddr,
    pub pid: u32,
    log: Arc<Mutex<String>>,
    data_dir: std::path::PathBuf,
    _child: tokio::process::Child,
}

impl ServeProcess {
    /// `wfs serve` with `args`, under a file-descriptor limit of `nofile` when given (set with
    /// `prlimit`, hard and soft, so the server cannot raise it).
    pub async fn start(name: &str, args: &[&str], nofile: Option<u64>) -> ServeProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let data_dir =
            std::env::temp_dir().join(format!("wfs-{name}-{}-{port}", std::process::id()));
        let mut command = match nofile {
            Some(limit) => {
                let mut command = tokio::process::Command::new("prlimit");
                command
                    .arg(format!("--nofile={limit}:{limit}"))
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_wfs"));
                command
            }
            None => tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs")),
        };
        let mut child = command
            .args(["serve", "--listen", &address.to_string(), "--data-dir"])
            .arg(&data_dir)
            .args(args)
            .env("WFS_ADMIN_PASSWORD", "admin-password-for-tests")
            .env("RUST_LOG", "info")
            .env_remove("WFS_LISTEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("wfs serve starts");
        let pid = child.id().expect("a running child");
        let log = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = kept.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        within("the server listens", async {
            while tokio::net::TcpStream::connect(address).await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        ServeProcess {
            address,
            pid,
            log,
            data_dir,
            _child: child,
        }
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// CPU time (user + system) the server used so far, from /proc.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).expect("/proc");
        // Fields after the command name (which may hold spaces) start at `) `.
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .expect("a stat line")
            .1
            .split(' ')
            .collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
