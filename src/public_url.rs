//! `--public-url`: the one address people and browsers reach this server at (often a proxy in
//! front of it), from which the allowed `Host` and `Origin` are derived; and the start-up
//! report of what the Host/Origin gate lets through, with a warning for the setting that
//! answers 403 to everything (listening on all interfaces with only loopback names allowed).

use std::net::SocketAddr;

use crate::http::AccessPolicy;

/// A `--public-url` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PublicUrlError {
    #[error("`{url}` is not a URL: {why}")]
    Invalid { url: String, why: String },
    #[error("`{url}` must start with http:// or https://")]
    Scheme { url: String },
    #[error("`{url}` has no host name")]
    NoHost { url: String },
    #[error(
        "`{url}` has a path, query or user name; give only scheme://host[:port] (wfs serves at the root)"
    )]
    NotARoot { url: String },
}

/// A parsed `--public-url`: scheme, host and the port when it is not the scheme's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    scheme: String,
    /// Lower case; an IPv6 address in brackets.
    host: String,
    port: Option<u16>,
}

impl PublicUrl {
    pub fn parse(url: &str) -> Result<PublicUrl, PublicUrlError> {
        let invalid = |why: String| PublicUrlError::Invalid {
            url: url.to_owned(),
            why,
        };
        if !url.contains("://") {
            return Err(PublicUrlError::Scheme {
                url: url.to_owned(),
            });
        }
        let uri: poem::http::Uri = url
            .trim()
            .parse()
            .map_err(|error: poem::http::uri::InvalidUri| invalid(error.to_string()))?;
        let scheme = match uri.scheme_str() {
            Some(scheme @ ("http" | "https")) => scheme.to_owned(),
            _ => {
                return Err(PublicUrlError::Scheme {
                    url: url.to_owned(),
                });
            }
        };
        let authority = uri.authority().ok_or_else(|| PublicUrlError::NoHost {
            url: url.to_owned(),
        })?;
        let rooted = matches!(uri.path(), "" | "/") && uri.query().is_none();
        if !rooted || authority.as_str().contains('@') {
            return Err(PublicUrlError::NotARoot {
                url: url.to_owned(),
            });
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(PublicUrlError::NoHost {
                url: url.to_owned(),
            });
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        let port = authority.port_u16().filter(|port| *port != default_port);
        Ok(PublicUrl { scheme, host, port })
    }

    /// The `Host` browsers send for it: `name` for the default port (any port is then
    /// accepted, as a proxy may forward it), `name:port` otherwise.
    pub fn allowed_host(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The `Origin` of pages served from it: `scheme://host[:port]`.
    pub fn allowed_origin(&self) -> String {
        format!("{}://{}", self.scheme, self.allowed_host())
    }
}

/// Whether an allowed-host entry names only this machine.
fn is_loopback_name(entry: &str) -> bool {
    let name = entry
        .rsplit_once(':')
        .filter(|(name, port)| !name.ends_with(':') && port.chars().all(|c| c.is_ascii_digit()))
        .map_or(entry, |(name, _)| name);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || entry == "[::1]"
        || entry.starts_with("[::1]:")
}

/// What the gate will say about a server listening on `address` with `policy`: the lines to
/// log at start, and a warning when other machines can connect but every name they could use
/// is refused.
pub fn describe(policy: &AccessPolicy, address: SocketAddr) -> (String, Option<String>) {
    let report = format!(
        "allowed hosts: {}; allowed origins: {} (/health and /metrics answer any host)",
        policy.hosts().join(", "),
        policy.origins().join(", ")
    );
    let warning = (!address.ip().is_loopback()
        && policy.hosts().iter().all(|host| is_loopback_name(host)))
    .then(|| {
        format!(
            "listening on {address}, reachable from other machines, but only loopback names are allowed as Host: every request by another name or address gets 403 \"Host not allowed\"; set --public-url https://your.name (or --allowed-hosts)"
        )
    });
    (report, warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_gives_its_host_and_origin() {
        let url = PublicUrl::parse("https://WFS.example.com").unwrap();
        assert_eq!(url.allowed_host(), "wfs.example.com");
        assert_eq!(url.allowed_origin(), "https://wfs.example.com");
        let url = PublicUrl::parse("http://wfs.example.com:8080/").unwrap();
        assert_eq!(url.allowed_host(), "wfs.example.com:8080");
        assert_eq!(url.allowed_origin(), "http://wfs.example.com:8080");
        let url = PublicUrl::parse("https://wfs.example.com:443").unwrap();
        assert_eq!(url.allowed_origin(), "https://wfs.example.com");
        let url = PublicUrl::parse("http://[2001:db8::1]:8000").unwrap();
        assert_eq!(url.allowed_origin(), "http://[2001:db8::1]:8000");
    }

    #[test]
    fn unusable_public_urls_are_refused_with_a_reason() {
        for (url, expected) in [
            ("wfs.example.com", "must start with"),
            ("ftp://wfs.example.com", "must start with"),
            ("https://wfs.example.com/app", "give only scheme://host"),
            ("https://user:pw@wfs.example.com", "give only scheme://host"),
            ("https://", "not a URL"),
        ] {
            let error = PublicUrl::parse(url).unwrap_err().to_string();
            assert!(error.contains(expected), "{url}: {error}");
        }
    }

    #[test]
    fn loopback_names_are_recognised() {
        for name in [
            "localhost",
            "localhost:8000",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8000",
        ] {
            assert!(is_loopback_name(name), "{name}");
        }
        for name in [
            "wfs.example.com",
            "10.0.0.1",
            "*.example.com",
            "[2001:db8::1]",
        ] {
            assert!(!is_loopback_name(name), "{name}");
        }
    }

    #[test]
    fn all_interfaces_with_loopback_hosts_only_is_warned_about() {
        let local = AccessPolicy::local(8000, false);
        let all: SocketAddr = "0.0.0.0:8000".parse().unwrap();
        let (report, warning) = describe(&local, all);
        assert!(report.contains("localhost"), "{report}");
        assert!(warning.is_some());
        let (_, warning) = describe(&local, "127.0.0.1:8000".parse().unwrap());
        assert!(warning.is_none());
        let public = PublicUrl::parse("https://wfs.example.com").unwrap();
        let (report, warning) = describe(
            &local.allowing(public.allowed_host(), public.allowed_origin()),
            all,
        );
        assert!(report.contains("https://wfs.example.com"), "{report}");
        assert!(warning.is_none());
    }
}
