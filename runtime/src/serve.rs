//! Serving a generated contract: what is the same for every channel, so that the generated code
//! only declares (its types, its traits, its routing table) and calls in here.
//!
//! - [`Decode`]: a channel's message enum, decoded from a JSON value and checked against the
//!   contract; [`first_match`] and [`by_discriminator`] are the two ways its variants are told
//!   apart.
//! - [`Endpoint`] and [`serve`]: one address, from the handshake request to the running socket
//!   (404 for a path that does not match the address exactly, the channels' `on_connect`, the
//!   refusal or the upgrade); [`endpoint`] makes it a poem endpoint for `Route::at`.
//! - [`reply`], [`handled`]: what happens to a receive operation's result; [`Correlation`] and
//!   [`reply_correlated`] check that a reply carries its request's correlation id.

use std::future::Future;
use std::sync::Arc;

use poem::{Request, Response, RouteMethod};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::address::Template;
use crate::connection::Outgoing;
use crate::socket::{self, Config, SocketHandler};
use crate::{
    ChannelError, Connection, Frame, FrameError, Handshake, Reject, Validator, Violations,
};

/// A type the frames of a channel decode into: its inbound or outbound message enum, or the
/// messages of an address several channels share.
pub trait Decode: Sized {
    /// Decodes a JSON value into the message it is, checked against the contract's schemas;
    /// when it is none of them, why not for each. An owned value is moved into the message
    /// (its strings, arrays and objects are kept, not copied); a shared one is copied.
    fn decode(value: Candidate<'_>) -> Result<Self, Vec<Violations>>;

    /// Parses a text frame as JSON and decodes it: what the socket loop does with every text
    /// frame, and the client with every frame it receives.
    fn from_text(text: &str) -> Result<Self, FrameError> {
        let value = socket::parse_json(text)?;
        Self::decode(Candidate::Owned(value)).map_err(FrameError::Contract)
    }

    /// [`Decode::from_text`] for a frame as the socket read it. A message that is any JSON,
    /// kept as text ([`crate::Json`]), overrides it to keep the frame's bytes.
    fn from_frame(text: Utf8Bytes) -> Result<Self, FrameError> {
        Self::from_text(text.as_str())
    }
}

/// A JSON value on its way to a message: owned when the message may keep it (a frame just
/// parsed), shared when the caller still needs it (an outgoing message being checked, or a
/// frame that another channel at the same address may still be given).
#[derive(Debug)]
pub enum Candidate<'a> {
    /// The value is the decoder's to keep.
    Owned(Value),
    /// The value stays the caller's; a decoder copies what it keeps.
    Shared(&'a Value),
}

impl Candidate<'_> {
    /// The value, to check against a schema.
    pub fn value(&self) -> &Value {
        match self {
            Candidate::Owned(value) => value,
            Candidate::Shared(value) => value,
        }
    }

    /// The same value, lent: for a try that may fail and leave it to the next.
    pub fn share(&self) -> Candidate<'_> {
        Candidate::Shared(self.value())
    }

    /// The value as the message type `T`: an owned value's strings and arrays are moved into
    /// it, a shared one's copied.
    pub fn deserialize<T: serde::de::DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        match self {
            Candidate::Owned(value) => T::deserialize(value),
            Candidate::Shared(value) => T::deserialize(value),
        }
    }

    /// The value itself (copied when shared): for a payload kept as JSON, a schemaless
    /// message's or a type that wraps any JSON value, which needs no deserialising at all.
    pub fn into_value(self) -> Value {
        match self {
            Candidate::Owned(value) => value,
            Candidate::Shared(value) => value.clone(),
        }
    }
}

/// How one message of an enum is decoded: the schema that tells it (none for a message whose
/// payload may be any JSON), and how a value it accepts becomes the enum's variant.
pub struct Decoder<T> {
    schema: Option<&'static Validator>,
    build: fn(Candidate<'_>) -> Result<T, serde_json::Error>,
}

impl<T> Decoder<T> {
    /// A message whose payload `schema` checks, built by `build` once it passed.
    pub const fn checked(
        schema: &'static Validator,
        build: fn(Candidate<'_>) -> Result<T, serde_json::Error>,
    ) -> Decoder<T> {
        Decoder {
            schema: Some(schema),
            build,
        }
    }

    /// A message without a payload schema: any JSON value is one.
    pub const fn any(build: fn(Candidate<'_>) -> Result<T, serde_json::Error>) -> Decoder<T> {
        Decoder {
            schema: None,
            build,
        }
    }

    fn check(&self, value: &Value) -> Result<(), Violations> {
        self.schema.map_or(Ok(()), |schema| schema.check(value))
    }

    /// Builds the message from a value its schema accepted. typify's types may be stricter
    /// than the schema, so a value the type refuses is a violation of the schema's message too.
    fn build(&self, value: Candidate<'_>) -> Result<T, Violations> {
        (self.build)(value).map_err(|error| {
            let name = self.schema.map_or("payload", |schema| schema.name());
            Violations::single(name, error.to_string())
        })
    }
}

/// The first of `decoders` that accepts `value`, or every one's violations: for messages that
/// share no discriminator, each schema is tried in turn, in the contract's order. The schemas
/// are checked on the value as it is; only the message it turns out to be takes it, moved when
/// it is the last to try and the value is owned (a single-message channel's every frame), and
/// copied otherwise, so that the next message can still be tried if the type refuses it.
pub fn first_match<T>(value: Candidate<'_>, decoders: &[Decoder<T>]) -> Result<T, Vec<Violations>> {
    // Allocated on the first refusal only: most frames are the first decoder's message.
    let mut violations = Vec::new();
    let last = decoders.len().saturating_sub(1);
    for (index, decoder) in decoders.iter().enumerate() {
        if let Err(found) = decoder.check(value.value()) {
            violations.push(found);
            continue;
        }
        if index == last {
            return decoder.build(value).map_err(|found| {
                violations.push(found);
                violations
            });
        }
        match decoder.build(value.share()) {
            Ok(message) => return Ok(message),
            Err(found) => violations.push(found),
        }
    }
    Err(violations)
}

/// The decoder named by the string constant at `property` (a discriminator every message of
/// the enum carries, with a different value in each): a direct match instead of a trial of each
/// schema, which takes the value as it is. A value without one of `decoders`' names is a
/// violation of `label`.
pub fn by_discriminator<T>(
    value: Candidate<'_>,
    label: &'static str,
    property: &str,
    decoders: &[(&str, Decoder<T>)],
) -> Result<T, Vec<Violations>> {
    let name = value.value().get(property).and_then(Value::as_str);
    match decoders.iter().find(|(known, _)| Some(*known) == name) {
        Some((_, decoder)) => decoder
            .check(value.value())
            .and_then(|()| decoder.build(value))
            .map_err(|violations| vec![violations]),
        None => {
            let names: Vec<String> = decoders
                .iter()
                .map(|(name, _)| format!("`{name}`"))
                .collect();
            Err(vec![Violations::single(
                label,
                format!("`{property}` must be one of {}", names.join(", ")),
            )])
        }
    }
}

/// One served address: where it is, and how a handshake becomes the socket's handler. The
/// generated code implements it once per address, over the application that implements the
/// address's channel traits.
pub trait Endpoint: Send + Sync + 'static {
    /// The connection's handler: the application and each channel's per-connection state.
    type Socket: SocketHandler;

    /// The address a request path must match exactly; anything else is a 404.
    fn address(&self) -> &'static Template;

    /// Runs the `on_connect` hook of each channel at the address, in the contract's order:
    /// the socket's handler, or how the first channel that refused wants to refuse.
    fn connect(
        &self,
        handshake: &Handshake,
    ) -> impl Future<Output = Result<Self::Socket, Reject>> + Send;
}

/// Answers one handshake request for `endpoint`: 404 when the path is not its address, the
/// channels' refusal if one refuses, and otherwise the upgraded connection, run until it ends.
pub async fn serve<E: Endpoint>(endpoint: &E, config: Arc<Config>, request: Request) -> Response {
    let Some(handshake) = Handshake::from_address(&request, endpoint.address()) else {
        let not_found = Reject::Http {
            status: 404,
            body: "Not Found".to_owned(),
        };
        return socket::refuse(&request, config, not_found).await;
    };
    match endpoint.connect(&handshake).await {
        Ok(handler) => socket::upgrade(&request, config, handler).await,
        Err(reject) => socket::refuse(&request, config, reject).await,
    }
}

/// `endpoint` as a poem `GET` endpoint, to mount with `Route::at` at the address's route.
pub fn endpoint<E: Endpoint>(endpoint: E, config: Arc<Config>) -> RouteMethod {
    let endpoint = Arc::new(endpoint);
    poem::get(poem::endpoint::make(move |request| {
        let (endpoint, config) = (endpoint.clone(), config.clone());
        async move { serve(&*endpoint, config, request).await }
    }))
}

/// A receive operation's reply, serialised. It goes back to the socket loop that read the
/// request, which writes it straight to the socket when nothing is queued ahead of it (the
/// queue is for frames from elsewhere), and queues it behind them otherwise.
pub struct Reply(pub(crate) Utf8Bytes);

/// The reply a receive operation returned (a message of the contract, the operation's reply
/// enum when it may be one of several, or any JSON when it has no schema), for the socket loop
/// to send; or, on the handler's error, the close it asked for and nothing to send. A reply
/// that breaks the contract is a server bug: it is logged, and the client is told only 1011.
pub fn reply<T: Outgoing>(
    connection: &Connection,
    outcome: Result<T, ChannelError>,
) -> Option<Reply> {
    match outcome.map(|reply| Frame::new(&reply)) {
        Ok(Ok(frame)) => Some(Reply(frame.into_text())),
        Ok(Err(error)) => {
            tracing::error!(%error, "reply does not match the contract");
            connection.close(1011, "Internal server error.");
            None
        }
        Err(error) => {
            connection.close(error.code, error.reason);
            None
        }
    }
}

/// A request's correlation id (the contract's `correlationId`), to be found again in its reply.
///
/// Like the contract check of [`Frame::new`], this is a debug-build check (and so one the
/// tests make): a reply that does not carry its request's id is a server bug, which no client
/// can recover from, and release builds do not pay for serialising twice.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    /// Where the id is in the reply's payload (a JSON pointer).
    reply_pointer: &'static str,
    /// The id the request carried.
    value: Value,
}

impl Correlation {
    /// The id at `request_pointer` in `request`, expected at `reply_pointer` in the reply; `None`
    /// in release builds, or when the request has no value there (its schema then allowed that).
    pub fn of<T: serde::Serialize>(
        request: &T,
        request_pointer: &str,
        reply_pointer: &'static str,
    ) -> Option<Correlation> {
        if !cfg!(debug_assertions) {
            return None;
        }
        let value = serde_json::to_value(request).ok()?;
        Some(Correlation {
            reply_pointer,
            value: value.pointer(request_pointer)?.clone(),
        })
    }

    /// Whether `reply` carries the id where the contract says.
    fn is_in<T: serde::Serialize>(&self, reply: &T) -> bool {
        serde_json::to_value(reply)
            .ok()
            .is_some_and(|value| value.pointer(self.reply_pointer) == Some(&self.value))
    }
}

/// [`reply`] for an operation whose request and reply declare a correlation id: a reply without
/// the request's id is refused like one that breaks the contract (logged, 1011), so the server
/// cannot send what its clients would never match to their request.
pub fn reply_correlated<T: Outgoing>(
    connection: &Connection,
    outcome: Result<T, ChannelError>,
    correlation: Option<Correlation>,
) -> Option<Reply> {
    if let (Ok(answer), Some(correlation)) = (&outcome, &correlation)
        && !correlation.is_in(answer)
    {
        tracing::error!(
            expected = %correlation.value,
            at = correlation.reply_pointer,
            "reply does not carry its request's correlation id"
        );
        connection.close(1011, "Internal server error.");
        return None;
    }
    reply(connection, outcome)
}

/// What a receive operation without a reply returned: nothing to send, a close on error.
pub fn handled(connection: &Connection, outcome: Result<(), ChannelError>) -> Option<Reply> {
    if let Err(error) = outcome {
        connection.close(error.code, error.reason);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static NUMBER: crate::Validator = crate::Validator::new(
        "Number",
        r#"{"type":"object","required":["kind","n"],"properties":{"kind":{"const":"number"},"n":{"type":"integer"}}}"#,
    );
    static TEXT: crate::Validator = crate::Validator::new(
        "Text",
        r#"{"type":"object","required":["kind","text"],"properties":{"kind":{"const":"text"},"text":{"type":"string"}}}"#,
    );

    #[derive(Debug, PartialEq)]
    enum Message {
        Number(Value),
        Text(Value),
    }

    const NUMBER_MESSAGE: Decoder<Message> =
        Decoder::checked(&NUMBER, |value| Ok(Message::Number(value.into_value())));
    const TEXT_MESSAGE: Decoder<Message> =
        Decoder::checked(&TEXT, |value| Ok(Message::Text(value.into_value())));

    // Correlation ids are checked in debug builds only (`Correlation::of` is `None` in release).
    #[test]
    #[cfg(debug_assertions)]
    fn a_reply_without_its_requests_correlation_id_is_not_sent() {
        let request = json!({"method": "ping", "req_id": 7});
        let correlation = Correlation::of(&request, "/req_id", "/req_id");
        assert!(
            correlation.is_some(),
            "debug builds (the tests) check correlation ids"
        );

        let right = Connection::new(4);
        let sent = reply_correlated(
            &right,
            Ok(json!({"type": "pong", "req_id": 7})),
            correlation.clone(),
        );
        assert_eq!(
            sent.as_ref().map(|reply| reply.0.as_str()),
            Some(r#"{"type":"pong","req_id":7}"#)
        );
        assert!(right.take_close_request().is_none());

        for wrong in [
            json!({"type": "pong", "req_id": 8}),
            json!({"type": "pong"}),
        ] {
            let connection = Connection::new(4);
            let sent = reply_correlated(&connection, Ok(wrong), correlation.clone());
            assert!(sent.is_none(), "nothing is sent");
            assert!(connection.queue().pop().is_none(), "nothing is queued");
            assert_eq!(
                connection.take_close_request().map(|(code, _)| code),
                Some(1011)
            );
        }
    }

    #[test]
    fn the_first_schema_that_matches_wins_and_otherwise_every_violation_is_kept() {
        let decoders = [NUMBER_MESSAGE, TEXT_MESSAGE];
        let frame = json!({"kind": "text", "text": "hi"});
        assert_eq!(
            first_match(Candidate::Shared(&frame), &decoders),
            Ok(Message::Text(frame.clone()))
        );
        assert_eq!(
            first_match(Candidate::Owned(frame.clone()), &decoders),
            Ok(Message::Text(frame))
        );
        let neither =
            first_match(Candidate::Owned(json!({"kind": "text"})), &decoders).unwrap_err();
        let schemas: Vec<&str> = neither.iter().map(|found| found.schema).collect();
        assert_eq!(schemas, ["Number", "Text"]);
    }

    /// A type stricter than its schema: the schema of `Lenient` takes any object, its type
    /// only objects with a string `text`.
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Strict {
        text: String,
    }

    static LENIENT: crate::Validator = crate::Validator::new("Lenient", r#"{"type":"object"}"#);

    #[derive(Debug, PartialEq)]
    enum Either {
        Strict(Strict),
        Any(Value),
    }

    #[test]
    fn a_value_the_first_type_refuses_is_still_tried_as_the_next_message() {
        let decoders = [
            Decoder::checked(&LENIENT, |value| value.deserialize().map(Either::Strict)),
            Decoder::any(|value| Ok(Either::Any(value.into_value()))),
        ];
        let frame = json!({"text": 1});
        assert_eq!(
            first_match(Candidate::Owned(frame.clone()), &decoders),
            Ok(Either::Any(frame))
        );
        assert_eq!(
            first_match(Candidate::Owned(json!({"text": "hi"})), &decoders),
            Ok(Either::Strict(Strict {
                text: "hi".to_owned()
            }))
        );
        // The last one to try takes the value, and its type's refusal is reported with the rest.
        let refused =
            first_match(Candidate::Owned(json!({"text": 1})), &decoders[..1]).unwrap_err();
        assert_eq!(refused[0].schema, "Lenient");
    }

    #[test]
    fn a_discriminator_picks_one_schema_and_names_the_values_it_takes() {
        let decoders = [("number", NUMBER_MESSAGE), ("text", TEXT_MESSAGE)];
        let wrong = by_discriminator(
            Candidate::Owned(json!({"kind": "text", "text": 1})),
            "Message",
            "kind",
            &decoders,
        )
        .unwrap_err();
        assert_eq!(wrong.len(), 1);
        assert_eq!(wrong[0].schema, "Text");
        let unknown = by_discriminator(
            Candidate::Owned(json!({"kind": "other"})),
            "Message",
            "kind",
            &decoders,
        )
        .unwrap_err();
        assert_eq!(
            unknown[0].to_string(),
            "Message: `kind` must be one of `number`, `text`"
        );
    }
}
