//! JSON Schemas as property tables and generated examples.
//!
//! A schema becomes a flat list of [`Row`]s with a depth, which the template indents: nested
//! objects, array items, `oneOf`/`anyOf`/`allOf` variants and `additionalProperties` all stay in
//! one table a reader can scan (and a phone can scroll sideways). References to named schemas
//! are expanded in place; a reference back to a schema that is already being expanded is marked
//! as recursive instead of followed.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Ids, markdown};
use crate::model::Contract;

/// One line of a property table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub depth: usize,
    /// What the row is: a property name, `[items]`, `one of #1`, `additional properties` ...
    pub name: String,
    /// `true` when `name` is a property name (shown as code).
    pub is_property: bool,
    pub type_label: String,
    /// Anchor of the named schema the type refers to, if it has its own section.
    pub type_link: Option<String>,
    pub required: bool,
    pub constraints: Vec<String>,
    /// `const` or `enum` values, as JSON.
    pub values: Vec<String>,
    pub default: Option<String>,
    pub description_html: Option<minijinja::Value>,
    /// Extra words, e.g. "recursive: see Tree".
    pub note: Option<String>,
}

/// What the table builder needs from the page: the contract and the anchors of named schemas.
pub(crate) struct Tables<'a> {
    pub contract: &'a Contract,
    /// Anchor of each named schema that has a section (by schema name).
    pub anchors: &'a dyn Fn(&str) -> Option<String>,
}

/// Keywords shown in the constraints column, in this order, with their labels.
const CONSTRAINTS: &[(&str, &str)] = &[
    ("format", "format"),
    ("pattern", "pattern"),
    ("minimum", "≥"),
    ("exclusiveMinimum", ">"),
    ("maximum", "≤"),
    ("exclusiveMaximum", "<"),
    ("multipleOf", "multiple of"),
    ("minLength", "min length"),
    ("maxLength", "max length"),
    ("minItems", "min items"),
    ("maxItems", "max items"),
    ("minProperties", "min properties"),
    ("maxProperties", "max properties"),
    ("contentEncoding", "encoding"),
    ("contentMediaType", "media type"),
];

/// Keywords the table shows in some other way (or that only carry structure).
const KNOWN: &[&str] = &[
    "type",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "patternProperties",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "enum",
    "const",
    "default",
    "description",
    "title",
    "examples",
    "example",
    "$ref",
    "$schema",
    "$id",
    "definitions",
    "$defs",
    "uniqueItems",
    "readOnly",
    "writeOnly",
    "deprecated",
    "nullable",
    "discriminator",
    "contains",
    "propertyNames",
    "dependencies",
    "dependentRequired",
    "dependentSchemas",
    "externalDocs",
    "xml",
];

impl Tables<'_> {
    /// The rows describing `schema`'s content (its properties, items or variants). The schema's
    /// own type, constraints and description are for the caller to show above the table
    /// ([`Tables::root`]).
    /// `name` is the schema's own name, when it is a named schema (to spot recursion into it).
    pub fn rows(&self, schema: &Value, name: Option<&str>, ids: &mut Ids) -> Vec<Row> {
        let mut rows = Vec::new();
        let mut stack: Vec<String> = name.map(str::to_owned).into_iter().collect();
        self.children(schema, 0, &mut stack, &mut rows, ids);
        rows
    }

    /// The schema itself as one row (name empty), for the line above its table.
    pub fn root(&self, schema: &Value, ids: &mut Ids) -> Row {
        self.row(String::new(), false, schema, 0, false, &[], ids)
    }

    fn resolve<'v>(&'v self, schema: &'v Value) -> (&'v Value, Option<&'v str>) {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => match self.contract.schema_by_ref(reference) {
                Some(named) => (&named.value, Some(named.name.as_str())),
                None => (schema, None),
            },
            None => (schema, None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        name: String,
        is_property: bool,
        schema: &Value,
        depth: usize,
        required: bool,
        stack: &[String],
        ids: &mut Ids,
    ) -> Row {
        let (target, ref_name) = self.resolve(schema);
        let mut row = Row {
            depth,
            name,
            is_property,
            type_label: self.type_label(schema),
            type_link: ref_name.and_then(|name| (self.anchors)(name)),
            required,
            constraints: constraints(target),
            values: Vec::new(),
            default: target.get("default").map(json_inline),
            description_html: None,
            note: None,
        };
        if let Some(value) = target.get("const") {
            row.values.push(json_inline(value));
        }
        if let Some(Value::Array(values)) = target.get("enum") {
            row.values.extend(values.iter().map(json_inline));
        }
        // A description beside a `$ref` speaks about this use; it wins over the target's own.
        let description = schema
            .get("description")
            .or_else(|| target.get("description"))
            .and_then(Value::as_str);
        let title = target.get("title").and_then(Value::as_str);
        let examples = example_values(target);
        let mut html = String::new();
        if let Some(title) = title.filter(|title| Some(*title) != ref_name) {
            html.push_str(&format!("<strong>{}</strong> ", escape_text(title)));
        }
        if let Some(description) = description {
            html.push_str(&markdown::inline_html(description, ids));
        }
        if !examples.is_empty() {
            if !html.is_empty() {
                html.push(' ');
            }
            let list: Vec<String> = examples
                .iter()
                .map(|example| format!("<code>{}</code>", escape_text(&json_inline(example))))
                .collect();
            html.push_str(&format!(
                "<span class=\"eg\">Example: {}</span>",
                list.join(", ")
            ));
        }
        if !html.is_empty() {
            row.description_html = Some(minijinja::Value::from_safe_string(html));
        }
        if let Some(name) = ref_name
            && stack.iter().any(|seen| seen == name)
        {
            row.note = Some(format!("recursive: {name} again (not expanded)"));
        }
        row
    }

    /// Rows for what is inside `schema`: properties, items, variants.
    fn children(
        &self,
        schema: &Value,
        depth: usize,
        stack: &mut Vec<String>,
        rows: &mut Vec<Row>,
        ids: &mut Ids,
    ) {
        let (target, ref_name) = self.resolve(schema);
        if let Some(name) = ref_name {
            if stack.iter().any(|seen| seen == name) {
                return;
            }
            stack.push(name.to_owned());
        }
        let required: Vec<&str> = target
            .get("required")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(Value::Object(properties)) = target.get("properties") {
            for (name, property) in properties {
                let is_required = required.contains(&name.as_str());
                self.push(
                    rows,
                    name.clone(),
                    true,
                    property,
                    depth,
                    is_required,
                    stack,
                    ids,
                );
            }
        }
        if let Some(Value::Object(patterns)) = target.get("patternProperties") {
            for (pattern, property) in patterns {
                self.push(
                    rows,
                    format!("/{pattern}/"),
                    false,
                    property,
                    depth,
                    false,
                    stack,
                    ids,
                );
            }
        }
        if let Some(additional @ Value::Object(_)) = target.get("additionalProperties") {
            self.push(
                rows,
                "additional properties".to_owned(),
                false,
                additional,
                depth,
                false,
                stack,
                ids,
            );
        }
        match target.get("items") {
            Some(Value::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    self.push(
                        rows,
                        format!("[{index}]"),
                        false,
                        item,
                        depth,
                        false,
                        stack,
                        ids,
                    );
                }
            }
            Some(item @ Value::Object(_))
                if self.is_plain_object(item, stack)
                    && !has_own_facts(item, self.resolve(item).0) =>
            {
                // An array of plain objects: its item's fields sit right under the array.
                self.children(item, depth, stack, rows, ids);
            }
            // An item with something to say (fields, or a pattern, enum, description ... of
            // its own) gets its own row: `array of string` alone would lose it.
            Some(item @ Value::Object(_))
                if has_children(self.resolve(item).0)
                    || has_own_facts(item, self.resolve(item).0) =>
            {
                self.push(
                    rows,
                    "[items]".to_owned(),
                    false,
                    item,
                    depth,
                    false,
                    stack,
                    ids,
                );
            }
            _ => {}
        }
        for (keyword, label) in [
            ("oneOf", "one of"),
            ("anyOf", "any of"),
            ("allOf", "all of"),
        ] {
            if let Some(Value::Array(variants)) = target.get(keyword) {
                for (index, variant) in variants.iter().enumerate() {
                    let name = format!("{label} #{}", index + 1);
                    self.push(rows, name, false, variant, depth, false, stack, ids);
                }
            }
        }
        for (keyword, label) in [
            ("not", "not"),
            ("if", "if"),
            ("then", "then"),
            ("else", "else"),
        ] {
            if let Some(sub @ (Value::Object(_) | Value::Bool(_))) = target.get(keyword) {
                self.push(rows, label.to_owned(), false, sub, depth, false, stack, ids);
            }
        }
        if ref_name.is_some() {
            stack.pop();
        }
    }

    /// An object schema with properties and nothing else to explain, not recursing.
    fn is_plain_object(&self, schema: &Value, stack: &[String]) -> bool {
        let (target, ref_name) = self.resolve(schema);
        if ref_name.is_some_and(|name| stack.iter().any(|seen| seen == name)) {
            return false;
        }
        target.get("properties").is_some()
            && ["oneOf", "anyOf", "allOf", "not", "if", "items"]
                .iter()
                .all(|keyword| target.get(keyword).is_none())
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &self,
        rows: &mut Vec<Row>,
        name: String,
        is_property: bool,
        schema: &Value,
        depth: usize,
        required: bool,
        stack: &mut Vec<String>,
        ids: &mut Ids,
    ) {
        let row = self.row(name, is_property, schema, depth, required, stack, ids);
        let recursive = row.note.is_some();
        rows.push(row);
        if !recursive {
            self.children(schema, depth + 1, stack, rows, ids);
        }
    }

    /// A short type: `string`, `integer | null`, `array of Alert`, `one of 2`, `Alert` ...
    pub fn type_label(&self, schema: &Value) -> String {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            return match self.contract.schema_by_ref(reference) {
                Some(named) => {
                    let inner = self.type_label(&named.value);
                    match inner.as_str() {
                        "object" | "any" => named.name.clone(),
                        // The variants are listed under it.
                        _ if inner.starts_with("one of")
                            || inner.starts_with("any of")
                            || inner.starts_with("all of") =>
                        {
                            named.name.clone()
                        }
                        _ if named.component.is_some() => format!("{} ({inner})", named.name),
                        _ => inner,
                    }
                }
                None => reference.to_owned(),
            };
        }
        let Value::Object(map) = schema else {
            return match schema {
                Value::Bool(true) => "any".to_owned(),
                Value::Bool(false) => "nothing".to_owned(),
                _ => "any".to_owned(),
            };
        };
        let mut types: Vec<String> = match map.get("type") {
            Some(Value::String(kind)) => vec![kind.clone()],
            Some(Value::Array(kinds)) => kinds
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        if types.is_empty() {
            if map.contains_key("properties") || map.contains_key("additionalProperties") {
                types.push("object".to_owned());
            } else if map.contains_key("items") {
                types.push("array".to_owned());
            } else if let Some(value) = map.get("const") {
                types.push(json_kind(value).to_owned());
            } else if let Some(Value::Array(values)) = map.get("enum") {
                let mut kinds: Vec<String> =
                    values.iter().map(|v| json_kind(v).to_owned()).collect();
                kinds.dedup();
                types.extend(kinds);
            } else {
                for (keyword, label) in [
                    ("oneOf", "one of"),
                    ("anyOf", "any of"),
                    ("allOf", "all of"),
                ] {
                    if let Some(Value::Array(variants)) = map.get(keyword) {
                        types.push(format!("{label} {}", variants.len()));
                    }
                }
            }
        }
        if map.get("nullable") == Some(&Value::Bool(true)) {
            types.push("null".to_owned());
        }
        let labels: Vec<String> = types
            .into_iter()
            .map(|kind| {
                if kind == "array" {
                    match map.get("items") {
                        Some(items @ (Value::Object(_) | Value::Bool(_))) => {
                            format!("array of {}", self.type_label(items))
                        }
                        Some(Value::Array(_)) => "array (tuple)".to_owned(),
                        _ => "array".to_owned(),
                    }
                } else {
                    kind
                }
            })
            .collect();
        if labels.is_empty() {
            "any".to_owned()
        } else {
            labels.join(" | ")
        }
    }

    /// An example value built from the schema: its own examples, const, enum, default or
    /// format first, then a value of the right shape. A property that would recurse into a
    /// schema being built is left out (an array of them is empty).
    pub fn example(&self, schema: &Value, name: Option<&str>) -> Value {
        let mut stack: Vec<String> = name.map(str::to_owned).into_iter().collect();
        self.example_inner(schema, &mut stack)
            .unwrap_or(Value::Null)
    }

    fn example_inner(&self, schema: &Value, stack: &mut Vec<String>) -> Option<Value> {
        let (target, ref_name) = self.resolve(schema);
        if let Some(name) = ref_name {
            if stack.iter().any(|seen| seen == name) || stack.len() > 16 {
                return None;
            }
            stack.push(name.to_owned());
        }
        let value = self.example_of(target, stack);
        if ref_name.is_some() {
            stack.pop();
        }
        Some(value)
    }

    fn example_of(&self, schema: &Value, stack: &mut Vec<String>) -> Value {
        let Value::Object(map) = schema else {
            return Value::Null;
        };
        if let Some(value) = map.get("const") {
            return value.clone();
        }
        if let Some(first) = example_values(schema).into_iter().next() {
            return first.clone();
        }
        if let Some(Value::Array(values)) = map.get("enum")
            && let Some(first) = values.first()
        {
            return first.clone();
        }
        if let Some(value) = map.get("default") {
            return value.clone();
        }
        if let Some(Value::Array(variants)) = map.get("allOf") {
            let mut merged = Map::new();
            let mut other = None;
            for variant in variants {
                match self.example_inner(variant, stack) {
                    Some(Value::Object(part)) => merged.extend(part),
                    Some(value) => other = other.or(Some(value)),
                    None => {}
                }
            }
            let own = self.example_shape(map, stack);
            if let Value::Object(part) = own {
                merged.extend(part);
            }
            return match other {
                Some(value) if merged.is_empty() => value,
                _ => Value::Object(merged),
            };
        }
        for keyword in ["oneOf", "anyOf"] {
            if let Some(Value::Array(variants)) = map.get(keyword)
                && let Some(first) = variants.first()
            {
                let variant = self.example_inner(first, stack).unwrap_or(Value::Null);
                // Properties written beside the variants belong to every variant.
                if let (Value::Object(mut variant), Value::Object(own)) =
                    (variant.clone(), self.example_shape(map, stack))
                {
                    for (key, value) in own {
                        variant.entry(key).or_insert(value);
                    }
                    return Value::Object(variant);
                }
                return variant;
            }
        }
        self.example_shape(map, stack)
    }

    /// The example of the schema's own `type` (or the shape its keywords imply).
    fn example_shape(&self, map: &Map<String, Value>, stack: &mut Vec<String>) -> Value {
        let kind = match map.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            Some(Value::Array(kinds)) => kinds
                .iter()
                .filter_map(Value::as_str)
                .find(|kind| *kind != "null")
                .unwrap_or("null"),
            _ if map.contains_key("properties") => "object",
            _ if map.contains_key("items") => "array",
            _ => "",
        };
        match kind {
            "object" => {
                let mut out = Map::new();
                if let Some(Value::Object(properties)) = map.get("properties") {
                    for (name, property) in properties {
                        if let Some(value) = self.example_inner(property, stack) {
                            out.insert(name.clone(), value);
                        }
                    }
                }
                Value::Object(out)
            }
            "array" => match map.get("items") {
                Some(item @ Value::Object(_)) => {
                    Value::Array(self.example_inner(item, stack).into_iter().collect())
                }
                Some(Value::Array(items)) => Value::Array(
                    items
                        .iter()
                        .map(|item| self.example_inner(item, stack).unwrap_or(Value::Null))
                        .collect(),
                ),
                _ => Value::Array(Vec::new()),
            },
            "string" => Value::String(string_example(map).to_owned()),
            "integer" => number_example(map, true),
            "number" => number_example(map, false),
            "boolean" => Value::Bool(true),
            _ => Value::Null,
        }
    }
}

/// True when a schema has rows of its own to show.
fn has_children(schema: &Value) -> bool {
    [
        "properties",
        "patternProperties",
        "oneOf",
        "anyOf",
        "allOf",
        "items",
        "not",
        "if",
    ]
    .iter()
    .any(|keyword| schema.get(keyword).is_some())
        || matches!(schema.get("additionalProperties"), Some(Value::Object(_)))
}

/// True when a schema says more about its values than its type: a description or title,
/// constraints, `const`/`enum`, a default or examples. `schema` is the schema as written (a
/// description may sit beside a `$ref`), `target` what it resolves to.
fn has_own_facts(schema: &Value, target: &Value) -> bool {
    schema.get("description").is_some()
        || [
            "description",
            "title",
            "const",
            "enum",
            "default",
            "examples",
            "example",
        ]
        .iter()
        .any(|keyword| target.get(keyword).is_some())
        || !constraints(target).is_empty()
}

fn constraints(schema: &Value) -> Vec<String> {
    let Value::Object(map) = schema else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (keyword, label) in CONSTRAINTS {
        if let Some(value) = map.get(*keyword) {
            let text = match value {
                Value::String(text) => text.clone(),
                // draft-04 boolean exclusive bounds
                Value::Bool(true) => "yes".to_owned(),
                Value::Bool(false) => continue,
                other => other.to_string(),
            };
            out.push(format!("{label} {text}"));
        }
    }
    if map.get("uniqueItems") == Some(&Value::Bool(true)) {
        out.push("unique items".to_owned());
    }
    if map.get("additionalProperties") == Some(&Value::Bool(false)) {
        out.push("no other properties".to_owned());
    }
    for flag in ["readOnly", "writeOnly", "deprecated"] {
        if map.get(flag) == Some(&Value::Bool(true)) {
            out.push(flag.to_owned());
        }
    }
    if let Some(Value::Object(discriminator)) = map.get("discriminator")
        && let Some(Value::String(property)) = discriminator.get("propertyName")
    {
        out.push(format!("discriminator {property}"));
    } else if let Some(Value::String(property)) = map.get("discriminator") {
        out.push(format!("discriminator {property}"));
    }
    // Anything else a reader may need (vendor extensions, rarer keywords), as written.
    for (key, value) in map {
        if KNOWN.contains(&key.as_str()) || CONSTRAINTS.iter().any(|(k, _)| k == key) {
            continue;
        }
        if key == "x-parser-schema-id" {
            continue;
        }
        out.push(format!("{key}: {}", json_inline(value)));
    }
    out
}

fn example_values(schema: &Value) -> Vec<&Value> {
    match (schema.get("examples"), schema.get("example")) {
        (Some(Value::Array(list)), _) => list.iter().collect(),
        (_, Some(value)) => vec![value],
        _ => Vec::new(),
    }
}

fn string_example(map: &Map<String, Value>) -> &'static str {
    match map.get("format").and_then(Value::as_str) {
        Some("uuid") => "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        Some("date-time") => "2024-01-01T12:00:00Z",
        Some("date") => "2024-01-01",
        Some("time") => "12:00:00Z",
        Some("email") => "user@example.com",
        Some("uri" | "url" | "iri") => "https://example.com/",
        Some("hostname") => "example.com",
        Some("ipv4") => "192.0.2.1",
        Some("ipv6") => "2001:db8::1",
        Some("byte") => "aGVsbG8=",
        _ => "string",
    }
}

fn number_example(map: &Map<String, Value>, integer: bool) -> Value {
    let bound = |keyword: &str| map.get(keyword).and_then(Value::as_f64);
    let value = bound("minimum")
        .or_else(|| bound("exclusiveMinimum").map(|low| low + 1.0))
        .or_else(|| bound("maximum"))
        .or_else(|| bound("exclusiveMaximum").map(|high| high - 1.0))
        .unwrap_or(0.0);
    if integer {
        Value::from(value.ceil() as i64)
    } else {
        serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or(Value::from(0))
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as compact JSON, for table cells.
pub(crate) fn json_inline(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            other => out.push(other),
        }
    }
    out
}

/// Escapes text that is never inside an attribute.
pub(crate) fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            other => out.push(other),
        }
    }
    out
}
