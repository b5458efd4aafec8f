//! Rust generation: message types, one handler trait per channel, a typed client, `routes`.
//!
//! The output is one file, meant to be `include!`d by one module of the user's crate. It names
//! everything by full path (`::wfs_runtime::...`, whose re-exports of serde, serde_json, uuid,
//! chrono and regress stand in for direct dependencies) so it needs no `use` lines,
//! and it is deterministic: the same contract gives byte-identical output.

mod channels;
mod client;
mod names;
mod sizes;
mod types;

use std::path::Path;

use proc_macro2::TokenStream;
use quote::quote;

use crate::error::{Error, Result};
use crate::model::Contract;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Settings {
    source_name: String,
    client: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            source_name: "the AsyncAPI contract".to_owned(),
            client: true,
        }
    }
}

impl Settings {
    /// How the header line names the contract (use a path relative to the crate, so the output
    /// does not depend on where the checkout is).
    pub fn with_source_name(mut self, name: impl Into<String>) -> Settings {
        self.source_name = name.into();
        self
    }

    /// Whether to generate the typed clients (default: yes).
    pub fn with_client(mut self, client: bool) -> Settings {
        self.client = client;
        self
    }
}

/// Turns contracts into Rust source.
#[derive(Debug, Clone, Default)]
pub struct Generator {
    settings: Settings,
}

impl Generator {
    /// A generator with `settings` (see [`Settings`]; `Generator::default()` for the
    /// defaults).
    pub fn new(settings: Settings) -> Generator {
        Generator { settings }
    }

    /// Loads the contract at `path` and generates its code.
    pub fn generate_file(&self, path: impl AsRef<Path>) -> Result<(Contract, String)> {
        let contract = Contract::load(path)?;
        let code = self.generate(&contract)?;
        Ok((contract, code))
    }

    /// The Rust source for `contract`, formatted.
    pub fn generate(&self, contract: &Contract) -> Result<String> {
        let mut problems = foreign_payloads(contract);
        let mut plans = channels::plan(contract);
        let endpoints = match channels::endpoints(contract, &plans) {
            Ok(endpoints) => endpoints,
            Err(mut found) => {
                problems.append(&mut found);
                Vec::new()
            }
        };
        // Every problem at once: the types' too, even when the channels already have some.
        let types = types::generate(contract);
        if let Err(found) = &types {
            problems.extend(found.iter().cloned());
        }
        if !problems.is_empty() {
            problems.sort();
            return Err(Error::Contract(problems));
        }
        let (types, sizes) = types.map_err(Error::Contract)?;
        // Payloads large enough to be boxed in enums of several messages (clippy-clean code).
        let large: Vec<_> = contract
            .messages
            .iter()
            .enumerate()
            .filter(|(_, message)| {
                message.payload.is_some_and(|schema| {
                    sizes.of(&contract.schemas[schema].name) >= sizes::BOX_FROM
                })
            })
            .map(|(id, _)| id)
            .collect();
        // Payloads typify keeps as any JSON value: decoded by taking the value as it is.
        let any_json: Vec<_> = contract
            .messages
            .iter()
            .enumerate()
            .filter(|(_, message)| {
                message
                    .payload
                    .is_some_and(|schema| sizes.wraps_json_value(&contract.schemas[schema].name))
            })
            .map(|(id, _)| id)
            .collect();
        for plan in &mut plans {
            plan.large = large.clone();
            plan.any_json = any_json.clone();
        }
        let validators = types::validators(contract);
        let mut modules = Vec::new();
        for plan in &plans {
            let module = channels::channel_module(contract, plan, self.settings.client)
                .map_err(|problem| Error::Contract(vec![problem]))?;
            modules.push(module);
        }
        let serving = channels::serving(contract, &plans, &endpoints);
        let tokens = quote! {
            #types
            #validators
            #(#modules)*
            #serving
        };
        let file: syn::File = syn::parse2(tidy_docs(tokens)).map_err(|error| {
            Error::Contract(vec![crate::Diagnostic {
                file: contract.files.first().cloned().unwrap_or_default(),
                line: 1,
                column: 1,
                pointer: String::new(),
                message: format!("internal error: generated code does not parse ({error}); please report this contract"),
            }])
        })?;
        Ok(format!(
            "// Generated from {} by wfs-codegen. Do not edit.\n\n{}",
            self.settings.source_name,
            space_items(&prettyplease::unparse(&file))
        ))
    }
}

/// Payloads in a schema format that has no JSON Schema equivalent (RAML, Protobuf ...): the
/// docs show them as written, but they cannot become Rust types.
fn foreign_payloads(contract: &Contract) -> Vec<crate::Diagnostic> {
    contract
        .messages
        .iter()
        .filter_map(|message| {
            let foreign = message.foreign_payload.as_ref()?;
            (!foreign.is_avro()).then(|| {
                contract.diagnostic(
                    &foreign.origin.file,
                    &foreign.origin.pointer,
                    format!(
                        "unsupported: schemaFormat `{}` (message `{}`): only JSON Schema, \
                         AsyncAPI, OpenAPI and Avro payloads can become Rust types; describe \
                         the payload in one of them (the docs show it as written)",
                        foreign.format, message.key
                    ),
                )
            })
        })
        .collect()
}

/// One doc comment style throughout, ours and typify's: each line of a doc its own
/// `#[doc = " line"]`, which prettyplease prints as `/// line` (a multi-line doc would be a
/// `/** ... */` block, and a doc without a leading space `///Text`), and no sentence ending in
/// two periods (a summary that ends in one, followed by ours).
fn tidy_docs(tokens: TokenStream) -> TokenStream {
    use proc_macro2::{Delimiter, Group, TokenTree};
    let mut out: Vec<TokenTree> = Vec::new();
    for token in tokens {
        let TokenTree::Group(group) = token else {
            out.push(token);
            continue;
        };
        let is_attribute = group.delimiter() == Delimiter::Bracket
            && matches!(out.last(), Some(TokenTree::Punct(p)) if p.as_char() == '#');
        if is_attribute && let Some(text) = doc_text(&group.stream()) {
            out.pop();
            let mut lines: Vec<String> = text.trim_end().lines().map(tidy_doc_line).collect();
            while lines.first().is_some_and(String::is_empty) {
                lines.remove(0);
            }
            if lines.is_empty() {
                lines.push(String::new());
            }
            for line in lines {
                out.extend(quote!(#[doc = #line]));
            }
            continue;
        }
        let mut inner = Group::new(group.delimiter(), tidy_docs(group.stream()));
        inner.set_span(group.span());
        out.push(TokenTree::Group(inner));
    }
    out.into_iter().collect()
}

/// The text of a `doc = "..."` attribute.
fn doc_text(attribute: &TokenStream) -> Option<String> {
    let mut tokens = attribute.clone().into_iter();
    match (tokens.next(), tokens.next(), tokens.next(), tokens.next()) {
        (
            Some(proc_macro2::TokenTree::Ident(name)),
            Some(proc_macro2::TokenTree::Punct(equals)),
            Some(proc_macro2::TokenTree::Literal(literal)),
            None,
        ) if name == "doc" && equals.as_char() == '=' => {
            let text: syn::LitStr =
                syn::parse2(proc_macro2::TokenTree::Literal(literal).into()).ok()?;
            Some(text.value())
        }
        _ => None,
    }
}

/// A doc line with one space after `///`, without trailing blanks or a doubled final period.
fn tidy_doc_line(line: &str) -> String {
    let line = line.trim_end();
    let line = match line.strip_suffix("..") {
        Some(rest) if !rest.ends_with('.') => &line[..line.len() - 1],
        _ => line,
    };
    if line.is_empty() || line.starts_with(' ') {
        line.to_owned()
    } else {
        format!(" {line}")
    }
}

/// prettyplease leaves no blank line between items; this puts one before every item (or its
/// doc comment or attributes) that follows the end of another at the same indentation: between
/// structs, impls, methods, trait methods, statics. Lines inside a function body never start
/// an item, and a raw string's lines (the JSON Schemas) never start with what an item starts
/// with, so only the spaces between items change, the same way every time.
fn space_items(code: &str) -> String {
    const STARTS: &[&str] = &[
        "///",
        "#[",
        "pub ",
        "pub(",
        "impl",
        "fn ",
        "async fn ",
        "mod ",
        "struct ",
        "enum ",
        "static ",
        "trait ",
        "type ",
        "const ",
        "unsafe ",
    ];
    let mut out = String::with_capacity(code.len() + code.len() / 16);
    let mut previous: Option<&str> = None;
    for line in code.lines() {
        if let Some(before) = previous {
            let indent = |text: &str| text.len() - text.trim_start().len();
            let ended = before.trim_end().ends_with('}') || before.trim_end().ends_with(';');
            let starts = STARTS
                .iter()
                .any(|start| line.trim_start().starts_with(start));
            let uses =
                before.trim_start().starts_with("use ") && line.trim_start().starts_with("use ");
            if ended
                && starts
                && !uses
                && indent(before) == indent(line)
                && !before.trim().is_empty()
            {
                out.push('\n');
            }
        }
        out.push_str(line);
        out.push('\n');
        previous = Some(line);
    }
    out
}
