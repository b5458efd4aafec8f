//! A real server for one test: its own data directory (SQLite file, JWT secret), bound to
//! 127.0.0.1:0, stopped when the handle is dropped.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use wfs::auth::{Jwt, TokenKind};
use wfs::contract::alert::{AlertClient, AlertOutbound, AlertParams};
use wfs::contract::types::Alert;
use wfs::http::AccessPolicy;
use wfs::store::{City, Store, User};

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// The admin's password in every test server.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

pub struct TestServer {
    /// `ws://127.0.0.1:<port>`
    pub base_url: String,
    /// `http://127.0.0.1:<port>`
    pub http_url: String,
    pub address: std::net::SocketAddr,
    pub data_dir: PathBuf,
    /// The database this server uses (SQLite file or PostgreSQL), for the CLI tests.
    pub database_url: String,
    pub app: Arc<wfs::App>,
    pub config: Arc<wfs_runtime::Config>,
    pub jwt: Jwt,
    pub admin: User,
    pub alice: User,
    pub bob: User,
    stop: Option<oneshot::Sender<()>>,
    stopped: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    owns_data_dir: bool,
}

/// How a test server differs from the default.
#[derive(Default)]
pub struct Options {
    pub config: wfs_runtime::Config,
    pub history: wfs::HistoryPolicy,
    /// Share another instance's data directory (database and JWT secret).
    pub shared_data_dir: Option<PathBuf>,
    /// Fan out through this Redis.
    pub redis_url: Option<String>,
    /// Use this database (another instance's) instead of a new one.
    pub database_url: Option<String>,
    /// Allowed hosts and origins other than the defaults (`AccessPolicy::local`).
    pub policy: Option<AccessPolicy>,
    /// A chat rate limit other than the default.
    pub chat_limit: Option<wfs::rate::ChatLimit>,
    /// How long handshakes trust a cached user or city, when not the default.
    pub lookup_ttl: Option<wfs::store::LookupTtl>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(wfs_runtime::Config::default()).await
    }

    pub async fn start_with(config: wfs_runtime::Config) -> TestServer {
        TestServer::start_with_history(config, wfs::HistoryPolicy::default()).await
    }

    pub async fn start_with_history(
        config: wfs_runtime::Config,
        history: wfs::HistoryPolicy,
    ) -> TestServer {
        TestServer::start_with_options(Options {
            config,
            history,
            ..Options::default()
        })
        .await
    }

    /// Another instance on the same data directory (database, JWT secret), with its own options.
    pub async fn another_instance(&self, redis_url: Option<String>) -> TestServer {
        TestServer::start_with_options(Options {
            shared_data_dir: Some(self.data_dir.clone()),
            redis_url,
            database_url: Some(self.database_url.clone()),
            ..Options::default()
        })
        .await
    }

    pub async fn start_with_options(options: Options) -> TestServer {
        let Options {
            config,
            history,
            shared_data_dir,
            redis_url,
            database_url,
            policy,
            chat_limit,
            lookup_ttl,
        } = options;
        let owns_data_dir = shared_data_dir.is_none();
        let data_dir = shared_data_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "wfs-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ))
        });
        std::fs::create_dir_all(&data_dir).expect("create the data directory");
        let url = match database_url {
            Some(url) => url,
            None if crate::postgres::enabled() => crate::postgres::fresh_database().await,
            None => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("wfs.sqlite3").display()
            ),
        };
        let mut store = within("open the store", Store::open(&url))
            .await
            .expect("store opens");
        if let Some(ttl) = lookup_ttl {
            store = store.with_lookup_ttl(ttl);
        }
        if owns_data_dir {
            within("admin", store.ensure_admin(Some(ADMIN_PASSWORD)))
                .await
                .expect("admin created");
            for (name, password) in [("alice", "alice-password"), ("bob", "bob-password")] {
                within("user", store.create_user(name, password, false))
                    .await
                    .expect("user created");
            }
        }
        let mut users = Vec::new();
        for (name, password) in [
            ("admin", ADMIN_PASSWORD),
            ("alice", "alice-password"),
            ("bob", "bob-password"),
        ] {
            let user = within("user", store.verify_password(name, password))
                .await
                .expect("store answers")
                .expect("user exists");
            users.push(user);
        }
        let [admin, alice, bob]: [User; 3] = users.try_into().expect("three users");
        let secret = Jwt::load_or_create_secret(&data_dir, None).expect("JWT secret");
        let jwt = Jwt::new(secret, Duration::from_secs(600), Duration::from_secs(3600))
            .expect("a JWT key");
        let mut app = wfs::App::new(store, jwt.clone())
            .with_history(history)
            .with_chat_limit(chat_limit.unwrap_or_default());
        if let Some(redis_url) = redis_url {
            let bus =
                wfs::redis_bus::RedisBus::start(&redis_url, app.hub.clone(), app.store.clone())
                    .expect("a valid Redis URL");
            app = app.with_bus(Arc::new(bus));
        }
        let app = Arc::new(app);
        let config = Arc::new(config);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let (stop, stop_signal) = oneshot::channel::<()>();
        let stopped = tokio::spawn(wfs::serve(
            listener,
            app.clone(),
            config.clone(),
            policy.unwrap_or_else(|| AccessPolicy::local(address.port(), false)),
            async move {
                let _ = stop_signal.await;
            },
        ));
        TestServer {
            base_url: format!("ws://{address}"),
            http_url: format!("http://{address}"),
            address,
            data_dir,
            database_url: url,
            app,
            config,
            jwt,
            admin,
            alice,
            bob,
            stop: Some(stop),
            stopped: Some(stopped),
            owns_data_dir,
        }
    }

    /// A fresh access token for `user`.
    pub fn token(&self, user: &User) -> String {
        self.jwt.issue(user.id, TokenKind::Access)
    }

    /// An alert subscriber (as alice) to `city`, from alert `since` on when given.
    pub async fn subscribe_alerts(&self, city: uuid::Uuid, since: Option<i64>) -> AlertClient {
        let params = AlertParams {
            city_uuid: city,
            access_token: self.token(&self.alice),
            since,
        };
        within(
            "alert handshake",
            AlertClient::connect(&self.base_url, &params),
        )
        .await
        .expect("accepted")
    }

    /// The seeded city called `name`.
    pub async fn city(&self, name: &str) -> City {
        within("find city", self.app.store.find_city(name))
            .await
            .expect("store answers")
            .unwrap_or_else(|| panic!("no city {name}"))
    }

    /// Stops the server (SIGTERM's path) and waits for it to finish.
    pub async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            let _ = within("server stops", stopped).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if self.owns_data_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// The next frame of an alert subscriber, which must be an alert.
pub async fn next_alert(client: &mut AlertClient) -> Alert {
    match within("an alert", client.recv()).await {
        Ok(AlertOutbound::Alert(alert)) => alert,
        other => panic!("expected an alert, got {other:?}"),
    }
}

/// An alert as another instance sharing the database publishes it: it has reached this
/// instance over the bus and been fanned out here, but it is not committed yet (its publisher
/// hands it on before committing, to keep ids and delivery order in step).
pub struct InFlightAlert {
    commit: oneshot::Sender<()>,
    publisher: tokio::task::JoinHandle<()>,
}

impl InFlightAlert {
    /// Stores `message` for `city` in a transaction left open, after fanning it out on
    /// `server` as its bus would.
    pub async fn start(server: &TestServer, city: uuid::Uuid, message: &str) -> InFlightAlert {
        let (handed_on, was_handed_on) = oneshot::channel();
        let (commit, may_commit) = oneshot::channel::<()>();
        let app = server.app.clone();
        let message = message.to_owned();
        let publisher = tokio::spawn(async move {
            let history = wfs::HistoryPolicy::default();
            app.store
                .insert_alert_then(city, &message, history, |stored| async {
                    let alert = wfs::alert_payload(stored).expect("an alert");
                    let publication = wfs::hub::Publication {
                        id: Some(i64::try_from(alert.id.get()).expect("an id")),
                        frame: wfs_runtime::Frame::new(&alert).expect("a frame"),
                    };
                    app.hub.alert.deliver(city, &publication);
                    handed_on.send(()).expect("the test waits");
                    let _ = may_commit.await;
                })
                .await
                .expect("stored");
        });
        within("the alert handed on", was_handed_on)
            .await
            .expect("handed on");
        InFlightAlert { commit, publisher }
    }

    /// Gives the alert up before its commit, as a publisher does whose client went away: its
    /// future is dropped in the middle of the transaction.
    pub async fn abandon(self) {
        self.publisher.abort();
        let _ = within("the publisher's end", self.publisher).await;
    }

    /// Commits the alert, a while after a client joined: long enough for its history to have
    /// been read already, had nothing made it wait for this commit.
    pub async fn commit_later(self) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.commit.send(()).expect("the publisher waits");
        within("the publisher", self.publisher)
            .await
            .expect("committed");
    }
}

/// Awaits `future` for at most [`WAIT`], failing the test with `what` on a timeout.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// Polls `condition` every 10 ms until it holds, for at most [`WAIT`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    within(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// A plain HTTP/1.1 request on a fresh connection: (status, content type, body).
pub async fn http(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, String) {
    let stream = within("connect", tokio::net::TcpStream::connect(server.address))
        .await
        .expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("Host: {}\r\n", server.address));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or_default());
    let response = exchange(stream, &request).await;
    let content_type = response.header("content-type").unwrap_or_default();
    let body = if response
        .header("transfer-encoding")
        .is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"))
    {
        dechunk(&response.body)
    } else {
        response.body
    };
    (response.status, content_type, body)
}

/// What [`exchange`] read: the status, the head (status line and headers) and the body.
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawResponse {
    /// The first header called `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

/// Writes `request` (a whole HTTP/1.1 request, `Connection: close`) on `stream` and reads the
/// answer to its end; every step is bounded by [`within`].
pub async fn exchange(mut stream: tokio::net::TcpStream, request: &str) -> RawResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    within("write", stream.write_all(request.as_bytes()))
        .await
        .expect("write");
    let mut response = Vec::new();
    within("read", stream.read_to_end(&mut response))
        .await
        .expect("read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    RawResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}
