//! The AsyncAPI model: one parsed, resolved and checked view of a contract.
//!
//! Rust generation, the HTML docs and the run-time validators all read this model, so they can
//! never disagree about what a contract says. AsyncAPI 2.x documents are normalised into the
//! 3.x shape here (`publish` becomes a `receive` operation: in 2.x it names what the application
//! consumes), so the generators only know one shape.
//!
//! Every `$ref` is resolved while loading. Schemas are the exception to full inlining: each
//! schema that is referenced (or is a message payload) becomes one named [`Schema`], and the
//! references inside schema values are rewritten to `#/definitions/<name>`, which lets
//! recursive schemas stay finite and gives every type a stable name.

mod avro;
mod files;
mod schemas;
mod v2;
mod v3;
/// The YAML loader that keeps where every node is (line and column), for located problems.
pub mod yaml;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use self::yaml::Position;
use crate::error::{Diagnostic, Error, Result};
use files::{Loc, Sources};
use schemas::Registry;

/// Index of a [`Schema`] in [`Contract::schemas`].
pub type SchemaId = usize;
/// Index of a [`Message`] in [`Contract::messages`].
pub type MessageId = usize;
/// Index of a [`Channel`] in [`Contract::channels`].
pub type ChannelId = usize;

/// A loaded AsyncAPI document.
#[derive(Debug, Clone)]
pub struct Contract {
    /// Every file read, the root first (for `cargo::rerun-if-changed`).
    pub files: Vec<PathBuf>,
    /// The `asyncapi` version as written (`3.0.0`, `2.6.0`, ...).
    pub asyncapi: String,
    /// The `id` of the application (a URI), when the document gives one.
    pub id: Option<String>,
    /// What the document says about the API: title, version, description, contact, license.
    pub info: Info,
    /// `defaultContentType`: the content type of messages that name none.
    pub default_content_type: Option<String>,
    /// The servers the API is offered on, in document order.
    pub servers: Vec<Server>,
    /// Every channel, in document order; [`ChannelId`]s index it.
    pub channels: Vec<Channel>,
    /// Every operation (3.x `operations`, or 2.x `publish`/`subscribe` turned into 3.x form).
    pub operations: Vec<Operation>,
    /// Every message, shared ones once; [`MessageId`]s index it.
    pub messages: Vec<Message>,
    /// Named schemas: component schemas, message payloads and headers, and every other schema
    /// some `$ref` points at, in the order first met.
    pub schemas: Vec<Schema>,
    /// `components/securitySchemes`, which servers and operations name by key.
    pub security_schemes: Vec<SecurityScheme>,
    /// What loading found worth a maintainer's attention without refusing the document (a
    /// parameter the address does not use ...), located, in file and line order.
    pub warnings: Vec<Diagnostic>,
    /// Where every node of every file is, to locate problems found after loading.
    maps: Vec<(PathBuf, yaml::SourceMap)>,
}

/// Where a part of the contract was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file it is in (the root document or one a `$ref` reached).
    pub file: PathBuf,
    /// Its JSON pointer (RFC 6901) in that file.
    pub pointer: String,
    /// Its line and column in that file.
    pub position: Position,
}

/// The `info` object: what the document says about the API.
#[derive(Debug, Clone, Default)]
pub struct Info {
    /// The API's name.
    pub title: String,
    /// The API's version (not the AsyncAPI version).
    pub version: String,
    /// CommonMark text about the API, for the docs.
    pub description: Option<String>,
    /// A URL to the terms of service.
    pub terms_of_service: Option<String>,
    /// Who to contact about the API.
    pub contact: Option<Contact>,
    /// The license the API is offered under.
    pub license: Option<License>,
    /// Tags grouping the document's operations, for the docs.
    pub tags: Vec<Tag>,
    /// More documentation elsewhere.
    pub external_docs: Option<ExternalDocs>,
}

/// Who to contact about the API.
#[derive(Debug, Clone, Default)]
pub struct Contact {
    /// The person or organisation.
    pub name: Option<String>,
    /// A URL to reach them.
    pub url: Option<String>,
    /// An e-mail address.
    pub email: Option<String>,
}

/// The license the API is offered under.
#[derive(Debug, Clone, Default)]
pub struct License {
    /// The license's name (`Apache 2.0`, ...).
    pub name: String,
    /// A URL to its text.
    pub url: Option<String>,
}

/// A tag, grouping operations or channels in the docs.
#[derive(Debug, Clone, Default)]
pub struct Tag {
    /// The tag as other parts name it.
    pub name: String,
    /// CommonMark text about it, for the docs.
    pub description: Option<String>,
    /// More documentation elsewhere.
    pub external_docs: Option<ExternalDocs>,
}

/// A link to documentation outside the document.
#[derive(Debug, Clone, Default)]
pub struct ExternalDocs {
    /// Where the documentation is.
    pub url: String,
    /// CommonMark text about it.
    pub description: Option<String>,
}

/// One server the API is offered on (`servers`).
#[derive(Debug, Clone)]
pub struct Server {
    /// The server's key under `servers`.
    pub key: String,
    /// Host and port, possibly with `{variables}` (2.x `url`s are split into host and path).
    pub host: String,
    /// `ws`, `wss`, `mqtt`, `kafka`, ...
    pub protocol: String,
    /// The protocol's version, when it matters.
    pub protocol_version: Option<String>,
    /// The path part of the server's URL, if any.
    pub pathname: Option<String>,
    /// A short human-readable name.
    pub title: Option<String>,
    /// A one-line summary.
    pub summary: Option<String>,
    /// CommonMark text about the server, for the docs.
    pub description: Option<String>,
    /// The `{variables}` of `host` and `pathname`, with their values.
    pub variables: Vec<ServerVariable>,
    /// Keys of [`Contract::security_schemes`].
    pub security: Vec<String>,
    /// Tags, for the docs.
    pub tags: Vec<Tag>,
    /// Its protocol bindings as written (resolved), for the docs.
    pub bindings: Option<Value>,
    /// Where it is written, to locate problems about it.
    pub origin: Origin,
}

/// A `{variable}` of a server's host or path.
#[derive(Debug, Clone)]
pub struct ServerVariable {
    /// The name between braces in the server's host or path.
    pub name: String,
    /// The value to use when none is given.
    pub default: Option<String>,
    /// The values allowed; empty means any.
    pub enum_values: Vec<String>,
    /// CommonMark text about it.
    pub description: Option<String>,
    /// Example values, for the docs.
    pub examples: Vec<String>,
}

/// A channel: an address messages travel on, with its parameters and binding.
#[derive(Debug, Clone)]
pub struct Channel {
    /// The channel's key under `channels` (for 2.x documents, derived from the address).
    pub key: String,
    /// `None` when the address is unknown or dynamic (`address: null`).
    pub address: Option<String>,
    /// A short human-readable name.
    pub title: Option<String>,
    /// A one-line summary.
    pub summary: Option<String>,
    /// CommonMark text about the channel: the generated module's doc and the docs page.
    pub description: Option<String>,
    /// The `{parameters}` of its address, which the generated `<Channel>Params` reads.
    pub parameters: Vec<Parameter>,
    /// The channel's messages with their keys in the channel.
    pub messages: Vec<(String, MessageId)>,
    /// Keys of the servers it is available on; empty means all.
    pub servers: Vec<String>,
    /// The WebSocket binding: the handshake's query parameters and headers, when declared.
    pub ws: Option<WsBinding>,
    /// All bindings as written (resolved), for the docs.
    pub bindings: Option<Value>,
    /// Tags, for the docs.
    pub tags: Vec<Tag>,
    /// More documentation elsewhere.
    pub external_docs: Option<ExternalDocs>,
    /// Where it is written, to locate problems about it.
    pub origin: Origin,
}

/// An `{name}` in a channel address.
#[derive(Debug, Clone)]
pub struct Parameter {
    /// The name between braces in the address.
    pub name: String,
    /// CommonMark text about it: the generated field's doc.
    pub description: Option<String>,
    /// The values allowed (3.x `enum`); empty means any.
    pub enum_values: Vec<String>,
    /// The value to use when none is given.
    pub default: Option<String>,
    /// Example values, for the docs.
    pub examples: Vec<String>,
    /// A runtime expression saying where the value comes from (`$message.payload#/id`).
    pub location: Option<String>,
    /// 2.x parameters carry a schema; 3.x ones are always strings.
    pub schema: Option<Value>,
    /// Where it is written, to locate problems about it.
    pub origin: Origin,
}

/// The `ws` channel binding: what the handshake carries.
#[derive(Debug, Clone)]
pub struct WsBinding {
    /// The HTTP method of the handshake (`GET`), when the binding says.
    pub method: Option<String>,
    /// Object schema of the query parameters, fully resolved (no `$ref` left).
    pub query: Option<Value>,
    /// Object schema of the handshake headers, fully resolved.
    pub headers: Option<Value>,
    /// Where the query schema is written, to locate problems in it.
    pub query_origin: Option<Origin>,
    /// Where the headers schema is written, to locate problems in it.
    pub headers_origin: Option<Origin>,
}

/// The direction of an operation, from the application's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The application sends (server to client, for a server).
    Send,
    /// The application receives (client to server, for a server).
    Receive,
}

/// An operation: the application sends or receives messages on a channel.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The operation's key under `operations` (its id); for 2.x the `operationId` or one derived.
    pub key: String,
    /// Who sends: the application or the other side.
    pub action: Action,
    /// The channel it happens on.
    pub channel: ChannelId,
    /// The messages it carries: those listed, or every message of its channel when none are.
    pub messages: Vec<MessageId>,
    /// The reply, for a request/reply operation: what the application answers with.
    pub reply: Option<Reply>,
    /// A short human-readable name.
    pub title: Option<String>,
    /// A one-line summary: the start of the generated method's doc.
    pub summary: Option<String>,
    /// CommonMark text about it: the generated method's doc.
    pub description: Option<String>,
    /// Keys of [`Contract::security_schemes`].
    pub security: Vec<String>,
    /// Tags, for the docs.
    pub tags: Vec<Tag>,
    /// Its protocol bindings as written (resolved), for the docs.
    pub bindings: Option<Value>,
    /// More documentation elsewhere.
    pub external_docs: Option<ExternalDocs>,
    /// Where it is written, to locate problems about it.
    pub origin: Origin,
}

/// The reply of a request/reply operation.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The channel the reply goes on; `None` means the operation's own channel.
    pub channel: Option<ChannelId>,
    /// The messages the reply may be; every message of its channel when none are listed.
    pub messages: Vec<MessageId>,
    /// A runtime expression or address where the reply goes, when not on the channel.
    pub address: Option<String>,
}

/// A message: a payload schema, headers and what the docs show.
#[derive(Debug, Clone)]
pub struct Message {
    /// A unique key: the key under `components/messages`, or the key in its channel.
    pub key: String,
    /// A machine-friendly name (`name`), when given.
    pub name: Option<String>,
    /// A short human-readable name.
    pub title: Option<String>,
    /// A one-line summary: the generated variant's doc.
    pub summary: Option<String>,
    /// CommonMark text about it, for the docs.
    pub description: Option<String>,
    /// Its content type, when not the document's default.
    pub content_type: Option<String>,
    /// The schema of its payload, as JSON Schema; `None` for any JSON value.
    pub payload: Option<SchemaId>,
    /// The payload schema as written when it is not JSON Schema (Avro, RAML, Protobuf ...),
    /// for the docs. An Avro payload also has its JSON Schema in [`Message::payload`]; any
    /// other format has none, and cannot become Rust.
    pub foreign_payload: Option<ForeignSchema>,
    /// The schema of its headers, when it has any.
    pub headers: Option<SchemaId>,
    /// How a reply is matched to its request (`correlationId`, as written).
    pub correlation_id: Option<Value>,
    /// Example payloads, for the docs and the checks that they match the schema.
    pub examples: Vec<Example>,
    /// Tags, for the docs.
    pub tags: Vec<Tag>,
    /// Whether the message is deprecated (the docs say so).
    pub deprecated: bool,
    /// Where it is written, to locate problems about it.
    pub origin: Origin,
}

/// A schema in another format than JSON Schema, as written.
#[derive(Debug, Clone)]
pub struct ForeignSchema {
    /// The `schemaFormat` as written (`application/vnd.apache.avro;version=1.9.0`, ...).
    pub format: String,
    /// The schema as written, for the docs.
    pub schema: Value,
    /// Where it is written, to locate problems about it.
    pub origin: Origin,
}

impl ForeignSchema {
    /// Whether it is an Avro schema (which has a JSON Schema equivalent).
    pub fn is_avro(&self) -> bool {
        Format::of(&self.format) == Format::Avro
    }
}

/// An example of a message.
#[derive(Debug, Clone)]
pub struct Example {
    /// The example's name, for the docs.
    pub name: Option<String>,
    /// A one-line summary, for the docs.
    pub summary: Option<String>,
    /// An example payload, checked against the message's schema when loading.
    pub payload: Option<Value>,
    /// Example headers.
    pub headers: Option<Value>,
}

/// A named schema. References inside [`Schema::value`] read `#/definitions/<name>`.
#[derive(Debug, Clone)]
pub struct Schema {
    /// Unique, a valid Rust type name.
    pub name: String,
    /// The key under `components/schemas`, when it is a component schema.
    pub component: Option<String>,
    /// The JSON Schema, with references rewritten to `#/definitions/<name>`.
    pub value: Value,
    /// Where it is written, to locate problems about it.
    pub origin: Origin,
}

/// How clients authenticate (`components/securitySchemes`).
#[derive(Debug, Clone)]
pub struct SecurityScheme {
    /// Its key under `components/securitySchemes`, as servers and operations name it.
    pub key: String,
    /// The `type` field: `httpApiKey`, `http`, `userPassword`, `oauth2`, ...
    pub kind: String,
    /// CommonMark text about it, for the docs.
    pub description: Option<String>,
    /// For `httpApiKey`: the parameter or header name.
    pub name: Option<String>,
    /// For `apiKey` and `httpApiKey`: where it goes (`query`, `header`, `cookie`, `user`, ...).
    pub location: Option<String>,
    /// For `http`: the scheme (`bearer`, `basic`).
    pub scheme: Option<String>,
    /// For `http` with `bearer`: the token's format (`JWT`), a hint for the docs.
    pub bearer_format: Option<String>,
    /// Everything as written (flows, URLs ...), for the docs.
    pub raw: Value,
    /// Where it is written, to locate problems about it.
    pub origin: Origin,
}

impl Contract {
    /// Reads a contract and every file it references. All problems found are returned together.
    pub fn load(path: impl AsRef<Path>) -> Result<Contract> {
        Contract::load_with_warnings(path).0
    }

    /// Like [`Contract::load`], but the warnings are returned beside the result, so they are
    /// kept also when the document is refused (`load` only has them inside the contract).
    ///
    /// A checker that shows every finding at once (`asyncapi-rs check`, an editor) wants both
    /// the errors and the warnings of a broken document. The warnings are in file and line
    /// order; when the contract loads they equal [`Contract::warnings`]. A document that cannot
    /// be read or parsed at all has none.
    pub fn load_with_warnings(path: impl AsRef<Path>) -> (Result<Contract>, Vec<Diagnostic>) {
        match Sources::open(path.as_ref()) {
            Ok(sources) => Builder::new(sources).build(),
            Err(error) => (Err(error), Vec::new()),
        }
    }

    /// Reads a contract from text; `path` names it in diagnostics and anchors relative `$ref`s.
    pub fn from_text(path: impl AsRef<Path>, text: &str) -> Result<Contract> {
        let sources = Sources::from_text(path.as_ref(), text)?;
        Builder::new(sources).build().0
    }

    /// The named schema `name` (a Rust type name, as [`Schema::name`] holds it).
    pub fn schema_by_name(&self, name: &str) -> Option<&Schema> {
        self.schemas.iter().find(|schema| schema.name == name)
    }

    /// The schema a `#/definitions/<name>` reference inside a schema value points to.
    pub fn schema_by_ref(&self, reference: &str) -> Option<&Schema> {
        reference
            .strip_prefix("#/definitions/")
            .and_then(|name| self.schema_by_name(name))
    }

    /// The line and column of `pointer` in `file` (or of its nearest existing ancestor).
    pub fn locate(&self, file: &Path, pointer: &str) -> Position {
        self.maps
            .iter()
            .find(|(path, _)| path == file)
            .map(|(_, map)| map.nearest(pointer))
            .unwrap_or(Position { line: 1, column: 1 })
    }

    /// A diagnostic at `pointer` in `file`.
    pub fn diagnostic(&self, file: &Path, pointer: &str, message: impl Into<String>) -> Diagnostic {
        let position = self.locate(file, pointer);
        Diagnostic {
            file: file.to_path_buf(),
            line: position.line,
            column: position.column,
            pointer: pointer.to_owned(),
            message: message.into(),
        }
    }

    /// The operations on a channel, in document order.
    pub fn operations_on(&self, channel: ChannelId) -> impl Iterator<Item = &Operation> {
        self.operations
            .iter()
            .filter(move |operation| operation.channel == channel)
    }

    /// A self-contained JSON Schema (draft-07) for a named schema: the schema plus every
    /// definition it reaches, so a validator needs nothing else.
    pub fn bundled_schema(&self, id: SchemaId) -> Value {
        schemas::bundle(&self.schemas, id)
    }
}

/// Shared state of the front ends while a document is turned into a [`Contract`].
pub(crate) struct Builder {
    sources: Sources,
    registry: Registry,
    messages: Vec<Message>,
    /// Where each message was defined, to share one [`Message`] between channels.
    message_locs: Vec<Loc>,
}

impl Builder {
    fn new(sources: Sources) -> Builder {
        Builder {
            sources,
            registry: Registry::default(),
            messages: Vec::new(),
            message_locs: Vec::new(),
        }
    }

    /// The contract, or every problem found; and the warnings either way.
    fn build(mut self) -> (Result<Contract>, Vec<Diagnostic>) {
        let root = self.sources.root();
        let version = match self.sources.get(&root) {
            Some(Value::Object(map)) => map.get("asyncapi").cloned(),
            _ => {
                self.sources
                    .error(&root, "an AsyncAPI document must be a mapping (an object)");
                return self.refused();
            }
        };
        let version = version.as_ref().and_then(Value::as_str).map(str::to_owned);
        let parts = match version.as_deref() {
            Some(v) if v.starts_with("3.0.") || v.starts_with("3.1.") => v3::build(&mut self),
            Some(v) if v.starts_with("2.") => v2::build(&mut self),
            Some(v) => {
                self.sources.error(
                    &root.child("asyncapi"),
                    format!(
                        "AsyncAPI version `{v}` is not supported (supported: 2.0 to 2.6, 3.0, 3.1)"
                    ),
                );
                None
            }
            None => {
                self.sources.error(
                    &root.child("asyncapi"),
                    "missing `asyncapi` version string (for example `asyncapi: 3.0.0`)",
                );
                None
            }
        };
        match parts {
            Some(parts) if self.sources.diagnostics.is_empty() => {
                let contract = self.finish(version.unwrap_or_default(), parts);
                let warnings = contract.warnings.clone();
                (Ok(contract), warnings)
            }
            _ => self.refused(),
        }
    }

    /// The problems found so far as the error, and the warnings, both in file and line order.
    fn refused(&mut self) -> (Result<Contract>, Vec<Diagnostic>) {
        let mut diagnostics = std::mem::take(&mut self.sources.diagnostics);
        diagnostics.sort();
        diagnostics.dedup();
        let mut warnings = std::mem::take(&mut self.sources.warnings);
        warnings.sort();
        warnings.dedup();
        (Err(Error::Contract(diagnostics)), warnings)
    }

    fn origin(&self, loc: &Loc) -> Origin {
        let diagnostic: Diagnostic = self.sources.diagnostic(loc, String::new());
        Origin {
            file: diagnostic.file,
            pointer: diagnostic.pointer,
            position: Position {
                line: diagnostic.line,
                column: diagnostic.column,
            },
        }
    }

    fn finish(mut self, asyncapi: String, root_parts: RootParts) -> Contract {
        let mut warnings = std::mem::take(&mut self.sources.warnings);
        warnings.sort();
        warnings.dedup();
        Contract {
            warnings,
            files: self.sources.paths(),
            maps: self.sources.maps(),
            asyncapi,
            id: root_parts.id,
            info: root_parts.info,
            default_content_type: root_parts.default_content_type,
            servers: root_parts.servers,
            channels: root_parts.channels,
            operations: root_parts.operations,
            messages: self.messages,
            schemas: self.registry.into_schemas(),
            security_schemes: root_parts.security_schemes,
        }
    }

    // ---- reading helpers shared by the front ends ----

    /// The object at `loc` after following references; records a problem if it is not an object.
    fn object(&mut self, loc: &Loc, what: &str) -> Option<(Loc, serde_json::Map<String, Value>)> {
        let target = self.sources.deref(loc)?;
        match self.sources.get(&target) {
            Some(Value::Object(map)) => Some((target, map.clone())),
            Some(other) => {
                let kind = kind_of(other);
                self.sources
                    .error(loc, format!("{what} must be a mapping, found {kind}"));
                None
            }
            None => None,
        }
    }

    fn string(
        &mut self,
        loc: &Loc,
        map: &serde_json::Map<String, Value>,
        key: &str,
    ) -> Option<String> {
        match map.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            other => {
                let kind = kind_of(other);
                self.sources.error(
                    &loc.child(key),
                    format!("`{key}` must be a string, found {kind}"),
                );
                None
            }
        }
    }

    fn required_string(
        &mut self,
        loc: &Loc,
        map: &serde_json::Map<String, Value>,
        key: &str,
        what: &str,
    ) -> String {
        match self.string(loc, map, key) {
            Some(s) => s,
            None => {
                if !map.contains_key(key) {
                    self.sources
                        .error(loc, format!("{what} is missing its required `{key}`"));
                }
                String::new()
            }
        }
    }

    fn tags(&mut self, loc: &Loc, map: &serde_json::Map<String, Value>) -> Vec<Tag> {
        let Some(Value::Array(items)) = map.get("tags") else {
            return Vec::new();
        };
        let tags_loc = loc.child("tags");
        let mut tags = Vec::new();
        for index in 0..items.len() {
            if let Some((tag_loc, tag)) = self.object(&tags_loc.index(index), "a tag") {
                let name = self.required_string(&tag_loc, &tag, "name", "a tag");
                tags.push(Tag {
                    name,
                    description: self.string(&tag_loc, &tag, "description"),
                    external_docs: self.external_docs(&tag_loc, &tag),
                });
            }
        }
        tags
    }

    fn external_docs(
        &mut self,
        loc: &Loc,
        map: &serde_json::Map<String, Value>,
    ) -> Option<ExternalDocs> {
        map.get("externalDocs")?;
        let (docs_loc, docs) = self.object(&loc.child("externalDocs"), "`externalDocs`")?;
        Some(ExternalDocs {
            url: self.required_string(&docs_loc, &docs, "url", "`externalDocs`"),
            description: self.string(&docs_loc, &docs, "description"),
        })
    }

    fn info(&mut self, root: &Loc, map: &serde_json::Map<String, Value>) -> Info {
        if !map.contains_key("info") {
            self.sources
                .error(root, "the document is missing its required `info` object");
            return Info::default();
        }
        let Some((loc, info)) = self.object(&root.child("info"), "`info`") else {
            return Info::default();
        };
        let contact = match info.get("contact") {
            Some(_) => {
                self.object(&loc.child("contact"), "`contact`")
                    .map(|(contact_loc, contact)| Contact {
                        name: self.string(&contact_loc, &contact, "name"),
                        url: self.string(&contact_loc, &contact, "url"),
                        email: self.string(&contact_loc, &contact, "email"),
                    })
            }
            None => None,
        };
        let license = match info.get("license") {
            Some(_) => {
                self.object(&loc.child("license"), "`license`")
                    .map(|(license_loc, license)| License {
                        name: self.required_string(&license_loc, &license, "name", "`license`"),
                        url: self.string(&license_loc, &license, "url"),
                    })
            }
            None => None,
        };
        // 3.x moved tags and externalDocs into info; 2.x keeps them at the root.
        let (tags, external_docs) =
            if info.contains_key("tags") || info.contains_key("externalDocs") {
                (self.tags(&loc, &info), self.external_docs(&loc, &info))
            } else {
                (self.tags(root, map), self.external_docs(root, map))
            };
        Info {
            title: self.required_string(&loc, &info, "title", "`info`"),
            version: self.required_string(&loc, &info, "version", "`info`"),
            description: self.string(&loc, &info, "description"),
            terms_of_service: self.string(&loc, &info, "termsOfService"),
            contact,
            license,
            tags,
            external_docs,
        }
    }

    /// A fully resolved copy of a value (no `$ref` left); used for bindings, parameters and
    /// examples, which are shown or read as data and never become types.
    fn resolved(&mut self, loc: &Loc) -> Option<Value> {
        let mut stack = Vec::new();
        self.resolved_inner(loc, &mut stack)
    }

    fn resolved_inner(&mut self, loc: &Loc, stack: &mut Vec<Loc>) -> Option<Value> {
        let target = self.sources.deref(loc)?;
        if stack.contains(&target) {
            // A recursive structure cannot be inlined; keep the reference as written.
            return Some(serde_json::json!({ "$ref": format!("#{}", target.pointer) }));
        }
        stack.push(target.clone());
        let value = match self.sources.get(&target)?.clone() {
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for key in map.keys() {
                    if let Some(value) = self.resolved_inner(&target.child(key), stack) {
                        out.insert(key.clone(), value);
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                (0..items.len())
                    .filter_map(|index| self.resolved_inner(&target.index(index), stack))
                    .collect(),
            ),
            other => other,
        };
        stack.pop();
        Some(value)
    }

    /// The security scheme objects listed at `loc` (3.x: a list of schemes or references to them).
    fn security_schemes_component(&mut self, components: Option<&Loc>) -> Vec<SecurityScheme> {
        let Some(components) = components else {
            return Vec::new();
        };
        let loc = components.child("securitySchemes");
        let Some(Value::Object(map)) = self.sources.get(&loc).cloned() else {
            return Vec::new();
        };
        let mut schemes = Vec::new();
        for key in map.keys() {
            if let Some(scheme) = self.security_scheme(&loc.child(key), key) {
                schemes.push(scheme);
            }
        }
        schemes
    }

    fn security_scheme(&mut self, loc: &Loc, key: &str) -> Option<SecurityScheme> {
        let (target, map) = self.object(loc, "a security scheme")?;
        let kind = self.required_string(&target, &map, "type", "a security scheme");
        const KINDS: &[&str] = &[
            "userPassword",
            "apiKey",
            "X509",
            "symmetricEncryption",
            "asymmetricEncryption",
            "httpApiKey",
            "http",
            "oauth2",
            "openIdConnect",
            "plain",
            "scramSha256",
            "scramSha512",
            "gssapi",
        ];
        if !kind.is_empty() && !KINDS.contains(&kind.as_str()) {
            self.sources.error(
                &target.child("type"),
                format!(
                    "unknown security scheme type `{kind}` (expected one of {})",
                    KINDS.join(", ")
                ),
            );
        }
        let location = self.string(&target, &map, "in");
        if kind == "httpApiKey" {
            if !map.contains_key("name") {
                self.sources
                    .error(&target, "an `httpApiKey` security scheme needs a `name`");
            }
            if !matches!(location.as_deref(), Some("query" | "header" | "cookie")) {
                self.sources.error(
                    &target.child("in"),
                    "an `httpApiKey` security scheme needs `in: query`, `in: header` or `in: cookie`",
                );
            }
        }
        Some(SecurityScheme {
            key: key.to_owned(),
            kind,
            description: self.string(&target, &map, "description"),
            name: self.string(&target, &map, "name"),
            location,
            scheme: self.string(&target, &map, "scheme"),
            bearer_format: self.string(&target, &map, "bearerFormat"),
            raw: self.resolved(&target).unwrap_or(Value::Null),
            origin: self.origin(&target),
        })
    }

    /// Registers (once) the message defined at `loc` and returns its id.
    fn message(&mut self, loc: &Loc, key_hint: &str, v2: bool) -> Option<MessageId> {
        let target = self.sources.deref(loc)?;
        if let Some(index) = self.message_locs.iter().position(|l| *l == target) {
            return Some(index);
        }
        let (_, own) = self.object(&target, "a message")?;
        let (merged, field_locs) = self.apply_traits(&target, own, v2);
        let owner = |key: &str| {
            field_locs
                .get(key)
                .cloned()
                .unwrap_or_else(|| target.clone())
        };
        let field_loc = |key: &str| owner(key).child(key);
        let key = self.unique_message_key(key_hint);
        let name = self.string(&target, &merged, "name");
        let type_hint = name.clone().unwrap_or_else(|| key.clone());

        let payload_format = merged
            .get("schemaFormat")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (payload, foreign_payload) = match merged.get("payload") {
            Some(_) => {
                self.message_schema(&target.child("payload"), &type_hint, payload_format, "")
            }
            None => (None, None),
        };
        let headers = match merged.get("headers") {
            Some(_) => {
                self.message_schema(&field_loc("headers"), &type_hint, None, "Headers")
                    .0
            }
            None => None,
        };
        let examples = self.examples(&owner("examples"), &merged);
        let message = Message {
            key,
            name,
            title: self.string(&target, &merged, "title"),
            summary: self.string(&target, &merged, "summary"),
            description: self.string(&target, &merged, "description"),
            content_type: self.string(&target, &merged, "contentType"),
            payload,
            foreign_payload,
            headers,
            correlation_id: match merged.get("correlationId") {
                Some(_) => self.resolved(&field_loc("correlationId")),
                None => None,
            },
            examples,
            tags: self.tags(&target, &merged),
            deprecated: merged
                .get("deprecated")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            origin: self.origin(&target),
        };
        self.messages.push(message);
        self.message_locs.push(target);
        Some(self.messages.len() - 1)
    }

    fn unique_message_key(&self, hint: &str) -> String {
        let mut key = hint.to_owned();
        let mut counter = 2;
        while self.messages.iter().any(|m| m.key == key) {
            key = format!("{hint}{counter}");
            counter += 1;
        }
        key
    }

    /// Merges message or operation traits (JSON merge patch): in 3.x the object's own fields
    /// win over its traits; in 2.x the traits are applied over the object, in order. Also says
    /// which object (the message or one of its traits) each top-level field was taken from, so a `headers` schema that came from a trait is read (and
    /// reported) at the trait.
    fn apply_traits(
        &mut self,
        loc: &Loc,
        own: serde_json::Map<String, Value>,
        v2: bool,
    ) -> (serde_json::Map<String, Value>, HashMap<String, Loc>) {
        let mut sources: HashMap<String, Loc> =
            own.keys().map(|key| (key.clone(), loc.clone())).collect();
        let Some(Value::Array(traits)) = own.get("traits") else {
            return (own, sources);
        };
        let mut merged = serde_json::Map::new();
        if v2 {
            merged = own.clone();
        }
        for index in 0..traits.len() {
            if let Some((trait_loc, trait_map)) =
                self.object(&loc.child("traits").index(index), "a trait")
            {
                for key in trait_map.keys() {
                    if v2 || !own.contains_key(key) {
                        sources.insert(key.clone(), trait_loc.clone());
                    }
                }
                merge_patch(&mut merged, &trait_map);
            }
        }
        if !v2 {
            merge_patch(&mut merged, &own);
        }
        merged.remove("traits");
        (merged, sources)
    }

    /// A payload or headers schema: a multi-format schema object (3.x) or a plain schema. JSON
    /// Schema, AsyncAPI and OpenAPI schemas are registered as they are (OpenAPI's `nullable`
    /// rewritten); an Avro schema is converted to JSON Schema and kept as written for the docs;
    /// any other format is only kept as written (the docs show it, the Rust generator refuses it).
    fn message_schema(
        &mut self,
        loc: &Loc,
        type_hint: &str,
        v2_format: Option<String>,
        suffix: &str,
    ) -> (Option<SchemaId>, Option<ForeignSchema>) {
        let Some(target) = self.sources.deref(loc) else {
            return (None, None);
        };
        let (schema_loc, format) = match self.sources.get(&target) {
            Some(Value::Object(map))
                if map.contains_key("schemaFormat") && map.contains_key("schema") =>
            {
                let format = map
                    .get("schemaFormat")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                (target.child("schema"), format)
            }
            _ => (target.clone(), v2_format),
        };
        let name = format!("{}{suffix}", heck_pascal(type_hint));
        let kind = format.as_deref().map_or(Format::JsonSchema, Format::of);
        if kind == Format::JsonSchema {
            return (
                self.registry.intern(&mut self.sources, &schema_loc, &name),
                None,
            );
        }
        // Keyed by where the schema is written (after references), so a shared `.avsc` file
        // gives one set of types.
        let Some(at) = self.sources.deref(&schema_loc) else {
            return (None, None);
        };
        let foreign = Some(ForeignSchema {
            format: format.clone().unwrap_or_default(),
            schema: self.resolved(&at).unwrap_or(Value::Null),
            origin: self.origin(&at),
        });
        let id = match kind {
            Format::OpenApi => {
                let first = self.registry.len();
                let id = self.registry.intern(&mut self.sources, &schema_loc, &name);
                let last = self.registry.len();
                self.registry.openapi_to_json_schema(first..last);
                return (id, None);
            }
            Format::Avro => foreign
                .as_ref()
                .and_then(|foreign| self.avro(&at, &foreign.schema, &name)),
            _ => None,
        };
        (id, foreign)
    }

    /// Registers an Avro schema (and each named type in it) as JSON Schema.
    fn avro(&mut self, loc: &Loc, schema: &Value, name: &str) -> Option<SchemaId> {
        let fail = |b: &mut Builder, why: String| {
            b.sources
                .error(loc, format!("not a valid Avro schema: {why}"));
            None
        };
        let named = match avro::named_types(schema) {
            Ok(named) => named,
            Err(why) => return fail(self, why),
        };
        let mut names = HashMap::new();
        let mut fresh = Vec::new();
        for (index, ty) in named.iter().enumerate() {
            // A made-up place below the schema keys each named type; diagnostics walk up to it.
            let type_loc = loc.child(&format!("avro:{}", ty.full_name));
            // Named after the Avro type itself (`com.acme.User` is `User`).
            let short = ty.full_name.rsplit('.').next().unwrap_or(&ty.full_name);
            let (id, new) = self
                .registry
                .reserve(&self.sources, &type_loc, &heck_pascal(short));
            names.insert(ty.full_name.clone(), self.registry.name(id).to_owned());
            if new {
                fresh.push((id, index));
            }
        }
        let converter = avro::Converter { names: &names };
        for (id, index) in fresh {
            match converter.definition(&named[index]) {
                Ok(value) => self.registry.set_value(id, value),
                Err(why) => return fail(self, why),
            }
        }
        let root = match converter.schema(schema, None) {
            Ok(root) => root,
            Err(why) => return fail(self, why),
        };
        // A payload that is a named type (a record, most often) is that type's schema.
        if let Some(name) = root
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| reference.strip_prefix("#/definitions/"))
        {
            return self.registry_id(name);
        }
        let (id, new) = self.registry.reserve(&self.sources, loc, name);
        if new {
            self.registry.set_value(id, root);
        }
        Some(id)
    }

    fn registry_id(&self, name: &str) -> Option<SchemaId> {
        (0..self.registry.len()).find(|&id| self.registry.name(id) == name)
    }

    fn examples(&mut self, loc: &Loc, map: &serde_json::Map<String, Value>) -> Vec<Example> {
        let Some(Value::Array(items)) = map.get("examples") else {
            return Vec::new();
        };
        let mut examples = Vec::new();
        for index in 0..items.len() {
            let example_loc = loc.child("examples").index(index);
            if let Some((target, example)) = self.object(&example_loc, "a message example") {
                examples.push(Example {
                    name: self.string(&target, &example, "name"),
                    summary: self.string(&target, &example, "summary"),
                    payload: match example.get("payload") {
                        Some(_) => self.resolved(&target.child("payload")),
                        None => None,
                    },
                    headers: match example.get("headers") {
                        Some(_) => self.resolved(&target.child("headers")),
                        None => None,
                    },
                });
            }
        }
        examples
    }

    /// Registers every message under `components/messages`: those no channel uses still
    /// become types and docs.
    fn component_messages(&mut self, components: Option<&Loc>, v2: bool) {
        let Some(components) = components else {
            return;
        };
        let messages_loc = components.child("messages");
        if let Some(Value::Object(messages)) = self.sources.get(&messages_loc).cloned() {
            for key in messages.keys() {
                self.message(&messages_loc.child(key), key, v2);
            }
        }
    }

    /// Interns every schema under `components/schemas`, first, so they keep their own names.
    fn component_schemas(&mut self, components: Option<&Loc>) {
        let Some(components) = components else {
            return;
        };
        let loc = components.child("schemas");
        let Some(Value::Object(map)) = self.sources.get(&loc).cloned() else {
            return;
        };
        for key in map.keys() {
            let schema_loc = loc.child(key);
            self.registry
                .intern_component(&mut self.sources, &schema_loc, key);
        }
    }

    fn ws_binding(
        &mut self,
        channel_loc: &Loc,
        channel: &serde_json::Map<String, Value>,
    ) -> Option<WsBinding> {
        channel.get("bindings")?;
        let (bindings_loc, bindings) = self.object(&channel_loc.child("bindings"), "`bindings`")?;
        bindings.get("ws")?;
        let (ws_loc, ws) = self.object(&bindings_loc.child("ws"), "the `ws` binding")?;
        for key in ws.keys() {
            if !matches!(
                key.as_str(),
                "method" | "query" | "headers" | "bindingVersion"
            ) {
                self.sources.error(
                    &ws_loc.child(key),
                    format!("the `ws` channel binding has no field `{key}` (it has method, query, headers, bindingVersion)"),
                );
            }
        }
        let mut part = |name: &str| -> (Option<Value>, Option<Origin>) {
            if !ws.contains_key(name) {
                return (None, None);
            }
            let loc = ws_loc.child(name);
            let Some(target) = self.sources.deref(&loc) else {
                return (None, None);
            };
            let value = self.resolved(&target);
            if let Some(value) = &value {
                let is_object = value.get("type").and_then(Value::as_str) == Some("object")
                    || value.get("properties").is_some();
                if !is_object {
                    self.sources.error(
                        &loc,
                        format!(
                            "the `ws` binding's `{name}` must be an object schema with `properties`"
                        ),
                    );
                }
            }
            (value, Some(self.origin(&target)))
        };
        let (query, query_origin) = part("query");
        let (headers, headers_origin) = part("headers");
        Some(WsBinding {
            method: self.string(&ws_loc, &ws, "method"),
            query,
            headers,
            query_origin,
            headers_origin,
        })
    }
}

/// What a front end reads from outside the message and schema registries.
pub(crate) struct RootParts {
    pub id: Option<String>,
    pub info: Info,
    pub default_content_type: Option<String>,
    pub servers: Vec<Server>,
    pub channels: Vec<Channel>,
    pub operations: Vec<Operation>,
    pub security_schemes: Vec<SecurityScheme>,
}

/// The kinds of `schemaFormat` the model tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// AsyncAPI schemas and JSON Schema (`application/vnd.aai.asyncapi...`, `schema+json`...).
    JsonSchema,
    /// OpenAPI 3 schema objects: JSON Schema but for `nullable`.
    OpenApi,
    Avro,
    /// RAML, Protobuf and anything else.
    Other,
}

impl Format {
    fn of(format: &str) -> Format {
        let format = format.to_ascii_lowercase();
        if format.starts_with("application/vnd.aai.asyncapi")
            || format.starts_with("application/schema+json")
            || format.starts_with("application/schema+yaml")
        {
            Format::JsonSchema
        } else if format.starts_with("application/vnd.oai.openapi") {
            Format::OpenApi
        } else if format.starts_with("application/vnd.apache.avro") {
            Format::Avro
        } else {
            Format::Other
        }
    }
}

/// RFC 7396 JSON merge patch of `patch` onto `target`.
fn merge_patch(
    target: &mut serde_json::Map<String, Value>,
    patch: &serde_json::Map<String, Value>,
) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(patch_inner) => match target.get_mut(key) {
                Some(Value::Object(target_inner)) => merge_patch(target_inner, patch_inner),
                _ => {
                    let mut fresh = serde_json::Map::new();
                    merge_patch(&mut fresh, patch_inner);
                    target.insert(key.clone(), Value::Object(fresh));
                }
            },
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A valid Rust type name from any text (`chat-message` -> `ChatMessage`, `2fa` -> `T2fa`).
pub(crate) fn heck_pascal(text: &str) -> String {
    use heck::ToUpperCamelCase;
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    let mut name = cleaned.to_upper_camel_case();
    if name.is_empty() {
        name = "Unnamed".to_owned();
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, 'T');
    }
    name
}
