//! `wfs alert`: publishes an alert through a running server's REST endpoint
//! (`POST /api/v1/cities/{uuid}/alerts`), and never misleads about why it could not.
//!
//! Authentication, in this order: `--token` (an administrator's access token), `--user` (a
//! password from a prompt or standard input, exchanged at `/api/jwt/obtain`), else a
//! short-lived admin token signed with the secret in the local data directory (on the server's
//! machine no password is needed). Only the last reads the data directory, and it never creates
//! anything there.
//!
//! Every failure says what went wrong where: a missing city only when the server is a wfs that
//! says so (its JSON error names the city), a server that is not wfs, a URL without a scheme,
//! plain http sent to a TLS port, an unreachable server.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio_rustls::rustls;

use crate::auth::TokenKind;
use crate::cli::{AlertArgs, fail};

/// Every exchange with the server is bounded by this.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Why a request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    #[error("`{0}` has no scheme: write http://{0} (or https://{0} when the server serves TLS)")]
    NoScheme(String),
    #[error("`{0}` is not a valid URL (http://host:port or https://host:port)")]
    BadUrl(String),
    #[error(
        "cannot reach the wfs server at {url}: {source} (is `wfs serve` running there? set --server or WFS_SERVER)"
    )]
    Connect { url: String, source: std::io::Error },
    #[error(
        "the server at {url} speaks TLS: use https://{authority} (and --ca-file if its certificate is not trusted yet)"
    )]
    SpeaksTls { url: String, authority: String },
    #[error("the server at {url} did not answer in HTTP: {detail}")]
    NotHttp { url: String, detail: String },
    #[error("no answer from {url} within {ANSWER_WITHIN:?}")]
    Timeout { url: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// An answer: the status and the body.
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    /// The `detail` of a wfs JSON error body, if the body is one.
    fn detail(&self) -> Option<String> {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()?
            .get("detail")?
            .as_str()
            .map(str::to_owned)
    }
}

/// `wfs alert`.
pub async fn alert(args: &AlertArgs) -> anyhow::Result<ExitCode> {
    if wfs_runtime::params::uuid(&args.city_uuid).is_err() {
        return fail(format!("City uuid '{}' is not valid!", args.city_uuid));
    }
    let server = args.server.trim_end_matches('/');
    if !server.contains("://") {
        return fail(RequestError::NoScheme(server.to_owned()));
    }
    let roots = args
        .ca_file
        .clone()
        .unwrap_or_else(|| crate::tls::TlsDir::new(&args.data.data_dir).trust_anchor());
    let client = Client {
        server: server.to_owned(),
        roots: &roots,
    };
    let token = match (&args.token, &args.user) {
        (Some(token), _) => token.trim().trim_start_matches("Bearer ").to_owned(),
        (None, Some(user)) => {
            let password = password(user, args.password_stdin)?;
            match client.obtain_token(user, &password).await {
                Ok(token) => token,
                Err(failure) => return fail(failure),
            }
        }
        (None, None) => {
            let store = args.data.open_existing_store().await?;
            let Some(admin) = store.first_admin().await.context("cannot read the users")? else {
                return fail(
                    "There is no admin user in this database yet: start `wfs serve` on it once, or publish with --token or --user.",
                );
            };
            let jwt = args
                .data
                .jwt(Duration::from_secs(60), Duration::from_secs(60))?;
            jwt.issue(admin.id, TokenKind::Access)
        }
    };
    let path = format!(
        "/api/v1/cities/{}/alerts",
        args.city_uuid.to_ascii_lowercase()
    );
    let body = serde_json::json!({ "message": args.message }).to_string();
    let answer = match client.post(&path, Some(&token), body).await {
        Ok(answer) => answer,
        Err(error) => return fail(error),
    };
    match answer.status {
        201 => {
            println!(
                "Alert '{}' sent to '{}' channel.",
                args.message, args.city_uuid
            );
            Ok(ExitCode::SUCCESS)
        }
        404 => {
            // Only a wfs that says so means the city is missing: anything else answering 404
            // (another service, a proxy, a wrong port) is not evidence about the city.
            let wanted = format!("City with uuid '{}' does not exist!", args.city_uuid);
            match answer.detail() {
                Some(detail) if detail.eq_ignore_ascii_case(&wanted) => fail(wanted),
                Some(detail) => fail(format!(
                    "The server at {server} answered 404 ({detail}): it has no alert endpoint; is it a wfs server of this version? Check --server / WFS_SERVER."
                )),
                None => fail(format!(
                    "The server at {server} answered 404 and is not a wfs server (its answer is not wfs's JSON): check --server / WFS_SERVER (default http://127.0.0.1:8000)."
                )),
            }
        }
        401 if args.token.is_none() && args.user.is_none() => fail(format!(
            "The server refused the token signed with the secret in {} ({}): it does not use this data directory's secret. Run this with the server's --data-dir, or publish with --token or --user.",
            crate::data_dir::shown(&args.data.data_dir).display(),
            answer.detail().unwrap_or_default()
        )),
        status => {
            let detail = answer.detail().unwrap_or(answer.body);
            fail(format!(
                "The server refused the alert (HTTP {status}): {detail}"
            ))
        }
    }
}

/// The password of `user`: from standard input when asked to or when it is not a terminal,
/// else from a prompt that does not echo.
fn password(user: &str, from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        rpassword::prompt_password(format!("Password for {user}: "))
            .context("cannot read the password")?
    };
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    Ok(password)
}

/// HTTP/1.1 to one server, http or https.
struct Client<'a> {
    server: String,
    /// For https: the PEM certificate(s) to trust.
    roots: &'a Path,
}

impl Client<'_> {
    /// An access token for `user` from `/api/jwt/obtain`; the failure as the user should read it.
    async fn obtain_token(&self, user: &str, password: &str) -> Result<String, String> {
        let body = serde_json::json!({ "username": user, "password": password }).to_string();
        let answer = self
            .post("/api/jwt/obtain", None, body)
            .await
            .map_err(|error| error.to_string())?;
        let access = serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|value| value.get("access")?.as_str().map(str::to_owned));
        match (answer.status, access) {
            (200, Some(access)) => Ok(access),
            (401, _) => Err(format!(
                "The server refused the user name or password of `{user}`."
            )),
            (404, _) => Err(format!(
                "The server at {} has no token endpoint (/api/jwt/obtain answered 404): is it a wfs server? Check --server / WFS_SERVER.",
                self.server
            )),
            (status, _) => Err(format!(
                "The server did not give a token (HTTP {status}): {}",
                answer.detail().unwrap_or(answer.body)
            )),
        }
    }

    /// POSTs JSON to `path`, with a bearer token if given.
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: String,
    ) -> Result<Answer, RequestError> {
        let url = format!("{}{path}", self.server);
        let uri: hyper::Uri = url
            .parse()
            .map_err(|_| RequestError::BadUrl(self.server.clone()))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(RequestError::BadUrl(self.server.clone())),
        };
        let host = uri
            .host()
            .ok_or_else(|| RequestError::BadUrl(self.server.clone()))?
            .trim_matches(['[', ']'])
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri.authority().map(ToString::to_string).unwrap_or_default();
        let mut request = hyper::Request::post(path)
            .header("host", &authority)
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(bytes::Bytes::from(body)))
            .context("cannot build the request")?;

        let work = async {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|source| RequestError::Connect {
                    url: self.server.clone(),
                    source,
                })?;
            if https {
                let tls = self.tls(&host, tcp).await?;
                return exchange(TokioIo::new(tls), request).await.map_err(|error| {
                    RequestError::NotHttp {
                        url: self.server.clone(),
                        detail: error.to_string(),
                    }
                });
            }
            match exchange(TokioIo::new(tcp), request).await {
                Ok(answer) => Ok(answer),
                // Plain HTTP to a TLS port fails to parse (or is cut off): ask in TLS.
                Err(error) => {
                    if speaks_tls(&host, port).await {
                        Err(RequestError::SpeaksTls {
                            url: self.server.clone(),
                            authority,
                        })
                    } else {
                        Err(RequestError::NotHttp {
                            url: self.server.clone(),
                            detail: error.to_string(),
                        })
                    }
                }
            }
        };
        tokio::time::timeout(ANSWER_WITHIN, work)
            .await
            .map_err(|_| RequestError::Timeout {
                url: self.server.clone(),
            })?
    }

    async fn tls(
        &self,
        host: &str,
        tcp: tokio::net::TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, RequestError> {
        let config = crate::tls::client_config(self.roots).with_context(|| {
            format!(
                "cannot trust the server's certificate from {} (see --ca-file)",
                self.roots.display()
            )
        })?;
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .with_context(|| format!("`{host}` is not a host name for TLS"))?;
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
            .context(
                "the TLS handshake failed (is the server's certificate trusted? see --ca-file; is it a TLS server?)",
            )?;
        Ok(tls)
    }
}

async fn exchange<Io>(
    io: Io,
    request: hyper::Request<Full<bytes::Bytes>>,
) -> Result<Answer, hyper::Error>
where
    Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// Whether `host:port` answers a TLS handshake: with no trusted roots, a TLS server's
/// handshake fails on its certificate, anything else fails before one.
async fn speaks_tls(host: &str, port: u16) -> bool {
    let probe = async {
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.to_owned()).ok()?;
        let tcp = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        let outcome = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await;
        Some(match outcome {
            Ok(_) => true,
            Err(error) => error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|error| matches!(error, rustls::Error::InvalidCertificate(_))),
        })
    };
    tokio::time::timeout(Duration::from_secs(3), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
