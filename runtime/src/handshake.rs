//! The WebSocket handshake as the application sees it, and how it refuses one.

use std::fmt;
use std::net::SocketAddr;

use poem::Request;
use poem::http::HeaderMap;

use crate::address::Template;

/// What a client sent to open a connection: path parameters, query, headers, peer address.
#[derive(Debug, Clone)]
pub struct Handshake {
    path: String,
    query: Vec<(String, String)>,
    path_params: Vec<(String, String)>,
    headers: HeaderMap,
    remote_addr: Option<SocketAddr>,
}

impl Handshake {
    /// Reads the parts of `request` a handshake needs; `path_params` names the `{...}` of the
    /// channel address.
    pub fn from_request(request: &Request, path_params: &[&str]) -> Handshake {
        let query = request
            .uri()
            .query()
            .map(url_decode_pairs)
            .unwrap_or_default();
        Handshake {
            path: request.uri().path().to_owned(),
            query,
            path_params: path_params
                .iter()
                .filter_map(|name| {
                    request
                        .raw_path_param(name)
                        .map(|value| ((*name).to_owned(), percent_decode(value)))
                })
                .collect(),
            headers: request.headers().clone(),
            remote_addr: request.remote_addr().as_socket_addr().copied(),
        }
    }

    /// Reads the parts of `request` a handshake needs, with the path parameters read by the
    /// channel's address template; `None` when the path does not match it exactly (a segment
    /// that mixes text and parameters is routed by a looser pattern, and checked here).
    pub fn from_address(request: &Request, address: &Template) -> Option<Handshake> {
        let path = request.uri().path();
        let path_params = address
            .parse(path)?
            .into_iter()
            .map(|(name, value)| (name.to_owned(), percent_decode(value)))
            .collect();
        let mut handshake = Handshake::from_request(request, &[]);
        handshake.path_params = path_params;
        Some(handshake)
    }

    /// The request path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A `{name}` of the channel address.
    pub fn path_param(&self, name: &str) -> Option<&str> {
        self.path_params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A header value, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Every header of the request, for what the contract does not declare (an `Origin`
    /// check, a proxy's `X-Forwarded-For`).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The peer's address as the listener saw it (a proxy's, behind one); `None` when the
    /// listener has no socket address (a test's in-memory request).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }
}

fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&key.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Some(byte) = std::str::from_utf8(&bytes[index + 1..index + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a connection is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Refuse the upgrade with an HTTP status and a plain-text body.
    Http {
        /// The HTTP status (4xx or 5xx).
        status: u16,
        /// The response body, plain text.
        body: String,
    },
    /// Accept the upgrade, then close at once with this code and reason (browsers can only
    /// read a close reason, never the body of a refused upgrade).
    Close {
        /// The close code (RFC 6455: 1008 for a policy violation, 4000-4999 for the
        /// application's own).
        code: u16,
        /// The close reason, cut to the 123 bytes a close frame holds.
        reason: String,
    },
}

impl Reject {
    /// HTTP 403 with `body`: the client may not connect (a missing or invalid token).
    pub fn forbidden(body: impl Into<String>) -> Reject {
        Reject::Http {
            status: 403,
            body: body.into(),
        }
    }

    /// Accept, then close with `code` and `reason`, which a browser can read (it cannot read
    /// the body of a refused upgrade).
    pub fn close(code: u16, reason: impl Into<String>) -> Reject {
        Reject::Close {
            code,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::Http { status, body } => write!(f, "HTTP {status}: {body}"),
            Reject::Close { code, reason } => write!(f, "close {code}: {reason}"),
        }
    }
}

/// Problems with a channel's parameters (path, query, headers), all of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParamsError {
    /// Each parameter's problem, in the order the parameters were read.
    pub problems: Vec<ParamProblem>,
}

/// One parameter's problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamProblem {
    /// `query`, `path` or `header`.
    pub location: &'static str,
    /// The parameter's name on the wire.
    pub name: String,
    /// `None` when the parameter is missing.
    pub invalid: Option<String>,
}

impl ParamsError {
    /// A parameter that is present but wrong.
    pub fn invalid(
        location: &'static str,
        name: impl Into<String>,
        why: impl Into<String>,
    ) -> ParamProblem {
        ParamProblem {
            location,
            name: name.into(),
            invalid: Some(why.into()),
        }
    }

    /// `address` is not an address of `channel`, whose template is `template`.
    pub fn not_an_address(address: &str, channel: &str, template: &str) -> ParamsError {
        ParamsError {
            problems: vec![ParamsError::invalid(
                "path",
                "address",
                format!("`{address}` is not an address of channel `{channel}` (`{template}`)"),
            )],
        }
    }

    /// Whether the parameter `name` is among the problems.
    pub fn concerns(&self, name: &str) -> bool {
        self.problems.iter().any(|problem| problem.name == name)
    }

    /// Whether no problem was found (the parameters are fine).
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            match &problem.invalid {
                None => write!(
                    f,
                    "{} parameter `{}` is missing",
                    problem.location, problem.name
                )?,
                Some(why) => write!(
                    f,
                    "{} parameter `{}` is invalid: {why}",
                    problem.location, problem.name
                )?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ParamsError {}

/// Parsers for parameter values, shared by the generated `<Channel>Params::from_handshake`.
pub mod params {
    use serde_json::Value;

    use super::{Handshake, ParamProblem, ParamsError};
    use crate::Validator;
    use crate::address::Template;

    /// Reads a channel's parameters one by one, each from where the contract puts it (`path`,
    /// `query`, `header`), recording every problem instead of stopping at the first; then
    /// [`Reader::finish`] checks the values together against the channel's parameter schema.
    /// The generated `from_handshake` and `from_address` are one call per parameter.
    #[derive(Debug)]
    pub struct Reader<'a> {
        source: Source<'a>,
        errors: ParamsError,
        /// The values read, as JSON, for the schema check.
        values: serde_json::Map<String, Value>,
        /// Where each parameter was read from, to name it in the schema's problems.
        locations: Vec<(String, &'static str)>,
        /// A required parameter is missing or did not parse: its value is a stand-in.
        incomplete: bool,
    }

    #[derive(Debug)]
    enum Source<'a> {
        Handshake(&'a Handshake),
        /// The `{...}` values of an address matched against the channel's template.
        Address(Vec<(&'static str, &'a str)>),
    }

    impl<'a> Reader<'a> {
        /// Reads from a handshake: path parameters, query and headers.
        pub fn new(handshake: &'a Handshake) -> Reader<'a> {
            Reader::over(Source::Handshake(handshake))
        }

        /// Reads the `{...}` parameters of `address`, which must match `template` (the address
        /// of channel `channel`) exactly.
        pub fn address(
            template: &Template,
            address: &'a str,
            channel: &str,
        ) -> Result<Reader<'a>, ParamsError> {
            match template.parse(address) {
                Some(values) => Ok(Reader::over(Source::Address(values))),
                None => Err(ParamsError::not_an_address(
                    address,
                    channel,
                    &template.to_string(),
                )),
            }
        }

        fn over(source: Source<'a>) -> Reader<'a> {
            Reader {
                source,
                errors: ParamsError::default(),
                values: serde_json::Map::new(),
                locations: Vec::new(),
                incomplete: false,
            }
        }

        fn raw(&self, location: &str, name: &str) -> Option<&'a str> {
            match (&self.source, location) {
                (Source::Handshake(handshake), _) => {
                    let handshake: &'a Handshake = handshake;
                    match location {
                        "path" => handshake.path_param(name),
                        "query" => handshake.query(name),
                        "header" => handshake.header(name),
                        // A parameter of a URL's host part is not in a request.
                        _ => None,
                    }
                }
                (Source::Address(values), "path" | "address") => values
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| *value),
                // A query parameter or a header is not in an address.
                (Source::Address(_), _) => None,
            }
        }

        /// A parameter the channel cannot do without. When it is missing or does not parse,
        /// the problem is recorded and a stand-in (`T::default()`) returned, which
        /// [`Reader::finish`] never lets out.
        pub fn required<T: Default + serde::Serialize>(
            &mut self,
            location: &'static str,
            name: &str,
            parser: fn(&str) -> Result<T, String>,
        ) -> T {
            match self.read(location, name, true, parser) {
                Some(value) => value,
                None => {
                    self.incomplete = true;
                    T::default()
                }
            }
        }

        /// A parameter that may be left out (`None`); one that is there but does not parse is
        /// a problem.
        pub fn optional<T: serde::Serialize>(
            &mut self,
            location: &'static str,
            name: &str,
            parser: fn(&str) -> Result<T, String>,
        ) -> Option<T> {
            self.read(location, name, false, parser)
        }

        fn read<T: serde::Serialize>(
            &mut self,
            location: &'static str,
            name: &str,
            required: bool,
            parser: fn(&str) -> Result<T, String>,
        ) -> Option<T> {
            let raw = self.raw(location, name);
            self.locations.push((name.to_owned(), location));
            let value = parse(&mut self.errors, location, name, raw, required, parser)?;
            if let Ok(json) = serde_json::to_value(&value) {
                self.values.insert(name.to_owned(), json);
            }
            Some(value)
        }

        /// Every problem found while reading; and, when every required parameter was read,
        /// the values checked together against `schema` (the contract's constraints on them:
        /// `minimum`, `pattern`, `enum`...), each of its problems named by the parameter it is
        /// about.
        pub fn finish(mut self, schema: Option<&Validator>) -> Result<(), ParamsError> {
            if !self.incomplete
                && let Some(schema) = schema
                && let Err(violations) = schema.check(&Value::Object(self.values))
            {
                for problem in violations.problems {
                    let name = problem
                        .path
                        .trim_start_matches('/')
                        .split('/')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let location = self
                        .locations
                        .iter()
                        .find(|(known, _)| *known == name)
                        .map_or("query", |(_, location)| *location);
                    self.errors.problems.push(ParamsError::invalid(
                        location,
                        name,
                        problem.message,
                    ));
                }
            }
            if self.errors.is_empty() {
                Ok(())
            } else {
                Err(self.errors)
            }
        }
    }

    /// Parses one parameter; a problem is recorded in `errors` and `None` returned.
    pub fn parse<T>(
        errors: &mut ParamsError,
        location: &'static str,
        name: &str,
        raw: Option<&str>,
        required: bool,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match raw {
            None => {
                if required {
                    errors.problems.push(ParamProblem {
                        location,
                        name: name.to_owned(),
                        invalid: None,
                    });
                }
                None
            }
            Some(raw) => match parse(raw) {
                Ok(value) => Some(value),
                Err(why) => {
                    errors.problems.push(ParamProblem {
                        location,
                        name: name.to_owned(),
                        invalid: Some(why),
                    });
                    None
                }
            },
        }
    }

    /// A text parameter: taken as it is (already percent-decoded).
    pub fn string(raw: &str) -> Result<String, String> {
        Ok(raw.to_owned())
    }

    /// A UUID in its canonical hyphenated form only (either case): `1`, braces, URNs and the
    /// hyphen-less form are refused, so a client and a publisher always name a city alike.
    pub fn uuid(raw: &str) -> Result<uuid::Uuid, String> {
        let canonical = raw.len() == 36
            && raw
                .char_indices()
                .all(|(index, c)| matches!(index, 8 | 13 | 18 | 23) == (c == '-'));
        if !canonical {
            return Err(format!(
                "`{raw}` is not a UUID (expected 8-4-4-4-12 hexadecimal digits)"
            ));
        }
        uuid::Uuid::parse_str(raw).map_err(|error| format!("`{raw}` is not a UUID: {error}"))
    }

    /// An `integer` parameter: a decimal `i64`.
    pub fn integer(raw: &str) -> Result<i64, String> {
        raw.parse()
            .map_err(|_| format!("`{raw}` is not an integer"))
    }

    /// A `number` parameter: a finite `f64` (`NaN` and infinities are refused).
    pub fn number(raw: &str) -> Result<f64, String> {
        raw.parse::<f64>()
            .ok()
            .filter(|value| value.is_finite())
            .ok_or_else(|| format!("`{raw}` is not a number"))
    }

    /// A `boolean` parameter: exactly `true` or `false`.
    pub fn boolean(raw: &str) -> Result<bool, String> {
        match raw {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("`{raw}` is not `true` or `false`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_uuids_parse() {
        let canonical = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
        assert!(params::uuid(canonical).is_ok());
        assert_eq!(
            params::uuid(&canonical.to_uppercase()).ok(),
            params::uuid(canonical).ok()
        );
        for bad in [
            "1",
            "abc",
            "6ba7b8109dad11d180b400c04fd430c8",
            "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
            "6ba7b810-9dad-11d1-80b4-00c04fd430cg",
        ] {
            assert!(params::uuid(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn the_reader_reports_every_problem_where_it_is() {
        static SCHEMA: crate::Validator = crate::Validator::new(
            "room parameters",
            r#"{"type":"object","properties":{"since":{"type":"integer","minimum":0},"x-client":{"type":"string","maxLength":3}}}"#,
        );
        let request = Request::builder()
            .uri(poem::http::Uri::from_static("/rooms?since=-4"))
            .header("x-client", "toolong")
            .finish();
        let handshake = Handshake::from_request(&request, &[]);
        // Missing required: reported, and the schema is not consulted on stand-in values.
        let mut read = params::Reader::new(&handshake);
        let room: String = read.required("path", "room", params::string);
        assert_eq!(room, "");
        let error = read.finish(Some(&SCHEMA)).unwrap_err();
        assert_eq!(error.problems.len(), 1);
        assert_eq!(
            (
                error.problems[0].location,
                error.problems[0].invalid.is_none()
            ),
            ("path", true)
        );
        // Every value read: the schema's problems are named by parameter and location.
        let mut read = params::Reader::new(&handshake);
        let since = read.optional("query", "since", params::integer);
        let client = read.optional("header", "x-client", params::string);
        let wrong = read.optional("query", "limit", params::integer);
        assert_eq!(
            (since, client.as_deref(), wrong),
            (Some(-4), Some("toolong"), None)
        );
        let error = read.finish(Some(&SCHEMA)).unwrap_err();
        let named: Vec<(&str, &str)> = error
            .problems
            .iter()
            .map(|problem| (problem.location, problem.name.as_str()))
            .collect();
        assert_eq!(
            named,
            [("query", "since"), ("header", "x-client")],
            "{error}"
        );
    }

    #[test]
    fn an_address_is_read_against_its_template() {
        static ROOM: crate::address::Template = crate::address::Template::new(&[
            crate::address::Piece::Text("/rooms/"),
            crate::address::Piece::Param("room"),
        ]);
        let mut read = params::Reader::address(&ROOM, "/rooms/7", "room").unwrap();
        assert_eq!(read.required("path", "room", params::integer), 7);
        assert!(read.finish(None).is_ok());
        let error = params::Reader::address(&ROOM, "/halls/7", "room").unwrap_err();
        assert_eq!(
            error.to_string(),
            "path parameter `address` is invalid: `/halls/7` is not an address of channel `room` (`/rooms/{room}`)"
        );
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            url_decode_pairs("a=1%2B2&b=x+y&c"),
            vec![
                ("a".to_owned(), "1+2".to_owned()),
                ("b".to_owned(), "x y".to_owned()),
                ("c".to_owned(), String::new())
            ]
        );
    }
}
