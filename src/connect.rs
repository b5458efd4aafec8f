//! `wfs connect URL`: a minimal WebSocket client for trying the channels by hand, so the README's
//! examples need nothing beyond `wfs` itself (websocat is not in Debian; Python's `websockets`
//! is not installed by default).
//!
//! Each line of standard input is sent as one text frame; each frame received is printed on a
//! line of standard output. At the end of the input it closes the connection normally, after
//! the replies to what it sent (the server answers in order, then echoes the close). A close
//! from the server is printed on standard error with its code and reason, so `1008 City with
//! ... doesn't exist.` is visible.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use wfs_runtime::tokio_tungstenite::tungstenite::Message;
use wfs_runtime::tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wfs_runtime::tokio_tungstenite::{WebSocketStream, client_async};

/// How long the handshake may take.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The channel's URL, e.g. ws://127.0.0.1:8000/ws/v1/echo (wss:// for a TLS server).
    pub url: String,
    /// For wss://: the PEM certificate(s) to trust (e.g. data/tls/ca.crt from `wfs cert`, or
    /// data/tls/server.crt of `serve --tls`).
    #[arg(long, env = "WFS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

/// `wfs connect`.
pub async fn run(args: ConnectArgs) -> anyhow::Result<ExitCode> {
    let request = args
        .url
        .as_str()
        .into_client_request()
        .with_context(|| format!("`{}` is not a ws:// or wss:// URL", args.url))?;
    let uri = request.uri().clone();
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => anyhow::bail!(
            "`{}` must start with ws:// or wss:// (http:// is for pages)",
            args.url
        ),
    };
    let host = uri
        .host()
        .context("the URL has no host")?
        .trim_matches(['[', ']'])
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .with_context(|| format!("cannot connect to {host}:{port}"))?;
    if tls {
        let roots = args
            .ca_file
            .context("wss:// needs --ca-file (the certificate to trust)")?;
        let config = crate::tls::client_config(&roots)
            .with_context(|| format!("cannot trust the certificates in {}", roots.display()))?;
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.clone())
            .with_context(|| format!("`{host}` is not a host name for TLS"))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .context("the TLS handshake failed")?;
        talk(handshake(request, stream).await?).await
    } else {
        talk(handshake(request, tcp).await?).await
    }
}

async fn handshake<S>(
    request: wfs_runtime::tokio_tungstenite::tungstenite::handshake::client::Request,
    stream: S,
) -> anyhow::Result<WebSocketStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use wfs_runtime::tokio_tungstenite::tungstenite::Error;
    match tokio::time::timeout(HANDSHAKE_WITHIN, client_async(request, stream)).await {
        Err(_) => anyhow::bail!("no handshake answer within {HANDSHAKE_WITHIN:?}"),
        Ok(Ok((socket, _))) => Ok(socket),
        // Refused before the upgrade (403 Origin/Host/token, 503): show the status and body.
        Ok(Err(Error::Http(response))) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            anyhow::bail!("refused: HTTP {} {body}", response.status().as_u16())
        }
        Ok(Err(error)) => Err(error).context("the WebSocket handshake failed"),
    }
}

async fn talk<S>(socket: WebSocketStream<S>) -> anyhow::Result<ExitCode>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut source) = socket.split();
    let mut lines = stdin_lines();
    let mut input_open = true;
    loop {
        tokio::select! {
            line = lines.recv(), if input_open => match line.transpose().context("cannot read standard input")? {
                Some(line) if line.trim().is_empty() => {}
                Some(line) => sink.send(Message::text(line)).await.context("cannot send")?,
                None => {
                    // The end of the input: close; the replies already on their way still come.
                    input_open = false;
                    sink.send(Message::Close(None)).await.context("cannot close")?;
                }
            },
            frame = source.next() => match frame {
                Some(Ok(Message::Text(text))) => println!("{}", text.as_str()),
                Some(Ok(Message::Binary(bytes))) => println!("<{} binary bytes>", bytes.len()),
                Some(Ok(Message::Close(frame))) => {
                    if let Some(frame) = frame.filter(|f| u16::from(f.code) != 1000) {
                        eprintln!("closed: {} {}", u16::from(frame.code), frame.reason.as_str());
                        return Ok(ExitCode::FAILURE);
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error).context("the connection failed"),
                None => return Ok(ExitCode::SUCCESS),
            },
        }
    }
}

/// The lines of standard input, read on a thread of their own (a blocking read; tokio's
/// `io-std` is not worth a feature for one command).
fn stdin_lines() -> tokio::sync::mpsc::Receiver<std::io::Result<String>> {
    let (lines, received) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            let failed = line.is_err();
            if lines.blocking_send(line).is_err() || failed {
                return;
            }
        }
    });
    received
}
