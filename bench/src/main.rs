//! `wfs-bench`: the load generator. One scenario per run, one JSON line of results on stdout.
//! `cargo xtask bench` runs it pinned to its own core against each server in turn.
//!
//! ```text
//! wfs-bench --server 127.0.0.1:8000 --pid 1234 --login admin:PASSWORD echo --connections 50
//! wfs-bench --server 127.0.0.1:9000 --pid 5678 fanout --subscribers 10000 --cities 1
//! wfs-bench --server 127.0.0.1:8000 --pid 1234 --login admin:PASSWORD handshake --connections 10000
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use wfs_bench::Target;
use wfs_bench::scenarios::{
    self, CatchUpOptions, ChatOptions, ChurnOptions, EchoOptions, FanoutOptions, HandshakeOptions,
    IdleOptions, LoginBurstOptions, PublishOptions, SlowlorisOptions, Transport,
    TwoInstancesOptions,
};

#[derive(Debug, Parser)]
#[command(
    name = "wfs-bench",
    about = "WebSocket load generator for wfs and its baselines"
)]
struct Cli {
    /// The server's address.
    #[arg(long)]
    server: SocketAddr,
    /// The server's pid, to read its memory and sockets from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// `USER:PASSWORD` of a wfs admin: the target is wfs (token from /api/jwt/obtain, alerts
    /// published through its REST API). Without it the target is a baseline (GET /publish).
    #[arg(long)]
    login: Option<String>,
    /// A second instance sharing the first one's Redis and database (`two-instances`).
    #[arg(long)]
    server2: Option<SocketAddr>,
    /// The second instance's pid.
    #[arg(long)]
    pid2: Option<u32>,
    /// The pid of the database server the target uses, when it runs apart (PostgreSQL's
    /// postmaster): its processes' CPU time is counted beside the server's.
    #[arg(long)]
    database_pid: Option<u32>,
    /// Speak TLS (wss, https) to the server, trusting only the PEM certificate in this file
    /// (`wfs serve --tls` makes `<data dir>/tls/server.crt`).
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// N connections, each sending as soon as its previous reply is back.
    Echo {
        #[arg(long, default_value_t = 50)]
        connections: usize,
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 32)]
        payload: usize,
    },
    /// S alert subscribers over C cities; alerts published through the normal path
    /// (`--interval-ms 0 --publishers 16`: back to back, several in flight, the burst).
    Fanout {
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        #[arg(long, default_value_t = 1)]
        cities: usize,
        #[arg(long, default_value_t = 20)]
        alerts: usize,
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        /// Publish requests in flight at once (each publisher waits for its answer).
        #[arg(long, default_value_t = 1)]
        publishers: usize,
        /// Count the server's write system calls over the window (`perf stat`; needs --pid).
        #[arg(long)]
        count_writes: bool,
        #[arg(long, default_value_t = 30.0)]
        drain: f64,
        /// `websocket` (`/ws/v1/alert`) or `sse` (`/sse/v1/alert`, wfs only).
        #[arg(long, value_enum, default_value = "websocket")]
        transport: Transport,
    },
    /// C authenticated alert connections opened as fast as accepted, and held.
    Handshake {
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
    },
    /// Clients reconnecting with `since=` after missing M alerts (wfs only).
    CatchUp {
        #[arg(long, default_value_t = 1000)]
        missed: usize,
        #[arg(long, default_value_t = 1)]
        clients: usize,
        #[arg(long, default_value_t = 60.0)]
        drain: f64,
    },
    /// M members of one chat room, S of them sending R messages a second each.
    Chat {
        #[arg(long, default_value_t = 100)]
        members: usize,
        #[arg(long, default_value_t = 10)]
        senders: usize,
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 30.0)]
        drain: f64,
    },
    /// Subscribers split over two instances (`--server2`), alerts published on the first.
    TwoInstances {
        #[arg(long, default_value_t = 2_000)]
        subscribers: usize,
        #[arg(long, default_value_t = 50)]
        alerts: usize,
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        #[arg(long, default_value_t = 30.0)]
        drain: f64,
    },
    /// P publishers posting alerts as fast as answered to one city with S subscribers.
    Publish {
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        #[arg(long, default_value_t = 4)]
        publishers: usize,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 100_000)]
        max_alerts: usize,
        #[arg(long, default_value_t = 30.0)]
        drain: f64,
    },
    /// C connections held open; server memory per connection.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
    },
    /// Connect, echo, close at a fixed rate; server memory and sockets before and after.
    Churn {
        #[arg(long, default_value_t = 200)]
        rate: u32,
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
        #[arg(long, default_value_t = 500)]
        max_in_flight: usize,
    },
    /// Echo latency of a few clients alone, then while thousands of half-sent requests are
    /// held open (wfs only).
    Slowloris {
        #[arg(long, default_value_t = 5_000)]
        attack: usize,
        #[arg(long, default_value_t = 10)]
        connections: usize,
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
    },
    /// N wrong-password logins at once; server RSS before, at peak, and after (wfs only).
    LoginBurst {
        #[arg(long, default_value_t = 64)]
        logins: usize,
        #[arg(long, default_value_t = 30.0)]
        after: f64,
    },
}

fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    wfs_bench::raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let line = runtime.block_on(run(cli))?;
    println!("{line}");
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<String> {
    if let Some(ca_file) = &cli.ca_file {
        wfs_bench::tls::trust(ca_file)?;
    }
    let mut target = match &cli.login {
        Some(login) => {
            let (user, password) = login.split_once(':').context("--login is USER:PASSWORD")?;
            Target::wfs(cli.server, user, password, cli.pid).await?
        }
        None => Target::baseline(cli.server, cli.pid),
    };
    target.database_pid = cli.database_pid;
    let json = match cli.scenario {
        Scenario::Echo {
            connections,
            warmup,
            duration,
            payload,
        } => serde_json::to_string(
            &scenarios::echo(
                &target,
                &EchoOptions {
                    connections,
                    warmup: seconds(warmup),
                    duration: seconds(duration),
                    payload,
                },
            )
            .await?,
        ),
        Scenario::Fanout {
            subscribers,
            cities,
            alerts,
            interval_ms,
            publishers,
            count_writes,
            drain,
            transport,
        } => serde_json::to_string(
            &scenarios::fanout(
                &target,
                &FanoutOptions {
                    subscribers,
                    cities,
                    alerts,
                    interval: Duration::from_millis(interval_ms),
                    publishers,
                    count_writes,
                    drain: seconds(drain),
                    transport,
                },
            )
            .await?,
        ),
        Scenario::Handshake {
            connections,
            concurrency,
            settle,
        } => serde_json::to_string(
            &scenarios::handshake(
                &target,
                &HandshakeOptions {
                    connections,
                    concurrency,
                    settle: seconds(settle),
                },
            )
            .await?,
        ),
        Scenario::CatchUp {
            missed,
            clients,
            drain,
        } => serde_json::to_string(
            &scenarios::catch_up(
                &target,
                &CatchUpOptions {
                    missed,
                    clients,
                    drain: seconds(drain),
                },
            )
            .await?,
        ),
        Scenario::Chat {
            members,
            senders,
            rate,
            duration,
            drain,
        } => serde_json::to_string(
            &scenarios::chat(
                &target,
                &ChatOptions {
                    members,
                    senders,
                    rate,
                    duration: seconds(duration),
                    drain: seconds(drain),
                },
            )
            .await?,
        ),
        Scenario::TwoInstances {
            subscribers,
            alerts,
            interval_ms,
            drain,
        } => {
            let address = cli.server2.context("two-instances needs --server2")?;
            let second = Target {
                address,
                pid: cli.pid2,
                ..target.clone()
            };
            serde_json::to_string(
                &scenarios::two_instances(
                    &target,
                    &second,
                    &TwoInstancesOptions {
                        subscribers,
                        alerts,
                        interval: Duration::from_millis(interval_ms),
                        drain: seconds(drain),
                    },
                )
                .await?,
            )
        }
        Scenario::Publish {
            subscribers,
            publishers,
            duration,
            max_alerts,
            drain,
        } => serde_json::to_string(
            &scenarios::publish(
                &target,
                &PublishOptions {
                    subscribers,
                    publishers,
                    duration: seconds(duration),
                    max_alerts,
                    drain: seconds(drain),
                },
            )
            .await?,
        ),
        Scenario::Idle {
            connections,
            settle,
        } => serde_json::to_string(
            &scenarios::idle(
                &target,
                &IdleOptions {
                    connections,
                    settle: seconds(settle),
                },
            )
            .await?,
        ),
        Scenario::Churn {
            rate,
            warmup,
            duration,
            settle,
            max_in_flight,
        } => serde_json::to_string(
            &scenarios::churn(
                &target,
                &ChurnOptions {
                    rate,
                    warmup: seconds(warmup),
                    duration: seconds(duration),
                    settle: seconds(settle),
                    max_in_flight,
                },
            )
            .await?,
        ),
        Scenario::Slowloris {
            attack,
            connections,
            warmup,
            duration,
        } => serde_json::to_string(
            &scenarios::slowloris(
                &target,
                &SlowlorisOptions {
                    attack,
                    echo: EchoOptions {
                        connections,
                        warmup: seconds(warmup),
                        duration: seconds(duration),
                        payload: 32,
                    },
                },
            )
            .await?,
        ),
        Scenario::LoginBurst { logins, after } => serde_json::to_string(
            &scenarios::login_burst(
                &target,
                &LoginBurstOptions {
                    logins,
                    after: seconds(after),
                },
            )
            .await?,
        ),
    };
    Ok(json?)
}
