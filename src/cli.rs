//! The `wfs` command line: `serve`, `alert`, `cities`, `cert` and `user` (in `accounts.rs`).
//!
//! `alert` and `cities` keep the old `manage.py app_alert` / `app_cities` outputs and errors
//! word for word (WIRE.md). `alert` reaches the running server through its REST endpoint. It
//! signs a short-lived admin token with the secret in the data directory, so an operator on the
//! server's machine needs no password; `--server` names the server to reach.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::{Jwt, TokenKind};
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

/// The SQLite file in the data directory when no `--database-url` is given.
pub const DATABASE_FILE: &str = "wfs.sqlite3";

impl DataArgs {
    fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join(DATABASE_FILE).display()
            )
        })
    }

    async fn open_store(&self) -> anyhow::Result<Store> {
        std::fs::create_dir_all(&self.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                self.data_dir.display()
            )
        })?;
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

    fn jwt(&self, access_ttl: Duration, refresh_ttl: Duration) -> anyhow::Result<Jwt> {
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

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "WFS_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// Accepted `Host` headers, comma-separated: `name` (any port), `name:port` or
    /// `*.domain`. Default: localhost, 127.0.0.1, [::1].
    #[arg(long, env = "WFS_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Accepted `Origin` headers on WebSocket handshakes, comma-separated: `scheme://host:port`
    /// or `scheme://*.domain`. Default: the server's own address. Requests without `Origin`
    /// (non-browser clients) are always accepted.
    #[arg(long, env = "WFS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Largest WebSocket message accepted, in bytes (larger: close 1009).
    #[arg(long, env = "WFS_MAX_MESSAGE_SIZE", default_value_t = 64 * 1024)]
    pub max_message_size: usize,
    /// Frames queued per connection before it counts as too slow (close 1013).
    #[arg(long, env = "WFS_OUTBOUND_QUEUE", default_value_t = 256)]
    pub outbound_queue: usize,
    /// Read buffer per connection, in bytes.
    #[arg(long, env = "WFS_READ_BUFFER", default_value_t = 2 * 1024)]
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
    /// Serve https and wss (TLS) instead of http and ws, on the same address. `TLS_ENABLE=1`
    /// (the old service's switch) does the same.
    #[arg(long, env = "WFS_TLS")]
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
}

#[derive(Debug, Args)]
pub struct CertArgs {
    #[command(flatten)]
    pub data: DataArgs,
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
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Args)]
pub struct CitiesArgs {
    /// Print only the first city whose name contains NAME (case-insensitive).
    #[arg(long)]
    pub city: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Alert(args) => alert(args).await,
        Command::Cities(args) => cities(args).await,
        Command::Cert(args) => cert(args),
        Command::User(args) => crate::accounts::run(args).await,
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
    let mut app = crate::app::App::new(store, jwt)
        .with_history(history)
        .with_trusted_proxies(trusted_proxies);
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
            Some(tokio::spawn(crate::serve_metrics(
                listener,
                app.clone(),
                std::future::pending(),
            )))
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
fn fail(message: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("{message}");
    Ok(ExitCode::FAILURE)
}

async fn alert(args: AlertArgs) -> anyhow::Result<ExitCode> {
    if wfs_runtime::params::uuid(&args.city_uuid).is_err() {
        return fail(format!("City uuid '{}' is not valid!", args.city_uuid));
    }
    let store = args.data.open_store().await?;
    let Some(admin) = store.first_admin().await.context("cannot read the users")? else {
        return fail("There is no admin user yet: start `wfs serve` once to create it.");
    };
    let jwt = args
        .data
        .jwt(Duration::from_secs(60), Duration::from_secs(60))?;
    let token = jwt.issue(admin.id, TokenKind::Access);
    let url = format!(
        "{}/api/v1/cities/{}/alerts",
        args.server.trim_end_matches('/'),
        args.city_uuid.to_ascii_lowercase()
    );
    let body = serde_json::json!({ "message": args.message }).to_string();
    let roots = args
        .ca_file
        .clone()
        .unwrap_or_else(|| crate::tls::TlsDir::new(&args.data.data_dir).trust_anchor());
    let (status, answer) = post_json(&url, &token, body, &roots).await.with_context(|| {
        format!(
            "cannot reach the wfs server at {} (is `wfs serve` running? set --server or WFS_SERVER)",
            args.server
        )
    })?;
    match status {
        201 => {
            println!(
                "Alert '{}' sent to '{}' channel.",
                args.message, args.city_uuid
            );
            Ok(ExitCode::SUCCESS)
        }
        404 => fail(format!(
            "City with uuid '{}' does not exist!",
            args.city_uuid
        )),
        _ => {
            let detail = serde_json::from_str::<serde_json::Value>(&answer)
                .ok()
                .and_then(|value| {
                    value
                        .get("detail")
                        .and_then(|d| d.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or(answer);
            fail(format!(
                "The server refused the alert (HTTP {status}): {detail}"
            ))
        }
    }
}

/// POSTs JSON with a bearer token over http or https; answers the status and the body.
/// https trusts only the certificates in `roots`. Bounded to 10 seconds.
async fn post_json(
    url: &str,
    token: &str,
    body: String,
    roots: &std::path::Path,
) -> anyhow::Result<(u16, String)> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;

    let uri: hyper::Uri = url
        .parse()
        .with_context(|| format!("`{url}` is not a valid URL"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => anyhow::bail!("`{url}` must start with http:// or https://"),
    };
    let host = uri
        .host()
        .context("the server URL has no host")?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri.authority().map(ToString::to_string).unwrap_or_default();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let request = hyper::Request::post(path)
        .header("host", authority)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(bytes::Bytes::from(body)))
        .context("cannot build the request")?;

    async fn exchange<Io>(
        io: Io,
        request: hyper::Request<Full<bytes::Bytes>>,
    ) -> anyhow::Result<(u16, String)>
    where
        Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(connection);
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    let work = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        if !https {
            return exchange(TokioIo::new(tcp), request).await;
        }
        let config = crate::tls::client_config(roots).with_context(|| {
            format!(
                "cannot trust the server's certificate from {}",
                roots.display()
            )
        })?;
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.clone())
            .with_context(|| format!("`{host}` is not a host name for TLS"))?;
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .context(
                "the TLS handshake failed (is the server's certificate trusted? see --ca-file)",
            )?;
        exchange(TokioIo::new(tls), request).await
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .context("no answer within 10 seconds")?
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
    let store = args.data.open_store().await?;
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
