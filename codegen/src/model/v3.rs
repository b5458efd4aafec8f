//! The AsyncAPI 3.0 / 3.1 front end: reads the document's own shape into the model.

use serde_json::{Map, Value};

use super::files::{Loc, pointer_tokens};
use super::{
    Action, Builder, Channel, ChannelId, MessageId, Operation, Parameter, Reply, RootParts,
    SecurityScheme, Server, ServerVariable, kind_of,
};

pub(super) fn build(b: &mut Builder) -> Option<RootParts> {
    let root = b.sources.root();
    let (_, map) = b.object(&root, "the document")?;
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            "asyncapi"
                | "id"
                | "info"
                | "servers"
                | "defaultContentType"
                | "channels"
                | "operations"
                | "components"
        ) && !key.starts_with("x-")
        {
            b.sources.error(
                &root.child(key),
                format!("unknown top-level field `{key}` in an AsyncAPI 3 document"),
            );
        }
    }
    let components = map
        .contains_key("components")
        .then(|| root.child("components"));
    b.component_schemas(components.as_ref());
    let mut security_schemes = b.security_schemes_component(components.as_ref());
    let mut front = Front {
        security_schemes: &mut security_schemes,
        channel_locs: Vec::new(),
        channel_message_locs: Vec::new(),
        server_locs: Vec::new(),
    };

    let servers = front.servers(b, &root, &map);
    let channels = front.channels(b, &root, &map);
    let operations = front.operations(b, &root, &map);

    b.component_messages(components.as_ref(), false);

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

struct Front<'a> {
    security_schemes: &'a mut Vec<SecurityScheme>,
    /// Where each channel was defined (after references), by channel index.
    channel_locs: Vec<Loc>,
    /// Where each of a channel's messages was defined (after references), by channel index.
    channel_message_locs: Vec<Vec<(Loc, MessageId)>>,
    /// Where each server was defined (after references), with its key.
    server_locs: Vec<(Loc, String)>,
}

impl Front<'_> {
    fn servers(&mut self, b: &mut Builder, root: &Loc, map: &Map<String, Value>) -> Vec<Server> {
        let Some(Value::Object(servers)) = map.get("servers") else {
            return Vec::new();
        };
        let loc = root.child("servers");
        let mut out = Vec::new();
        for key in servers.keys() {
            let Some((server_loc, server)) = b.object(&loc.child(key), "a server") else {
                continue;
            };
            self.server_locs.push((server_loc.clone(), key.clone()));
            let host = b.required_string(&server_loc, &server, "host", "a server");
            let protocol = b.required_string(&server_loc, &server, "protocol", "a server");
            let security = self.security(b, &server_loc, &server, key);
            let variables = server_variables(b, &server_loc, &server);
            out.push(Server {
                key: key.clone(),
                host,
                protocol,
                protocol_version: b.string(&server_loc, &server, "protocolVersion"),
                pathname: b.string(&server_loc, &server, "pathname"),
                title: b.string(&server_loc, &server, "title"),
                summary: b.string(&server_loc, &server, "summary"),
                description: b.string(&server_loc, &server, "description"),
                variables,
                security,
                tags: b.tags(&server_loc, &server),
                bindings: resolved_field(b, &server_loc, &server, "bindings"),
                origin: b.origin(&server_loc),
            });
        }
        out
    }

    /// A `security` list: references to `components/securitySchemes` or inline schemes.
    fn security(
        &mut self,
        b: &mut Builder,
        loc: &Loc,
        map: &Map<String, Value>,
        owner: &str,
    ) -> Vec<String> {
        let Some(Value::Array(items)) = map.get("security") else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        for index in 0..items.len() {
            let item_loc = loc.child("security").index(index);
            let Some(target) = b.sources.deref(&item_loc) else {
                continue;
            };
            let tokens: Vec<String> = pointer_tokens(&target.pointer).collect();
            if target.file == 0
                && tokens.len() == 3
                && tokens[0] == "components"
                && tokens[1] == "securitySchemes"
            {
                keys.push(tokens[2].clone());
                continue;
            }
            if let Some(existing) = self
                .security_schemes
                .iter()
                .find(|scheme| scheme.origin == b.origin(&target))
            {
                keys.push(existing.key.clone());
                continue;
            }
            let key = format!("{owner}Security{}", index + 1);
            if let Some(scheme) = b.security_scheme(&target, &key) {
                self.security_schemes.push(scheme);
                keys.push(key);
            }
        }
        keys
    }

    fn channels(&mut self, b: &mut Builder, root: &Loc, map: &Map<String, Value>) -> Vec<Channel> {
        let Some(Value::Object(channels)) = map.get("channels") else {
            return Vec::new();
        };
        let loc = root.child("channels");
        let mut out = Vec::new();
        for key in channels.keys() {
            let Some((channel_loc, channel)) = b.object(&loc.child(key), "a channel") else {
                continue;
            };
            let address = match channel.get("address") {
                None | Some(Value::Null) => None,
                Some(Value::String(address)) => Some(address.clone()),
                Some(other) => {
                    let kind = kind_of(other);
                    b.sources.error(
                        &channel_loc.child("address"),
                        format!("`address` must be a string or null, found {kind}"),
                    );
                    None
                }
            };
            let parameters = parameters(b, &channel_loc, &channel, address.as_deref());

            let mut messages = Vec::new();
            let mut message_locs = Vec::new();
            if let Some(Value::Object(listed)) = channel.get("messages") {
                let messages_loc = channel_loc.child("messages");
                for message_key in listed.keys() {
                    let message_loc = messages_loc.child(message_key);
                    if let Some(id) = b.message(&message_loc, message_key, false)
                        && let Some(target) = b.sources.deref(&message_loc)
                    {
                        messages.push((message_key.clone(), id));
                        message_locs.push((target, id));
                    }
                }
            }
            let servers = self.server_keys(b, &channel_loc, &channel);
            let ws = b.ws_binding(&channel_loc, &channel);
            self.channel_locs.push(channel_loc.clone());
            self.channel_message_locs.push(message_locs);
            out.push(Channel {
                key: key.clone(),
                address,
                title: b.string(&channel_loc, &channel, "title"),
                summary: b.string(&channel_loc, &channel, "summary"),
                description: b.string(&channel_loc, &channel, "description"),
                parameters,
                messages,
                servers,
                ws,
                bindings: resolved_field(b, &channel_loc, &channel, "bindings"),
                tags: b.tags(&channel_loc, &channel),
                external_docs: b.external_docs(&channel_loc, &channel),
                origin: b.origin(&channel_loc),
            });
        }
        out
    }

    /// The keys of the servers a channel lists. Compared after resolution: `#/servers/x` may
    /// itself be a reference to a server in another file.
    fn server_keys(&self, b: &mut Builder, loc: &Loc, map: &Map<String, Value>) -> Vec<String> {
        let Some(Value::Array(items)) = map.get("servers") else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        for index in 0..items.len() {
            let item_loc = loc.child("servers").index(index);
            if let Some(target) = b.sources.deref(&item_loc) {
                match self
                    .server_locs
                    .iter()
                    .find(|(server, _)| *server == target)
                {
                    Some((_, key)) => keys.push(key.clone()),
                    None => b.sources.error(
                        &item_loc,
                        "a channel's `servers` must reference servers under `servers`",
                    ),
                }
            }
        }
        keys
    }

    fn channel_of(&self, b: &mut Builder, loc: &Loc, what: &str) -> Option<ChannelId> {
        if b.sources.reference_at(loc).is_none() {
            b.sources.error(
                loc,
                format!(
                    "{what} must be a reference to a channel, like `$ref: '#/channels/<name>'`"
                ),
            );
            return None;
        }
        let target = b.sources.deref(loc)?;
        let found = self
            .channel_locs
            .iter()
            .position(|channel| *channel == target);
        if found.is_none() {
            b.sources.error(
                loc,
                format!("{what} must reference a channel defined under `channels`"),
            );
        }
        found
    }

    /// The messages listed at `loc` (references into the channel's messages), or `None` if absent.
    fn listed_messages(
        &self,
        b: &mut Builder,
        loc: &Loc,
        channel: ChannelId,
        owner: &str,
        channel_key: &str,
    ) -> Option<Vec<MessageId>> {
        let Some(Value::Array(items)) = b.sources.get(loc).cloned() else {
            if b.sources.get(loc).is_some() {
                b.sources
                    .error(loc, "`messages` must be a list of references");
            }
            return None;
        };
        let mut ids = Vec::new();
        for index in 0..items.len() {
            let item_loc = loc.index(index);
            let reference = b.sources.reference_at(&item_loc).unwrap_or_default();
            let Some(target) = b.sources.deref(&item_loc) else {
                continue;
            };
            match self.channel_message_locs[channel]
                .iter()
                .find(|(message_loc, _)| *message_loc == target)
            {
                Some((_, id)) => ids.push(*id),
                None => b.sources.error(
                    &item_loc,
                    format!(
                        "{owner} lists message `{reference}`, which its channel `{channel_key}` does not have \
                         (an operation's messages must be messages of its channel)"
                    ),
                ),
            }
        }
        Some(ids)
    }

    fn operations(
        &mut self,
        b: &mut Builder,
        root: &Loc,
        map: &Map<String, Value>,
    ) -> Vec<Operation> {
        let Some(Value::Object(operations)) = map.get("operations") else {
            return Vec::new();
        };
        let loc = root.child("operations");
        let mut out = Vec::new();
        for key in operations.keys() {
            let Some((operation_loc, own)) = b.object(&loc.child(key), "an operation") else {
                continue;
            };
            // Fields may come from a trait: each is read (and reported) where it was written.
            let (operation, owners) = b.apply_traits(&operation_loc, own, false);
            let field_owner = |key: &str| {
                owners
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| operation_loc.clone())
            };
            let action = match operation.get("action").and_then(Value::as_str) {
                Some("send") => Action::Send,
                Some("receive") => Action::Receive,
                Some(other) => {
                    b.sources.error(
                        &operation_loc.child("action"),
                        format!("`action` must be `send` or `receive`, found `{other}`"),
                    );
                    continue;
                }
                None => {
                    b.sources.error(
                        &operation_loc,
                        format!("operation `{key}` is missing its required `action`"),
                    );
                    continue;
                }
            };
            if !operation.contains_key("channel") {
                b.sources.error(
                    &operation_loc,
                    format!("operation `{key}` is missing its required `channel`"),
                );
                continue;
            }
            let Some(channel) = self.channel_of(b, &operation_loc.child("channel"), "`channel`")
            else {
                continue;
            };
            let channel_key = self.channel_key(b, channel);
            let owner = format!("operation `{key}`");
            let messages = self
                .listed_messages(
                    b,
                    &operation_loc.child("messages"),
                    channel,
                    &owner,
                    &channel_key,
                )
                .unwrap_or_else(|| self.all_messages(channel));
            let reply = match operation.get("reply") {
                Some(_) => self.reply(b, &operation_loc.child("reply"), channel, &owner),
                None => None,
            };
            let security = self.security(b, &field_owner("security"), &operation, key);
            out.push(Operation {
                key: key.clone(),
                action,
                channel,
                messages,
                reply,
                title: b.string(&operation_loc, &operation, "title"),
                summary: b.string(&operation_loc, &operation, "summary"),
                description: b.string(&operation_loc, &operation, "description"),
                security,
                tags: b.tags(&field_owner("tags"), &operation),
                bindings: resolved_field(b, &field_owner("bindings"), &operation, "bindings"),
                external_docs: b.external_docs(&field_owner("externalDocs"), &operation),
                origin: b.origin(&operation_loc),
            });
        }
        out
    }

    fn all_messages(&self, channel: ChannelId) -> Vec<MessageId> {
        self.channel_message_locs[channel]
            .iter()
            .map(|(_, id)| *id)
            .collect()
    }

    fn channel_key(&self, b: &Builder, channel: ChannelId) -> String {
        pointer_tokens(&self.channel_locs[channel].pointer)
            .last()
            .unwrap_or_else(|| b.sources.path(0).display().to_string())
    }

    fn reply(
        &self,
        b: &mut Builder,
        loc: &Loc,
        own_channel: ChannelId,
        owner: &str,
    ) -> Option<Reply> {
        let (reply_loc, reply) = b.object(loc, "`reply`")?;
        let channel = match reply.get("channel") {
            Some(_) => {
                Some(self.channel_of(b, &reply_loc.child("channel"), "the reply's `channel`")?)
            }
            None => None,
        };
        let reply_channel = channel.unwrap_or(own_channel);
        let channel_key = self.channel_key(b, reply_channel);
        let messages = self
            .listed_messages(
                b,
                &reply_loc.child("messages"),
                reply_channel,
                &format!("the reply of {owner}"),
                &channel_key,
            )
            .unwrap_or_else(|| self.all_messages(reply_channel));
        let address = match reply.get("address") {
            Some(_) => b
                .object(&reply_loc.child("address"), "the reply's `address`")
                .and_then(|(address_loc, address)| b.string(&address_loc, &address, "location")),
            None => None,
        };
        Some(Reply {
            channel,
            messages,
            address,
        })
    }
}

pub(super) fn server_variables(
    b: &mut Builder,
    loc: &Loc,
    map: &Map<String, Value>,
) -> Vec<ServerVariable> {
    let Some(Value::Object(variables)) = map.get("variables") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in variables.keys() {
        if let Some((variable_loc, variable)) =
            b.object(&loc.child("variables").child(name), "a server variable")
        {
            out.push(ServerVariable {
                name: name.clone(),
                default: b.string(&variable_loc, &variable, "default"),
                enum_values: string_list(&variable, "enum"),
                description: b.string(&variable_loc, &variable, "description"),
                examples: string_list(&variable, "examples"),
            });
        }
    }
    out
}

/// The `{name}` parameters of a channel, checked against its address.
fn parameters(
    b: &mut Builder,
    loc: &Loc,
    map: &Map<String, Value>,
    address: Option<&str>,
) -> Vec<Parameter> {
    let mut out = Vec::new();
    if let Some(Value::Object(parameters)) = map.get("parameters") {
        for name in parameters.keys() {
            let parameter_loc = loc.child("parameters").child(name);
            let Some((target, parameter)) = b.object(&parameter_loc, "a parameter") else {
                continue;
            };
            out.push(Parameter {
                name: name.clone(),
                description: b.string(&target, &parameter, "description"),
                enum_values: string_list(&parameter, "enum"),
                default: b.string(&target, &parameter, "default"),
                examples: string_list(&parameter, "examples"),
                location: b.string(&target, &parameter, "location"),
                schema: None,
                origin: b.origin(&target),
            });
        }
    }
    if let Some(address) = address {
        check_address_parameters(b, loc, &loc.child("address"), address, &mut out);
    }
    out
}

/// Every `{name}` of `address` must be a parameter of the channel at `loc`; a missing one is
/// reported at `missing_at`. A parameter the address does not use is only a warning (the
/// official parser accepts it) and is dropped: there is nothing to read it from.
pub(super) fn check_address_parameters(
    b: &mut Builder,
    loc: &Loc,
    missing_at: &Loc,
    address: &str,
    defined: &mut Vec<Parameter>,
) {
    let in_address = address_parameters(address);
    defined.retain(|parameter| {
        let name = &parameter.name;
        let used = in_address.contains(name);
        if !used {
            b.sources.warn(
                &loc.child("parameters").child(name),
                format!(
                    "parameter `{name}` does not appear as `{{{name}}}` in the channel address \
                     `{address}`; it is ignored (remove it, or use it in the address)"
                ),
            );
        }
        used
    });
    for name in &in_address {
        if !defined.iter().any(|parameter| &parameter.name == name) {
            b.sources.error(
                missing_at,
                format!("the address uses `{{{name}}}` but the channel has no parameter `{name}`"),
            );
        }
    }
}

/// The names in `{...}` of an address, in order.
pub(super) fn address_parameters(address: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = address;
    while let Some(start) = rest.find('{') {
        let Some(length) = rest[start..].find('}') else {
            break;
        };
        names.push(rest[start + 1..start + length].to_owned());
        rest = &rest[start + length + 1..];
    }
    names
}

fn resolved_field(
    b: &mut Builder,
    loc: &Loc,
    map: &Map<String, Value>,
    key: &str,
) -> Option<Value> {
    map.get(key)?;
    b.resolved(&loc.child(key))
}

pub(super) fn string_list(map: &Map<String, Value>, key: &str) -> Vec<String> {
    match map.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    }
}
