//! `market-feed --listen ADDR`: serves the example market feed until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Serves a market-data feed over WebSocket at ws://ADDR/v1/feed (contract: asyncapi.yaml).
#[derive(Debug, Parser)]
#[command(
    name = "market-feed",
    version,
    after_help = "Examples:\n  \
    cargo run -p market-feed -- --listen 127.0.0.1:9000\n  \
    cargo run -p market-feed -- --listen 0.0.0.0:9000 --tick-ms 100"
)]
struct Args {
    /// Address to listen on, IP:PORT (port 0: any free port).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Milliseconds between market ticks (1 to 60000).
    #[arg(long, value_name = "MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    tick_ms: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(format_args!("cannot start the tokio runtime: {error}")),
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => return fail(format_args!("cannot listen on {}: {error}", args.listen)),
    };
    let address = listener.local_addr().unwrap_or(args.listen);
    let market = market_feed::Market::start(Duration::from_millis(args.tick_ms));
    eprintln!(
        "market-feed: serving ws://{address}{} (a tick every {} ms; Ctrl-C stops)",
        market_feed::FEED_PATH,
        args.tick_ms
    );
    let shutdown = async {
        // Without a Ctrl-C handler, serve until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match market_feed::serve(listener, market, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(format_args!("serving on {address} failed: {error}")),
    }
}

fn fail(message: std::fmt::Arguments<'_>) -> ExitCode {
    eprintln!("market-feed: error: {message}");
    ExitCode::FAILURE
}
