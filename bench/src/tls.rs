//! TLS on the load generator's side, for `wfs serve --tls` (the "wfs over TLS" server of
//! `cargo xtask bench`): one rustls client configuration whose only root is the certificate
//! the server made for itself (`<data dir>/tls/server.crt`), never one that accepts any
//! certificate. A load generator process drives one server, so the configuration is set once
//! per process (`--ca-file`) and every connection of the run (WebSocket, HTTP) uses it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// From now on, every connection of this process is TLS, trusting only the PEM certificate(s)
/// in `pem_file`.
pub fn trust(pem_file: &Path) -> anyhow::Result<()> {
    let pem =
        std::fs::read(pem_file).with_context(|| format!("cannot read {}", pem_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.with_context(|| format!("{}: not PEM", pem_file.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("{}: not a usable root", pem_file.display()))?;
    }
    if roots.is_empty() {
        bail!("{} holds no certificate", pem_file.display());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if CONFIG.set(Arc::new(config)).is_err() {
        bail!("TLS is already configured");
    }
    Ok(())
}

/// The client configuration, when the target speaks TLS.
pub fn config() -> Option<Arc<rustls::ClientConfig>> {
    CONFIG.get().cloned()
}

/// Opens a TLS connection to `address` (checked against its IP address, which the server's
/// certificate names).
pub async fn connect(
    address: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> anyhow::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(address).await?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::IpAddress(address.ip().into());
    Ok(tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?)
}
