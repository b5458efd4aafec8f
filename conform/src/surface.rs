//! The contract as a WebSocket peer meets it: one [`Endpoint`] per address, with what its
//! handshake carries (path and query parameters, headers, where a token goes), what the server
//! receives (and may answer) and every message it may send there.
//!
//! Several channels may share one address (the Kraken document puts seven on `/`): on the wire
//! they are one connection, so they are one endpoint here, and a frame is judged against the
//! messages of all of them.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use wfs_codegen::Contract;
use wfs_codegen::model::{Action, MessageId};

use crate::schema::{Problem, Schema};

/// A message of the contract, ready to check frames against.
#[derive(Debug)]
pub(crate) struct MessageSpec {
    pub key: String,
    /// `None` when the message has no payload schema: any JSON value matches.
    pub schema: Option<Schema>,
    /// The document's example payloads that match the schema.
    pub examples: Vec<Value>,
    /// Examples that do not match their own schema, with why (reported, never sent).
    pub bad_examples: Vec<(String, Vec<Problem>)>,
    /// JSON pointer into the payload of the correlation id (`$message.payload#/req_id`).
    pub correlation: Option<String>,
    /// Why the payload schema could not be compiled: the message is then checked as any JSON,
    /// and the report says so instead of passing it silently.
    pub schema_error: Option<String>,
}

impl MessageSpec {
    pub fn accepts(&self, value: &Value) -> bool {
        self.schema
            .as_ref()
            .is_none_or(|schema| schema.accepts(value))
    }

    pub fn problems(&self, value: &Value) -> Vec<Problem> {
        self.schema
            .as_ref()
            .map(|schema| schema.problems(value))
            .unwrap_or_default()
    }

    /// Payloads to send or push: the valid examples, else instances made from the schema.
    pub fn samples(&self) -> Vec<Value> {
        if !self.examples.is_empty() {
            return self.examples.clone();
        }
        match &self.schema {
            Some(schema) => schema.instances().into_iter().take(1).collect(),
            None => vec![json!({})],
        }
    }
}

/// A message the server receives, from one `receive` operation.
#[derive(Debug)]
pub(crate) struct Inbound {
    pub operation: String,
    pub message: Arc<MessageSpec>,
    /// Indexes into [`Endpoint::outbound`] of the reply's messages; empty without a reply.
    pub reply: Vec<usize>,
}

/// A message the server may send: of a `send` operation, or the reply of a `receive` one.
#[derive(Debug)]
pub(crate) struct Outbound {
    /// The operation key; `receivePing (reply)` for replies.
    pub operation: String,
    /// Whether a `send` operation (pushed, not only answered).
    pub pushed: bool,
    pub message: Arc<MessageSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Path,
    Query,
    Header,
}

/// A handshake parameter: a `{name}` of the address, a query parameter or a header of the ws
/// binding.
#[derive(Debug)]
pub(crate) struct ParamSpec {
    pub name: String,
    pub place: Place,
    pub required: bool,
    /// The parameter's schema (flattened), for making values.
    pub schema: Value,
    pub compiled: Option<Schema>,
    /// Why the schema could not be compiled (the parameter is then not checked; reported).
    pub schema_error: Option<String>,
    /// A value the document suggests: an example, the default, the first enum value.
    pub hint: Option<String>,
}

impl ParamSpec {
    /// Whether `text`, read as the schema's type says, matches the schema.
    pub fn accepts(&self, text: &str) -> bool {
        self.compiled
            .as_ref()
            .is_none_or(|schema| schema.accepts(&typed(&self.schema, text)))
    }
}

/// Reads handshake text as the type the schema names (query strings carry only text).
pub(crate) fn typed(schema: &Value, text: &str) -> Value {
    let kinds: Vec<&str> = match schema.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    for kind in kinds {
        match kind {
            "integer" => {
                if let Ok(number) = text.parse::<i64>() {
                    return json!(number);
                }
            }
            "number" => {
                if let Some(number) = text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    return Value::Number(number);
                }
            }
            "boolean" => match text {
                "true" => return json!(true),
                "false" => return json!(false),
                _ => {}
            },
            _ => {}
        }
    }
    Value::String(text.to_owned())
}

/// Where a token goes, as the contract's security scheme says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenPlace {
    Query(String),
    Header { name: String, prefix: String },
}

/// One address and everything a connection to it may carry.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// The address as written (`/v1/marketdata/{symbol}`).
    pub address: String,
    /// The channel keys sharing it, joined (`alert`, or `ping, pong, heartbeat`).
    pub name: String,
    pub params: Vec<ParamSpec>,
    pub token: Option<TokenPlace>,
    pub inbound: Vec<Inbound>,
    pub outbound: Vec<Outbound>,
}

impl Endpoint {
    /// The indexes of the outbound messages `value` matches.
    pub fn classify(&self, value: &Value) -> Vec<usize> {
        (0..self.outbound.len())
            .filter(|&index| self.outbound[index].message.accepts(value))
            .collect()
    }

    /// Why `value` matches no outbound message: the problems of the closest one (fewest).
    pub fn why_undeclared(&self, value: &Value) -> String {
        let closest = self
            .outbound
            .iter()
            .map(|outbound| (outbound, outbound.message.problems(value)))
            .min_by_key(|(_, problems)| problems.len());
        match closest {
            None => "the contract declares no message the server sends here".to_owned(),
            Some((outbound, problems)) => {
                let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
                format!(
                    "matches none of the {} declared message(s); closest `{}` ({}): {}",
                    self.outbound.len(),
                    outbound.message.key,
                    outbound.operation,
                    listed.join("; ")
                )
            }
        }
    }
}

/// The `{name}` parameters of an address, in order.
pub(crate) fn path_names(address: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = address;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        names.push(&rest[start + 1..start + end]);
        rest = &rest[start + end + 1..];
    }
    names
}

/// Every endpoint of the contract, and the channels left out with why.
#[derive(Debug)]
pub(crate) struct Surface {
    pub endpoints: Vec<Endpoint>,
    pub skipped: Vec<String>,
}

impl Surface {
    pub fn of(contract: &Contract) -> Surface {
        let mut messages: HashMap<MessageId, Arc<MessageSpec>> = HashMap::new();
        let mut message = |id: MessageId| -> Arc<MessageSpec> {
            messages
                .entry(id)
                .or_insert_with(|| Arc::new(message_spec(contract, id)))
                .clone()
        };
        let mut skipped = Vec::new();
        let mut order: Vec<String> = Vec::new();
        let mut grouped: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, channel) in contract.channels.iter().enumerate() {
            match reachable(contract, index) {
                Ok(address) => {
                    if !grouped.contains_key(&address) {
                        order.push(address.clone());
                    }
                    grouped.entry(address).or_default().push(index);
                }
                Err(why) => skipped.push(format!("channel `{}`: {why}", channel.key)),
            }
        }
        let mut endpoints = Vec::new();
        for address in order {
            let channels = &grouped[&address];
            let name = channels
                .iter()
                .map(|&index| contract.channels[index].key.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let mut outbound: Vec<Outbound> = Vec::new();
            let mut inbound = Vec::new();
            for operation in contract
                .operations
                .iter()
                .filter(|operation| channels.contains(&operation.channel))
            {
                match operation.action {
                    Action::Send => {
                        for &id in &operation.messages {
                            outbound.push(Outbound {
                                operation: operation.key.clone(),
                                pushed: true,
                                message: message(id),
                            });
                        }
                    }
                    Action::Receive => {
                        let mut reply = Vec::new();
                        if let Some(spec) = &operation.reply {
                            for &id in &spec.messages {
                                reply.push(outbound.len());
                                outbound.push(Outbound {
                                    operation: format!("{} (reply)", operation.key),
                                    pushed: false,
                                    message: message(id),
                                });
                            }
                        }
                        for &id in &operation.messages {
                            inbound.push(Inbound {
                                operation: operation.key.clone(),
                                message: message(id),
                                reply: reply.clone(),
                            });
                        }
                    }
                }
            }
            let params = params(contract, channels, &address);
            for param in &params {
                if let Some(why) = &param.schema_error {
                    skipped.push(format!(
                        "parameter `{}` of {name}: its schema does not compile, so its values are not checked: {why}",
                        param.name
                    ));
                }
            }
            let token = token_place(contract, channels);
            endpoints.push(Endpoint {
                address,
                name,
                params,
                token,
                inbound,
                outbound,
            });
        }
        let mut broken: Vec<String> = messages
            .values()
            .filter_map(|spec| {
                let why = spec.schema_error.as_ref()?;
                Some(format!(
                    "message `{}`: its payload schema does not compile, so it is checked as any JSON: {why}",
                    spec.key
                ))
            })
            .collect();
        broken.sort();
        skipped.extend(broken);
        Surface { endpoints, skipped }
    }
}

/// The channel's address when a WebSocket client can reach it: a path (`/...`), on a ws, wss,
/// http or https server, or in a document that names no server.
fn reachable(contract: &Contract, index: usize) -> Result<String, String> {
    let channel = &contract.channels[index];
    let Some(address) = &channel.address else {
        return Err("no address".to_owned());
    };
    if !address.starts_with('/') {
        return Err(format!("address `{address}` is not a URL path"));
    }
    let servers: Vec<_> = contract
        .servers
        .iter()
        .filter(|server| channel.servers.is_empty() || channel.servers.contains(&server.key))
        .collect();
    let web = |protocol: &str| {
        matches!(
            protocol.to_ascii_lowercase().as_str(),
            "ws" | "wss" | "http" | "https"
        )
    };
    if servers.is_empty() || channel.ws.is_some() || servers.iter().any(|s| web(&s.protocol)) {
        Ok(address.clone())
    } else {
        let protocols: Vec<&str> = servers.iter().map(|s| s.protocol.as_str()).collect();
        Err(format!(
            "only on {} server(s), not WebSocket",
            protocols.join(", ")
        ))
    }
}

fn message_spec(contract: &Contract, id: MessageId) -> MessageSpec {
    let message = &contract.messages[id];
    let (schema, schema_error) = match message
        .payload
        .map(|payload| Schema::compile(contract.bundled_schema(payload)))
    {
        Some(Ok(schema)) => (Some(schema), None),
        Some(Err(why)) => (None, Some(why)),
        None => (None, None),
    };
    let mut examples = Vec::new();
    let mut bad_examples = Vec::new();
    for (index, example) in message.examples.iter().enumerate() {
        let Some(payload) = &example.payload else {
            continue;
        };
        let problems = schema
            .as_ref()
            .map(|schema| schema.problems(payload))
            .unwrap_or_default();
        if problems.is_empty() {
            examples.push(payload.clone());
        } else {
            let name = example.name.clone().unwrap_or_else(|| format!("#{index}"));
            bad_examples.push((name, problems));
        }
    }
    let correlation = message
        .correlation_id
        .as_ref()
        .and_then(|id| id.get("location"))
        .and_then(Value::as_str)
        .and_then(|location| location.strip_prefix("$message.payload#"))
        .map(str::to_owned);
    MessageSpec {
        key: message.key.clone(),
        schema,
        examples,
        bad_examples,
        correlation,
        schema_error,
    }
}

fn params(contract: &Contract, channels: &[usize], address: &str) -> Vec<ParamSpec> {
    let mut out: Vec<ParamSpec> = Vec::new();
    for name in path_names(address) {
        let name = name.to_owned();
        let declared = channels
            .iter()
            .flat_map(|&index| &contract.channels[index].parameters)
            .find(|parameter| parameter.name == name);
        let mut schema = declared
            .and_then(|parameter| parameter.schema.clone())
            .unwrap_or_else(|| json!({"type": "string"}));
        if let Some(parameter) = declared
            && !parameter.enum_values.is_empty()
            && let Value::Object(map) = &mut schema
        {
            map.entry("enum")
                .or_insert_with(|| json!(parameter.enum_values));
        }
        let hint = declared.and_then(|parameter| {
            parameter
                .examples
                .first()
                .or(parameter.default.as_ref())
                .or(parameter.enum_values.first())
                .cloned()
        });
        out.push(param_spec(name, Place::Path, true, schema, hint));
    }
    for &index in channels {
        let Some(ws) = &contract.channels[index].ws else {
            continue;
        };
        for (part, place) in [(&ws.query, Place::Query), (&ws.headers, Place::Header)] {
            let Some(object) = part else {
                continue;
            };
            let required: Vec<&str> = object
                .get("required")
                .and_then(Value::as_array)
                .map(|names| names.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let Some(Value::Object(properties)) = object.get("properties") else {
                continue;
            };
            for (name, schema) in properties {
                if out.iter().any(|p| p.name == *name && p.place == place) {
                    continue;
                }
                let hint = hint_of(schema);
                out.push(param_spec(
                    name.clone(),
                    place,
                    required.contains(&name.as_str()),
                    schema.clone(),
                    hint,
                ));
            }
        }
    }
    out
}

fn param_spec(
    name: String,
    place: Place,
    required: bool,
    schema: Value,
    hint: Option<String>,
) -> ParamSpec {
    let (compiled, schema_error) = match Schema::compile(schema.clone()) {
        Ok(compiled) => (Some(compiled), None),
        Err(why) => (None, Some(why)),
    };
    ParamSpec {
        name,
        place,
        required,
        schema,
        compiled,
        schema_error,
        hint,
    }
}

/// The text of a schema's first example, default or enum value.
fn hint_of(schema: &Value) -> Option<String> {
    let value = schema
        .get("examples")
        .and_then(Value::as_array)
        .and_then(|examples| examples.first())
        .or_else(|| schema.get("example"))
        .or_else(|| schema.get("default"))
        .or_else(|| {
            schema
                .get("enum")
                .and_then(Value::as_array)
                .and_then(|values| values.first())
        })?;
    Some(text_of(value))
}

/// A JSON value as handshake text (strings unquoted).
pub(crate) fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Where the contract says a token goes: the first `httpApiKey` (query or header) or `http`
/// bearer scheme named by the channels' operations or by the servers.
fn token_place(contract: &Contract, channels: &[usize]) -> Option<TokenPlace> {
    let mut keys: Vec<&str> = contract
        .operations
        .iter()
        .filter(|operation| channels.contains(&operation.channel))
        .flat_map(|operation| operation.security.iter().map(String::as_str))
        .collect();
    keys.extend(
        contract
            .servers
            .iter()
            .flat_map(|server| server.security.iter().map(String::as_str)),
    );
    keys.iter().find_map(|key| {
        let scheme = contract.security_schemes.iter().find(|s| s.key == *key)?;
        match (scheme.kind.as_str(), scheme.location.as_deref()) {
            ("httpApiKey", Some("query")) => Some(TokenPlace::Query(scheme.name.clone()?)),
            ("httpApiKey", Some("header")) => Some(TokenPlace::Header {
                name: scheme.name.clone()?,
                prefix: String::new(),
            }),
            ("http", _) => Some(TokenPlace::Header {
                name: "Authorization".to_owned(),
                prefix: match scheme.scheme.as_deref() {
                    Some(name) if name.eq_ignore_ascii_case("basic") => "Basic ".to_owned(),
                    _ => "Bearer ".to_owned(),
                },
            }),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_schema_that_does_not_compile_is_reported_not_passed_silently() {
        let document = r#"asyncapi: 3.0.0
info: {title: Broken, version: 1.0.0}
channels:
  feed:
    address: /feed
    messages:
      tick:
        payload: {type: object, properties: {n: {type: integer, minimum: ten}}}
operations:
  sendTick:
    action: send
    channel: {$ref: '#/channels/feed'}
"#;
        let contract = Contract::from_text("broken.yaml", document).expect("the document loads");
        let surface = Surface::of(&contract);
        assert!(
            surface
                .skipped
                .iter()
                .any(|note| note.contains("message `tick`") && note.contains("does not compile")),
            "{:?}",
            surface.skipped
        );
    }
}
