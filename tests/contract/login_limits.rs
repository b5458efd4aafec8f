//! Logins under attack, against a real `wfs serve`: failed logins are limited per client IP and
//! per user name (429 with `Retry-After` and `{"detail"}`), the client is the TCP peer unless
//! it is a `--trusted-proxies` entry, someone else's failures lock the right password out for
//! no longer than the window, a burst of parallel logins is answered without a 500, and each
//! failure is logged as a warning without the password.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::server::{exchange, within};

const ADMIN_PASSWORD: &str = "login-limits-admin-password";

/// A real `wfs serve` whose output is kept; killed when dropped.
struct Serve {
    port: u16,
    data_dir: std::path::PathBuf,
    output: Arc<Mutex<String>>,
    _child: tokio::process::Child,
}

impl Serve {
    async fn start(extra: &[&str]) -> Serve {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let data_dir = std::env::temp_dir().join(format!(
            "wfs-login-limits-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&data_dir);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data_dir)
            .args(extra)
            .env("WFS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("NO_COLOR", "1")
            .env_remove("WFS_DATABASE_URL")
            .env_remove("WFS_TRUSTED_PROXIES")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("wfs serve starts");
        let output = Arc::new(Mutex::new(String::new()));
        for mut stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while let Ok(read) = stream.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
                    output.lock().unwrap().push_str(&text);
                }
            });
        }
        within("the server listens", async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let serve = Serve {
            port,
            data_dir,
            output,
            _child: child,
        };
        let url = format!(
            "sqlite://{}?mode=rw",
            serve.data_dir.join("wfs.sqlite3").display()
        );
        let store = within("open the store", wfs::store::Store::open(&url))
            .await
            .expect("the server's store opens");
        for (name, password) in [("alice", "alice-password"), ("bob", "bob-password")] {
            within("user", store.create_user(name, password, false))
                .await
                .expect("user created");
        }
        store.close().await;
        serve
    }

    /// `POST /api/jwt/obtain` as `forwarded_for` (an `X-Forwarded-For` value) when given:
    /// (status, `Retry-After`, body).
    async fn login(
        &self,
        username: &str,
        password: &str,
        forwarded_for: Option<&str>,
    ) -> (u16, Option<u64>, String) {
        let body = serde_json::json!({"username": username, "password": password}).to_string();
        let mut request = format!(
            "POST /api/jwt/obtain HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        if let Some(forwarded_for) = forwarded_for {
            request.push_str(&format!("X-Forwarded-For: {forwarded_for}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        let stream = within(
            "connect",
            tokio::net::TcpStream::connect(("127.0.0.1", self.port)),
        )
        .await
        .expect("connect");
        let response = exchange(stream, &request).await;
        let retry_after = response
            .header("retry-after")
            .and_then(|value| value.parse().ok());
        (response.status, retry_after, response.body)
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Asserts a 429 with a `Retry-After` of at most a minute and a `{"detail"}` body.
fn assert_limited((status, retry_after, body): &(u16, Option<u64>, String), what: &str) {
    assert_eq!(*status, 429, "{what}: {body}");
    let retry_after = retry_after.unwrap_or_else(|| panic!("{what}: no Retry-After"));
    assert!(
        (1..=60).contains(&retry_after),
        "{what}: Retry-After {retry_after}"
    );
    let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
    assert!(body["detail"].as_str().is_some(), "{what}: {body}");
}

#[tokio::test]
async fn ten_failures_from_one_address_then_429_and_forwarded_for_from_an_untrusted_peer_is_ignored()
 {
    let serve = Serve::start(&[]).await;
    // Ten wrong passwords, each for another name and claiming another address: the peer is
    // not a trusted proxy, so they all count against 127.0.0.1.
    for attempt in 0..10 {
        let name = format!("guess{attempt}");
        let forged = format!("198.51.100.{attempt}");
        let (status, _, body) = serve.login(&name, "wrong", Some(&forged)).await;
        assert_eq!(status, 401, "attempt {attempt}: {body}");
    }
    // Even the right password is not checked now.
    let refused = serve.login("alice", "alice-password", None).await;
    assert_limited(&refused, "the eleventh attempt from 127.0.0.1");
    let refused = serve.login("bob", "bob-password", Some("192.0.2.99")).await;
    assert_limited(&refused, "a forged X-Forwarded-For");

    // Each failure is a warning naming the client and the user, never the password.
    let output = serve.output();
    assert_eq!(output.matches("failed login").count(), 10, "{output}");
    assert!(output.contains("WARN"), "{output}");
    assert!(output.contains("127.0.0.1"), "{output}");
    assert!(output.contains("guess3"), "{output}");
    assert!(!output.contains("wrong"), "a password was logged: {output}");
    assert!(!output.contains("alice-password"), "{output}");
}

#[tokio::test]
async fn someone_elses_failures_block_a_name_for_no_longer_than_the_window() {
    let serve = Serve::start(&["--trusted-proxies", "127.0.0.1"]).await;
    let attacker = Some("203.0.113.5");
    let owner = Some("198.51.100.7");
    for attempt in 0..10 {
        let (status, _, body) = serve.login("alice", "not-her-password", attacker).await;
        assert_eq!(status, 401, "attempt {attempt}: {body}");
    }
    // The attacker's address is blocked, for any name.
    assert_limited(
        &serve.login("bob", "bob-password", attacker).await,
        "attacker",
    );
    // alice is blocked from every address for now; others are not.
    assert_limited(
        &serve.login("alice", "alice-password", owner).await,
        "alice",
    );
    assert_eq!(serve.login("bob", "bob-password", owner).await.0, 200);

    // Once the attacker stops, the right password works again within the window (a minute).
    let recovered = tokio::time::timeout(Duration::from_secs(61), async {
        loop {
            let (status, _, _) = serve.login("alice", "alice-password", owner).await;
            if status == 200 {
                return;
            }
            assert_eq!(status, 429);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    assert!(
        recovered.is_ok(),
        "alice was still locked out after the window"
    );
    let output = serve.output();
    assert!(
        output.contains("203.0.113.5"),
        "the client address is logged: {output}"
    );
}

#[tokio::test]
async fn a_burst_of_parallel_logins_is_answered_and_the_service_stays_usable() {
    let serve = Serve::start(&["--trusted-proxies", "127.0.0.1"]).await;
    // 64 wrong passwords at once, from 64 addresses, for 64 names (known and unknown: both
    // cost a hash), so no limit applies: password checks queue for the cores.
    let attempts = (0..64).map(|attempt| {
        let serve = &serve;
        async move {
            let name = if attempt % 2 == 0 {
                "alice".to_owned()
            } else {
                format!("nobody{attempt}")
            };
            let address = format!("192.0.2.{attempt}");
            serve.login(&name, "wrong", Some(&address)).await
        }
    });
    // alice's name fails 32 times: after her tenth failure the rest are 429.
    for (status, retry_after, body) in futures_util::future::join_all(attempts).await {
        assert!(
            status == 401 || status == 429 || (status == 503 && retry_after.is_some()),
            "{status} {body}"
        );
    }
    // Answered, not wedged: a right password from a fresh address works.
    let (status, _, body) = serve
        .login("bob", "bob-password", Some("192.0.2.200"))
        .await;
    assert_eq!(status, 200, "{body}");
}
