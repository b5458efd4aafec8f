//! The Host/Origin gate in front of everything the service serves, and the JSON error shape.
//! The REST endpoints themselves live in [`crate::api`].
//!
//! Host and Origin are matched exactly (the old service matched substrings, so
//! `evil-localhost:8000.example` passed). A `*.` prefix allows sub-domains only where an
//! operator configured it. A request without `Origin` comes from a non-browser client (browsers
//! always send it on WebSocket handshakes) and is allowed.
//!
//! `/health` and `/metrics` skip the Host check: load balancers and Prometheus reach an instance
//! by its IP address, with that address as `Host`. Both are read-only, take no credentials and
//! set no cookies, so a page that rebinds a name to this server learns no more from them than
//! the counts and states they publish. Every other path is checked.
//!
//! The gate also writes the access log: method, path (never the query, which carries
//! `access_token`), status, duration and the client's address.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Json;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use serde_json::json;

/// Which `Host` and `Origin` values are accepted.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    hosts: Vec<String>,
    origins: Vec<String>,
}

impl AccessPolicy {
    /// `hosts`: `name` (any port), `name:port`, or `*.domain`; `origins`: `scheme://host[:port]`
    /// or `scheme://*.domain[:port]`. Compared case-insensitively.
    pub fn new(hosts: Vec<String>, origins: Vec<String>) -> AccessPolicy {
        let lower = |list: Vec<String>| {
            list.into_iter()
                .map(|item| item.trim().to_ascii_lowercase())
                .collect()
        };
        AccessPolicy {
            hosts: lower(hosts),
            origins: lower(origins),
        }
    }

    /// The defaults for a server on `port`: loopback names as hosts, the server's own pages as
    /// origins, and the same origins written without a scheme (`localhost:8000`, as the old
    /// service's tests send it; see [`AccessPolicy::origin_allowed`]).
    pub fn local(port: u16, tls: bool) -> AccessPolicy {
        let scheme = if tls { "https" } else { "http" };
        let names = ["localhost", "127.0.0.1", "[::1]"];
        let schemed = names.iter().map(|name| format!("{scheme}://{name}:{port}"));
        let bare = names.iter().map(|name| format!("{name}:{port}"));
        AccessPolicy::new(
            names.iter().map(|name| (*name).to_owned()).collect(),
            schemed.chain(bare).collect(),
        )
    }

    /// This policy with the hosts and origins replaced by those given, where any are given.
    pub fn replacing(self, hosts: Vec<String>, origins: Vec<String>) -> AccessPolicy {
        let replaced = AccessPolicy::new(hosts, origins);
        AccessPolicy {
            hosts: if replaced.hosts.is_empty() {
                self.hosts
            } else {
                replaced.hosts
            },
            origins: if replaced.origins.is_empty() {
                self.origins
            } else {
                replaced.origins
            },
        }
    }

    /// This policy with one more host and origin (`--public-url`), each unless already there.
    pub fn allowing(mut self, host: String, origin: String) -> AccessPolicy {
        for (list, item) in [(&mut self.hosts, host), (&mut self.origins, origin)] {
            let item = item.trim().to_ascii_lowercase();
            if !list.contains(&item) {
                list.push(item);
            }
        }
        self
    }

    /// The accepted `Host` entries, as configured.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The accepted `Origin` entries, as configured.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let name = strip_port(&host);
        self.hosts.iter().any(|allowed| {
            if let Some(domain) = allowed.strip_prefix("*.") {
                is_subdomain(name, domain)
            } else if strip_port(allowed) != allowed {
                // An entry with a port matches that port only.
                *allowed == host
            } else {
                *allowed == name
            }
        })
    }

    /// Whether an `Origin` header is allowed. An entry and a header match only when both have
    /// the same scheme or both have none: `http://localhost:8000` matches that origin only, and
    /// an entry written without a scheme (`localhost:8000`, `*.example.com`) matches only a
    /// header written without one, which no browser sends (browsers always send
    /// `scheme://host[:port]` or `null`). So a bare entry serves old non-browser clients that
    /// send `Origin: localhost:8000`, and never widens what a schemed entry allows.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        let (scheme, rest) = split_scheme(&origin);
        self.origins.iter().any(|allowed| {
            let (allowed_scheme, pattern) = split_scheme(allowed);
            allowed_scheme == scheme
                && match pattern.strip_prefix("*.") {
                    Some(domain) => is_subdomain(rest, domain),
                    None => pattern == rest,
                }
        })
    }
}

/// `http://host:port` -> (`Some("http")`, `host:port`); `host:port` -> (`None`, `host:port`).
fn split_scheme(origin: &str) -> (Option<&str>, &str) {
    match origin.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, origin),
    }
}

/// Whether `name` is a strict sub-domain of `domain` (`api.example.com` of `example.com`,
/// never `evilexample.com` nor `example.com` itself).
fn is_subdomain(name: &str, domain: &str) -> bool {
    name.strip_suffix(domain)
        .and_then(|prefix| prefix.strip_suffix('.'))
        .is_some_and(|label| !label.is_empty())
}

/// `host:port` -> `host`; `[::1]:80` -> `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(name, _)| &host[..=name.len()]);
    }
    host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            name
        } else {
            host
        }
    })
}

/// Middleware: `Host` on every request, `Origin` on WebSocket handshakes, SSE streams and the
/// REST API, both answered with WIRE.md's plain-text 403s.
#[derive(Debug, Clone)]
pub struct Gate {
    policy: Arc<AccessPolicy>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    trusted_proxies: Arc<crate::client_addr::TrustedProxies>,
}

impl Gate {
    pub fn new(policy: AccessPolicy) -> Gate {
        Gate {
            policy: Arc::new(policy),
            metrics: None,
            trusted_proxies: Arc::default(),
        }
    }

    /// This gate, logging the client a trusted proxy names rather than the proxy itself.
    pub fn trusting(mut self, proxies: crate::client_addr::TrustedProxies) -> Gate {
        self.trusted_proxies = Arc::new(proxies);
        self
    }

    /// This gate, counting the handshakes it refuses in `metrics`.
    pub fn counting(mut self, metrics: Arc<crate::metrics::Metrics>) -> Gate {
        self.metrics = Some(metrics);
        self
    }
}

/// Paths that answer whatever the `Host` (see the module documentation).
pub fn skips_host_check(path: &str) -> bool {
    matches!(path, "/health" | "/metrics")
}

impl<E: Endpoint> Middleware<E> for Gate {
    type Output = GateEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        GateEndpoint {
            inner,
            policy: self.policy.clone(),
            metrics: self.metrics.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}

pub struct GateEndpoint<E> {
    inner: E,
    policy: Arc<AccessPolicy>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    trusted_proxies: Arc<crate::client_addr::TrustedProxies>,
}

impl<E: Endpoint> Endpoint for GateEndpoint<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        // The access log names the path only: query strings carry `access_token`.
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let client = crate::connections::client_of(&request, &self.trusted_proxies);
        let started = std::time::Instant::now();
        let response = self.gate(request).await;
        let status = match &response {
            Ok(response) => response.status(),
            Err(error) => error.status(),
        };
        // For a WebSocket, the time to the upgrade; its close is logged on its own.
        let duration_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        tracing::info!(%method, %path, status = status.as_u16(), duration_ms, %client, "request");
        response
    }
}

impl<E: Endpoint> GateEndpoint<E> {
    async fn gate(&self, request: Request) -> poem::Result<Response> {
        // RFC 9112 3.2: exactly one Host; two could be read differently by a proxy and by us.
        if request.headers().get_all("host").iter().count() > 1 {
            return Ok(bad_request("Duplicate Host header"));
        }
        // SSE streams are channels too (same token in the query): a page on another site
        // must not open one with its visitor's browser any more than a WebSocket. The REST API
        // answers CORS for the allowed origins only ([`crate::cors`]), so any other origin is
        // refused here, in the same words.
        let path = request.uri().path();
        let is_websocket = request
            .header("upgrade")
            .is_some_and(|upgrade| upgrade.eq_ignore_ascii_case("websocket"));
        let is_handshake = is_websocket || path.starts_with("/sse/v1/");
        let checks_origin = is_handshake || path == "/api" || path.starts_with("/api/");
        if is_handshake && request.headers().get_all("origin").iter().count() > 1 {
            // A browser sends one; which of two would be checked is anyone's guess.
            return Ok(bad_request("Duplicate Origin header"));
        }
        let refuse = |reason: &'static str, body: &'static str| {
            if is_handshake && let Some(metrics) = &self.metrics {
                let transport = if is_websocket { "websocket" } else { "sse" };
                let channel = crate::connections::channel_of(path);
                metrics.refused(channel, transport, reason);
            }
            Ok(forbidden(body))
        };
        // An absolute-form target (`GET http://name/path`) names the host itself, and
        // RFC 9112 3.2.2 says it wins over the Host header: check that one.
        let host = match request.uri().authority() {
            Some(authority) => authority.as_str(),
            None => request.header("host").unwrap_or_default(),
        };
        if !self.policy.host_allowed(host) && !skips_host_check(path) {
            return refuse("host", "Host not allowed");
        }
        if checks_origin
            && let Some(origin) = request.header("origin")
            && !self.policy.origin_allowed(origin)
        {
            return refuse("origin", "Origin not allowed");
        }
        self.inner
            .call(request)
            .await
            .map(IntoResponse::into_response)
    }
}

fn forbidden(body: &'static str) -> Response {
    plain(StatusCode::FORBIDDEN, body)
}

fn bad_request(body: &'static str) -> Response {
    plain(StatusCode::BAD_REQUEST, body)
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

/// A JSON error body: `{"detail": "..."}` (the shape the old service's clients read).
pub fn json_error(status: StatusCode, detail: impl Into<String>) -> Response {
    Json(json!({ "detail": detail.into() }))
        .with_status(status)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_or_by_configured_wildcard() {
        let policy = AccessPolicy::new(
            vec![
                "localhost".into(),
                "127.0.0.1:8000".into(),
                "*.example.com".into(),
                "[::1]".into(),
            ],
            vec![],
        );
        assert!(policy.host_allowed("localhost:8000"));
        assert!(policy.host_allowed("LOCALHOST"));
        assert!(policy.host_allowed("127.0.0.1:8000"));
        assert!(!policy.host_allowed("127.0.0.1:9000"));
        assert!(policy.host_allowed("api.example.com"));
        assert!(!policy.host_allowed("example.com"));
        assert!(!policy.host_allowed("evilexample.com"));
        assert!(policy.host_allowed("[::1]:8000"));
        assert!(!policy.host_allowed("evil-localhost:8000.example"));
        assert!(!policy.host_allowed("localhost.evil.com"));
        assert!(!policy.host_allowed(""));
    }

    #[test]
    fn origins_match_exactly_or_by_configured_wildcard() {
        let policy = AccessPolicy::new(
            vec![],
            vec![
                "http://localhost:8000".into(),
                "https://*.example.com".into(),
            ],
        );
        assert!(policy.origin_allowed("http://localhost:8000"));
        assert!(!policy.origin_allowed("http://localhost:8001"));
        assert!(!policy.origin_allowed("http://evil-localhost:8000.example"));
        assert!(!policy.origin_allowed("http://localhost:8000.evil.com"));
        assert!(policy.origin_allowed("https://app.example.com"));
        assert!(!policy.origin_allowed("http://app.example.com"));
        assert!(!policy.origin_allowed("https://example.com"));
        assert!(!policy.origin_allowed("null"));
        // A header without a scheme matches no schemed entry.
        assert!(!policy.origin_allowed("localhost:8000"));
        assert!(!policy.origin_allowed("app.example.com"));
    }

    #[test]
    fn bare_origins_match_bare_headers_only_and_never_widen_schemed_ones() {
        let policy = AccessPolicy::new(
            vec![],
            vec![
                "https://wfs.example.com".into(),
                "localhost:8000".into(),
                "*.example.org".into(),
            ],
        );
        // The old tests' header.
        assert!(policy.origin_allowed("localhost:8000"));
        assert!(policy.origin_allowed("LOCALHOST:8000"));
        assert!(!policy.origin_allowed("localhost:8001"));
        assert!(policy.origin_allowed("app.example.org"));
        // A bare entry allows no browser origin, whatever the scheme.
        assert!(!policy.origin_allowed("http://localhost:8000"));
        assert!(!policy.origin_allowed("https://localhost:8000"));
        assert!(!policy.origin_allowed("https://app.example.org"));
        // The schemed entry still allows exactly its scheme.
        assert!(policy.origin_allowed("https://wfs.example.com"));
        assert!(!policy.origin_allowed("http://wfs.example.com"));
        assert!(!policy.origin_allowed("wfs.example.com"));
    }

    #[test]
    fn the_defaults_accept_the_servers_own_origin_with_or_without_a_scheme() {
        let policy = AccessPolicy::local(8000, false);
        assert!(policy.origin_allowed("http://localhost:8000"));
        assert!(policy.origin_allowed("localhost:8000"));
        assert!(policy.origin_allowed("127.0.0.1:8000"));
        assert!(!policy.origin_allowed("https://localhost:8000"));
        assert!(!policy.origin_allowed("localhost:8001"));
    }
}
