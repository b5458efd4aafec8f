//! HTML documentation of a contract: one self-contained page.
//!
//! [`render`] turns a [`Contract`] into a single HTML page with inline CSS, no external assets
//! and every fact visible without JavaScript (a tiny inline script only adds a search filter).
//! It is what `cargo xtask docs` writes into `docs/index.html`, and what the server can serve at
//! `/docs`: it needs nothing but the loaded contract and is deterministic (same contract,
//! byte-identical page), so a rendered page can be cached or compared.
//!
//! The work is split so each part stays readable: this module builds a plain view of the
//! contract (anchors, directions, links between operations, messages and schemas), `schema`
//! turns JSON Schemas into flat property tables and generated examples, `markdown` renders
//! descriptions safely, and the minijinja template in `templates/` only lays the view out.

mod markdown;
mod schema;

use std::collections::BTreeSet;

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use serde_json::Value;

use crate::model::{Action, Contract, ExternalDocs, Message, SchemaId, Tag};
use schema::{Row, Tables, json_inline};

const PAGE: &str = include_str!("templates/page.html");
const STYLE: &str = include_str!("templates/style.css");
const SCRIPT: &str = include_str!("templates/search.js");

/// Why a page could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The contract could not be loaded.
    #[error(transparent)]
    Contract(#[from] crate::Error),
    /// The template failed (a bug in the template, not in the contract).
    #[error("docs template: {0:#}")]
    Template(#[from] minijinja::Error),
}

/// Renders the documentation page of a loaded contract.
pub fn render(contract: &Contract) -> Result<String, Error> {
    let page = Builder::new(contract).page();
    let mut env = Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    // The default escaper also turns `/` into `&#x2f;`, which only bloats URLs and addresses;
    // `& < > "` are enough for text and for attribute values (always in double quotes).
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(text) if !value.is_safe() && *state.auto_escape() == AutoEscape::Html => {
            Ok(out.write_str(&schema::escape(text))?)
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    // Text-only positions (examples, JSON values) need no quote escaping: `|text` keeps the
    // page lighter there.
    env.add_filter("text", |value: &str| {
        minijinja::Value::from_safe_string(schema::escape_text(value))
    });
    env.add_template("page.html", PAGE)?;
    let template = env.get_template("page.html")?;
    Ok(template.render(minijinja::Value::from(Serde(&page)))?)
}

/// Loads the contract at `path` and renders its page.
pub fn render_file(path: impl AsRef<std::path::Path>) -> Result<String, Error> {
    let contract = Contract::load(path)?;
    render(&contract)
}

/// Unique, URL-friendly element ids.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    used: BTreeSet<String>,
}

impl Ids {
    /// A slug of `text` not handed out before (`-2`, `-3` ... are appended when needed).
    pub fn unique(&mut self, text: &str) -> String {
        let mut slug = String::new();
        for c in text.chars().flat_map(char::to_lowercase) {
            if c.is_alphanumeric() || c == '_' {
                slug.push(c);
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
        }
        let slug = slug.trim_end_matches('-');
        let slug = if slug.is_empty() { "section" } else { slug };
        let mut candidate = slug.to_owned();
        let mut counter = 2;
        while self.used.contains(&candidate) {
            candidate = format!("{slug}-{counter}");
            counter += 1;
        }
        self.used.insert(candidate.clone());
        candidate
    }
}

type Html = minijinja::Value;

#[derive(Serialize)]
struct Page {
    title: String,
    version: String,
    asyncapi: String,
    id: Option<String>,
    description_html: Option<Html>,
    terms_of_service: Option<String>,
    contact: Option<ContactView>,
    license: Option<LinkView>,
    tags: Vec<TagView>,
    external_docs: Option<LinkView>,
    default_content_type: Option<String>,
    /// Whether the overview section has anything to show.
    has_overview: bool,
    servers: Vec<ServerView>,
    channels: Vec<ChannelView>,
    messages: Vec<MessageView>,
    schemas: Vec<SchemaView>,
    security: Vec<SecurityView>,
    style: Html,
    script: Html,
}

#[derive(Serialize)]
struct ContactView {
    name: Option<String>,
    url: Option<String>,
    email: Option<String>,
}

#[derive(Serialize, Clone)]
struct LinkView {
    label: String,
    url: Option<String>,
    description_html: Option<Html>,
}

#[derive(Serialize, Clone)]
struct TagView {
    name: String,
    description_html: Option<Html>,
    url: Option<String>,
}

/// A link to another section of the page.
#[derive(Serialize, Clone)]
struct Ref {
    id: String,
    label: String,
    /// A few words after the link (a direction, a scheme's kind ...).
    detail: Option<String>,
}

#[derive(Serialize)]
struct ServerView {
    id: String,
    key: String,
    url: String,
    protocol: String,
    protocol_version: Option<String>,
    title: Option<String>,
    summary: Option<Html>,
    description_html: Option<Html>,
    variables: Vec<VariableView>,
    security: Vec<Ref>,
    tags: Vec<TagView>,
    bindings: Option<String>,
}

#[derive(Serialize)]
struct VariableView {
    name: String,
    default: Option<String>,
    enum_values: Vec<String>,
    examples: Vec<String>,
    description_html: Option<Html>,
}

#[derive(Serialize)]
struct ChannelView {
    id: String,
    key: String,
    address: Option<String>,
    title: Option<String>,
    summary: Option<Html>,
    description_html: Option<Html>,
    /// Full URLs on the WebSocket servers, with the required query parameters.
    urls: Vec<String>,
    servers: Vec<Ref>,
    parameters: Vec<ParameterView>,
    ws_method: Option<String>,
    ws_version: Option<String>,
    ws_query: Option<Table>,
    ws_headers: Option<Table>,
    bindings: Option<String>,
    tags: Vec<TagView>,
    external_docs: Option<LinkView>,
    messages: Vec<Ref>,
    operations: Vec<OperationView>,
    /// Operation links by direction, for the at-a-glance table.
    incoming: Vec<Ref>,
    outgoing: Vec<Ref>,
}

#[derive(Serialize)]
struct ParameterView {
    name: String,
    description_html: Option<Html>,
    enum_values: Vec<String>,
    default: Option<String>,
    examples: Vec<String>,
    location: Option<String>,
    type_label: Option<String>,
}

#[derive(Serialize)]
struct OperationView {
    id: String,
    key: String,
    /// `client → server` or `server → client`.
    direction: &'static str,
    /// `in` or `out`, for styling.
    direction_class: &'static str,
    title: Option<String>,
    summary: Option<Html>,
    description_html: Option<Html>,
    messages: Vec<Ref>,
    reply: Option<ReplyView>,
    security: Vec<Ref>,
    tags: Vec<TagView>,
    bindings: Option<String>,
    external_docs: Option<LinkView>,
}

#[derive(Serialize)]
struct ReplyView {
    direction: &'static str,
    direction_class: &'static str,
    channel: Option<Ref>,
    address: Option<String>,
    messages: Vec<Ref>,
}

#[derive(Serialize)]
struct MessageView {
    id: String,
    key: String,
    name: Option<String>,
    title: Option<String>,
    summary: Option<Html>,
    description_html: Option<Html>,
    content_type: Option<String>,
    deprecated: bool,
    tags: Vec<TagView>,
    correlation_id: Option<CorrelationView>,
    used_by: Vec<Ref>,
    headers: Option<Table>,
    payload: Option<Table>,
    /// A payload written in another schema format (Avro, RAML ...): its format and text.
    payload_foreign: Option<ForeignView>,
    examples: Vec<ExampleView>,
}

#[derive(Serialize)]
struct ForeignView {
    format: String,
    text: String,
}

#[derive(Serialize)]
struct CorrelationView {
    location: Option<String>,
    description_html: Option<Html>,
}

#[derive(Serialize)]
struct ExampleView {
    name: Option<String>,
    summary: Option<Html>,
    payload: Option<String>,
    headers: Option<String>,
    generated: bool,
}

/// A schema shown as a line about itself and a table of what is inside.
#[derive(Serialize)]
struct Table {
    /// The named schema, when it is one.
    name: Option<String>,
    link: Option<String>,
    root: Row,
    rows: Vec<Row>,
}

#[derive(Serialize)]
struct SchemaView {
    id: String,
    name: String,
    /// Messages whose payload or headers this schema is (their table is shown there).
    used_as: Vec<Ref>,
    table: Option<Table>,
}

#[derive(Serialize)]
struct SecurityView {
    id: String,
    key: String,
    kind: String,
    summary: String,
    description_html: Option<Html>,
    name: Option<String>,
    location: Option<String>,
    scheme: Option<String>,
    bearer_format: Option<String>,
    other: Option<String>,
    used_by: Vec<Ref>,
}

struct Builder<'a> {
    contract: &'a Contract,
    ids: Ids,
    server_ids: Vec<String>,
    channel_ids: Vec<String>,
    operation_ids: Vec<String>,
    message_ids: Vec<String>,
    /// (schema id, anchor) of the component schemas, which get their own section.
    schema_ids: Vec<(SchemaId, String)>,
    security_ids: Vec<String>,
}

impl<'a> Builder<'a> {
    fn new(contract: &'a Contract) -> Builder<'a> {
        let mut ids = Ids::default();
        for fixed in [
            "top", "info", "glance", "servers", "channels", "messages", "schemas", "security",
            "search",
        ] {
            ids.unique(fixed);
        }
        let server_ids = contract
            .servers
            .iter()
            .map(|server| ids.unique(&format!("server-{}", server.key)))
            .collect();
        let channel_ids = contract
            .channels
            .iter()
            .map(|channel| ids.unique(&format!("channel-{}", channel.key)))
            .collect();
        let operation_ids = contract
            .operations
            .iter()
            .map(|operation| ids.unique(&format!("operation-{}", operation.key)))
            .collect();
        let message_ids = contract
            .messages
            .iter()
            .map(|message| ids.unique(&format!("message-{}", message.key)))
            .collect();
        let schema_ids = contract
            .schemas
            .iter()
            .enumerate()
            .filter(|(_, schema)| schema.component.is_some())
            .map(|(index, schema)| (index, ids.unique(&format!("schema-{}", schema.name))))
            .collect();
        let security_ids = contract
            .security_schemes
            .iter()
            .map(|scheme| ids.unique(&format!("security-{}", scheme.key)))
            .collect();
        Builder {
            contract,
            ids,
            server_ids,
            channel_ids,
            operation_ids,
            message_ids,
            schema_ids,
            security_ids,
        }
    }

    fn page(mut self) -> Page {
        let contract = self.contract;
        let info = &contract.info;
        let description_html = info
            .description
            .as_deref()
            .map(|text| self.markdown(text, 1, "info"));
        let servers = (0..contract.servers.len())
            .map(|index| self.server(index))
            .collect();
        let channels = (0..contract.channels.len())
            .map(|index| self.channel(index))
            .collect();
        let messages = (0..contract.messages.len())
            .map(|index| self.message(index))
            .collect();
        let schemas = self
            .schema_ids
            .clone()
            .into_iter()
            .map(|(index, id)| self.schema(index, id))
            .collect();
        let security = (0..contract.security_schemes.len())
            .map(|index| self.security(index))
            .collect();
        let tags = self.tags(&info.tags);
        let external_docs = self.external_docs(info.external_docs.as_ref());
        Page {
            title: info.title.clone(),
            version: info.version.clone(),
            asyncapi: contract.asyncapi.clone(),
            id: contract.id.clone(),
            description_html,
            terms_of_service: info.terms_of_service.clone(),
            contact: info.contact.as_ref().map(|contact| ContactView {
                name: contact.name.clone(),
                url: contact.url.clone(),
                email: contact.email.clone(),
            }),
            license: info.license.as_ref().map(|license| LinkView {
                label: license.name.clone(),
                url: license.url.clone(),
                description_html: None,
            }),
            tags,
            external_docs,
            default_content_type: contract.default_content_type.clone(),
            has_overview: info.description.is_some()
                || info.contact.is_some()
                || info.license.is_some()
                || info.terms_of_service.is_some()
                || info.external_docs.is_some()
                || !info.tags.is_empty(),
            servers,
            channels,
            messages,
            schemas,
            security,
            style: Html::from_safe_string(STYLE.to_owned()),
            script: Html::from_safe_string(SCRIPT.to_owned()),
        }
    }

    fn markdown(&mut self, text: &str, shift: usize, prefix: &str) -> Html {
        Html::from_safe_string(markdown::to_html(text, shift, prefix, &mut self.ids))
    }

    fn markdown_opt(&mut self, text: Option<&str>, shift: usize, prefix: &str) -> Option<Html> {
        text.map(|text| self.markdown(text, shift, prefix))
    }

    fn inline(&mut self, text: Option<&str>) -> Option<Html> {
        text.map(|text| Html::from_safe_string(markdown::inline_html(text, &mut self.ids)))
    }

    fn tags(&mut self, tags: &[Tag]) -> Vec<TagView> {
        tags.iter()
            .map(|tag| TagView {
                name: tag.name.clone(),
                description_html: self.inline(tag.description.as_deref()),
                url: tag.external_docs.as_ref().map(|docs| docs.url.clone()),
            })
            .collect()
    }

    fn external_docs(&mut self, docs: Option<&ExternalDocs>) -> Option<LinkView> {
        docs.map(|docs| LinkView {
            label: docs.url.clone(),
            url: Some(docs.url.clone()),
            description_html: self.inline(docs.description.as_deref()),
        })
    }

    fn security_refs(&self, keys: &[String]) -> Vec<Ref> {
        keys.iter()
            .map(|key| {
                match self
                    .contract
                    .security_schemes
                    .iter()
                    .position(|scheme| &scheme.key == key)
                {
                    Some(index) => Ref {
                        id: self.security_ids[index].clone(),
                        label: key.clone(),
                        detail: Some(security_summary(&self.contract.security_schemes[index])),
                    },
                    None => Ref {
                        id: String::new(),
                        label: key.clone(),
                        detail: None,
                    },
                }
            })
            .collect()
    }

    fn message_ref(&self, id: usize) -> Ref {
        let message = &self.contract.messages[id];
        Ref {
            id: self.message_ids[id].clone(),
            label: message_label(message),
            detail: message.title.clone(),
        }
    }

    fn server(&mut self, index: usize) -> ServerView {
        let server = &self.contract.servers[index];
        let variables = server
            .variables
            .iter()
            .map(|variable| VariableView {
                name: variable.name.clone(),
                default: variable.default.clone(),
                enum_values: variable.enum_values.clone(),
                examples: variable.examples.clone(),
                description_html: self.inline(variable.description.as_deref()),
            })
            .collect();
        let id = self.server_ids[index].clone();
        ServerView {
            description_html: self.markdown_opt(server.description.as_deref(), 4, &id),
            id,
            key: server.key.clone(),
            url: server_url(server),
            protocol: server.protocol.clone(),
            protocol_version: server.protocol_version.clone(),
            title: server.title.clone(),
            summary: self.inline(server.summary.as_deref()),
            variables,
            security: self.security_refs(&server.security),
            tags: self.tags(&server.tags),
            bindings: server.bindings.as_ref().map(json_pretty),
        }
    }

    fn channel(&mut self, index: usize) -> ChannelView {
        let contract = self.contract;
        let channel = &contract.channels[index];
        let id = self.channel_ids[index].clone();
        let tables = self.tables_anchors();
        let anchors = |name: &str| tables(name);
        let table_of = |builder: &mut Builder<'_>, value: &Value| -> Table {
            let tables = Tables {
                contract,
                anchors: &anchors,
            };
            Table {
                name: None,
                link: None,
                root: tables.root(value, &mut builder.ids),
                rows: tables.rows(value, None, &mut builder.ids),
            }
        };
        let ws_query = channel
            .ws
            .as_ref()
            .and_then(|ws| ws.query.as_ref())
            .map(|value| table_of(self, value));
        let ws_headers = channel
            .ws
            .as_ref()
            .and_then(|ws| ws.headers.as_ref())
            .map(|value| table_of(self, value));
        // The ws binding is shown as tables; other bindings (and the ws binding's version)
        // are shown as written.
        let bindings = channel.bindings.as_ref().and_then(|bindings| {
            let mut bindings = bindings.clone();
            if let Some(Value::Object(ws)) = bindings.get_mut("ws") {
                for shown in ["query", "headers", "method", "bindingVersion"] {
                    ws.remove(shown);
                }
            }
            if let Value::Object(map) = &mut bindings {
                map.retain(|_, value| value.as_object().is_none_or(|inner| !inner.is_empty()));
                if map.is_empty() {
                    return None;
                }
            }
            Some(json_pretty(&bindings))
        });
        let parameters = channel
            .parameters
            .iter()
            .map(|parameter| ParameterView {
                name: parameter.name.clone(),
                description_html: self.inline(parameter.description.as_deref()),
                enum_values: parameter.enum_values.clone(),
                default: parameter.default.clone(),
                examples: parameter.examples.clone(),
                location: parameter.location.clone(),
                type_label: parameter.schema.as_ref().map(|schema| {
                    Tables {
                        contract,
                        anchors: &anchors,
                    }
                    .type_label(schema)
                }),
            })
            .collect();
        // No `servers` on a channel means every server: say which, as the reader cannot guess.
        let server_keys: Vec<String> = if channel.servers.is_empty() {
            contract
                .servers
                .iter()
                .map(|server| server.key.clone())
                .collect()
        } else {
            channel.servers.clone()
        };
        let servers = server_keys
            .iter()
            .map(|key| {
                let position = contract
                    .servers
                    .iter()
                    .position(|server| &server.key == key);
                Ref {
                    id: position
                        .map(|index| self.server_ids[index].clone())
                        .unwrap_or_default(),
                    label: key.clone(),
                    detail: None,
                }
            })
            .collect();
        let mut operations = Vec::new();
        let mut incoming = Vec::new();
        let mut outgoing = Vec::new();
        for (op_index, operation) in contract.operations.iter().enumerate() {
            if operation.channel != index {
                continue;
            }
            let view = self.operation(op_index);
            let link = Ref {
                id: view.id.clone(),
                label: operation.key.clone(),
                detail: None,
            };
            match operation.action {
                Action::Receive => incoming.push(link),
                Action::Send => outgoing.push(link),
            }
            operations.push(view);
        }
        ChannelView {
            description_html: self.markdown_opt(channel.description.as_deref(), 4, &id),
            urls: channel_urls(contract, index),
            id,
            key: channel.key.clone(),
            address: channel.address.clone(),
            title: channel.title.clone(),
            summary: self.inline(channel.summary.as_deref()),
            servers,
            parameters,
            ws_method: channel.ws.as_ref().and_then(|ws| ws.method.clone()),
            ws_version: channel
                .bindings
                .as_ref()
                .and_then(|bindings| bindings.pointer("/ws/bindingVersion"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            ws_query,
            ws_headers,
            bindings,
            tags: self.tags(&channel.tags),
            external_docs: self.external_docs(channel.external_docs.as_ref()),
            messages: channel
                .messages
                .iter()
                .map(|(_, id)| self.message_ref(*id))
                .collect(),
            operations,
            incoming,
            outgoing,
        }
    }

    fn operation(&mut self, index: usize) -> OperationView {
        let operation = &self.contract.operations[index];
        let id = self.operation_ids[index].clone();
        let (direction, direction_class) = direction(operation.action);
        let reply = operation.reply.as_ref().map(|reply| {
            // A reply goes the other way.
            let back = match operation.action {
                Action::Receive => Action::Send,
                Action::Send => Action::Receive,
            };
            let (direction, direction_class) = self::direction(back);
            ReplyView {
                direction,
                direction_class,
                channel: reply.channel.map(|channel| Ref {
                    id: self.channel_ids[channel].clone(),
                    label: self.contract.channels[channel].key.clone(),
                    detail: self.contract.channels[channel].address.clone(),
                }),
                address: reply.address.clone(),
                messages: reply
                    .messages
                    .iter()
                    .map(|&id| self.message_ref(id))
                    .collect(),
            }
        });
        OperationView {
            description_html: self.markdown_opt(operation.description.as_deref(), 5, &id),
            id,
            key: operation.key.clone(),
            direction,
            direction_class,
            title: operation.title.clone(),
            summary: self.inline(operation.summary.as_deref()),
            messages: operation
                .messages
                .iter()
                .map(|&id| self.message_ref(id))
                .collect(),
            reply,
            security: self.security_refs(&operation.security),
            tags: self.tags(&operation.tags),
            bindings: operation.bindings.as_ref().map(json_pretty),
            external_docs: self.external_docs(operation.external_docs.as_ref()),
        }
    }

    /// Anchor lookup for named schemas with their own section.
    fn tables_anchors(&self) -> impl Fn(&str) -> Option<String> + use<'a> {
        let contract = self.contract;
        let schema_ids = self.schema_ids.clone();
        move |name: &str| {
            schema_ids
                .iter()
                .find(|(index, _)| contract.schemas[*index].name == name)
                .map(|(_, id)| id.clone())
        }
    }

    fn schema_table(&mut self, schema: SchemaId) -> Table {
        let contract = self.contract;
        let anchors = self.tables_anchors();
        let tables = Tables {
            contract,
            anchors: &anchors,
        };
        let named = &contract.schemas[schema];
        Table {
            name: Some(named.name.clone()),
            link: anchors(&named.name),
            root: tables.root(&named.value, &mut self.ids),
            rows: tables.rows(&named.value, Some(&named.name), &mut self.ids),
        }
    }

    fn message(&mut self, index: usize) -> MessageView {
        let contract = self.contract;
        let message = &contract.messages[index];
        let id = self.message_ids[index].clone();
        let mut used_by = Vec::new();
        for (op_index, operation) in contract.operations.iter().enumerate() {
            let (direction, _) = direction(operation.action);
            if operation.messages.contains(&index) {
                used_by.push(Ref {
                    id: self.operation_ids[op_index].clone(),
                    label: operation.key.clone(),
                    detail: Some(direction.to_owned()),
                });
            }
            if let Some(reply) = &operation.reply
                && reply.messages.contains(&index)
            {
                let back = match operation.action {
                    Action::Receive => Action::Send,
                    Action::Send => Action::Receive,
                };
                used_by.push(Ref {
                    id: self.operation_ids[op_index].clone(),
                    label: format!("{} (reply)", operation.key),
                    detail: Some(self::direction(back).0.to_owned()),
                });
            }
        }
        // A schema written in another format is shown as written, not as its JSON Schema.
        let payload_foreign = message.foreign_payload.as_ref().map(|foreign| ForeignView {
            format: foreign.format.clone(),
            text: json_pretty(&foreign.schema),
        });
        let payload = match payload_foreign {
            Some(_) => None,
            None => message.payload.map(|schema| self.schema_table(schema)),
        };
        let headers = message.headers.map(|schema| self.schema_table(schema));
        let examples = if message.examples.is_empty() {
            let anchors = self.tables_anchors();
            let tables = Tables {
                contract,
                anchors: &anchors,
            };
            let payload = message
                .payload
                .map(|schema| json_pretty(&example_of(&tables, contract, schema)));
            let headers = message
                .headers
                .map(|schema| json_pretty(&example_of(&tables, contract, schema)));
            if payload.is_some() || headers.is_some() {
                vec![ExampleView {
                    name: None,
                    summary: None,
                    payload,
                    headers,
                    generated: true,
                }]
            } else {
                Vec::new()
            }
        } else {
            message
                .examples
                .iter()
                .map(|example| ExampleView {
                    name: example.name.clone(),
                    summary: self.inline(example.summary.as_deref()),
                    payload: example.payload.as_ref().map(json_pretty),
                    headers: example.headers.as_ref().map(json_pretty),
                    generated: false,
                })
                .collect()
        };
        let correlation_id = message
            .correlation_id
            .as_ref()
            .map(|value| CorrelationView {
                location: value
                    .get("location")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                description_html: self.inline(value.get("description").and_then(Value::as_str)),
            });
        MessageView {
            description_html: self.markdown_opt(message.description.as_deref(), 4, &id),
            id,
            key: message.key.clone(),
            name: message.name.clone(),
            title: message.title.clone(),
            summary: self.inline(message.summary.as_deref()),
            content_type: message
                .content_type
                .clone()
                .or_else(|| contract.default_content_type.clone()),
            deprecated: message.deprecated,
            tags: self.tags(&message.tags),
            correlation_id,
            used_by,
            headers,
            payload,
            payload_foreign,
            examples,
        }
    }

    fn schema(&mut self, index: SchemaId, id: String) -> SchemaView {
        let contract = self.contract;
        let mut used_as = Vec::new();
        for (message_index, message) in contract.messages.iter().enumerate() {
            for (part, schema) in [("payload", message.payload), ("headers", message.headers)] {
                if schema == Some(index) {
                    used_as.push(Ref {
                        id: self.message_ids[message_index].clone(),
                        label: message_label(message),
                        detail: Some(part.to_owned()),
                    });
                }
            }
        }
        // A message's payload is shown in full with the message; here a link is enough.
        let table = used_as.is_empty().then(|| self.schema_table(index));
        SchemaView {
            id,
            name: contract.schemas[index].name.clone(),
            used_as,
            table,
        }
    }

    fn security(&mut self, index: usize) -> SecurityView {
        let contract = self.contract;
        let scheme = &contract.security_schemes[index];
        let id = self.security_ids[index].clone();
        let mut used_by = Vec::new();
        for (server_index, server) in contract.servers.iter().enumerate() {
            if server.security.contains(&scheme.key) {
                used_by.push(Ref {
                    id: self.server_ids[server_index].clone(),
                    label: format!("server {}", server.key),
                    detail: None,
                });
            }
        }
        for (op_index, operation) in contract.operations.iter().enumerate() {
            if operation.security.contains(&scheme.key) {
                used_by.push(Ref {
                    id: self.operation_ids[op_index].clone(),
                    label: operation.key.clone(),
                    detail: None,
                });
            }
        }
        let other = match &scheme.raw {
            Value::Object(map) => {
                let mut rest = map.clone();
                for known in [
                    "type",
                    "description",
                    "name",
                    "in",
                    "scheme",
                    "bearerFormat",
                ] {
                    rest.remove(known);
                }
                (!rest.is_empty()).then(|| json_pretty(&Value::Object(rest)))
            }
            _ => None,
        };
        SecurityView {
            description_html: self.markdown_opt(scheme.description.as_deref(), 4, &id),
            id,
            key: scheme.key.clone(),
            kind: scheme.kind.clone(),
            summary: security_summary(scheme),
            name: scheme.name.clone(),
            location: scheme.location.clone(),
            scheme: scheme.scheme.clone(),
            bearer_format: scheme.bearer_format.clone(),
            other,
            used_by,
        }
    }
}

/// The direction of an operation, said plainly, for a server-side contract: what the
/// application receives comes from a client.
fn direction(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Receive => ("client → server", "in"),
        Action::Send => ("server → client", "out"),
    }
}

fn message_label(message: &Message) -> String {
    message.name.clone().unwrap_or_else(|| message.key.clone())
}

fn security_summary(scheme: &crate::model::SecurityScheme) -> String {
    let mut text = scheme.kind.clone();
    match (scheme.name.as_deref(), scheme.location.as_deref()) {
        (Some(name), Some(location)) => text.push_str(&format!(" in {location}: {name}")),
        (None, Some(location)) => text.push_str(&format!(" in {location}")),
        _ => {}
    }
    if let Some(scheme_name) = &scheme.scheme {
        text.push_str(&format!(" ({scheme_name}"));
        if let Some(format) = &scheme.bearer_format {
            text.push_str(&format!(", {format}"));
        }
        text.push(')');
    }
    text
}

fn server_url(server: &crate::model::Server) -> String {
    let host = server.host.trim_end_matches('/');
    let path = server.pathname.as_deref().unwrap_or("");
    if server.protocol.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{}://{host}{path}", server.protocol)
    }
}

/// The URLs a WebSocket client opens for a channel: one per `ws`/`wss` server it is on, with
/// the required query parameters of its `ws` binding as `{placeholders}`.
fn channel_urls(contract: &Contract, index: usize) -> Vec<String> {
    let channel = &contract.channels[index];
    let Some(address) = &channel.address else {
        return Vec::new();
    };
    let query: Vec<String> = channel
        .ws
        .as_ref()
        .and_then(|ws| ws.query.as_ref())
        .and_then(|query| query.get("required"))
        .and_then(Value::as_array)
        .map(|required| {
            required
                .iter()
                .filter_map(Value::as_str)
                .map(|name| format!("{name}={{{name}}}"))
                .collect()
        })
        .unwrap_or_default();
    contract
        .servers
        .iter()
        .filter(|server| matches!(server.protocol.as_str(), "ws" | "wss"))
        .filter(|server| channel.servers.is_empty() || channel.servers.contains(&server.key))
        .map(|server| {
            let base = server_url(server);
            let base = base.trim_end_matches('/');
            let separator = if address.starts_with('/') { "" } else { "/" };
            // A 2.x channel named by a URL is that URL (and is served at its path).
            let mut url = if address.contains("://") {
                address.clone()
            } else {
                format!("{base}{separator}{address}")
            };
            if !query.is_empty() {
                url.push('?');
                url.push_str(&query.join("&"));
            }
            url
        })
        .collect()
}

fn example_of(tables: &Tables<'_>, contract: &Contract, schema: SchemaId) -> Value {
    let named = &contract.schemas[schema];
    tables.example(&named.value, Some(&named.name))
}

fn json_pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| json_inline(value))
}
