//! The `wfs` command: parse the command line, set up logging, run (see `wfs::cli`).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use wfs::cli::{Cli, LogFormat};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    // Colours only for a person at a terminal: a file, a pipe or a log collector gets plain
    // text. NO_COLOR (no-color.org) turns them off at a terminal too.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Human => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match wfs::cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
