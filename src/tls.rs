//! TLS for `wfs serve --tls`: https and wss on the same port, with rustls.
//!
//! Where the certificate comes from, in order:
//! 1. `--cert` and `--key`: PEM files an operator gives (a real certificate, or mkcert's);
//! 2. `<data dir>/tls/server.crt` and `server.key`, made on the first TLS start and reused: a
//!    self-signed certificate for `localhost`, `127.0.0.1` and `::1` (subject alternative
//!    names, `serverAuth`), so `wfs serve --tls` works at once;
//! 3. `wfs cert` replaces those with a certificate signed by a local CA (`ca.crt`, made once
//!    and kept), and prints how to trust the CA, after which browsers accept the server
//!    without a warning and keep doing so when the server certificate is renewed.
//!
//! Private keys are written with mode 0600. Only HTTP/1.1 is offered (ALPN): WebSockets run
//! over it, and the pages are small.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use chrono::{Datelike, Utc};
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::rustls;

/// The names the generated certificates are for.
pub const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The common name of the local CA (`wfs cert`): what a user sees in a browser's store.
const CA_NAME: &str = "wfs local development CA";

/// Days a server certificate is valid: browsers refuse longer than 398.
const SERVER_DAYS: i64 = 397;
/// Days the local CA is valid.
const CA_DAYS: i64 = 3650;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: PathBuf },
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate and key are not usable together: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("give both --cert and --key, or neither")]
    HalfGiven,
}

/// A certificate chain and its key, as PEM.
#[derive(Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
    /// Where the certificate came from, for the start-up log.
    pub source: PathBuf,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The files `serve --tls` and `cert` keep in the data directory.
#[derive(Debug, Clone)]
pub struct TlsDir {
    pub dir: PathBuf,
}

impl TlsDir {
    pub fn new(data_dir: &Path) -> TlsDir {
        TlsDir {
            dir: data_dir.join("tls"),
        }
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.crt")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// The root a client on this machine should trust to reach the server: the local CA if
    /// `wfs cert` made one, else the self-signed server certificate itself.
    pub fn trust_anchor(&self) -> PathBuf {
        if self.ca_cert().exists() {
            self.ca_cert()
        } else {
            self.server_cert()
        }
    }
}

/// The identity `serve --tls` uses: the given files, else the one in the data directory,
/// made (self-signed) if missing.
pub fn load_or_create(
    data_dir: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Identity, TlsError> {
    match (cert, key) {
        (Some(cert), Some(key)) => read_identity(cert, key),
        (None, None) => {
            let dir = TlsDir::new(data_dir);
            if !dir.server_cert().exists() || !dir.server_key().exists() {
                let key = KeyPair::generate()?;
                let cert = server_params()?.self_signed(&key)?;
                write_identity(&dir, &cert.pem(), &key.serialize_pem())?;
                tracing::info!(
                    cert = %dir.server_cert().display(),
                    "made a self-signed certificate for localhost, 127.0.0.1 and ::1 \
                     (run `wfs cert` for one that browsers can trust)"
                );
            }
            read_identity(&dir.server_cert(), &dir.server_key())
        }
        _ => Err(TlsError::HalfGiven),
    }
}

/// What `wfs cert` did.
#[derive(Debug)]
pub struct LocalCa {
    pub ca_cert: PathBuf,
    /// False when an existing CA was reused (browsers that trust it keep trusting).
    pub ca_created: bool,
    pub server_cert: PathBuf,
}

/// Makes (or reuses) the local CA and issues a new server certificate signed by it, replacing
/// the one `serve --tls` uses.
pub fn make_local_ca(data_dir: &Path) -> Result<LocalCa, TlsError> {
    let dir = TlsDir::new(data_dir);
    let ca_created = !(dir.ca_cert().exists() && dir.ca_key().exists());
    let ca_key = if ca_created {
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        write_file(&dir.ca_key(), &key.serialize_pem(), true)?;
        write_file(&dir.ca_cert(), &cert.pem(), false)?;
        key
    } else {
        KeyPair::from_pem(&read(&dir.ca_key())?)?
    };
    // Signing needs the CA's name and key only; its parameters are rebuilt the same way, so
    // certificates issued now chain to the `ca.crt` made earlier.
    let issuer = Issuer::new(ca_params(), ca_key);
    let key = KeyPair::generate()?;
    let cert = server_params()?.signed_by(&key, &issuer)?;
    write_identity(&dir, &cert.pem(), &key.serialize_pem())?;
    Ok(LocalCa {
        ca_cert: dir.ca_cert(),
        ca_created,
        server_cert: dir.server_cert(),
    })
}

fn server_params() -> Result<CertificateParams, TlsError> {
    // `new` makes IP addresses IP SANs and names DNS SANs.
    let mut params = CertificateParams::new(
        LOCAL_NAMES
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "localhost");
    name.push(DnType::OrganizationName, "wfs");
    params.distinguished_name = name;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    set_validity(&mut params, SERVER_DAYS);
    Ok(params)
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    name.push(DnType::OrganizationName, "wfs");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_DAYS);
    params
}

/// Valid from yesterday (clocks differ) for `days`.
fn set_validity(params: &mut CertificateParams, days: i64) {
    let day = |when: chrono::DateTime<Utc>| {
        // Month and day always fit a u8.
        rcgen::date_time_ymd(when.year(), when.month() as u8, when.day() as u8)
    };
    let now = Utc::now();
    params.not_before = day(now - chrono::Duration::days(1));
    params.not_after = day(now + chrono::Duration::days(days));
}

fn write_identity(dir: &TlsDir, cert_pem: &str, key_pem: &str) -> Result<(), TlsError> {
    write_file(&dir.server_key(), key_pem, true)?;
    write_file(&dir.server_cert(), cert_pem, false)
}

fn write_file(path: &Path, content: &str, secret: bool) -> Result<(), TlsError> {
    let error = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    // Written beside, then renamed: a server starting meanwhile never reads half a file.
    let temporary = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    {
        use std::io::Write;
        let mut file = options.open(&temporary).map_err(error)?;
        file.write_all(content.as_bytes()).map_err(error)?;
        file.sync_all().map_err(error)?;
    }
    std::fs::rename(&temporary, path).map_err(error)
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_identity(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    let identity = Identity {
        cert_pem: read(cert)?,
        key_pem: read(key)?,
        source: cert.to_owned(),
    };
    // Checked now, so a bad file stops the start with its name rather than failing each
    // handshake later.
    server_config(&identity, cert, key)?;
    Ok(identity)
}

/// The rustls configuration for `identity`; the paths only name the files in errors.
fn server_config(
    identity: &Identity,
    cert_path: &Path,
    key_path: &Path,
) -> Result<rustls::ServerConfig, TlsError> {
    let chain = rustls_pemfile::certs(&mut identity.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read {
            path: cert_path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let key = rustls_pemfile::private_key(&mut identity.key_pem.as_bytes())
        .map_err(|source| TlsError::Read {
            path: key_path.to_owned(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: key_path.to_owned(),
        })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A client configuration that trusts exactly the certificates in the PEM file `roots` (the
/// data directory's trust anchor for `wfs alert`, or a CA file the operator names).
pub fn client_config(roots: &Path) -> Result<rustls::ClientConfig, TlsError> {
    let pem = std::fs::read(roots).map_err(|source| TlsError::Read {
        path: roots.to_owned(),
        source,
    })?;
    let mut store = rustls::RootCertStore::empty();
    for certificate in rustls_pemfile::certs(&mut pem.as_slice()) {
        let certificate = certificate.map_err(|source| TlsError::Read {
            path: roots.to_owned(),
            source,
        })?;
        store.add(certificate)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth())
}

/// Wraps an acceptor (TCP) in TLS. poem's own rustls acceptor loads its configuration from a
/// stream and drops a connection that arrives before it has (a race at start-up); this one has
/// it from the start.
pub struct TlsAcceptor<A> {
    inner: A,
    tls: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
}

impl<A> TlsAcceptor<A> {
    pub fn new(inner: A, identity: &Identity) -> Result<TlsAcceptor<A>, TlsError> {
        let config = server_config(identity, &identity.source, &identity.source)?;
        Ok(TlsAcceptor {
            inner,
            tls: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            handshake_timeout: Duration::from_secs(10),
        })
    }

    /// A handshake not finished after `timeout` fails (default 10 s): a client that opens a
    /// connection and stalls in the handshake must not keep its socket.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> TlsAcceptor<A> {
        self.handshake_timeout = timeout;
        self
    }
}

impl<A: Acceptor> Acceptor for TlsAcceptor<A> {
    type Io = Handshaking<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (stream, local, remote, _) = self.inner.accept().await?;
        Ok((
            Handshaking::Pending(Box::new(Pending {
                accept: self.tls.accept(stream),
                deadline: Box::pin(tokio::time::sleep(self.handshake_timeout)),
            })),
            local,
            remote,
            poem::http::uri::Scheme::HTTPS,
        ))
    }
}

/// A TLS stream whose handshake runs on its first read or write, in the connection's own task:
/// a slow or silent client never holds up the accept loop. (poem has the same thing, but not
/// public.)
pub enum Handshaking<Io> {
    Pending(Box<Pending<Io>>),
    Ready(Box<tokio_rustls::server::TlsStream<Io>>),
    Failed,
}

/// A handshake under way, and when it must have finished.
pub struct Pending<Io> {
    accept: tokio_rustls::Accept<Io>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<Io: AsyncRead + AsyncWrite + Unpin> Handshaking<Io> {
    fn stream(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<&mut tokio_rustls::server::TlsStream<Io>>> {
        if let Handshaking::Pending(pending) = self {
            if pending.deadline.as_mut().poll(cx).is_ready() {
                *self = Handshaking::Failed;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the TLS handshake did not finish in time",
                )));
            }
            *self = match ready!(Pin::new(&mut pending.accept).poll(cx)) {
                Ok(stream) => Handshaking::Ready(Box::new(stream)),
                Err(error) => {
                    *self = Handshaking::Failed;
                    return Poll::Ready(Err(error));
                }
            };
        }
        match self {
            Handshaking::Ready(stream) => Poll::Ready(Ok(stream)),
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the TLS handshake failed",
            ))),
        }
    }
}

impl<Io: AsyncRead + AsyncWrite + Unpin> AsyncRead for Handshaking<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let stream = ready!(self.get_mut().stream(cx))?;
        Pin::new(stream).poll_read(cx, buf)
    }
}

impl<Io: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Handshaking<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let stream = ready!(self.get_mut().stream(cx))?;
        Pin::new(stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream = ready!(self.get_mut().stream(cx))?;
        Pin::new(stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream = ready!(self.get_mut().stream(cx))?;
        Pin::new(stream).poll_shutdown(cx)
    }
}

/// How to make browsers and tools trust `ca` (printed by `wfs cert`).
pub fn trust_instructions(ca: &Path) -> String {
    let ca = ca.display();
    format!(
        "Trust the CA once, then restart `wfs serve --tls`:\n\
         \x20 Chromium/Chrome on Linux: certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n 'wfs local CA' -i {ca}\n\
         \x20   (certutil is in libnss3-tools), or Settings > Privacy and security > Security >\n\
         \x20   Manage certificates > Authorities > Import\n\
         \x20 Firefox: Settings > Privacy & Security > Certificates > View Certificates >\n\
         \x20   Authorities > Import, and tick \"Trust this CA to identify websites\"\n\
         \x20 Debian/Ubuntu (curl, websocat, ...): sudo cp {ca} /usr/local/share/ca-certificates/wfs-local-ca.crt && sudo update-ca-certificates\n\
         \x20 macOS: sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}\n\
         \x20 Windows: certutil -addstore -f Root {ca}\n\
         \x20 One command only: curl --cacert {ca} https://localhost:8000/"
    )
}
