//! The `wfs` command line: `serve`, `alert`, `cities`, `cert`, `connect` and `user` (in
//! `accounts.rs`).
//!
//! `alert` and `cities` keep the old `manage.py app_alert` / `app_cities` outputs and errors
//! word for word (WIRE.md). `alert` reaches the running server through its REST endpoint
//! ([`crate::publish`]). The client commands never create a database or a data directory
//! ([`crate::data_dir`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::Jwt;
use crate::http::AccessPolicy;
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "wfs",
    version,
    about = "Weather Forecast Service: the real-time WebSocket API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format.
    #[arg(
        long,
        global = true,
        env = "WFS_LOG_FORMAT",
        value_enum,
        default_value = "human"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve(ServeArgs),
    /// Publish an alert to every subscriber of a city on the running service.
    Alert(AlertArgs),
    /// List the cities (`<name> <uuid>`, sorted by name).
    Cities(CitiesArgs),
    /// Make a local CA and a server certificate signed by it, for `serve --tls`, and print how
    /// to trust the CA.
    Cert(CertArgs),
    /// Manage users: add, list, passwd, remove (on the server's database).
    User(crate::accounts::UserArgs),
    /// Open a channel by hand: each line of standard input is sent as a frame, each frame
    /// received is printed (like websocat).
    Connect(crate::connect::ConnectArgs),
}

/// Where the data lives; shared by every command.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Directory for the SQLite database and the generated JWT secret.
    #[arg(long, env = "WFS_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Database URL; default: the SQLite file `wfs.sqlite3` in the data directory.
    #[arg(long, env = "WFS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// JWT signing secret; default: one generated and kept in the data directory.
    #[arg(long, env = "WFS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
}

impl DataArgs {
    fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join(crate::data_dir::SQLITE_FILE).display()
            )
        })
    }

    /// For the client commands: the existing database, never a new one.
    pub async fn open_existing_store(&self) -> anyhow::Result<Store> {
        StoreArgs {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
        }
        .open_existing()
        .await
    }

    async fn open_store(&self) -> anyhow::Result<Store> {
        crate::data_dir::prepare(&self.data_dir)?;
        Store::open(&self.database_url())
            .await
            .with_context(|| match &self.database_url {
                // The store's error names the URL (without its password).
                Some(_) => {
                    "cannot open the database given by --database-url / WFS_DATABASE_URL".to_owned()
                }
                None => format!("cannot open the database in {}", self.data_dir.display()),
            })
    }

    pub fn jwt(&self, access_ttl: Duration, refresh_ttl: Duration) -> anyhow::Result<Jwt> {
        let secret = Jwt::load_or_create_secret(&self.data_dir, self.jwt_secret.as_deref())
            .with_context(|| {
                format!(
                    "cannot read or create the JWT secret in {}",
                    self.data_dir.display()
                )
            })?;
        Jwt::new(secret, access_ttl, refresh_ttl).context("cannot use the JWT secret")
    }
}

/// Where the data lives, for the commands that only read the database (`cities`).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The data directory of `wfs serve` (its SQLite database).
    #[arg(long, env = "WFS_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Database URL; default: the SQLite file `wfs.sqlite3` in the data directory.
    #[arg(long, env = "WFS_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl StoreArgs {
    /// The existing database: never creates a database or a data directory, and says where it
    /// looked when there is none.
    pub async fn open_existing(&self) -> anyhow::Result<Store> {
        if let Some(url) = &self.database_url {
            // A SQLite URL without a mode would be opened `rwc` (created): read-write only.
            let url = if url.starts_with("sqlite:") && !url.contains("mode=") {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rw")
            } else {
                url.clone()
            };
            return Store::open(&url)
                .await
                .context("cannot open the database given by --database-url / WFS_DATABASE_URL");
        }
        let file = crate::data_dir::existing_sqlite(&self.data_dir)?;
        // `mode=rw`: a file that vanished meanwhile is an error, not a new database.
        Store::open(&format!("sqlite://{}?mode=rw", file.display()))
            .await
            .with_context(|| {
                format!(
                    "cannot open the database {}",
                    crate::data_dir::shown(&file).display()
                )
            })
    }
}

/// The data directory alone (`cert`).
#[derive(Debug, Clone, Args)]
pub struct DirArgs {
    /// The data directory of `wfs serve` (certificates go to its `tls/`).
    #[arg(long, env = "WFS_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (host:port).
    #[arg(long, env = "WFS_LISTEN", default_value = "127.0.0.1:8000", value_parser = listen_address)]
    pub listen: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// Accepted `Host` headers, comma-separated: `name` (any port), `name:port` or
    /// `*.domain`. Default: localhost, 127.0.0.1, [::1].
    #[arg(long, env = "WFS_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Accepted `Origin` headers on WebSocket handshakes, SSE streams and cross-origin REST
    /// calls (CORS), comma-separated: `scheme://host:port` or `scheme://*.domain`. An entry
    /// without a scheme (`localhost:8000`) matches only an `Origin` sent without one, as old
    /// non-browser clients do; it never allows a browser origin (`http://` or `https://`).
    /// Default: the server's own address, with and without its scheme. Requests without
    /// `Origin` (non-browser clients) are always accepted.
    #[arg(long, env = "WFS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Largest WebSocket message accepted, in bytes (larger: close 1009).
    #[arg(long, env = "WFS_MAX_MESSAGE_SIZE", default_value_t = 64 * 1024)]
    pub max_message_size: usize,
    /// Frames queued per connection before it counts as too slow (close 1013).
    #[arg(long, env = "WFS_OUTBOUND_QUEUE", default_value_t = 256)]
    pub outbound_queue: usize,
    /// Read buffer per connection, in bytes: a frame larger than this takes more than one read.
    #[arg(long, env = "WFS_READ_BUFFER", default_value_t = 1024)]
    pub read_buffer: usize,
    /// Seconds between keepalive pings.
    #[arg(long, env = "WFS_PING_INTERVAL", default_value_t = 30)]
    pub ping_interval: u64,
    /// Seconds without a frame (or pong) before a connection is closed (1001).
    #[arg(long, env = "WFS_IDLE_TIMEOUT", default_value_t = 90)]
    pub idle_timeout: u64,
    /// Open connections allowed; more are refused with HTTP 503.
    #[arg(long, env = "WFS_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    // Transport limits against slow and numerous clients (src/server.rs, src/admission.rs).
    /// Seconds a client may take to send a complete request head (and, with --tls, to finish
    /// the TLS handshake first); slower connections are closed.
    #[arg(long, env = "WFS_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,
    /// Open connections (WebSockets included) allowed from one client IP address; more are
    /// answered 503 and closed.
    #[arg(long, env = "WFS_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Connections that have not yet sent a complete request head; when full, the oldest is
    /// closed. 0: half the file-descriptor limit.
    #[arg(long, env = "WFS_MAX_PENDING_CONNECTIONS", default_value_t = 0)]
    pub max_pending_connections: usize,
    /// Redis URL (`redis://host:port`): alerts and chat reach the subscribers of every instance
    /// that uses the same Redis and the same database. Default: this instance only.
    #[arg(long, env = "WFS_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Alerts kept per city for clients that reconnect with `since`.
    #[arg(long, env = "WFS_HISTORY_SIZE", default_value_t = 1000)]
    pub history_size: u32,
    /// Hours an alert is kept for clients that reconnect with `since`.
    #[arg(long, env = "WFS_HISTORY_HOURS", default_value_t = 168)]
    pub history_hours: u64,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "WFS_ACCESS_TTL", default_value_t = 3600)]
    pub access_ttl: u64,
    /// Lifetime of refresh tokens, in seconds.
    #[arg(long, env = "WFS_REFRESH_TTL", default_value_t = 86_400)]
    pub refresh_ttl: u64,
    // Accounts: who the client is behind a proxy (login limits, the access log).
    /// Proxies whose `X-Forwarded-For` names the client, comma-separated addresses or networks
    /// (`127.0.0.1,10.0.0.0/8`). Default: none; the TCP peer is the client.
    #[arg(long, env = "WFS_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Serve https and wss (TLS) instead of http and ws, on the same address. `WFS_TLS` and
    /// `TLS_ENABLE` (the old service's switch) take 1, true, yes or on.
    #[arg(long, env = "WFS_TLS", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub tls: bool,
    /// PEM certificate chain for TLS; default: `tls/server.crt` in the data directory (made
    /// self-signed for localhost on the first TLS start, or by `wfs cert`).
    #[arg(long, env = "WFS_TLS_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of `--cert`.
    #[arg(long, env = "WFS_TLS_KEY", requires = "cert")]
    pub key: Option<PathBuf>,

    // Monitoring and the public address (src/metrics.rs, src/public_url.rs).
    /// Serve Prometheus metrics (`/metrics`) on this address (host:port) only, e.g. one on the
    /// monitoring network; the main port then answers 404 there. Default: on the main port.
    /// `/health` and `/metrics` answer whatever the Host header says (load balancers and
    /// Prometheus probe by IP address).
    #[arg(long, env = "WFS_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// The URL people and browsers reach this server at, e.g. `https://wfs.example.com` (a
    /// proxy in front of it, or its public name): its host joins the allowed hosts and its
    /// origin the allowed origins.
    #[arg(long, env = "WFS_PUBLIC_URL")]
    pub public_url: Option<String>,
    // The chat rate limit, per connection (src/rate.rs).
    /// Chat messages a connection may send per second, sustained (over it: dropped, and an
    /// `error` with code `rate_limited`); 0 turns the limit off.
    #[arg(long, env = "WFS_CHAT_RATE", default_value_t = 10.0)]
    pub chat_rate: f64,
    /// Chat messages a connection may send at once after a pause.
    #[arg(long, env = "WFS_CHAT_BURST", default_value_t = 20)]
    pub chat_burst: u32,
    /// Chat messages dropped in a row (none delivered in between) before the connection is
    /// closed with 1008; 0 never closes.
    #[arg(long, env = "WFS_CHAT_ABUSE_LIMIT", default_value_t = 50)]
    pub chat_abuse_limit: u32,
    /// Seconds a channel handshake trusts a user it read from the database: a user removed by
    /// another process (`wfs user remove`, another instance) may open channels here that long
    /// (src/store/lookups.rs); 0 asks the database at every handshake.
    #[arg(long, env = "WFS_USER_CACHE_TTL", default_value_t = 5)]
    pub user_cache_ttl: u64,
}

#[derive(Debug, Args)]
pub struct CertArgs {
    #[command(flatten)]
    pub data: DirArgs,
}

#[derive(Debug, Args)]
pub struct AlertArgs {
    /// The city's UUID (see `wfs cities`).
    #[arg(long)]
    pub city_uuid: String,
    /// The alert text.
    #[arg(long, default_value = "Hail storm is coming!")]
    pub message: String,
    /// The running server to publish through (`https://...` when it serves TLS).
    #[arg(long, env = "WFS_SERVER", default_value = "http://127.0.0.1:8000")]
    pub server: String,
    /// For an https server: the PEM certificate(s) to trust. Default: the local CA made by
    /// `wfs cert`, else the self-signed certificate of `serve --tls`, in the data directory.
    #[arg(long, env = "WFS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    // How `alert` authenticates (src/publish.rs). Default: an admin token signed with the
    // secret in the data directory (on the server's machine, no password needed).
    /// An administrator's access token (from `POST /api/jwt/obtain`), for a remote server.
    #[arg(
        long,
        env = "WFS_TOKEN",
        hide_env_values = true,
        conflicts_with = "user"
    )]
    pub token: Option<String>,
    /// An administrator's user name, for a remote server: the password is asked for (or read
    /// from standard input with --password-stdin, or when standard input is not a terminal).
    #[arg(long)]
    pub user: Option<String>,
    /// Read the password of --user from the first line of standard input.
    #[arg(long, requires = "user")]
    pub password_stdin: bool,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Args)]
pub struct CitiesArgs {
    /// Print only the first city whose name contains NAME (case-insensitive).
    #[arg(long)]
    pub city: Option<String>,
    #[command(flatten)]
    pub data: StoreArgs,
}

/// `--listen`: `host:port` (a name or an IP address, `[::1]:8000` for IPv6). A port alone is
/// the common slip; it is refused here, before binding fails with a misleading error.
fn listen_address(value: &str) -> Result<String, String> {
    let port_ok = |port: &str| !port.is_empty() && port.parse::<u16>().is_ok();
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port_ok(port) => Ok(value.to_owned()),
        _ if port_ok(value) => Err(format!(
            "not an address (host:port): write 127.0.0.1:{value} (this machine only) or 0.0.0.0:{value} (every interface)"
        )),
        _ => Err("not an address (host:port), e.g. 127.0.0.1:8000".to_owned()),
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Alert(args) => alert(args).await,
        Command::Cities(args) => cities(args).await,
        Command::Cert(args) => cert(args),
        Command::User(args) => crate::accounts::run(args).await,
        Command::Connect(args) => crate::connect::run(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // First: a SIGTERM from the moment the port is open stops the server cleanly.
    let shutdown = shutdown_signal();
    // Checked before anything is created or bound: a typo should cost nothing.
    let public_url = args
        .public_url
        .as_deref()
        .map(crate::public_url::PublicUrl::parse)
        .transpose()
        .context("--public-url / WFS_PUBLIC_URL cannot be used")?;
    let trusted_proxies = crate::client_addr::TrustedProxies::parse(&args.trusted_proxies)
        .context("invalid --trusted-proxies / WFS_TRUSTED_PROXIES")?;
    let store = args.data.open_store().await?;
    let jwt = args.data.jwt(
        Duration::from_secs(args.access_ttl),
        Duration::from_secs(args.refresh_ttl),
    )?;
    // `TLS_ENABLE` is read as clap reads `WFS_TLS`: 1, true, yes, on.
    let tls = args.tls
        || std::env::var("TLS_ENABLE").is_ok_and(|value| {
            matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        });
    // Before listening: once the port is open, the certificate is there.
    let identity = if tls {
        Some(
            crate::tls::load_or_create(
                &args.data.data_dir,
                args.cert.as_deref(),
                args.key.as_deref(),
            )
            .context("cannot set up TLS")?,
        )
    } else {
        None
    };
    let listener = crate::server::bind(&args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another server using it? choose another address with --listen or WFS_LISTEN)",
                args.listen
            )
        })?;
    let address = listener
        .local_addr()
        .context("the listener has no address")?;
    // Both ports are bound before anything else happens: once a client reaches the main
    // port, the metrics port answers too.
    let metrics_listener = match &args.metrics_listen {
        Some(metrics_address) => Some(
            tokio::net::TcpListener::bind(metrics_address)
                .await
                .with_context(|| {
                    format!("cannot listen on {metrics_address} for --metrics-listen / WFS_METRICS_LISTEN (is another server using it?)")
                })?,
        ),
        None => None,
    };
    // Only once the address is ours: a password printed by a start that then fails is lost.
    let admin_password = std::env::var("WFS_ADMIN_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    crate::accounts::admin_on_start(&store, admin_password.as_deref()).await?;
    let mut policy = AccessPolicy::local(address.port(), tls)
        .replacing(args.allowed_hosts, args.allowed_origins);
    if let Some(public) = &public_url {
        policy = policy.allowing(public.allowed_host(), public.allowed_origin());
    }
    let mut config = wfs_runtime::Config::default();
    config.max_message_size = args.max_message_size;
    config.max_frame_size = args.max_message_size;
    config.read_buffer_size = args.read_buffer;
    config.outbound_queue = args.outbound_queue;
    config.ping_interval = Duration::from_secs(args.ping_interval.max(1));
    config.idle_timeout = Duration::from_secs(args.idle_timeout.max(1));
    config.max_connections = args.max_connections;
    config.header_timeout = Duration::from_secs(args.header_timeout.max(1));
    config.max_connections_per_ip = args.max_connections_per_ip.max(1);
    config.max_pending_connections = args.max_pending_connections;
    raise_descriptor_limit();
    let (http, ws) = if tls {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    let version = crate::metrics::VERSION;
    tracing::info!(%address, version, "wfs {version} serving: pages on {http}://{address}/, channels on {ws}://{address}/ws/v1/{{echo,alert,chat}}");
    let (allowed, warning) = crate::public_url::describe(&policy, address);
    tracing::info!("{allowed}");
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    let history = crate::app::HistoryPolicy {
        keep: args.history_size,
        max_age: Duration::from_secs(args.history_hours.saturating_mul(3600)),
    };
    let store = store.with_lookup_ttl(crate::store::LookupTtl {
        users: Duration::from_secs(args.user_cache_ttl),
        ..crate::store::LookupTtl::default()
    });
    let mut app = crate::app::App::new(store, jwt)
        .with_history(history)
        .with_trusted_proxies(trusted_proxies)
        .with_chat_limit(crate::rate::ChatLimit {
            per_second: args.chat_rate,
            burst: args.chat_burst,
            abuse_after: args.chat_abuse_limit,
        });
    if let Some(url) = &args.redis_url {
        let bus = crate::redis_bus::RedisBus::start(url, app.hub.clone(), app.store.clone())
            .context("cannot use the Redis URL")?;
        app = app.with_bus(Arc::new(bus));
    }
    let (app, config) = (Arc::new(app), Arc::new(config));
    // Stopped with the main server (aborted once it has returned).
    let metrics_server = match metrics_listener {
        Some(listener) => {
            let metrics_address = listener
                .local_addr()
                .context("the metrics listener has no address")?;
            tracing::info!(%metrics_address, "metrics on http://{metrics_address}/metrics");
            // Before the main port serves anything: it must never answer /metrics meanwhile.
            app.metrics.serve_separately();
            let (app, config) = (app.clone(), config.clone());
            Some(tokio::spawn(async move {
                crate::serve_metrics(listener, app, &config, std::future::pending()).await
            }))
        }
        None => {
            tracing::info!("metrics on {http}://{address}/metrics");
            None
        }
    };
    match &identity {
        Some(identity) => {
            tracing::info!(cert = %identity.source.display(), "TLS on");
            crate::serve_tls(listener, identity, app, config, policy, shutdown).await
        }
        None => crate::serve(listener, app, config, policy, shutdown).await,
    }
    .context("the server failed")?;
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Raises this process's file-descriptor limit to its hard limit, as Go programs do: each
/// connection costs one, and the soft default (often 1,024) is far below what a WebSocket
/// server holds.
fn raise_descriptor_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "file-descriptor limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the file-descriptor limit"),
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed by this call, not when the future
/// is first polled: the server may answer its first request before it polls its shutdown
/// future, and a SIGTERM sent after that answer must stop it cleanly, not kill it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = signal(SignalKind::interrupt())
            .and_then(|interrupt| Ok((interrupt, signal(SignalKind::terminate())?)));
        async move {
            match handlers {
                Ok((mut interrupt, mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            tracing::info!("shutting down: closing connections with 1001");
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: closing connections with 1001");
    }
}

/// Prints WIRE.md's error text on stderr and exits 1.
pub(crate) fn fail(message: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("{message}");
    Ok(ExitCode::FAILURE)
}

async fn alert(args: AlertArgs) -> anyhow::Result<ExitCode> {
    crate::publish::alert(&args).await
}

/// `wfs cert`: the local CA (made once, then reused) and a fresh server certificate.
fn cert(args: CertArgs) -> anyhow::Result<ExitCode> {
    let made = crate::tls::make_local_ca(&args.data.data_dir).with_context(|| {
        format!(
            "cannot make the certificates in {}",
            args.data.data_dir.display()
        )
    })?;
    if made.ca_created {
        println!("Created a local CA: {}", made.ca_cert.display());
    } else {
        println!("Reused the local CA: {}", made.ca_cert.display());
    }
    println!(
        "Issued a server certificate for localhost, 127.0.0.1 and ::1: {}\n{}",
        made.server_cert.display(),
        crate::tls::trust_instructions(&made.ca_cert)
    );
    Ok(ExitCode::SUCCESS)
}

async fn cities(args: CitiesArgs) -> anyhow::Result<ExitCode> {
    let store = args.data.open_existing().await?;
    match &args.city {
        Some(fragment) => match store
            .find_city(fragment)
            .await
            .context("cannot read the cities")?
        {
            Some(city) => println!("{} {}", city.name, city.uuid),
            None => return fail("City not found."),
        },
        None => {
            let cities = store.cities().await.context("cannot read the cities")?;
            if cities.is_empty() {
                return fail("No cities in the database");
            }
            for city in cities {
                println!("{} {}", city.name, city.uuid);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
