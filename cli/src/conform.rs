//! `asyncapi-rs conform` and `asyncapi-rs mock`: the conformance engine and the mock of
//! `asyncapi-conform` on the command line (exit 1 on any violation, for CI jobs).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use asyncapi_conform::{MockOptions, OnInvalid, Options, Refusal, Trigger, split_pair};
use wfs_codegen::Contract;

use crate::{Outcome, Ui, load};

fn param(text: &str) -> Result<(String, String), String> {
    split_pair(text, '=')
}

fn header(text: &str) -> Result<(String, String), String> {
    split_pair(text, ':')
}

/// `500ms`, `5s`, `2m` or a number of seconds (`1.5`).
fn duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}`: expected a duration such as 500ms, 5s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{text}`: the unit is ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("`{text}`: {error}"))
}

/// Checks a running server against an AsyncAPI document: handshake (valid and broken
/// parameters), the examples of every receive operation and their replies, every frame the
/// server sends, triggered send operations, and frames that break the contract. Exits 1 on any
/// violation.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  asyncapi-rs conform asyncapi/v1-schema.yaml --server ws://127.0.0.1:8000 \\
      --param city_uuid=df257fd6-63a5-5b69-b454-73da5d1224c2 --token-env WFS_TOKEN \\
      --trigger 'sendAlert=wfs alert --city-uuid df257fd6-63a5-5b69-b454-73da5d1224c2' \\
      --junit target/conform.xml
  asyncapi-rs conform kraken.yml --server ws://127.0.0.1:9000 --timeout 2s")]
pub struct ConformArgs {
    /// The AsyncAPI document (YAML or JSON, 2.x or 3.x).
    pub file: PathBuf,
    /// The server's base URL, ws://HOST:PORT (channel addresses are appended).
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// A handshake parameter (address, query or header parameter of the document); repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = param)]
    pub params: Vec<(String, String)>,
    /// A header sent with every handshake; repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = header)]
    pub headers: Vec<(String, String)>,
    /// A token, put where the document's security scheme says (query parameter or header).
    #[arg(long, conflicts_with = "token_env")]
    pub token: Option<String>,
    /// The environment variable that holds the token (keeps it off the command line).
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// How long a reply, a refusal or a triggered send may take.
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub timeout: Duration,
    /// A shell command run with `sh -c`; with OPERATION= before it, that send operation must
    /// then be seen. Repeatable.
    #[arg(long = "trigger", value_name = "[OPERATION=]COMMAND")]
    pub triggers: Vec<String>,
    /// How a handshake with a broken parameter must be refused.
    #[arg(long, default_value = "either", value_name = "http|close|either")]
    pub expect_param_refusal: Refusal,
    /// Also write the report as JUnit XML.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// Serves a mock of an AsyncAPI document over WebSocket, for client developers: every channel
/// at its address, handshake parameters checked, frames validated, replies from the examples
/// (correlation ids copied), each send operation's examples pushed every interval, every frame
/// logged. Runs until Ctrl-C.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  asyncapi-rs mock asyncapi/v1-schema.yaml --listen 127.0.0.1:9000
  asyncapi-rs mock kraken.yml --listen 127.0.0.1:9000 --interval 5s --on-invalid log")]
pub struct MockArgs {
    /// The AsyncAPI document (YAML or JSON, 2.x or 3.x).
    pub file: PathBuf,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8000", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// How often each send operation's examples are pushed.
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub interval: Duration,
    /// What a frame the document does not allow gets: a close (1007) or only a log line.
    #[arg(long, default_value = "close", value_name = "close|log")]
    pub on_invalid: OnInvalid,
}

/// The contract, or `None` once its problems are printed (the command then ends with
/// [`Outcome::Problems`]).
fn contract(file: &std::path::Path, ui: &Ui) -> Result<Option<Contract>> {
    let loaded = load(file, ui)?;
    ui.done();
    loaded.errors.iter().for_each(|error| ui.error(error));
    loaded
        .warnings
        .iter()
        .for_each(|warning| ui.warning(warning));
    Ok(loaded.contract)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `asyncapi-rs conform`: the report on stdout, [`Outcome::Problems`] (exit 1) on any violation.
pub fn conform(args: &ConformArgs, ui: &Ui) -> Result<Outcome> {
    let Some(contract) = contract(&args.file, ui)? else {
        return Ok(Outcome::Problems);
    };
    let token = match (&args.token, &args.token_env) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(var)) => {
            Some(std::env::var(var).with_context(|| format!("--token-env: `{var}` is not set"))?)
        }
        (None, None) => None,
    };
    if !args.server.starts_with("ws://") && !args.server.starts_with("wss://") {
        bail!(
            "--server must start with ws:// or wss:// (got `{}`)",
            args.server
        );
    }
    let mut options = Options::new(&args.server);
    options.params = args.params.clone();
    options.headers = args.headers.clone();
    options.token = token;
    options.timeout = args.timeout;
    options.triggers = args
        .triggers
        .iter()
        .map(|text| Trigger::parse(text, &contract))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    options.expect_param_refusal = args.expect_param_refusal;
    let report = runtime()?.block_on(asyncapi_conform::run(&contract, &options));
    print!("{}", report.render_text());
    if let Some(path) = &args.junit {
        std::fs::write(path, report.junit_xml())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if report.violations() == 0 {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// `asyncapi-rs mock`: serves until Ctrl-C, logging every frame on stderr (`-q`: only
/// refused frames; `RUST_LOG` overrides).
pub fn mock(args: &MockArgs, ui: &Ui) -> Result<Outcome> {
    let Some(contract) = contract(&args.file, ui)? else {
        return Ok(Outcome::Problems);
    };
    let level = if ui.quiet() { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("asyncapi_conform={level}"))
    });
    // A subscriber set already (a test calling this twice) keeps logging; not worth failing for.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let mut options = MockOptions::new(args.listen);
    options.interval = args.interval;
    options.on_invalid = args.on_invalid;
    runtime()?.block_on(async {
        // Listening for Ctrl-C before the port opens: a client (or a CI script) that sends
        // SIGINT as soon as it can connect must stop the mock cleanly, not kill it.
        let interrupted = interrupt()?;
        let mock = asyncapi_conform::mock::serve(&contract, options).await?;
        if mock.addresses().is_empty() {
            bail!(
                "{} has no channel a WebSocket client can reach (a path address on a ws, wss, http or https server)",
                args.file.display()
            );
        }
        if !ui.quiet() {
            eprintln!(
                "mock of {} on ws://{} (Ctrl-C stops it)",
                args.file.display(),
                mock.local_addr()
            );
        }
        interrupted.await;
        Ok(Outcome::Ok)
    })
}

/// Resolves on Ctrl-C (SIGINT). The handler is in place when this returns, not first polled.
#[cfg(unix)]
fn interrupt() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupts = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
    Ok(async move {
        interrupts.recv().await;
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn interrupt() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
