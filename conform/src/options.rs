//! What a conformance run is told: the server, handshake values, token, timeouts, trigger
//! commands and how a bad parameter must be refused.

use std::time::Duration;

use wfs_codegen::Contract;
use wfs_codegen::model::Action;

/// How a server may refuse a handshake whose parameters violate their schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Refusal {
    /// An HTTP 4xx answer to the upgrade.
    Http,
    /// The upgrade accepted, then a close frame (with a code other than 1006/1011).
    Close,
    /// Either of them.
    #[default]
    Either,
}

/// A shell command that makes the server send something, and what it must then send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The `send` operation that must be seen after the command ran; `None`: any pushed frame.
    pub operation: Option<String>,
    /// Run with `sh -c`.
    pub command: String,
}

impl Trigger {
    /// `OPERATION=COMMAND`, where OPERATION is a `send` operation of the contract, or a command
    /// alone (any pushed frame then counts). A word before `=` that names no send operation is
    /// refused rather than run: `sendAlrt=wfs alert ...` would otherwise be a shell variable
    /// assignment that runs nothing, and the check would fail for a reason nobody could see.
    pub fn parse(text: &str, contract: &Contract) -> Result<Trigger, String> {
        if let Some((name, command)) = text.split_once('=') {
            let name = name.trim();
            let is_word = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
            let sends: Vec<&str> = contract
                .operations
                .iter()
                .filter(|operation| operation.action == Action::Send)
                .map(|operation| operation.key.as_str())
                .collect();
            if sends.contains(&name) {
                return Ok(Trigger {
                    operation: Some(name.to_owned()),
                    command: command.to_owned(),
                });
            }
            if is_word {
                return Err(format!(
                    "trigger `{text}`: `{name}` is not a send operation of the contract (its send \
                     operations: {}); write OPERATION=COMMAND, or `env {name}=...` to start the \
                     command with a variable",
                    if sends.is_empty() {
                        "none".to_owned()
                    } else {
                        sends.join(", ")
                    }
                ));
            }
        }
        Ok(Trigger {
            operation: None,
            command: text.to_owned(),
        })
    }
}

/// What to check and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server's base URL, `ws://host:port` (a path prefix is kept).
    pub server: String,
    /// Handshake parameter values by name (path, query or header parameters of the contract).
    pub params: Vec<(String, String)>,
    /// Headers sent with every handshake.
    pub headers: Vec<(String, String)>,
    /// A token, put where the contract's security scheme says (query parameter or header).
    pub token: Option<String>,
    /// How long a reply, a refusal or a triggered push may take.
    pub timeout: Duration,
    /// How long to listen after a frame is sent or a connection opens, for what it causes.
    pub settle: Duration,
    pub triggers: Vec<Trigger>,
    pub expect_param_refusal: Refusal,
}

impl Options {
    /// Defaults: no parameters, headers or token; 5 s timeout; 300 ms settle.
    pub fn new(server: impl Into<String>) -> Options {
        Options {
            server: server.into(),
            params: Vec::new(),
            headers: Vec::new(),
            token: None,
            timeout: Duration::from_secs(5),
            settle: Duration::from_millis(300),
            triggers: Vec::new(),
            expect_param_refusal: Refusal::Either,
        }
    }
}

impl std::str::FromStr for Refusal {
    type Err = String;

    /// `http`, `close` or `either` (as `--expect-param-refusal` takes it).
    fn from_str(text: &str) -> Result<Refusal, String> {
        match text {
            "http" => Ok(Refusal::Http),
            "close" => Ok(Refusal::Close),
            "either" => Ok(Refusal::Either),
            other => Err(format!("`{other}`: expected http, close or either")),
        }
    }
}

/// `NAME=VALUE` (a `--param`) or `Name: value` (a `--header`, `:` as separator) split in two.
pub fn split_pair(text: &str, separator: char) -> Result<(String, String), String> {
    match text.split_once(separator) {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim_start().to_owned()))
        }
        _ => Err(format!("`{text}`: expected NAME{separator}VALUE")),
    }
}
