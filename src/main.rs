//! The `wfs` command: `wfs serve` runs the service.

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wfs",
    version,
    about = "Weather Forecast Service: the real-time WebSocket API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "WFS_LISTEN", default_value = "127.0.0.1:8000")]
        listen: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve { listen } => {
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let address = listener.local_addr().context("listener has no address")?;
            tracing::info!("serving on http://{address} (echo at ws://{address}/ws/v1/echo)");
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            wfs::serve(
                listener,
                Arc::new(wfs::App::default()),
                Arc::new(wfs_runtime::Config::default()),
                shutdown,
            )
            .await
            .context("server failed")
        }
    }
}
