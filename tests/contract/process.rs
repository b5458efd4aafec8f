//! The real `wfs serve` binary as an operator runs it: its own data directory, a free port on
//! 127.0.0.1, its standard output and error collected as they come, SIGTERM to stop.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::server::{exchange, within};

/// A free port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

pub struct RunningWfs {
    pub port: u16,
    child: tokio::process::Child,
    output: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    data_dir: std::path::PathBuf,
}

impl RunningWfs {
    /// `wfs serve --listen 127.0.0.1:<free port> --data-dir <fresh> ARGS...`, once it accepts
    /// connections.
    pub async fn start(args: &[&str]) -> RunningWfs {
        let port = free_port();
        let data_dir =
            std::env::temp_dir().join(format!("wfs-process-{}-{port}", std::process::id()));
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data_dir)
            .args(args)
            .env("WFS_ADMIN_PASSWORD", "admin-password-for-tests")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("wfs serve starts");
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(stderr),
        ] {
            let output = output.clone();
            readers.push(tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut text = output.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                }
            }));
        }
        let server = RunningWfs {
            port,
            child,
            output,
            readers,
            data_dir,
        };
        within("the server listens", async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        server
    }

    /// `ws://127.0.0.1:<port>`
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output holds `count` lines containing `text`; answers the output.
    pub async fn wait_for(&self, text: &str, count: usize) -> String {
        within(&format!("{count} line(s) with `{text}`"), async {
            loop {
                let output = self.output();
                if output.lines().filter(|line| line.contains(text)).count() >= count {
                    return output;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    /// SIGTERM, then the exit status and everything printed.
    pub async fn stop(mut self) -> (ExitStatus, String) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let status = within("the server stops", self.child.wait())
            .await
            .expect("an exit status");
        for reader in std::mem::take(&mut self.readers) {
            let _ = within("output", reader).await;
        }
        (status, self.output())
    }
}

impl Drop for RunningWfs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A plain HTTP/1.1 GET to `127.0.0.1:port` with a `Host` header: (status, body).
pub async fn get(port: u16, path: &str, host: &str, headers: &[(&str, &str)]) -> (u16, String) {
    get_from([127, 0, 0, 1], port, path, host, headers).await
}

/// [`get`] from the loopback address `source` (any of 127.0.0.0/8), as another client would.
pub async fn get_from(
    source: [u8; 4],
    port: u16,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind((std::net::Ipv4Addr::from(source), 0).into())
        .expect("bind the source address");
    let stream = within("connect", socket.connect(([127, 0, 0, 1], port).into()))
        .await
        .expect("connect");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let response = exchange(stream, &request).await;
    (response.status, response.body)
}
