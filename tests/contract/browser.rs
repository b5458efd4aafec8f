//! The pages in a real browser: headless Debian Chromium, driven by playwright-core (npm,
//! installed under `target/` on first use, never a downloaded browser), against a real
//! `wfs serve` process. The scenarios are `tests/browser/*.mjs`; each saves screenshots under
//! `target/screenshots/`.
//!
//! `cargo xtask ci` installs Chromium (apt) where it is missing. One browser runs at a time:
//! the machine has two cores, and the alert scenario measures a latency.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

use crate::server::within;

/// The whole of one scenario, browser start included.
const SCENARIO_TIME: Duration = Duration::from_secs(120);

/// The playwright-core release line the scenarios are written for.
const PLAYWRIGHT: &str = "playwright-core@1";

/// One browser at a time.
static BROWSER: Mutex<()> = Mutex::const_new(());

/// `target/` of this build (`CARGO_TARGET_TMPDIR` is `target/tmp`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .to_path_buf()
}

/// The folder whose `node_modules` holds playwright-core; installed once (npm, no browser).
fn browser_modules() -> PathBuf {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let folder = target_dir().join("browser");
            if folder
                .join("node_modules/playwright-core/package.json")
                .exists()
            {
                return Ok(folder);
            }
            std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
            // A package.json of its own keeps npm from installing into a parent folder.
            std::fs::write(folder.join("package.json"), "{ \"private\": true }\n")
                .map_err(|e| e.to_string())?;
            let output = std::process::Command::new("timeout")
                .args([
                    "300",
                    "npm",
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--silent",
                ])
                .arg(PLAYWRIGHT)
                .current_dir(&folder)
                .output()
                .map_err(|e| format!("npm cannot run ({e}): `cargo xtask ci` installs it"))?;
            if !output.status.success() {
                return Err(format!(
                    "npm install {PLAYWRIGHT} failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(folder)
        })
        .clone()
        .unwrap_or_else(|error| panic!("{error}"))
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} is missing: `cargo xtask ci` installs it (apt-get install chromium)",
        path.display()
    );
    path
}

/// A real `wfs serve` on a free port with its own data directory; killed when dropped.
pub struct Served {
    pub port: u16,
    pub data_dir: PathBuf,
    /// Removed when dropped, unless the test gave it.
    owned: bool,
    child: tokio::process::Child,
}

impl Served {
    pub async fn start(extra: &[&str], password: &str) -> Served {
        Served::start_full(extra, password, &[], None).await
    }

    /// [`Served::start`] with more environment variables, and on `data_dir` if given (which
    /// the caller then removes).
    pub async fn start_full(
        extra: &[&str],
        password: &str,
        env: &[(&str, &str)],
        data_dir: Option<&Path>,
    ) -> Served {
        Served::start_on(free_port(), extra, password, env, data_dir).await
    }

    /// [`Served::start_full`] on a given port (for settings that name the server's own origin).
    pub async fn start_on(
        port: u16,
        extra: &[&str],
        password: &str,
        env: &[(&str, &str)],
        data_dir: Option<&Path>,
    ) -> Served {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let owned = data_dir.is_none();
        let data_dir = data_dir.map(Path::to_path_buf).unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "wfs-browser-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ))
        });
        if owned {
            let _ = std::fs::remove_dir_all(&data_dir);
        }
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(extra)
            .env("WFS_ADMIN_PASSWORD", password)
            .env_remove("WFS_DATABASE_URL")
            .env_remove("TLS_ENABLE")
            .env_remove("WFS_TLS")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("wfs serve starts");
        within("the server listens", async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let served = Served {
            port,
            data_dir,
            owned,
            child,
        };
        // The first start creates `admin` just after it binds the address: wait for it, as
        // `wfs alert` signs its token as the admin.
        let store = served.store().await;
        within("the admin is created", async {
            while !matches!(store.first_admin().await, Ok(Some(_))) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        store.close().await;
        served
    }

    /// The served database, opened beside the server (SQLite in WAL mode allows it).
    pub async fn store(&self) -> wfs::store::Store {
        let url = format!(
            "sqlite://{}?mode=rw",
            self.data_dir.join("wfs.sqlite3").display()
        );
        within("open the store", wfs::store::Store::open(&url))
            .await
            .expect("the server's store opens")
    }
}

/// A port nothing listens on (just freed).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// Runs `node tests/browser/<script> <args>` with `env`; panics with its output on failure.
pub async fn scenario(script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let _one_at_a_time = BROWSER.lock().await;
    let modules = browser_modules();
    let mut command = tokio::process::Command::new("node");
    command
        .arg(format!("tests/browser/{script}"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("WFS_BROWSER_MODULES", &modules)
        .env("WFS_SCREENSHOTS", target_dir().join("screenshots"))
        .env("CHROMIUM", chromium())
        .env("WFS_BIN", env!("CARGO_BIN_EXE_wfs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .spawn()
        .expect("node runs (`cargo xtask ci` installs it)");
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let outcome = tokio::time::timeout(SCENARIO_TIME, async {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        (child.wait().await, out, err)
    })
    .await;
    let Ok((status, out, err)) = outcome else {
        panic!("{script} still running after {SCENARIO_TIME:?}");
    };
    let status = status.expect("node finished");
    assert!(
        status.success(),
        "{script} failed ({status}):\n{out}\n{err}"
    );
    print!("{out}");
    out
}

const PASSWORD: &str = "browser-admin-password";

#[tokio::test]
async fn the_index_lists_cities_and_links_the_docs_and_the_openapi_ui_renders_offline() {
    let served = Served::start(&[], PASSWORD).await;
    let base = format!("http://127.0.0.1:{}", served.port);
    scenario("index.mjs", &[&base], &[]).await;
}

#[tokio::test]
async fn the_echo_page_shows_the_servers_reply() {
    let served = Served::start(&[], PASSWORD).await;
    let base = format!("http://127.0.0.1:{}", served.port);
    scenario("echo.mjs", &[&base], &[]).await;
}

#[tokio::test]
async fn the_alert_page_signs_in_and_shows_an_alert_from_wfs_alert_within_a_second() {
    let served = Served::start(&[], PASSWORD).await;
    let base = format!("http://127.0.0.1:{}", served.port);
    let store = served.store().await;
    store
        .create_user("carol", "carol-password", false)
        .await
        .expect("carol created");
    let cairo = wfs::store::city_uuid("Cairo").to_string();
    let data_dir = served.data_dir.display().to_string();
    let out = scenario(
        "alert.mjs",
        &[&base, &cairo],
        &[
            ("WFS_USER", "carol"),
            ("WFS_PASSWORD", "carol-password"),
            ("WFS_DATA_DIR", &data_dir),
        ],
    )
    .await;
    assert!(out.contains("alert shown"), "{out}");
}

#[tokio::test]
async fn two_chat_pages_see_each_others_messages_with_sender_names() {
    let served = Served::start(&[], PASSWORD).await;
    let base = format!("http://127.0.0.1:{}", served.port);
    let store = served.store().await;
    for (name, password) in [("carol", "carol-password"), ("dave", "dave-password")] {
        store
            .create_user(name, password, false)
            .await
            .expect("user created");
    }
    let cairo = wfs::store::city_uuid("Cairo").to_string();
    scenario(
        "chat.mjs",
        &[&base, &cairo],
        &[
            ("WFS_USER", "carol"),
            ("WFS_PASSWORD", "carol-password"),
            ("WFS_USER2", "dave"),
            ("WFS_PASSWORD2", "dave-password"),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_page_refreshes_its_token_and_asks_to_sign_in_again_when_the_session_ends() {
    // Access tokens live 6 s: the page refreshes them every 4 s or so.
    let served = Served::start(&["--access-ttl", "6"], PASSWORD).await;
    let base = format!("http://127.0.0.1:{}", served.port);
    let store = served.store().await;
    store
        .create_user("carol", "carol-password", false)
        .await
        .expect("carol created");
    let cairo = wfs::store::city_uuid("Cairo").to_string();
    scenario(
        "session.mjs",
        &[&base, &cairo],
        &[("WFS_USER", "carol"), ("WFS_PASSWORD", "carol-password")],
    )
    .await;
}

/// Serves `html` on every path of `listener` (a site on another origin), until dropped.
fn serve_page(
    listener: tokio::net::TcpListener,
    html: &'static str,
) -> tokio::task::JoinHandle<()> {
    use tokio::io::AsyncWriteExt;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the request head (bounded), then answer and close.
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                let read_head = async {
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => head.extend_from_slice(&buffer[..read]),
                        }
                    }
                };
                if tokio::time::timeout(Duration::from_secs(5), read_head)
                    .await
                    .is_err()
                {
                    return;
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    })
}

#[tokio::test]
async fn alerts_reach_a_page_on_another_origin_over_sse_and_the_sse_alert_page() {
    // The old deployment: pages on one port, the stream on another (another origin).
    let pages = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the pages' port");
    let pages_base = format!("http://127.0.0.1:{}", pages.local_addr().unwrap().port());
    let page_server = serve_page(pages, include_str!("../browser/old-sse-alert.html"));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let origins = format!("{base},{pages_base}");
    let served =
        Served::start_on(port, &["--allowed-origins", &origins], PASSWORD, &[], None).await;
    served
        .store()
        .await
        .create_user("carol", "carol-password", false)
        .await
        .expect("carol created");
    let cairo = wfs::store::city_uuid("Cairo").to_string();
    let data_dir = served.data_dir.display().to_string();
    scenario(
        "sse.mjs",
        &[&pages_base, &base, &cairo],
        &[
            ("WFS_USER", "carol"),
            ("WFS_PASSWORD", "carol-password"),
            ("WFS_DATA_DIR", &data_dir),
        ],
    )
    .await;
    page_server.abort();
}
