//! The AsyncAPI 2.0 to 2.6 front end: normalises a 2.x document into the 3.x-shaped model.
//!
//! In 2.x a channel is keyed by its address and carries `publish` and `subscribe` operations
//! described from the client's side: `publish` lists what the application *receives*, and
//! `subscribe` what it *sends*. Here they become `receive` and `send` operations, as the official
//! 2-to-3 converter does.

use heck::ToLowerCamelCase;
use serde_json::{Map, Value};

use super::files::{Loc, pointer_tokens};
use super::v3::{check_address_parameters, server_variables, string_list};
use super::{Action, Builder, Channel, MessageId, Operation, Parameter, RootParts, Server};

pub(super) fn build(b: &mut Builder) -> Option<RootParts> {
    let root = b.sources.root();
    let (_, map) = b.object(&root, "the document")?;
    let components = map
        .contains_key("components")
        .then(|| root.child("components"));
    b.component_schemas(components.as_ref());
    let security_schemes = b.security_schemes_component(components.as_ref());
    let scheme_keys: Vec<String> = security_schemes.iter().map(|s| s.key.clone()).collect();

    let servers = servers(b, &root, &map, &scheme_keys);
    let mut channels = Vec::new();
    let mut operations = Vec::new();
    if let Some(Value::Object(listed)) = map.get("channels") {
        let channels_loc = root.child("channels");
        for address in listed.keys() {
            let channel_loc = channels_loc.child(address);
            let Some((target, channel)) = b.object(&channel_loc, "a channel") else {
                continue;
            };
            let channel_id = channels.len();
            let key = channel_key(address);
            let mut messages: Vec<(String, MessageId)> = Vec::new();
            for (field, action) in [("publish", Action::Receive), ("subscribe", Action::Send)] {
                if !channel.contains_key(field) {
                    continue;
                }
                let Some((operation_loc, own)) = b.object(&target.child(field), "an operation")
                else {
                    continue;
                };
                // Fields may come from a trait: each is read (and reported) where it was written.
                let (operation, owners) = b.apply_traits(&operation_loc, own, true);
                let field_owner = |key: &str| {
                    owners
                        .get(key)
                        .cloned()
                        .unwrap_or_else(|| operation_loc.clone())
                };
                let operation_key = b
                    .string(&operation_loc, &operation, "operationId")
                    .unwrap_or_else(|| {
                        let verb = if action == Action::Receive {
                            "receive"
                        } else {
                            "send"
                        };
                        format!("{verb}{}", super::heck_pascal(&key))
                    });
                let operation_messages =
                    operation_messages(b, &field_owner("message"), &operation, &operation_key);
                for (message_key, id) in &operation_messages {
                    if !messages.iter().any(|(_, existing)| existing == id) {
                        messages.push((message_key.clone(), *id));
                    }
                }
                let security =
                    requirement_keys(b, &field_owner("security"), &operation, &scheme_keys);
                operations.push(Operation {
                    key: operation_key,
                    action,
                    channel: channel_id,
                    messages: operation_messages.iter().map(|(_, id)| *id).collect(),
                    reply: None,
                    title: None,
                    summary: b.string(&operation_loc, &operation, "summary"),
                    description: b.string(&operation_loc, &operation, "description"),
                    security,
                    tags: b.tags(&field_owner("tags"), &operation),
                    bindings: operation
                        .get("bindings")
                        .and_then(|_| b.resolved(&field_owner("bindings").child("bindings"))),
                    external_docs: b.external_docs(&field_owner("externalDocs"), &operation),
                    origin: b.origin(&operation_loc),
                });
            }
            let parameters = parameters(b, &target, &channel, address);
            let ws = b.ws_binding(&target, &channel);
            channels.push(Channel {
                key,
                address: Some(address.clone()),
                title: None,
                summary: None,
                description: b.string(&target, &channel, "description"),
                parameters,
                messages,
                servers: string_list(&channel, "servers"),
                ws,
                bindings: channel
                    .get("bindings")
                    .and_then(|_| b.resolved(&target.child("bindings"))),
                tags: Vec::new(),
                external_docs: None,
                origin: b.origin(&target),
            });
        }
    }
    b.component_messages(components.as_ref(), true);
    Some(RootParts {
        id: b.string(&root, &map, "id"),
        info: b.info(&root, &map),
        default_content_type: b.string(&root, &map, "defaultContentType"),
        servers,
        channels,
        operations,
        security_schemes,
    })
}

/// A channel key from a 2.x address: `smartylighting/streetlights/{id}/dim` -> `smartylightingStreetlightsIdDim`.
fn channel_key(address: &str) -> String {
    let cleaned: String = address
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    let key = cleaned.to_lower_camel_case();
    if key.is_empty() {
        "root".to_owned()
    } else {
        key
    }
}

/// The messages of a 2.x operation: one `message`, or `message.oneOf`.
fn operation_messages(
    b: &mut Builder,
    loc: &Loc,
    operation: &Map<String, Value>,
    operation_key: &str,
) -> Vec<(String, MessageId)> {
    if !operation.contains_key("message") {
        return Vec::new();
    }
    let message_loc = loc.child("message");
    let Some(target) = b.sources.deref(&message_loc) else {
        return Vec::new();
    };
    let one_of = match b.sources.get(&target) {
        Some(Value::Object(map)) => match map.get("oneOf") {
            Some(Value::Array(items)) => Some(items.len()),
            _ => None,
        },
        _ => None,
    };
    let entries: Vec<Loc> = match one_of {
        Some(count) => (0..count)
            .map(|index| target.child("oneOf").index(index))
            .collect(),
        None => vec![message_loc],
    };
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let key = message_key(b, entry, operation_key, index, entries.len());
        if let Some(id) = b.message(entry, &key, true) {
            out.push((key, id));
        }
    }
    out
}

/// A message's key: its `components/messages` key, `messageId` or `name`, else from the operation.
fn message_key(
    b: &mut Builder,
    loc: &Loc,
    operation_key: &str,
    index: usize,
    count: usize,
) -> String {
    if let Some(target) = b.sources.deref(loc) {
        let tokens: Vec<String> = pointer_tokens(&target.pointer).collect();
        if tokens.len() == 3 && tokens[0] == "components" && tokens[1] == "messages" {
            return tokens[2].clone();
        }
        if let Some(Value::Object(map)) = b.sources.get(&target) {
            for field in ["messageId", "name"] {
                if let Some(Value::String(name)) = map.get(field) {
                    return name.clone();
                }
            }
        }
    }
    if count == 1 {
        format!("{operation_key}Message")
    } else {
        format!("{operation_key}Message{}", index + 1)
    }
}

fn servers(
    b: &mut Builder,
    root: &Loc,
    map: &Map<String, Value>,
    scheme_keys: &[String],
) -> Vec<Server> {
    let Some(Value::Object(servers)) = map.get("servers") else {
        return Vec::new();
    };
    let loc = root.child("servers");
    let mut out = Vec::new();
    for key in servers.keys() {
        let Some((server_loc, server)) = b.object(&loc.child(key), "a server") else {
            continue;
        };
        let url = b.required_string(&server_loc, &server, "url", "a server");
        let without_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(&url);
        let (host, pathname) = match without_scheme.find('/') {
            Some(slash) => (
                without_scheme[..slash].to_owned(),
                Some(without_scheme[slash..].to_owned()),
            ),
            None => (without_scheme.to_owned(), None),
        };
        let variables = server_variables(b, &server_loc, &server);
        out.push(Server {
            key: key.clone(),
            host,
            protocol: b.required_string(&server_loc, &server, "protocol", "a server"),
            protocol_version: b.string(&server_loc, &server, "protocolVersion"),
            pathname,
            title: None,
            summary: None,
            description: b.string(&server_loc, &server, "description"),
            variables,
            security: requirement_keys(b, &server_loc, &server, scheme_keys),
            tags: b.tags(&server_loc, &server),
            bindings: server
                .get("bindings")
                .and_then(|_| b.resolved(&server_loc.child("bindings"))),
            origin: b.origin(&server_loc),
        });
    }
    out
}

/// A 2.x security requirement list (`- apiKey: []`): the scheme names, each checked to exist.
fn requirement_keys(
    b: &mut Builder,
    loc: &Loc,
    map: &Map<String, Value>,
    scheme_keys: &[String],
) -> Vec<String> {
    let Some(Value::Array(items)) = map.get("security") else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Value::Object(requirement) = item else {
            b.sources.error(
                &loc.child("security").index(index),
                "a security requirement must be a mapping",
            );
            continue;
        };
        for name in requirement.keys() {
            if scheme_keys.contains(name) {
                keys.push(name.clone());
            } else {
                b.sources.error(
                    &loc.child("security").index(index).child(name),
                    format!("security requirement `{name}` names no scheme under `components/securitySchemes`"),
                );
            }
        }
    }
    keys
}

fn parameters(
    b: &mut Builder,
    loc: &Loc,
    map: &Map<String, Value>,
    address: &str,
) -> Vec<Parameter> {
    let mut out = Vec::new();
    if let Some(Value::Object(listed)) = map.get("parameters") {
        for name in listed.keys() {
            let parameter_loc = loc.child("parameters").child(name);
            let Some((target, parameter)) = b.object(&parameter_loc, "a parameter") else {
                continue;
            };
            let schema = parameter
                .get("schema")
                .and_then(|_| b.resolved(&target.child("schema")));
            let enum_values = schema
                .as_ref()
                .and_then(Value::as_object)
                .map(|schema| string_list(schema, "enum"))
                .unwrap_or_default();
            let default = schema
                .as_ref()
                .and_then(|schema| schema.get("default"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            out.push(Parameter {
                name: name.clone(),
                description: b.string(&target, &parameter, "description"),
                enum_values,
                default,
                examples: Vec::new(),
                location: b.string(&target, &parameter, "location"),
                schema,
                origin: b.origin(&target),
            });
        }
    }
    check_address_parameters(b, loc, &loc.child("parameters"), address, &mut out);
    out
}
