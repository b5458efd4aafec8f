//! The schema registry: every referenced schema becomes one named [`Schema`].
//!
//! Naming each `$ref` target once (whatever file or depth it is at) is what makes cycles finite
//! and gives typify one definition list whose references it understands
//! (`#/definitions/<name>`); the same list, bundled per message, feeds the run-time validators.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use super::files::{Loc, Sources, pointer_tokens};
use super::{Origin, Position, Schema, SchemaId, heck_pascal};

/// Keywords whose values are data, not schemas: a `$ref` inside them is not a reference.
const DATA_KEYWORDS: &[&str] = &[
    "examples",
    "example",
    "default",
    "const",
    "enum",
    "x-examples",
];

/// Pointer tokens that say where a schema sits rather than what it is; skipped when naming.
const STRUCTURAL_TOKENS: &[&str] = &[
    "properties",
    "items",
    "additionalProperties",
    "patternProperties",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "schema",
    "schemas",
    "definitions",
    "$defs",
    "components",
    "payload",
    "headers",
    "messages",
];

#[derive(Default)]
pub(crate) struct Registry {
    by_loc: HashMap<Loc, SchemaId>,
    schemas: Vec<Schema>,
}

impl Registry {
    pub fn into_schemas(self) -> Vec<Schema> {
        self.schemas
    }

    /// Names a `components/schemas` entry after its key.
    pub fn intern_component(
        &mut self,
        sources: &mut Sources,
        loc: &Loc,
        key: &str,
    ) -> Option<SchemaId> {
        let id = self.intern(sources, loc, &heck_pascal(key))?;
        if self.schemas[id].component.is_none() && sources.reference_at(loc).is_none() {
            self.schemas[id].component = Some(key.to_owned());
        }
        Some(id)
    }

    /// The id of the schema at `loc` (following references), registering it under a name made
    /// from `name_hint` the first time it is met.
    pub fn intern(
        &mut self,
        sources: &mut Sources,
        loc: &Loc,
        name_hint: &str,
    ) -> Option<SchemaId> {
        let target = sources.deref(loc)?;
        if let Some(&id) = self.by_loc.get(&target) {
            return Some(id);
        }
        let name = self.unique_name(name_hint);
        let diagnostic = sources.diagnostic(&target, String::new());
        let id = self.schemas.len();
        self.schemas.push(Schema {
            name,
            component: None,
            value: Value::Null,
            origin: Origin {
                file: diagnostic.file,
                pointer: diagnostic.pointer,
                position: Position {
                    line: diagnostic.line,
                    column: diagnostic.column,
                },
            },
        });
        // Registered before its body is read, so a schema that refers to itself finds itself.
        self.by_loc.insert(target.clone(), id);
        let value = self.rewrite(sources, &target);
        self.schemas[id].value = value;
        Some(id)
    }

    /// Registers a schema that is not written as JSON Schema in the contract (an Avro type
    /// converted to it), keyed by `loc` (its place, or a made-up child of it), named after
    /// `name_hint`. Returns its id and whether it is new; [`Registry::set_value`] gives it its
    /// value once the names of the schemas it references are known.
    pub fn reserve(&mut self, sources: &Sources, loc: &Loc, name_hint: &str) -> (SchemaId, bool) {
        if let Some(&id) = self.by_loc.get(loc) {
            return (id, false);
        }
        let name = self.unique_name(name_hint);
        let diagnostic = sources.diagnostic(loc, String::new());
        let id = self.schemas.len();
        self.schemas.push(Schema {
            name,
            component: None,
            value: Value::Null,
            origin: Origin {
                file: diagnostic.file,
                pointer: diagnostic.pointer,
                position: Position {
                    line: diagnostic.line,
                    column: diagnostic.column,
                },
            },
        });
        self.by_loc.insert(loc.clone(), id);
        (id, true)
    }

    pub fn set_value(&mut self, id: SchemaId, value: Value) {
        self.schemas[id].value = value;
    }

    pub fn name(&self, id: SchemaId) -> &str {
        &self.schemas[id].name
    }

    /// How many schemas are registered (ids below it exist).
    pub fn len(&self) -> usize {
        self.schemas.len()
    }

    /// Rewrites the OpenAPI 3.0 `nullable: true` of the schemas `ids` as JSON Schema says it
    /// (`type: [T, "null"]`), so typify makes the field an `Option` and the validator allows null.
    pub fn openapi_to_json_schema(&mut self, ids: std::ops::Range<SchemaId>) {
        for id in ids {
            nullable(&mut self.schemas[id].value);
        }
    }

    /// A copy of the schema at `loc` with each nested `$ref` replaced by `#/definitions/<name>`.
    fn rewrite(&mut self, sources: &mut Sources, loc: &Loc) -> Value {
        let Some(value) = sources.get(loc).cloned() else {
            return Value::Null;
        };
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    let Some(target) = sources.resolve(loc, reference) else {
                        return json!({});
                    };
                    let hint = name_hint(sources, &target);
                    return match self.intern(sources, &target, &hint) {
                        Some(id) => {
                            let mut out = Map::new();
                            out.insert(
                                "$ref".to_owned(),
                                Value::String(format!("#/definitions/{}", self.schemas[id].name)),
                            );
                            // Draft-07 ignores siblings of `$ref`; a description is still
                            // worth keeping for the docs.
                            if let Some(description) = map.get("description") {
                                out.insert("description".to_owned(), description.clone());
                            }
                            Value::Object(out)
                        }
                        None => json!({}),
                    };
                }
                let mut out = Map::new();
                for (key, inner) in &map {
                    let rewritten = if DATA_KEYWORDS.contains(&key.as_str()) {
                        inner.clone()
                    } else {
                        self.rewrite(sources, &loc.child(key))
                    };
                    out.insert(key.clone(), rewritten);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                (0..items.len())
                    .map(|index| self.rewrite(sources, &loc.index(index)))
                    .collect(),
            ),
            scalar => scalar,
        }
    }

    fn unique_name(&self, hint: &str) -> String {
        let taken = |name: &str| self.schemas.iter().any(|schema| schema.name == name);
        if !taken(hint) {
            return hint.to_owned();
        }
        (2..)
            .map(|counter| format!("{hint}{counter}"))
            .find(|name| !taken(name))
            .unwrap_or_else(|| hint.to_owned())
    }
}

fn nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                match map.get_mut("type") {
                    Some(Value::String(kind)) => {
                        let kind = std::mem::take(kind);
                        map.insert("type".to_owned(), json!([kind, "null"]));
                    }
                    Some(Value::Array(kinds)) if !kinds.contains(&json!("null")) => {
                        kinds.push(json!("null"));
                    }
                    _ => {}
                }
                if let Some(Value::Array(values)) = map.get_mut("enum")
                    && !values.contains(&Value::Null)
                {
                    values.push(Value::Null);
                }
            }
            for (key, inner) in map.iter_mut() {
                if !DATA_KEYWORDS.contains(&key.as_str()) {
                    nullable(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(nullable),
        _ => {}
    }
}

/// A name for a schema that is only known by where it is: the last meaningful pointer token,
/// so `#/components/messages/ping/payload` gives `PingPayload`.
fn name_hint(sources: &Sources, loc: &Loc) -> String {
    let tokens: Vec<String> = pointer_tokens(&loc.pointer).collect();
    let suffix = match tokens.last().map(String::as_str) {
        Some("payload") => "Payload",
        Some("headers") => "Headers",
        _ => "",
    };
    let base = tokens
        .iter()
        .rev()
        .find(|token| {
            !STRUCTURAL_TOKENS.contains(&token.as_str())
                && !token.chars().all(|c| c.is_ascii_digit())
        })
        .cloned()
        .unwrap_or_else(|| {
            sources
                .path(loc.file)
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_else(|| "Schema".to_owned())
        });
    format!("{}{suffix}", heck_pascal(&base))
}

/// The schema `id` with every definition it reaches, as one draft-07 document.
pub(crate) fn bundle(schemas: &[Schema], id: SchemaId) -> Value {
    let mut reached = BTreeSet::new();
    let mut pending = vec![id];
    while let Some(next) = pending.pop() {
        collect_refs(&schemas[next].value, &mut |name| {
            if let Some(found) = schemas.iter().position(|schema| schema.name == name)
                && reached.insert(found)
            {
                pending.push(found);
            }
        });
    }
    let root = match &schemas[id].value {
        Value::Object(map) => map.clone(),
        // `true`/`false` schemas: wrap so definitions can sit beside them.
        other => {
            let mut map = Map::new();
            map.insert("allOf".to_owned(), Value::Array(vec![other.clone()]));
            map
        }
    };
    let definitions: Map<String, Value> = reached
        .iter()
        .map(|&index| (schemas[index].name.clone(), schemas[index].value.clone()))
        .collect();
    // Draft-07 unless a keyword only a later draft has is used (a draft-07 validator would
    // silently ignore it); the later draft then reads draft-07's tuple keywords in its own.
    let later = uses_later_draft(&Value::Object(root.clone()))
        || definitions.values().any(uses_later_draft);
    let mut root = Value::Object(root);
    let mut definitions = Value::Object(definitions);
    let draft = if later {
        to_2020_12(&mut root);
        to_2020_12(&mut definitions);
        "https://json-schema.org/draft/2020-12/schema"
    } else {
        "http://json-schema.org/draft-07/schema#"
    };
    let Value::Object(mut root) = root else {
        return root;
    };
    root.insert("$schema".to_owned(), Value::String(draft.to_owned()));
    if !reached.is_empty() {
        root.insert("definitions".to_owned(), definitions);
    }
    Value::Object(root)
}

/// Keywords of JSON Schema 2019-09 / 2020-12 that draft-07 does not have.
const LATER_DRAFT_KEYWORDS: &[&str] = &[
    "dependentSchemas",
    "dependentRequired",
    "unevaluatedProperties",
    "unevaluatedItems",
    "prefixItems",
];

fn uses_later_draft(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(key, inner)| {
            LATER_DRAFT_KEYWORDS.contains(&key.as_str())
                || (!DATA_KEYWORDS.contains(&key.as_str()) && uses_later_draft(inner))
        }),
        Value::Array(items) => items.iter().any(uses_later_draft),
        _ => false,
    }
}

/// Rewrites draft-07 tuple arrays (`items: [..]` with `additionalItems`) as 2020-12 reads them
/// (`prefixItems` with `items`), so a schema that mixes both stays one valid document.
fn to_2020_12(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if matches!(map.get("items"), Some(Value::Array(_))) {
                if let Some(positions) = map.remove("items") {
                    map.insert("prefixItems".to_owned(), positions);
                }
                if let Some(rest) = map.remove("additionalItems") {
                    map.insert("items".to_owned(), rest);
                }
            }
            for (key, inner) in map.iter_mut() {
                if !DATA_KEYWORDS.contains(&key.as_str()) {
                    to_2020_12(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_2020_12),
        _ => {}
    }
}

/// Calls `found` with the name of every `#/definitions/<name>` reference in a schema value.
pub(crate) fn collect_refs(value: &Value, found: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|reference| reference.strip_prefix("#/definitions/"))
            {
                found(name);
            }
            for (key, inner) in map {
                if !DATA_KEYWORDS.contains(&key.as_str()) {
                    collect_refs(inner, found);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(name: &str, value: Value) -> Schema {
        Schema {
            name: name.to_owned(),
            component: None,
            value,
            origin: Origin {
                file: Default::default(),
                pointer: String::new(),
                position: Position { line: 1, column: 1 },
            },
        }
    }

    #[test]
    fn later_draft_keywords_make_a_2020_12_bundle_with_its_tuple_keywords() {
        let schemas = [
            schema(
                "Card",
                json!({"properties": {"pair": {"$ref": "#/definitions/Pair"}}, "unevaluatedProperties": false}),
            ),
            schema(
                "Pair",
                json!({"type": "array", "items": [{"type": "string"}], "additionalItems": false}),
            ),
        ];
        let bundled = bundle(&schemas, 0);
        assert_eq!(
            bundled["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        let pair = &bundled["definitions"]["Pair"];
        assert_eq!(pair["prefixItems"], json!([{"type": "string"}]));
        assert_eq!(pair["items"], json!(false));
        let plain = bundle(&schemas, 1);
        assert_eq!(plain["$schema"], "http://json-schema.org/draft-07/schema#");
        assert!(plain.get("prefixItems").is_none());
    }

    #[test]
    fn openapi_nullable_becomes_a_null_type() {
        let mut value =
            json!({"properties": {"a": {"type": "string", "nullable": true, "enum": ["x"]}}});
        nullable(&mut value);
        assert_eq!(
            value["properties"]["a"],
            json!({"type": ["string", "null"], "enum": ["x", null]})
        );
    }
}
