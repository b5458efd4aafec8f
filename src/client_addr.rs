//! The client's IP address of a request: the TCP peer, or, when the peer is a proxy the operator
//! trusts (`wfs serve --trusted-proxies`), the address that proxy reports in
//! `X-Forwarded-For`. Login limits key on it; the access log shows it.
//!
//! `X-Forwarded-For` is read from the right: each trusted hop names the one before it, and the
//! first address that is not a trusted proxy is the client. Anything to its left was written by
//! the client itself and is never believed, and nothing is read at all from a peer that is not
//! trusted, so a client cannot choose its own address.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed: addresses or networks (CIDR).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// An entry of `--trusted-proxies` that is neither an IP address nor a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or a network like 10.0.0.0/8 or fd00::/8")]
pub struct BadProxyEntry(pub String);

impl TrustedProxies {
    /// Parses entries like `127.0.0.1`, `::1`, `10.0.0.0/8`, `fd00::/8` (blank ones ignored).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, BadProxyEntry> {
        let mut networks = Vec::new();
        for entry in entries.iter().map(|entry| entry.as_ref().trim()) {
            if entry.is_empty() {
                continue;
            }
            let network = IpNet::from_str(entry)
                .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                .map_err(|_| BadProxyEntry(entry.to_owned()))?;
            networks.push(network);
        }
        Ok(TrustedProxies(networks))
    }

    /// True when no proxy is trusted (the default): the TCP peer is the client.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|network| network.contains(&ip))
    }
}

/// The client's address of `request` (see the module docs); `None` when the connection has no
/// IP peer (which a TCP or TLS listener always has).
pub fn client_ip(request: &poem::Request, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = request.remote_addr().as_socket_addr()?.ip();
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok());
    Some(client_ip_from(peer, forwarded, trusted))
}

/// [`client_ip`] from the peer and the `X-Forwarded-For` header values, in order.
pub fn client_ip_from<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let mut client = peer.to_canonical();
    if trusted.is_empty() {
        return client;
    }
    let hops: Vec<&str> = forwarded_for.flat_map(|value| value.split(',')).collect();
    for hop in hops.iter().rev() {
        if !trusted.contains(client) {
            break;
        }
        match parse_hop(hop) {
            Some(ip) => client = ip,
            // A hop that is not an address: the last trusted proxy is all we know.
            None => break,
        }
    }
    client
}

/// An address as proxies write it: `1.2.3.4`, `2001:db8::1`, `1.2.3.4:5678`, `[2001:db8::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    IpAddr::from_str(hop)
        .ok()
        .or_else(|| SocketAddr::from_str(hop).ok().map(|socket| socket.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn client(peer: &str, forwarded: &[&str], trusted: &[&str]) -> IpAddr {
        let trusted = TrustedProxies::parse(trusted).expect("valid");
        client_ip_from(ip(peer), forwarded.iter().copied(), &trusted)
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        assert_eq!(client("203.0.113.9", &["1.2.3.4"], &[]), ip("203.0.113.9"));
        assert_eq!(
            client("203.0.113.9", &["1.2.3.4"], &["127.0.0.1"]),
            ip("203.0.113.9")
        );
        assert_eq!(client("127.0.0.1", &[], &["127.0.0.1"]), ip("127.0.0.1"));
        assert_eq!(
            client("127.0.0.1", &["1.2.3.4"], &["127.0.0.1"]),
            ip("1.2.3.4")
        );
        assert_eq!(
            client("::ffff:127.0.0.1", &["1.2.3.4"], &["127.0.0.1"]),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_through_trusted_hops_only() {
        let trusted = ["127.0.0.1", "10.0.0.0/8"];
        // A client that writes its own X-Forwarded-For is named by the proxy after it.
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6, 1.2.3.4"], &trusted),
            ip("1.2.3.4")
        );
        // Two trusted proxies in a row, over two header lines.
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6, 1.2.3.4", "10.1.2.3"], &trusted),
            ip("1.2.3.4")
        );
        assert_eq!(
            client("127.0.0.1", &["[2001:db8::1]:443"], &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client("127.0.0.1", &["1.2.3.4:5678"], &trusted),
            ip("1.2.3.4")
        );
        // Garbage stops the walk at the last address known.
        assert_eq!(
            client("127.0.0.1", &["1.2.3.4, unknown"], &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client("127.0.0.1", &["1.2.3.4, 10.0.0.1, junk"], &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn entries_are_addresses_or_networks() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8", " ::1 ", "", "192.168.1.7"]);
        let trusted = trusted.expect("valid");
        assert!(trusted.contains(ip("10.200.0.1")));
        assert!(trusted.contains(ip("::1")));
        assert!(trusted.contains(ip("192.168.1.7")));
        assert!(!trusted.contains(ip("192.168.1.8")));
        assert_eq!(
            TrustedProxies::parse(&["localhost"]),
            Err(BadProxyEntry("localhost".to_owned()))
        );
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
    }
}
