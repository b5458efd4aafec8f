//! JSON Schemas of the contract as the conformance engine and the mock use them: compiled for
//! checking frames, read to make instances that match them (for messages a document gives no
//! example of) and instances that break them (for the robustness checks).
//!
//! The instance makers are written here rather than taken from a crate: they only need the
//! keywords AsyncAPI payloads use (`type`, `properties`, `required`, `const`, `enum`, `format`,
//! bounds, `allOf`/`oneOf`/`anyOf`, `$ref`), and every value they make is checked against the
//! compiled schema before it is used, so a keyword they ignore can only cost a candidate.

use serde_json::{Map, Value, json};

/// One reason a value does not match: the JSON pointer of the failing value and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON pointer of the offending value (empty for the whole value).
    pub pointer: String,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "at {}: {}", self.pointer, self.message)
        }
    }
}

/// A self-contained JSON Schema, compiled once.
pub(crate) struct Schema {
    validator: jsonschema::Validator,
    /// The schema as bundled, for the instance makers.
    pub source: Value,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").finish_non_exhaustive()
    }
}

impl Schema {
    /// Compiles `source` with formats checked (`uuid` canonical only, as `wfs-runtime` checks it
    /// at the handshake), in the draft its `$schema` names (draft-07 otherwise).
    pub fn compile(source: Value) -> Result<Schema, String> {
        let named = source
            .get("$schema")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let draft = if named.contains("2020-12") {
            jsonschema::Draft::Draft202012
        } else if named.contains("2019-09") {
            jsonschema::Draft::Draft201909
        } else {
            jsonschema::Draft::Draft7
        };
        let validator = jsonschema::options()
            .with_draft(draft)
            .should_validate_formats(true)
            .with_format("uuid", |value: &str| {
                wfs_runtime::params::uuid(value).is_ok()
            })
            .build(&source)
            .map_err(|error| error.to_string())?;
        Ok(Schema { validator, source })
    }

    pub fn accepts(&self, value: &Value) -> bool {
        self.validator.is_valid(value)
    }

    /// Every violation, with where it is.
    pub fn problems(&self, value: &Value) -> Vec<Problem> {
        self.validator
            .iter_errors(value)
            .map(|error| Problem {
                pointer: error.instance_path().to_string(),
                message: error.to_string(),
            })
            .collect()
    }

    /// The root schema with `$ref`s and `allOf`s followed (the properties and bounds a value at
    /// the root must meet).
    pub fn root(&self) -> Value {
        flatten(&self.source, &self.source, 0)
    }

    /// The (flattened) schema of the value at `pointer` below the root, when the schema says.
    pub fn at(&self, pointer: &str) -> Option<Value> {
        let mut current = self.root();
        for token in pointer.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            let next = current.get("properties")?.get(&token)?.clone();
            current = flatten(&self.source, &next, 0);
        }
        Some(current)
    }

    /// Instances that should match, most plausible first: one per `oneOf`/`anyOf` branch of the
    /// root, kept only when the compiled schema accepts them.
    pub fn instances(&self) -> Vec<Value> {
        let root = resolve(&self.source, &self.source);
        let mut candidates = Vec::new();
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = root.get(key) {
                for branch in branches {
                    let mut merged = without(root, key);
                    merge(&mut merged, &flatten(&self.source, branch, 0));
                    candidates.push(make(&self.source, &merged, 0));
                }
            }
        }
        candidates.push(make(&self.source, &self.source, 0));
        let mut valid: Vec<Value> = Vec::new();
        for candidate in candidates {
            if self.accepts(&candidate) && !valid.contains(&candidate) {
                valid.push(candidate);
            }
        }
        valid
    }

    /// Values derived from `valid` that this schema refuses, each with what was broken:
    /// a required field removed, a field of the wrong type, a value out of its range.
    pub fn breakages(&self, valid: &Value) -> Vec<(String, Value)> {
        let root = self.root();
        let mut out: Vec<(String, Value)> = Vec::new();
        let keep = |what: String, value: Value, out: &mut Vec<(String, Value)>| {
            if !self.accepts(&value) && out.iter().all(|(_, seen)| *seen != value) {
                out.push((what, value));
            }
        };
        // Missing required field.
        if let (Some(Value::Array(required)), Value::Object(object)) = (root.get("required"), valid)
        {
            for name in required.iter().filter_map(Value::as_str) {
                if object.contains_key(name) {
                    let mut broken = object.clone();
                    broken.remove(name);
                    keep(
                        format!("required field `{name}` missing"),
                        Value::Object(broken),
                        &mut out,
                    );
                    break;
                }
            }
        }
        // Wrong type: the first field whose type change the schema notices, or the whole value.
        let before = out.len();
        if let Value::Object(object) = valid {
            for (name, value) in object {
                let mut broken = object.clone();
                broken.insert(name.clone(), wrong_type(value));
                keep(
                    format!("field `{name}` of the wrong type"),
                    Value::Object(broken),
                    &mut out,
                );
                if out.len() > before {
                    break;
                }
            }
        }
        if out.len() == before {
            keep("the wrong type".to_owned(), wrong_type(valid), &mut out);
        }
        // Out of range: a bound or an enum of a field, or of the whole value.
        let before = out.len();
        if let (Some(Value::Object(properties)), Value::Object(object)) =
            (root.get("properties"), valid)
        {
            for (name, property) in properties {
                let property = flatten(&self.source, property, 0);
                if let Some(value) = out_of_range(&property) {
                    let mut broken = object.clone();
                    broken.insert(name.clone(), value);
                    keep(
                        format!("field `{name}` out of range"),
                        Value::Object(broken),
                        &mut out,
                    );
                    if out.len() > before {
                        break;
                    }
                }
            }
        }
        if out.len() == before
            && let Some(value) = out_of_range(&root)
        {
            keep("a value out of range".to_owned(), value, &mut out);
        }
        out
    }
}

/// A value of another JSON type than `value`.
fn wrong_type(value: &Value) -> Value {
    match value {
        Value::String(_) => json!(12345),
        Value::Number(_) => json!("not a number"),
        Value::Bool(_) => json!("not a boolean"),
        Value::Null | Value::Object(_) | Value::Array(_) => json!(42),
    }
}

/// A value the schema's bounds or enum refuse, when it has any.
pub(crate) fn out_of_range(schema: &Value) -> Option<Value> {
    if let Some(Value::Array(values)) = schema.get("enum") {
        let text = values.iter().any(Value::is_string);
        return Some(if text {
            json!("conform-not-in-enum")
        } else {
            json!(987_654_321)
        });
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        return Some(Value::String("x".repeat(max as usize + 1)));
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        return Some(number(min - 1.0));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        return Some(number(max + 1.0));
    }
    if schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) > 0 {
        return Some(json!(""));
    }
    None
}

fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// Follows `$ref`s (into the bundle's definitions) until a schema that is not a reference.
fn resolve<'a>(bundle: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..32 {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            return schema;
        };
        match reference
            .strip_prefix('#')
            .and_then(|pointer| bundle.pointer(pointer))
        {
            Some(target) => schema = target,
            None => return schema,
        }
    }
    schema
}

/// The schema with `$ref` followed and its `allOf` branches merged in (properties, required,
/// bounds), which is what the instance makers read.
fn flatten(bundle: &Value, schema: &Value, depth: usize) -> Value {
    let schema = resolve(bundle, schema);
    if depth > 16 {
        return schema.clone();
    }
    let mut out = without(schema, "allOf");
    if let Some(Value::Array(branches)) = schema.get("allOf") {
        for branch in branches {
            merge(&mut out, &flatten(bundle, branch, depth + 1));
        }
    }
    out
}

fn without(schema: &Value, key: &str) -> Value {
    match schema {
        Value::Object(map) => {
            let mut map = map.clone();
            map.remove(key);
            map.remove("$ref");
            Value::Object(map)
        }
        other => other.clone(),
    }
}

/// Merges `extra` into `target`: properties and `required` are united, other keywords are taken
/// from `extra` when `target` lacks them.
fn merge(target: &mut Value, extra: &Value) {
    let (Value::Object(target), Value::Object(extra)) = (target, extra) else {
        return;
    };
    for (key, value) in extra {
        match (key.as_str(), target.get_mut(key), value) {
            ("properties", Some(Value::Object(mine)), Value::Object(theirs)) => {
                for (name, property) in theirs {
                    mine.entry(name.clone()).or_insert_with(|| property.clone());
                }
            }
            ("required", Some(Value::Array(mine)), Value::Array(theirs)) => {
                for name in theirs {
                    if !mine.contains(name) {
                        mine.push(name.clone());
                    }
                }
            }
            (_, None, _) => {
                target.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
}

/// One instance of `schema`: its example, const, enum or default when it has one, else a value
/// made from its type, format and bounds; objects get their required and `const` fields.
fn make(bundle: &Value, schema: &Value, depth: usize) -> Value {
    let schema = flatten(bundle, schema, depth);
    if depth > 16 {
        return Value::Null;
    }
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(Value::Array(values)) = schema.get("enum")
        && let Some(first) = values.first()
    {
        return first.clone();
    }
    if let Some(Value::Array(examples)) = schema.get("examples")
        && let Some(first) = examples.first()
    {
        return first.clone();
    }
    if let Some(value) = schema.get("default") {
        return value.clone();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = schema.get(key)
            && let Some(first) = branches.first()
        {
            let mut merged = without(&schema, key);
            merge(&mut merged, &flatten(bundle, first, depth + 1));
            return make(bundle, &merged, depth + 1);
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| *kind != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ if schema.get("items").is_some() => "array",
        _ => return json!({}),
    };
    match kind {
        "object" => {
            let mut object = Map::new();
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|names| names.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(Value::Object(properties)) = schema.get("properties") {
                for (name, property) in properties {
                    let flat = flatten(bundle, property, depth + 1);
                    if required.contains(&name.as_str()) || flat.get("const").is_some() {
                        object.insert(name.clone(), make(bundle, property, depth + 1));
                    }
                }
            }
            for name in required {
                object.entry(name.to_owned()).or_insert(json!("conform"));
            }
            Value::Object(object)
        }
        "array" => {
            let count = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let item = schema
                .get("items")
                .map_or(Value::Null, |items| make(bundle, items, depth + 1));
            Value::Array((0..count).map(|_| item.clone()).collect())
        }
        "string" => string_of(&schema),
        "integer" | "number" => {
            let multiple = schema.get("multipleOf").and_then(Value::as_f64);
            let low = schema
                .get("minimum")
                .and_then(Value::as_f64)
                .or_else(|| {
                    schema
                        .get("exclusiveMinimum")
                        .and_then(Value::as_f64)
                        .map(|bound| bound + 1.0)
                })
                .unwrap_or(0.0);
            let value = match multiple {
                Some(step) if step > 0.0 => (low / step).ceil() * step,
                _ => low,
            };
            if kind == "integer" {
                json!(value.ceil() as i64)
            } else {
                number(value)
            }
        }
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

/// A string that meets the schema's format and length.
pub(crate) fn string_of(schema: &Value) -> Value {
    let text = match schema.get("format").and_then(Value::as_str) {
        Some("uuid") => "3f2504e0-4f89-41d3-9a0c-0305e82c3301".to_owned(),
        Some("date-time") => "2025-01-01T00:00:00Z".to_owned(),
        Some("date") => "2025-01-01".to_owned(),
        Some("time") => "00:00:00Z".to_owned(),
        Some("email") => "conform@example.com".to_owned(),
        Some("uri" | "url" | "iri") => "https://example.com/".to_owned(),
        Some("hostname") => "example.com".to_owned(),
        Some("ipv4") => "127.0.0.1".to_owned(),
        Some("ipv6") => "::1".to_owned(),
        _ => "conform".to_owned(),
    };
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |max| max as usize);
    let mut text = text;
    while text.chars().count() < min {
        text.push('x');
    }
    if text.chars().count() > max {
        text = text.chars().take(max).collect();
    }
    Value::String(text)
}

/// The value at `pointer` (a JSON pointer) in `value`.
pub(crate) fn at_pointer<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(value);
    }
    value.pointer(pointer)
}

/// Sets the value at `pointer`, creating the last object member if needed; `false` when the
/// parent is not an object.
pub(crate) fn set_pointer(value: &mut Value, pointer: &str, new: Value) -> bool {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return false;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    let parent = if parent.is_empty() {
        Some(value)
    } else {
        value.pointer_mut(parent)
    };
    match parent {
        Some(Value::Object(map)) => {
            map.insert(last, new);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_instances_of_one_of_branches_and_breaks_them() {
        let schema = Schema::compile(json!({
            "type": "object",
            "oneOf": [{"$ref": "#/definitions/A"}, {"$ref": "#/definitions/B"}],
            "definitions": {
                "A": {"allOf": [{"properties": {"kind": {"const": "a"}}, "required": ["kind"]},
                                {"$ref": "#/definitions/Base"}]},
                "B": {"properties": {"kind": {"const": "b"}, "n": {"type": "integer", "minimum": 3}},
                      "required": ["kind", "n"]},
                "Base": {"type": "object", "required": ["seq"],
                         "properties": {"seq": {"type": "integer"}}}
            }
        }))
        .unwrap();
        let instances = schema.instances();
        assert_eq!(
            instances,
            [json!({"kind": "a", "seq": 0}), json!({"kind": "b", "n": 3})]
        );
        let broken = schema.breakages(&json!({"kind": "b", "n": 3}));
        assert!(broken.iter().all(|(_, value)| !schema.accepts(value)));
        assert!(!broken.is_empty());
    }

    #[test]
    fn pointers_are_read_and_written() {
        let mut value = json!({"a": {"b": 1}});
        assert_eq!(at_pointer(&value, "/a/b"), Some(&json!(1)));
        assert!(set_pointer(&mut value, "/a/c", json!(2)));
        assert!(!set_pointer(&mut value, "/x/y", json!(2)));
        assert_eq!(value, json!({"a": {"b": 1, "c": 2}}));
    }
}
