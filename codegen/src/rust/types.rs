//! Message types: the contract's named schemas through typify, plus the embedded validators.
//!
//! typify panics on some inputs (external references, `if`/`then`/`else`, some `not`), so
//! schemas are checked first and each construct it cannot take is reported where it is written.
//! A panic that still escapes is caught and reported against the contract, never passed on.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;

use crate::error::Diagnostic;
use crate::model::{Contract, Schema, SchemaId};

/// Keywords typify cannot turn into Rust; each becomes a located "unsupported" error.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "if",
        "conditional schemas (`if`/`then`/`else`) cannot become Rust types; use `oneOf` with one variant per case",
    ),
    (
        "then",
        "conditional schemas (`if`/`then`/`else`) cannot become Rust types; use `oneOf` with one variant per case",
    ),
    (
        "else",
        "conditional schemas (`if`/`then`/`else`) cannot become Rust types; use `oneOf` with one variant per case",
    ),
    (
        "not",
        "`not` cannot become a Rust type; describe what is allowed instead (`enum`, `oneOf`, `pattern`)",
    ),
    (
        "dependentSchemas",
        "`dependentSchemas` cannot become a Rust type; use `oneOf` with one variant per case",
    ),
    (
        "unevaluatedProperties",
        "`unevaluatedProperties` is not supported; use `additionalProperties`",
    ),
];

/// Keywords whose values are data, not subschemas.
const DATA_KEYWORDS: &[&str] = &[
    "examples",
    "example",
    "default",
    "const",
    "enum",
    "x-examples",
];

/// Finds the constructs typify cannot take, with where they are.
pub(crate) fn check(contract: &Contract) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for schema in &contract.schemas {
        walk(
            contract,
            schema,
            &schema.value,
            String::new(),
            &mut problems,
        );
    }
    problems
}

fn walk(
    contract: &Contract,
    schema: &Schema,
    value: &Value,
    path: String,
    problems: &mut Vec<Diagnostic>,
) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let inner_path = crate::model::yaml::push_token(&path, key);
                // One problem per conditional: `then`/`else` are reported with their `if`.
                let reported_with_if =
                    matches!(key.as_str(), "then" | "else") && map.contains_key("if");
                if let Some((_, why)) = UNSUPPORTED
                    .iter()
                    .find(|(keyword, _)| keyword == key && !reported_with_if)
                {
                    // `properties` maps names to schemas: a property *named* `not` is fine.
                    if !path.ends_with("/properties") && !path.ends_with("/patternProperties") {
                        problems.push(diagnostic(
                            contract,
                            schema,
                            &inner_path,
                            format!("unsupported in schema `{}`: {why}", schema.name),
                        ));
                        continue;
                    }
                }
                if !DATA_KEYWORDS.contains(&key.as_str()) {
                    walk(contract, schema, inner, inner_path, problems);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                walk(contract, schema, item, format!("{path}/{index}"), problems);
            }
        }
        _ => {}
    }
}

/// A problem at `inner_path` inside `schema`: schema values mirror their source except where a
/// `$ref` was, so the source pointer is the schema's own plus the inner path.
fn diagnostic(
    contract: &Contract,
    schema: &Schema,
    inner_path: &str,
    message: String,
) -> Diagnostic {
    let pointer = format!("{}{inner_path}", schema.origin.pointer);
    contract.diagnostic(&schema.origin.file, &pointer, message)
}

/// The `types` module: every named schema as a Rust type, and its `Payload` impl.
pub(crate) fn generate(contract: &Contract) -> Result<TokenStream, Diagnostic> {
    let definitions: Vec<(String, schemars::schema::Schema)> = contract
        .schemas
        .iter()
        .map(|schema| {
            let converted = serde_json::from_value(prepare(&schema.value)).map_err(|error| {
                diagnostic(
                    contract,
                    schema,
                    "",
                    format!(
                        "schema `{}` is not a valid JSON Schema: {error}",
                        schema.name
                    ),
                )
            })?;
            Ok((schema.name.clone(), converted))
        })
        .collect::<Result<_, Diagnostic>>()?;

    let mut settings = typify::TypeSpaceSettings::default();
    settings.with_derive("PartialEq".to_owned());
    let mut space = typify::TypeSpace::new(&settings);

    let outcome = catch_panics(|| space.add_ref_types(definitions).map(|()| space.to_stream()));
    let stream = match outcome {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            return Err(root_diagnostic(
                contract,
                format!("typify could not convert the schemas: {error}"),
            ));
        }
        Err(panic) => {
            return Err(root_diagnostic(
                contract,
                format!(
                    "typify failed on a schema construct it does not support ({panic}); simplify the schema or report it"
                ),
            ));
        }
    };

    let payload_impls = payload_schema_ids(contract).into_iter().map(|id| {
        let name = format_ident!("{}", contract.schemas[id].name);
        let validator = validator_ident(&contract.schemas[id]);
        quote! {
            impl ::wfs_runtime::Payload for #name {
                fn validator() -> &'static ::wfs_runtime::Validator {
                    &super::schemas::#validator
                }
            }
        }
    });
    Ok(quote! {
        /// Message payloads and the schemas they use, generated by typify.
        #[allow(clippy::all, clippy::pedantic, dead_code, unused_imports, irrefutable_let_patterns)]
        pub mod types {
            #stream
            #(#payload_impls)*
        }
    })
}

/// The `schemas` module: one validator per payload and headers schema, each self-contained.
pub(crate) fn validators(contract: &Contract) -> TokenStream {
    let statics = payload_schema_ids(contract).into_iter().map(|id| {
        let schema = &contract.schemas[id];
        let ident = validator_ident(schema);
        let name = &schema.name;
        let json = contract.bundled_schema(id).to_string();
        let doc = format!("The contract's schema for `{name}`.");
        quote! {
            #[doc = #doc]
            pub static #ident: ::wfs_runtime::Validator = ::wfs_runtime::Validator::new(#name, #json);
        }
    });
    quote! {
        /// The contract's JSON Schemas, checked against every inbound frame (and every outbound
        /// frame in debug builds).
        pub mod schemas {
            #(#statics)*
        }
    }
}

/// Schemas used as a message payload or headers, in contract order.
pub(crate) fn payload_schema_ids(contract: &Contract) -> Vec<SchemaId> {
    let mut ids: Vec<SchemaId> = contract
        .messages
        .iter()
        .flat_map(|message| [message.payload, message.headers])
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

pub(crate) fn validator_ident(schema: &Schema) -> proc_macro2::Ident {
    use heck::ToShoutySnakeCase;
    format_ident!("{}", schema.name.to_shouty_snake_case())
}

/// Adapts a schema value to what schemars' draft-07 model reads: AsyncAPI schema extras
/// (`discriminator`, `externalDocs`, `deprecated`, `x-*`) are dropped, `examples` kept.
///
/// `additionalProperties: true` becomes `{}`: typify treats `true` like "not said" and drops
/// unknown fields, but a contract that says `true` means them to be kept (echo returns them),
/// and `{}` gives a flattened map that keeps them.
fn prepare(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| {
                    !matches!(
                        key.as_str(),
                        "discriminator" | "externalDocs" | "deprecated" | "$schema" | "$id"
                    ) && !key.starts_with("x-")
                })
                .map(|(key, inner)| {
                    let inner = if key == "additionalProperties" && inner == &Value::Bool(true) {
                        Value::Object(serde_json::Map::new())
                    } else if DATA_KEYWORDS.contains(&key.as_str()) {
                        inner.clone()
                    } else {
                        prepare(inner)
                    };
                    (key.clone(), inner)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(prepare).collect()),
        other => other.clone(),
    }
}

fn root_diagnostic(contract: &Contract, message: String) -> Diagnostic {
    Diagnostic {
        file: contract.files.first().cloned().unwrap_or_default(),
        line: 1,
        column: 1,
        pointer: String::new(),
        message,
    }
}

/// Runs `work`, turning a panic into its message, with the panic printout silenced.
fn catch_panics<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    std::panic::set_hook(previous);
    outcome.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "unknown panic".to_owned())
    })
}
