//! Channels: per channel a module with its parameters, message enums, handler trait and typed
//! connection handle; per address an endpoint that dispatches frames; and `routes`.
//!
//! Several channels may share one address (one WebSocket carries them all, as in Kraken's
//! API), so endpoints are made per address and try each of its channels in turn.
//!
//! The generated code declares and dispatches; what is the same for every contract (decoding
//! frames, the handshake, replies, reading parameters) is called in `wfs_runtime`. Channel
//! modules and `mod endpoints` import `wfs_runtime::prelude::*` and use its short names; the
//! items at the top of the file stay fully qualified, as they share the including module with
//! the user's own items.

use heck::{ToSnakeCase, ToUpperCamelCase};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use serde_json::{Value, json};

use super::names::{field_ident, method_ident, unique};
use crate::error::Diagnostic;
use crate::model::{Action, Channel, ChannelId, Contract, MessageId, Operation, heck_pascal};

/// Everything named for one channel.
pub(crate) struct ChannelPlan {
    pub id: ChannelId,
    pub module: Ident,
    pub pascal: String,
    pub params: Vec<ParamField>,
    /// Messages the server receives on this channel, in order.
    pub inbound: Vec<MessageId>,
    /// Messages the server sends on this channel (send operations and replies), in order.
    pub outbound: Vec<MessageId>,
    /// Messages whose payload is boxed in an enum of several messages (see `sizes`).
    pub large: Vec<MessageId>,
    /// Messages whose payload type is a newtype of any JSON value (see `sizes`).
    pub any_json: Vec<MessageId>,
}

impl ChannelPlan {
    /// Whether `message` is boxed in an enum of `messages`: a large payload beside others.
    pub fn boxed(&self, message: MessageId, messages: &[MessageId]) -> bool {
        messages.len() > 1 && self.large.contains(&message)
    }
}

impl ChannelPlan {
    pub fn ident(&self, suffix: &str) -> Ident {
        format_ident!("{}{}", self.pascal, suffix)
    }
}

/// One field of a `<Channel>Params` struct.
pub(crate) struct ParamField {
    pub ident: Ident,
    /// The name on the wire (path parameter, query parameter or header name).
    pub name: String,
    /// `path`, `query` or `header`.
    pub location: &'static str,
    pub kind: ParamKind,
    pub required: bool,
    pub description: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamKind {
    String,
    Uuid,
    Integer,
    Number,
    Boolean,
}

impl ParamKind {
    fn of(schema: Option<&Value>) -> ParamKind {
        let schema = schema.and_then(Value::as_object);
        let kind = schema.and_then(|s| s.get("type")).and_then(Value::as_str);
        let format = schema.and_then(|s| s.get("format")).and_then(Value::as_str);
        match (kind, format) {
            (Some("string"), Some("uuid")) => ParamKind::Uuid,
            (Some("integer"), _) => ParamKind::Integer,
            (Some("number"), _) => ParamKind::Number,
            (Some("boolean"), _) => ParamKind::Boolean,
            _ => ParamKind::String,
        }
    }

    fn rust_type(self) -> TokenStream {
        match self {
            ParamKind::String => quote!(String),
            ParamKind::Uuid => quote!(Uuid),
            ParamKind::Integer => quote!(i64),
            ParamKind::Number => quote!(f64),
            ParamKind::Boolean => quote!(bool),
        }
    }

    fn parser(self) -> TokenStream {
        match self {
            ParamKind::String => quote!(params::string),
            ParamKind::Uuid => quote!(params::uuid),
            ParamKind::Integer => quote!(params::integer),
            ParamKind::Number => quote!(params::number),
            ParamKind::Boolean => quote!(params::boolean),
        }
    }
}

/// Plans every channel: names, parameters, inbound and outbound messages.
pub(crate) fn plan(contract: &Contract) -> Vec<ChannelPlan> {
    let mut modules = vec![
        "types".to_owned(),
        "schemas".to_owned(),
        "endpoints".to_owned(),
    ];
    contract
        .channels
        .iter()
        .enumerate()
        .map(|(id, channel)| {
            let module = unique(&mut modules, &channel.key.to_snake_case());
            let mut inbound = Vec::new();
            let mut outbound = Vec::new();
            for operation in contract.operations_on(id) {
                let target = match operation.action {
                    Action::Receive => &mut inbound,
                    Action::Send => &mut outbound,
                };
                push_unique(target, &operation.messages);
                if operation.action == Action::Receive
                    && let Some(reply) = &operation.reply
                {
                    push_unique(&mut outbound, &reply.messages);
                }
            }
            ChannelPlan {
                id,
                module: field_ident(&module),
                pascal: heck_pascal(&channel.key),
                params: param_fields(channel),
                inbound,
                outbound,
                large: Vec::new(),
                any_json: Vec::new(),
            }
        })
        .collect()
}

fn push_unique(target: &mut Vec<MessageId>, ids: &[MessageId]) {
    for id in ids {
        if !target.contains(id) {
            target.push(*id);
        }
    }
}

fn param_fields(channel: &Channel) -> Vec<ParamField> {
    let mut taken = Vec::new();
    let mut fields = Vec::new();
    // A 2.x channel named by a URL is served at its path: a parameter of the host part
    // (`wss://{region}.example.com/books/{id}`) is not in the request path, so it is optional
    // (location `address`), read only by `from_address`.
    let served = channel
        .address
        .as_deref()
        .map(served_path)
        .unwrap_or_default();
    let in_path: Vec<String> = pieces(&served)
        .into_iter()
        .filter_map(|(is_param, name)| is_param.then_some(name))
        .collect();
    for parameter in &channel.parameters {
        let ident = unique(&mut taken, &parameter.name.to_snake_case());
        let kind = match &parameter.schema {
            Some(schema) => ParamKind::of(Some(schema)),
            None => ParamKind::String,
        };
        let served = in_path.contains(&parameter.name);
        fields.push(ParamField {
            ident: field_ident(&ident),
            name: parameter.name.clone(),
            location: if served { "path" } else { "address" },
            kind,
            required: served,
            description: parameter.description.clone(),
        });
    }
    if let Some(ws) = &channel.ws {
        for (location, schema) in [("query", &ws.query), ("header", &ws.headers)] {
            let Some(schema) = schema else { continue };
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|names| names.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                continue;
            };
            for (name, property) in properties {
                let ident = unique(&mut taken, &name.to_snake_case());
                fields.push(ParamField {
                    ident: field_ident(&ident),
                    name: name.clone(),
                    location,
                    kind: ParamKind::of(Some(property)),
                    required: required.contains(&name.as_str()),
                    description: property
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                });
            }
        }
    }
    fields
}

/// The JSON Schema all of a channel's parameters are checked against, as one object.
fn params_schema(channel: &Channel, fields: &[ParamField]) -> Value {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for parameter in &channel.parameters {
        let schema = match &parameter.schema {
            Some(schema) => schema.clone(),
            None if !parameter.enum_values.is_empty() => {
                json!({"type": "string", "enum": parameter.enum_values})
            }
            None => json!({"type": "string"}),
        };
        properties.insert(parameter.name.clone(), schema);
    }
    if let Some(ws) = &channel.ws {
        for schema in [&ws.query, &ws.headers].into_iter().flatten() {
            if let Some(listed) = schema.get("properties").and_then(Value::as_object) {
                for (name, property) in listed {
                    properties.insert(name.clone(), property.clone());
                }
            }
        }
    }
    for field in fields.iter().filter(|field| field.required) {
        required.push(Value::String(field.name.clone()));
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": properties,
        "required": required,
    })
}

/// The Rust type of a message's payload.
pub(crate) fn payload_type(contract: &Contract, message: MessageId) -> TokenStream {
    match contract.messages[message].payload {
        Some(schema) => {
            let name = format_ident!("{}", contract.schemas[schema].name);
            quote!(super::types::#name)
        }
        None => quote!(Value),
    }
}

pub(crate) fn variant_ident(contract: &Contract, message: MessageId) -> Ident {
    format_ident!("{}", heck_pascal(&contract.messages[message].key))
}

/// A discriminator shared by `messages`: a property that is a distinct string constant in each
/// payload, giving a direct match instead of trying each schema in turn.
pub(crate) fn discriminator(
    contract: &Contract,
    messages: &[MessageId],
) -> Option<(String, Vec<String>)> {
    if messages.len() < 2 {
        return None;
    }
    let payloads: Vec<&Value> = messages
        .iter()
        .map(|&id| {
            contract.messages[id]
                .payload
                .map(|schema| resolve(contract, &contract.schemas[schema].value))
        })
        .collect::<Option<_>>()?;
    let explicit = payloads[0]
        .get("discriminator")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let candidates: Vec<String> = match explicit {
        Some(name) => vec![name],
        None => payloads[0]
            .get("properties")?
            .as_object()?
            .keys()
            .cloned()
            .collect(),
    };
    'candidates: for property in candidates {
        let mut values = Vec::new();
        for payload in &payloads {
            let Some(schema) = payload.get("properties").and_then(|p| p.get(&property)) else {
                continue 'candidates;
            };
            let schema = resolve(contract, schema);
            let constant = schema.get("const").and_then(Value::as_str).or_else(|| {
                match schema
                    .get("enum")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                {
                    Some([single]) => single.as_str(),
                    _ => None,
                }
            });
            match constant {
                Some(value) if !values.iter().any(|v| v == value) => values.push(value.to_owned()),
                _ => continue 'candidates,
            }
        }
        return Some((property, values));
    }
    None
}

/// Follows `#/definitions/<name>` aliases to the schema they name.
fn resolve<'a>(contract: &'a Contract, mut value: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match value
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| contract.schema_by_ref(r))
        {
            Some(schema) => value = &schema.value,
            None => break,
        }
    }
    value
}

/// A message enum: one variant per message, serialised untagged (each payload carries its own
/// discriminator, if any), decoded by discriminator or by checking each schema in turn.
pub(crate) fn message_enum(
    contract: &Contract,
    plan: &ChannelPlan,
    name: &Ident,
    doc: &str,
    messages: &[MessageId],
) -> TokenStream {
    let label = name.to_string();
    if messages.is_empty() {
        return quote! {
            #[doc = #doc]
            #[derive(Debug, Clone, PartialEq)]
            pub enum #name {}

            /// No message is allowed here: every value is refused.
            impl Decode for #name {
                fn decode(_value: Candidate<'_>) -> Result<Self, Vec<Violations>> {
                    Err(vec![Violations::single(#label, "no message is expected here")])
                }
            }
        };
    }
    let variants: Vec<TokenStream> = messages
        .iter()
        .map(|&id| {
            let variant = variant_ident(contract, id);
            let payload = payload_type(contract, id);
            let payload = if plan.boxed(id, messages) {
                quote!(Box<#payload>)
            } else {
                payload
            };
            let doc = message_doc(contract, id);
            quote! {
                #[doc = #doc]
                #variant(#payload)
            }
        })
        .collect();
    // One decoder per message: its schema's validator, and how a value it accepted becomes
    // the message's variant (deserialised, or kept as it is when the payload is any JSON).
    let decoder = |id: MessageId| -> TokenStream {
        let variant = variant_ident(contract, id);
        let Some(schema) = contract.messages[id].payload else {
            return quote!(Decoder::any(|value| Ok(Self::#variant(value.into_value()))));
        };
        let validator = super::types::validator_ident(&contract.schemas[schema]);
        let build = if plan.any_json.contains(&id) {
            let payload = payload_type(contract, id);
            let message = quote!(#payload(Json::from_value(value.value())));
            if plan.boxed(id, messages) {
                quote!(|value| Ok(Self::#variant(Box::new(#message))))
            } else {
                quote!(|value| Ok(Self::#variant(#message)))
            }
        } else if plan.boxed(id, messages) {
            quote!(|value| value.deserialize().map(|message| Self::#variant(Box::new(message))))
        } else {
            quote!(|value| value.deserialize().map(Self::#variant))
        };
        quote!(Decoder::checked(&super::schemas::#validator, #build))
    };
    let body = match discriminator(contract, messages) {
        Some((property, values)) => {
            let entries = messages.iter().zip(&values).map(|(&id, value)| {
                let decoder = decoder(id);
                quote!((#value, #decoder))
            });
            quote!(by_discriminator(value, #label, #property, &[#(#entries),*]))
        }
        None => {
            let decoders = messages.iter().map(|&id| decoder(id));
            quote!(first_match(value, &[#(#decoders),*]))
        }
    };
    let from_text = as_text(contract, plan, messages);
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, PartialEq, ::wfs_runtime::serde::Serialize)]
        #[serde(crate = "::wfs_runtime::serde", untagged)]
        pub enum #name {
            #(#variants,)*
        }

        impl Decode for #name {
            fn decode(value: Candidate<'_>) -> Result<Self, Vec<Violations>> {
                #body
            }
            #from_text
        }
    }
}

/// For a channel whose one message is any JSON, kept as text, with nothing its schema could
/// refuse: the frame's text is checked as JSON and kept (shared, when compact already), with
/// no tree built and no schema run. `None` for every other channel, which decodes through a
/// `Value`.
fn as_text(contract: &Contract, plan: &ChannelPlan, messages: &[MessageId]) -> Option<TokenStream> {
    let [id] = messages else { return None };
    let schema = contract.messages[*id].payload?;
    if !plan.any_json.contains(id) || !asserts_nothing(&contract.schemas[schema].value) {
        return None;
    }
    let variant = variant_ident(contract, *id);
    let payload = payload_type(contract, *id);
    let message = if plan.boxed(*id, messages) {
        quote!(|json| Self::#variant(Box::new(#payload(json))))
    } else {
        quote!(|json| Self::#variant(#payload(json)))
    };
    Some(quote! {
        fn from_text(text: &str) -> Result<Self, FrameError> {
            Json::from_text(text).map(#message).map_err(FrameError::not_json)
        }

        fn from_frame(text: Utf8Bytes) -> Result<Self, FrameError> {
            Json::from_frame(text).map(#message).map_err(FrameError::not_json)
        }
    })
}

/// Whether `schema` accepts every JSON value: `true`, or only annotations (a description,
/// examples, ...), which the validator reads but does not check.
fn asserts_nothing(schema: &Value) -> bool {
    const ANNOTATIONS: &[&str] = &[
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "examples",
        "example",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
    ];
    match schema {
        Value::Bool(accepts) => *accepts,
        Value::Object(keywords) => keywords
            .keys()
            .all(|keyword| ANNOTATIONS.contains(&keyword.as_str()) || keyword.starts_with("x-")),
        _ => false,
    }
}

/// A reply enum is sent as a frame (`wfs_runtime::Frame`): what makes it one is how a value
/// of it is checked against the contract, by decoding it as one of its messages.
fn outgoing_impl(name: &TokenStream) -> TokenStream {
    quote! {
        impl Outgoing for #name {
            fn check(value: &Value) -> Result<(), Vec<Violations>> {
                Self::decode(Candidate::Shared(value)).map(|_| ())
            }
        }
    }
}

fn message_doc(contract: &Contract, id: MessageId) -> String {
    let message = &contract.messages[id];
    let mut doc = format!("Message `{}`", message.key);
    if let Some(summary) = message.summary.as_ref().or(message.title.as_ref()) {
        doc.push_str(": ");
        doc.push_str(summary.trim());
    }
    sentence(doc)
}

/// `text` ending as a sentence does (a period unless it ends with punctuation already).
fn sentence(mut text: String) -> String {
    if !text.ends_with(['.', '!', '?', ':']) {
        text.push('.');
    }
    text
}

fn operation_doc(operation: &Operation) -> String {
    let mut doc = format!("Operation `{}`", operation.key);
    if let Some(summary) = operation.summary.as_ref().or(operation.title.as_ref()) {
        doc.push_str(": ");
        doc.push_str(summary.trim());
    }
    let mut doc = sentence(doc);
    if let Some(description) = &operation.description {
        doc.push_str("\n\n");
        doc.push_str(description.trim());
    }
    doc
}

/// The Rust type a receive operation's handler takes, and the enum it needs when it carries
/// several messages.
fn operation_message_type(
    contract: &Contract,
    plan: &ChannelPlan,
    operation: &Operation,
    suffix: &str,
    messages: &[MessageId],
) -> (TokenStream, Option<TokenStream>) {
    match messages {
        [single] => (payload_type(contract, *single), None),
        [] => (quote!(Value), None),
        several => {
            let name = format_ident!("{}{}", operation.key.to_upper_camel_case(), suffix);
            let doc = format!("The messages of operation `{}`.", operation.key);
            let definition = message_enum(contract, plan, &name, &doc, several);
            (quote!(#name), Some(definition))
        }
    }
}

/// The module of one channel: params, enums, trait, connection handle.
pub(crate) fn channel_module(
    contract: &Contract,
    plan: &ChannelPlan,
    with_client: bool,
) -> Result<TokenStream, Diagnostic> {
    let channel = &contract.channels[plan.id];
    let module = &plan.module;
    let trait_name = plan.ident("Channel");
    let connection = plan.ident("Connection");
    let params = plan.ident("Params");
    let inbound = plan.ident("Inbound");
    let outbound = plan.ident("Outbound");

    let module_doc = {
        let mut doc = format!(
            "Channel `{}` at `{}`.",
            channel.key,
            channel.address.as_deref().unwrap_or("(no address)")
        );
        if let Some(text) = channel.description.as_ref().or(channel.summary.as_ref()) {
            doc.push_str("\n\n");
            doc.push_str(text.trim());
        }
        doc
    };

    let params_struct = params_struct(channel, plan);
    let inbound_enum = message_enum(
        contract,
        plan,
        &inbound,
        "Every message a client may send on this channel (what the server receives).",
        &plan.inbound,
    );
    let outbound_enum = message_enum(
        contract,
        plan,
        &outbound,
        "Every message the server may send on this channel.",
        &plan.outbound,
    );

    let mut extra_types = Vec::new();
    let mut trait_methods = Vec::new();
    for operation in contract
        .operations_on(plan.id)
        .filter(|o| o.action == Action::Receive)
    {
        let method = method_ident(&operation.key);
        let doc = operation_doc(operation);
        let (message_type, message_enum) =
            operation_message_type(contract, plan, operation, "Message", &operation.messages);
        extra_types.extend(message_enum);
        let reply_type = match &operation.reply {
            Some(reply) => {
                let (reply_type, reply_enum) =
                    operation_message_type(contract, plan, operation, "Reply", &reply.messages);
                if let Some(reply_enum) = reply_enum {
                    extra_types.push(reply_enum);
                    extra_types.push(outgoing_impl(&reply_type));
                }
                reply_type
            }
            None => quote!(()),
        };
        let reply_doc = if operation.reply.is_some() {
            "\n\nThe value returned is sent back as the reply."
        } else {
            ""
        };
        let doc = format!("{doc}{reply_doc}");
        trait_methods.push(quote! {
            #[doc = #doc]
            fn #method(&self, connection: &#connection, state: &Self::State, message: #message_type)
                -> impl Future<Output = Result<#reply_type, ChannelError>> + Send;
        });
    }

    let mut send_methods = Vec::new();
    for operation in contract
        .operations_on(plan.id)
        .filter(|o| o.action == Action::Send)
    {
        let doc = operation_doc(operation);
        for &message in &operation.messages {
            let method_base = if operation.messages.len() == 1 {
                operation.key.to_snake_case()
            } else {
                format!(
                    "{}_{}",
                    operation.key.to_snake_case(),
                    contract.messages[message].key.to_snake_case()
                )
            };
            let method = method_ident(&method_base);
            let frame_method = method_ident(&format!("{method_base}_frame"));
            let message_doc = format!("{doc}\n\nSends {}", message_doc(contract, message));
            send_methods.push(match contract.messages[message].payload {
                Some(_) => {
                    let payload = payload_type(contract, message);
                    let frame_doc = format!(
                        "Like [`Self::{method}`] with a frame serialised once, to send the same message to many connections."
                    );
                    quote! {
                        #[doc = #message_doc]
                        pub fn #method(&self, message: &#payload) -> Result<(), SendError> {
                            self.connection.send_frame(&Frame::new(message)?)
                        }

                        #[doc = #frame_doc]
                        pub fn #frame_method(&self, frame: &Frame<#payload>) -> Result<(), SendError> {
                            self.connection.send_frame(frame)
                        }
                    }
                }
                None => quote! {
                    #[doc = #message_doc]
                    pub fn #method(&self, message: &Value) -> Result<(), SendError> {
                        self.connection.send_frame(&Frame::new(message)?)
                    }
                },
            });
        }
    }

    let client = if with_client && contract.channels[plan.id].address.is_some() {
        super::client::channel_client(contract, plan)
    } else {
        TokenStream::new()
    };

    Ok(quote! {
        #[doc = #module_doc]
        pub mod #module {
            use ::wfs_runtime::prelude::*;

            #params_struct
            #inbound_enum
            #outbound_enum
            #(#extra_types)*

            /// The server side of this channel: implement it, and `routes` serves it.
            pub trait #trait_name: Send + Sync + 'static {
                /// Per-connection state, made by `on_connect` and handed to every other method.
                type State: Send + Sync + 'static;

                /// A client asks to connect. `params` holds the checked channel parameters, or
                /// every problem with them; the handshake gives the raw request. Return the
                /// connection's state to accept it, or a [`Reject`].
                fn on_connect(&self, handshake: &Handshake, params: Result<#params, ParamsError>)
                    -> impl Future<Output = Result<Self::State, Reject>> + Send;

                /// The handshake is accepted; runs before the client is answered, so what it subscribes
                /// to is live once the client knows it is connected. The place to greet or subscribe:
                /// frames sent here go out first. Default: nothing.
                fn on_open(&self, connection: &#connection, state: &Self::State) -> impl Future<Output = ()> + Send {
                    let _ = (connection, state);
                    async {}
                }

                #(#trait_methods)*

                /// A frame the contract does not allow arrived. Default: close with the
                /// error's code (1003 not JSON text, 1007 not a message of this channel).
                fn on_invalid_frame(&self, connection: &#connection, state: &Self::State, error: FrameError) -> impl Future<Output = ()> + Send {
                    let _ = state;
                    connection.close(error.close_code(), error.close_reason());
                    async {}
                }

                /// The connection has ended. Default: nothing.
                fn on_close(&self, connection: &#connection, state: &Self::State) -> impl Future<Output = ()> + Send {
                    let _ = (connection, state);
                    async {}
                }
            }

            /// A connection on this channel: what the server may send on it, typed.
            #[derive(Debug, Clone)]
            pub struct #connection {
                connection: Connection,
            }

            impl #connection {
                /// Wraps an accepted connection.
                pub fn new(connection: Connection) -> Self {
                    Self { connection }
                }

                /// The untyped connection (id, closed state).
                pub fn connection(&self) -> &Connection {
                    &self.connection
                }

                /// Closes the connection with `code` and `reason` after the frames already queued.
                pub fn close(&self, code: u16, reason: impl Into<String>) {
                    self.connection.close(code, reason);
                }

                #(#send_methods)*
            }

            #client
        }
    })
}

fn params_struct(channel: &Channel, plan: &ChannelPlan) -> TokenStream {
    let name = plan.ident("Params");
    let fields = plan.params.iter().map(|field| {
        let ident = &field.ident;
        let rust_type = field.kind.rust_type();
        let rust_type = if field.required {
            rust_type
        } else {
            quote!(Option<#rust_type>)
        };
        let doc = format!(
            "{} parameter `{}`{}{}",
            capitalise(field.location),
            field.name,
            if field.required { " (required)" } else { "" },
            field
                .description
                .as_deref()
                .map(|d| format!(": {}", d.trim()))
                .unwrap_or_default()
        );
        quote! {
            #[doc = #doc]
            pub #ident: #rust_type
        }
    });
    let reads = plan.params.iter().map(|field| {
        let ident = &field.ident;
        let name = &field.name;
        let location = field.location;
        let parser = field.kind.parser();
        let read = if field.required {
            quote!(required)
        } else {
            quote!(optional)
        };
        quote!(#ident: read.#read(#location, #name, #parser))
    });
    let pairs = |location: &str| {
        let fields: Vec<&ParamField> = plan
            .params
            .iter()
            .filter(|f| f.location == location)
            .collect();
        if fields.iter().all(|field| field.required) {
            let entries = fields.iter().map(|field| {
                let ident = &field.ident;
                let name = &field.name;
                quote!((#name, self.#ident.to_string()))
            });
            return quote!(vec![#(#entries),*]);
        }
        let entries = fields.iter().map(|field| {
            let ident = &field.ident;
            let name = &field.name;
            if field.required {
                quote!((#name, Some(self.#ident.to_string())))
            } else {
                quote!((#name, self.#ident.as_ref().map(ToString::to_string)))
            }
        });
        quote! {
            [#(#entries),*]
                .into_iter()
                .filter_map(|(name, value)| value.map(|value| (name, value)))
                .collect()
        }
    };
    let query_pairs = pairs("query");
    let header_pairs = pairs("header");
    let address = channel
        .address
        .as_deref()
        .map(served_path)
        .unwrap_or_default();
    let (address_static, address_methods) = address_parts(channel, plan);
    let path_replacements = plan.params.iter().filter(|f| f.location == "path").map(|field| {
        let ident = &field.ident;
        let placeholder = format!("{{{}}}", field.name);
        quote!(path = path.replace(#placeholder, &::wfs_runtime::client::encode(&self.#ident.to_string()));)
    });
    let path_replacements: Vec<TokenStream> = path_replacements.collect();
    let path_body = if path_replacements.is_empty() {
        quote!(String::from(#address))
    } else {
        quote! {
            let mut path = String::from(#address);
            #(#path_replacements)*
            path
        }
    };
    let schema = super::types::json_literal(&params_schema(channel, &plan.params));
    let label = format!("{} parameters", channel.key);
    let doc = format!(
        "The parameters of channel `{}`: path, query and headers of the handshake.",
        channel.key
    );
    // A channel without parameters has nothing to read or check.
    let (params_schema_static, from_handshake_body) = if plan.params.is_empty() {
        (
            TokenStream::new(),
            quote! {
                let _ = handshake;
                Ok(Self {})
            },
        )
    } else {
        (
            quote! {
                static PARAMS_SCHEMA: Validator = Validator::new(#label, #schema);
            },
            quote! {
                let mut read = params::Reader::new(handshake);
                let parsed = Self {
                    #(#reads,)*
                };
                read.finish(Some(&PARAMS_SCHEMA)).map(|()| parsed)
            },
        )
    };
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct #name {
            #(#fields,)*
        }

        #params_schema_static
        #address_static

        impl #name {
            /// Reads and checks the parameters of a handshake; every problem is reported.
            pub fn from_handshake(handshake: &Handshake) -> Result<Self, ParamsError> {
                #from_handshake_body
            }

            /// The path the channel is served at, with its `{...}` parameters filled in
            /// (percent-encoded), for a client's handshake.
            pub fn path(&self) -> String {
                #path_body
            }

            /// The query parameters, for a client's handshake.
            pub fn query_pairs(&self) -> Vec<(&'static str, String)> {
                #query_pairs
            }

            /// The headers, for a client's handshake.
            pub fn header_pairs(&self) -> Vec<(&'static str, String)> {
                #header_pairs
            }

            #address_methods
        }
    }
}

/// The typed address builder and parser of a channel with an address: `ADDRESS` (its
/// template), `Params::address()` and `Params::from_address()`. They work on the address as
/// written, whatever the protocol (an MQTT topic, a Kafka topic, a WebSocket path).
fn address_parts(channel: &Channel, plan: &ChannelPlan) -> (TokenStream, TokenStream) {
    let Some(address) = &channel.address else {
        return (TokenStream::new(), TokenStream::new());
    };
    let template = template(address);
    let static_doc = format!("The address of channel `{}`: `{address}`.", channel.key);
    let path_fields: Vec<&ParamField> = plan
        .params
        .iter()
        .filter(|f| matches!(f.location, "path" | "address"))
        .collect();
    let fills = path_fields.iter().map(|field| {
        let ident = &field.ident;
        let placeholder = format!("{{{}}}", field.name);
        if field.required {
            quote!(address = address.replace(#placeholder, &self.#ident.to_string());)
        } else {
            quote! {
                if let Some(value) = &self.#ident {
                    address = address.replace(#placeholder, &value.to_string());
                }
            }
        }
    });
    let builder = if path_fields.is_empty() {
        quote!(String::from(#address))
    } else {
        quote! {
            let mut address = String::from(#address);
            #(#fills)*
            address
        }
    };
    let key = &channel.key;
    let reads = path_fields.iter().map(|field| {
        let ident = &field.ident;
        let name = &field.name;
        let parser = field.kind.parser();
        let read = if field.required {
            quote!(required)
        } else {
            quote!(optional)
        };
        quote!(#ident: read.#read("path", #name, #parser))
    });
    let rest = if path_fields.len() < plan.params.len() {
        quote!(..Default::default())
    } else {
        TokenStream::new()
    };
    let parser_body = if path_fields.is_empty() {
        quote!(params::Reader::address(&ADDRESS, address, #key).map(|_| Self::default()))
    } else {
        quote! {
            let mut read = params::Reader::address(&ADDRESS, address, #key)?;
            let parsed = Self {
                #(#reads,)*
                #rest
            };
            read.finish(None).map(|()| parsed)
        }
    };
    let statics = quote! {
        #[doc = #static_doc]
        pub static ADDRESS: Template = #template;
    };
    let methods = quote! {
        /// The channel address as written in the contract, with its `{...}` parameters filled in.
        pub fn address(&self) -> String {
            #builder
        }

        /// Reads the `{...}` parameters of an address of this channel, matched exactly against
        /// [`ADDRESS`]; the query and header fields keep their defaults.
        pub fn from_address(address: &str) -> Result<Self, ParamsError> {
            #parser_body
        }
    };
    (statics, methods)
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Channels grouped by address, in the order first met; channels without an address are not
/// served (AsyncAPI leaves such addresses to be found at run time).
pub(crate) struct Endpoint {
    pub address: String,
    /// The path it is served at (see [`served_path`]).
    pub path: String,
    pub route: String,
    pub name: Ident,
    pub channels: Vec<usize>,
}

/// Groups planned channels by address and checks each address can be a route.
pub(crate) fn endpoints(
    contract: &Contract,
    plans: &[ChannelPlan],
) -> Result<Vec<Endpoint>, Vec<Diagnostic>> {
    let mut endpoints: Vec<Endpoint> = Vec::new();
    let mut problems = Vec::new();
    let mut names = Vec::new();
    for (index, plan) in plans.iter().enumerate() {
        let channel = &contract.channels[plan.id];
        let Some(address) = &channel.address else {
            continue;
        };
        if let Some(endpoint) = endpoints.iter_mut().find(|e| &e.address == address) {
            endpoint.channels.push(index);
            continue;
        }
        let path = served_path(address);
        let route = route_of(&path);
        if let Some(other) = endpoints.iter().find(|e| shape(&e.path) == shape(&path)) {
            problems.push(contract.diagnostic(
                &channel.origin.file,
                &format!("{}/address", channel.origin.pointer),
                format!(
                    "unsupported: address `{address}` cannot be told apart from `{}`: they \
                     differ only in parameter names, so every path matches both; give one of \
                     them a distinct text",
                    other.address
                ),
            ));
            continue;
        }
        let base = path.trim_matches('/').to_snake_case();
        let name = unique(&mut names, if base.is_empty() { "root" } else { &base });
        endpoints.push(Endpoint {
            address: address.clone(),
            path,
            route,
            name: format_ident!("{}", name.to_upper_camel_case()),
            channels: vec![index],
        });
    }
    if problems.is_empty() {
        Ok(endpoints)
    } else {
        Err(problems)
    }
}

/// The path a channel is served at: its address with a leading `/`; for a 2.x channel named
/// by a URL (`https://example.com/books/{id}`), the URL's path (`/books/{id}`), as a client
/// connecting to that URL asks for it.
pub(crate) fn served_path(address: &str) -> String {
    let path = match address.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |slash| &rest[slash..]),
        None => address,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    format!("/{}", path.trim_start_matches('/'))
}

/// An address as text and `{name}` pieces: `(false, text)` or `(true, name)`.
fn pieces(address: &str) -> Vec<(bool, String)> {
    let mut pieces = Vec::new();
    let mut rest = address;
    while let Some(start) = rest.find('{') {
        let Some(length) = rest[start..].find('}') else {
            break;
        };
        if start > 0 {
            pieces.push((false, rest[..start].to_owned()));
        }
        pieces.push((true, rest[start + 1..start + length].to_owned()));
        rest = &rest[start + length + 1..];
    }
    if !rest.is_empty() {
        pieces.push((false, rest.to_owned()));
    }
    pieces
}

/// An address with its parameter names left out: two addresses of one shape match the same paths.
fn shape(address: &str) -> Vec<Option<String>> {
    pieces(address)
        .into_iter()
        .map(|(is_param, text)| (!is_param).then_some(text))
        .collect()
}

/// The `Template` of an address, to match it exactly (in prelude names: for a module that
/// imports `wfs_runtime::prelude::*`).
pub(crate) fn template(address: &str) -> TokenStream {
    let pieces = pieces(address).into_iter().map(|(is_param, text)| {
        if is_param {
            quote!(Piece::Param(#text))
        } else {
            quote!(Piece::Text(#text))
        }
    });
    quote!(Template::new(&[#(#pieces),*]))
}

/// The poem route of a served path. A plain segment is itself; any other segment (a `{name}`,
/// text mixed with parameters as in `TRADE-{a}--{b}`, or a character routes give a meaning to:
/// `:`, `*`, `<`) becomes its text up to the first such character followed by a `:pN`
/// parameter, which takes the rest of the segment. So `TRADE-{a}--{b}` and `c{type}` are
/// different routes, and the handshake then matches the path exactly against the channel's
/// address template, which is what reads the parameters.
///
/// Not a regular-expression route (`<^TRADE-[^/]+>`): poem 3.1 drops a node's regular
/// expression children when a later route splits that node, so such routes can vanish.
fn route_of(path: &str) -> String {
    let mut route = String::new();
    for (index, segment) in path.trim_start_matches('/').split('/').enumerate() {
        route.push('/');
        match segment.find(['{', '}', ':', '*', '<']) {
            None => route.push_str(segment),
            Some(special) => {
                route.push_str(&segment[..special]);
                route.push_str(&format!(":p{index}"));
            }
        }
    }
    route
}

/// The endpoint types (one per address, in `mod endpoints`), the mount functions and `routes`.
pub(crate) fn serving(
    contract: &Contract,
    plans: &[ChannelPlan],
    endpoints: &[Endpoint],
) -> TokenStream {
    let mut items = Vec::new();
    let mut mounts = Vec::new();
    let mut mount_fns = Vec::new();
    let mut all_bounds: Vec<TokenStream> = Vec::new();
    let mut mounted = Vec::new();
    for endpoint in endpoints {
        let channels: Vec<&ChannelPlan> = endpoint.channels.iter().map(|&i| &plans[i]).collect();
        let bounds: Vec<TokenStream> = channels
            .iter()
            .map(|plan| {
                let module = &plan.module;
                let trait_name = plan.ident("Channel");
                quote!(super::#module::#trait_name)
            })
            .collect();
        all_bounds.extend(channels.iter().map(|plan| {
            let module = &plan.module;
            let trait_name = plan.ident("Channel");
            quote!(#module::#trait_name)
        }));
        let endpoint_type = format_ident!("{}Endpoint", endpoint.name);
        let socket = format_ident!("{}Socket", endpoint.name);
        // The channel's own `ADDRESS` when it is the served path (most addresses are).
        let address = if endpoint.path == endpoint.address {
            let module = &channels[0].module;
            quote!(&super::#module::ADDRESS)
        } else {
            let template = template(&endpoint.path);
            quote! {
                static PATH: Template = #template;
                &PATH
            }
        };
        let state_fields: Vec<Ident> = channels
            .iter()
            .map(|plan| format_ident!("{}_state", plan.module.to_string().trim_start_matches("r#")))
            .collect();
        let connects = channels.iter().zip(&state_fields).map(|(plan, state)| {
            let module = &plan.module;
            let trait_name = plan.ident("Channel");
            let params = plan.ident("Params");
            quote! {
                let #state = <S as super::#module::#trait_name>::on_connect(&self.0, handshake, super::#module::#params::from_handshake(handshake)).await?;
            }
        });
        let state_types = channels.iter().zip(&state_fields).map(|(plan, state)| {
            let module = &plan.module;
            let trait_name = plan.ident("Channel");
            quote!(#state: <S as super::#module::#trait_name>::State)
        });
        let hook = |plan: &ChannelPlan, state: &Ident, method: &str, error: bool| {
            let module = &plan.module;
            let trait_name = plan.ident("Channel");
            let connection = plan.ident("Connection");
            let method = format_ident!("{method}");
            let error = error.then(|| quote!(, error));
            quote!(<S as super::#module::#trait_name>::#method(&self.app, &super::#module::#connection::new(connection.clone()), &self.#state #error).await;)
        };
        let opens = channels
            .iter()
            .zip(&state_fields)
            .map(|(plan, state)| hook(plan, state, "on_open", false));
        let closes = channels
            .iter()
            .zip(&state_fields)
            .map(|(plan, state)| hook(plan, state, "on_close", false));
        let receiving: Vec<(&ChannelPlan, &Ident)> = channels
            .iter()
            .copied()
            .zip(&state_fields)
            .filter(|(plan, _)| !plan.inbound.is_empty())
            .collect();
        // What the address receives: its one receiving channel's messages, or an enum of the
        // channels' when several share it; frames no channel accepts go to the first channel
        // that receives anything (or the first channel, whose enum then has no message).
        let (inbound_type, inbound_enum, on_message) = match receiving.as_slice() {
            [] => {
                let module = &channels[0].module;
                let inbound = channels[0].ident("Inbound");
                (
                    quote!(super::#module::#inbound),
                    TokenStream::new(),
                    quote! {
                        let _ = connection;
                        match message {}
                    },
                )
            }
            [(plan, state)] => {
                let module = &plan.module;
                let inbound = plan.ident("Inbound");
                (
                    quote!(super::#module::#inbound),
                    TokenStream::new(),
                    dispatch(contract, plan, state),
                )
            }
            several => {
                let name = format_ident!("{}Inbound", endpoint.name);
                let variants: Vec<Ident> = several
                    .iter()
                    .map(|(plan, _)| format_ident!("{}", plan.pascal))
                    .collect();
                let types: Vec<TokenStream> = several
                    .iter()
                    .map(|(plan, _)| {
                        let module = &plan.module;
                        let inbound = plan.ident("Inbound");
                        quote!(super::#module::#inbound)
                    })
                    .collect();
                // `several` has two channels or more, so there is a last one and one before it.
                let (last_type, earlier_types) = types.split_last().expect("several channels");
                let (last_variant, earlier_variants) =
                    variants.split_last().expect("several channels");
                let doc = format!(
                    "The messages `{}` receives, of each channel there, tried in the contract's order.",
                    endpoint.address
                );
                let arms = several
                    .iter()
                    .zip(&variants)
                    .map(|((plan, state), variant)| {
                        let inner = dispatch(contract, plan, state);
                        quote!(#name::#variant(message) => { #inner })
                    });
                (
                    quote!(#name),
                    quote! {
                        #[doc = #doc]
                        #[allow(clippy::large_enum_variant)]
                        pub(super) enum #name {
                            #(#variants(#types),)*
                        }

                        impl Decode for #name {
                            fn decode(value: Candidate<'_>) -> Result<Self, Vec<Violations>> {
                                let mut violations = Vec::new();
                                #(
                                    match #earlier_types::decode(value.share()) {
                                        Ok(message) => return Ok(Self::#earlier_variants(message)),
                                        Err(mut found) => violations.append(&mut found),
                                    }
                                )*
                                // The last channel to try takes the value.
                                match #last_type::decode(value) {
                                    Ok(message) => Ok(Self::#last_variant(message)),
                                    Err(mut found) => {
                                        violations.append(&mut found);
                                        Err(violations)
                                    }
                                }
                            }
                        }
                    },
                    quote!(match message { #(#arms)* }),
                )
            }
        };
        let (invalid_plan, invalid_state) = receiving
            .first()
            .copied()
            .unwrap_or((channels[0], &state_fields[0]));
        let invalid = hook(invalid_plan, invalid_state, "on_invalid_frame", true);
        let channel_list = channels
            .iter()
            .map(|plan| format!("`{}`", contract.channels[plan.id].key))
            .collect::<Vec<_>>()
            .join(", ");
        let endpoint_doc = format!(
            "Serves `{}` (channels {channel_list}) on the application `S`.",
            endpoint.address
        );
        let socket_doc = format!(
            "One connection to `{}`: the application, and each channel's state.",
            endpoint.address
        );
        items.push(quote! {
            #[doc = #endpoint_doc]
            pub(super) struct #endpoint_type<S>(pub(super) Arc<S>);

            impl<S: #(#bounds)+*> Endpoint for #endpoint_type<S> {
                type Socket = #socket<S>;

                fn address(&self) -> &'static Template {
                    #address
                }

                async fn connect(&self, handshake: &Handshake) -> Result<#socket<S>, Reject> {
                    #(#connects)*
                    Ok(#socket { app: self.0.clone(), #(#state_fields,)* })
                }
            }

            #[doc = #socket_doc]
            pub(super) struct #socket<S: #(#bounds)+*> {
                app: Arc<S>,
                #(#state_types,)*
            }

            #inbound_enum

            impl<S: #(#bounds)+*> SocketHandler for #socket<S> {
                type Inbound = #inbound_type;

                async fn on_open(&self, connection: &Connection) {
                    #(#opens)*
                }

                async fn on_message(
                    &self,
                    connection: &Connection,
                    message: #inbound_type,
                ) -> Option<Reply> {
                    #on_message
                }

                async fn on_invalid(&self, connection: &Connection, error: FrameError) {
                    #invalid
                }

                async fn on_close(&self, connection: &Connection) {
                    #(#closes)*
                }
            }
        });
        let mount_fn = format_ident!("mount_{}", endpoint.name.to_string().to_snake_case());
        let mount_doc = format!(
            "Mounts `{}` (channels {channel_list}) on `route`. [`routes`] mounts every address; \
             this is for a server that serves only some of them.",
            endpoint.address
        );
        let bounds_outer: Vec<TokenStream> = channels
            .iter()
            .map(|plan| {
                let module = &plan.module;
                let trait_name = plan.ident("Channel");
                quote!(#module::#trait_name)
            })
            .collect();
        mounted.push(Mounted {
            route: endpoint.route.clone(),
            mount_fn,
            mount_doc,
            endpoint: endpoint_type,
            bounds: bounds_outer,
        });
    }
    // Addresses that share a route (`TRADE-{a}--{b}` and `TRADE-{a}-{b}` both route as
    // `TRADE-:p0`) are mounted once; each request goes to the first whose address it matches.
    let mut groups: Vec<Vec<&Mounted>> = Vec::new();
    for mount in &mounted {
        match groups.iter_mut().find(|group| {
            group
                .first()
                .is_some_and(|first| first.route == mount.route)
        }) {
            Some(group) => group.push(mount),
            None => groups.push(vec![mount]),
        }
    }
    for group in groups {
        let Some(&first) = group.first() else {
            continue;
        };
        let route = &first.route;
        let mount_fn = &first.mount_fn;
        let bounds: Vec<&TokenStream> = group.iter().flat_map(|mount| &mount.bounds).collect();
        let (doc, body) = match group.as_slice() {
            [] => continue,
            [single] => {
                let endpoint = &single.endpoint;
                (
                    single.mount_doc.clone(),
                    quote! {
                        route.at(#route, ::wfs_runtime::serve::endpoint(endpoints::#endpoint(app), config))
                    },
                )
            }
            [earlier @ .., last] => {
                let several = group.as_slice();
                let tries = earlier.iter().map(|mount| {
                    let endpoint = &mount.endpoint;
                    quote! {
                        let endpoint = endpoints::#endpoint(app.clone());
                        if ::wfs_runtime::serve::Endpoint::address(&endpoint).parse(request.uri().path()).is_some() {
                            return ::wfs_runtime::serve::serve(&endpoint, config, request).await;
                        }
                    }
                });
                let last_endpoint = &last.endpoint;
                let docs: Vec<String> = several.iter().map(|m| m.mount_doc.clone()).collect();
                (
                    format!(
                        "{}\n\nThese addresses share one route; a request goes to the first it matches.",
                        docs.join("\n\n")
                    ),
                    quote! {
                        route.at(#route, ::wfs_runtime::poem::get(::wfs_runtime::poem::endpoint::make(move |request: ::wfs_runtime::poem::Request| {
                            let (app, config) = (app.clone(), config.clone());
                            async move {
                                #(#tries)*
                                ::wfs_runtime::serve::serve(&endpoints::#last_endpoint(app), config, request).await
                            }
                        })))
                    },
                )
            }
        };
        mount_fns.push(quote! {
            #[doc = #doc]
            pub fn #mount_fn<S>(route: ::wfs_runtime::poem::Route, app: ::std::sync::Arc<S>, config: ::std::sync::Arc<::wfs_runtime::Config>) -> ::wfs_runtime::poem::Route
            where S: #(#bounds)+*
            {
                #body
            }
        });
        mounts.push(mount_fn.clone());
    }
    let bounds_clause = if all_bounds.is_empty() {
        quote!(S: ::std::marker::Send + ::std::marker::Sync + 'static)
    } else {
        quote!(S: #(#all_bounds)+*)
    };
    // Each mount takes the route so far; the last one takes `app` and `config` too.
    let routes_body = match mounts.split_last() {
        None => quote! {
            let _ = (app, config);
            ::wfs_runtime::poem::Route::new()
        },
        Some((last, earlier)) => quote! {
            let route = ::wfs_runtime::poem::Route::new();
            #(let route = #earlier(route, app.clone(), config.clone());)*
            #last(route, app, config)
        },
    };
    let endpoints_module = if items.is_empty() {
        TokenStream::new()
    } else {
        quote! {
            /// One endpoint and socket handler per channel address.
            mod endpoints {
                use ::wfs_runtime::prelude::*;

                #(#items)*
            }
        }
    };
    quote! {
        #endpoints_module

        #(#mount_fns)*

        /// Mounts every channel with an address on a poem `Route`, each at its address.
        pub fn routes<S>(app: ::std::sync::Arc<S>, config: ::std::sync::Arc<::wfs_runtime::Config>) -> ::wfs_runtime::poem::Route
        where #bounds_clause
        {
            #routes_body
        }
    }
}

/// What mounting one endpoint takes.
struct Mounted {
    route: String,
    mount_fn: Ident,
    mount_doc: String,
    /// Its type in `mod endpoints`.
    endpoint: Ident,
    bounds: Vec<TokenStream>,
}

/// The `match` of a decoded message of one channel to the method of its operation, and what
/// happens to the method's result: the reply it evaluates to, for the socket loop to write; or
/// nothing, after the close an error asks for.
fn dispatch(contract: &Contract, plan: &ChannelPlan, state: &Ident) -> TokenStream {
    let module = &plan.module;
    let trait_name = plan.ident("Channel");
    let inbound = plan.ident("Inbound");
    let connection_type = plan.ident("Connection");
    let receive_ops: Vec<&Operation> = contract
        .operations_on(plan.id)
        .filter(|o| o.action == Action::Receive)
        .collect();
    let arms = plan.inbound.iter().map(|&message| {
        let variant = variant_ident(contract, message);
        let Some(operation) = receive_ops.iter().find(|o| o.messages.contains(&message)) else {
            return quote!(super::#module::#inbound::#variant(_) => None,);
        };
        let method = method_ident(&operation.key);
        // The operation's own enum boxes like the channel's (both hold several messages).
        let argument = if operation.messages.len() > 1 {
            let op_enum = format_ident!("{}Message", operation.key.to_upper_camel_case());
            quote!(super::#module::#op_enum::#variant(message))
        } else if plan.boxed(message, &plan.inbound) {
            quote!(*message)
        } else {
            quote!(message)
        };
        // A reply of one message is its payload type (or `Value` without a schema), a reply of
        // several is the operation's reply enum: each is a frame's message, checked the same way.
        let call = quote! {
            <S as super::#module::#trait_name>::#method(&self.app, &typed, &self.#state, #argument).await
        };
        // Where request and reply both declare a correlation id, the reply must carry the
        // request's (checked in debug builds, like the contract check of every frame).
        let correlation = operation
            .reply
            .as_ref()
            .and_then(|reply| operation_correlation(contract, &operation.messages, &reply.messages));
        match (&operation.reply, correlation) {
            (None, _) => quote! {
                super::#module::#inbound::#variant(message) => {
                    let outcome = #call;
                    handled(connection, outcome)
                }
            },
            (Some(_), None) => quote! {
                super::#module::#inbound::#variant(message) => {
                    let outcome = #call;
                    reply(connection, outcome)
                }
            },
            (Some(_), Some((request_pointer, reply_pointer))) => quote! {
                super::#module::#inbound::#variant(message) => {
                    let correlation = Correlation::of(&message, #request_pointer, #reply_pointer);
                    let outcome = #call;
                    reply_correlated(connection, outcome, correlation)
                }
            },
        }
    });
    quote! {
        let typed = super::#module::#connection_type::new(connection.clone());
        match message {
            #(#arms)*
        }
    }
}

/// The JSON pointer of a message's correlation id in its payload: its `correlationId`'s
/// `location`, when that is `$message.payload#/...` (an id in a header cannot travel in a
/// WebSocket frame).
fn correlation_pointer(contract: &Contract, message: MessageId) -> Option<String> {
    let location = contract.messages[message]
        .correlation_id
        .as_ref()?
        .get("location")?
        .as_str()?;
    location
        .strip_prefix("$message.payload#")
        .map(str::to_owned)
}

/// The one pointer every message of `messages` keeps its correlation id at, if they all do.
fn shared_pointer(contract: &Contract, messages: &[MessageId]) -> Option<String> {
    let mut pointers = messages
        .iter()
        .map(|&message| correlation_pointer(contract, message));
    let first = pointers.next()??;
    pointers
        .all(|pointer| pointer.as_deref() == Some(first.as_str()))
        .then_some(first)
}

/// Where a receive operation's request and every message of its reply keep the correlation id
/// (request pointer, reply pointer), when both sides declare one.
fn operation_correlation(
    contract: &Contract,
    request: &[MessageId],
    reply: &[MessageId],
) -> Option<(String, String)> {
    Some((
        shared_pointer(contract, request)?,
        shared_pointer(contract, reply)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_schema_of_annotations_asserts_nothing() {
        for schema in [
            json!(true),
            json!({}),
            json!({"description": "Any JSON.", "examples": [1, "a"], "x-note": 1}),
        ] {
            assert!(asserts_nothing(&schema), "{schema}");
        }
        // Each of these refuses some value, so a frame must be checked against it.
        for schema in [
            json!(false),
            json!({"not": {"type": "null"}}),
            json!({"description": "Text.", "format": "uuid"}),
            json!({"if": {"type": "object"}, "then": {"required": ["a"]}}),
            json!({"minLength": 1}),
        ] {
            assert!(!asserts_nothing(&schema), "{schema}");
        }
    }

    #[test]
    fn urls_are_served_at_their_path() {
        assert_eq!(served_path("https://example.com/books/{id}"), "/books/{id}");
        assert_eq!(served_path("wss://example.com"), "/");
        assert_eq!(served_path("/ws/v1/echo"), "/ws/v1/echo");
        assert_eq!(served_path("lights.{id}.on"), "/lights.{id}.on");
    }

    #[test]
    fn segments_with_parameters_route_by_their_text_before_the_first_one() {
        assert_eq!(route_of("/rooms/{id}"), "/rooms/:p1");
        assert_eq!(
            route_of("/markets/TRADE-{a}--{b}--{c}"),
            "/markets/TRADE-:p1"
        );
        assert_eq!(route_of("/c{type}/x"), "/c:p0/x");
        assert_eq!(route_of("/urn:thing"), "/urn:p0");
        assert_eq!(route_of("/plain.text"), "/plain.text");
    }
}
