//! Avro schemas as JSON Schema, following Avro's JSON encoding, so Avro payloads generate
//! types and validators like any other.
//!
//! The JSON encoding (Avro 1.9 specification, "JSON Encoding") decides the shapes: a record is
//! an object with every field present; an enum is one of its symbols; `bytes` and `fixed` are
//! strings; a union value is `null`, or an object with one member named after the branch's
//! type (`{"string": "a"}`, `{"com.acme.Address": {...}}`). Logical types are their underlying
//! type, except `uuid`, a string in UUID format. Named types (record, enum, fixed) become named
//! schemas, so they are Rust types of their own and recursive records stay finite.
//!
//! Written here: no maintained crate maps Avro to JSON Schema, and the mapping is a few rules.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

/// Primitive type names, which are never looked up as named types.
const PRIMITIVES: &[&str] = &[
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// A named type (record, enum, fixed) met in a schema: its full name and definition.
pub(crate) struct Named {
    pub full_name: String,
    /// The namespace its own fields' names resolve in.
    pub namespace: Option<String>,
    pub definition: Value,
}

/// Every named type defined in `schema`, outermost first.
pub(crate) fn named_types(schema: &Value) -> Result<Vec<Named>, String> {
    let mut found = Vec::new();
    collect(schema, None, &mut found)?;
    Ok(found)
}

fn collect(schema: &Value, namespace: Option<&str>, found: &mut Vec<Named>) -> Result<(), String> {
    match schema {
        Value::Array(branches) => branches
            .iter()
            .try_for_each(|branch| collect(branch, namespace, found)),
        Value::Object(map) => {
            let kind = map.get("type").and_then(Value::as_str).unwrap_or_default();
            match kind {
                "record" | "error" | "enum" | "fixed" => {
                    let name = map
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("an Avro {kind} needs a `name`"))?;
                    let (full_name, own_namespace) = full_name(name, map, namespace);
                    found.push(Named {
                        full_name,
                        namespace: own_namespace.clone(),
                        definition: schema.clone(),
                    });
                    if let Some(Value::Array(fields)) = map.get("fields") {
                        for field in fields {
                            if let Some(field_type) = field.get("type") {
                                collect(field_type, own_namespace.as_deref(), found)?;
                            }
                        }
                    }
                    Ok(())
                }
                "array" => map
                    .get("items")
                    .map_or(Ok(()), |items| collect(items, namespace, found)),
                "map" => map
                    .get("values")
                    .map_or(Ok(()), |values| collect(values, namespace, found)),
                _ => match map.get("type") {
                    // `{"type": {"type": "record", ...}}`: a nested definition.
                    Some(inner @ (Value::Object(_) | Value::Array(_))) => {
                        collect(inner, namespace, found)
                    }
                    _ => Ok(()),
                },
            }
        }
        _ => Ok(()),
    }
}

/// The full name of a named type and the namespace its contents resolve in.
fn full_name(
    name: &str,
    map: &Map<String, Value>,
    enclosing: Option<&str>,
) -> (String, Option<String>) {
    if let Some((namespace, _)) = name.rsplit_once('.') {
        return (name.to_owned(), Some(namespace.to_owned()));
    }
    let namespace = map
        .get("namespace")
        .and_then(Value::as_str)
        .or(enclosing)
        .filter(|namespace| !namespace.is_empty());
    match namespace {
        Some(namespace) => (format!("{namespace}.{name}"), Some(namespace.to_owned())),
        None => (name.to_owned(), None),
    }
}

/// Converts Avro schemas, with `names` giving each named type's schema name (its full name to
/// the name it is registered under, referenced as `#/definitions/<name>`).
pub(crate) struct Converter<'a> {
    pub names: &'a HashMap<String, String>,
}

impl Converter<'_> {
    /// The JSON Schema of a named type's own definition (not a reference to it).
    pub(crate) fn definition(&self, named: &Named) -> Result<Value, String> {
        let Value::Object(map) = &named.definition else {
            return Err("a named Avro type must be an object".to_owned());
        };
        let namespace = named.namespace.as_deref();
        let mut out = match map.get("type").and_then(Value::as_str) {
            Some("record" | "error") => {
                let Some(Value::Array(fields)) = map.get("fields") else {
                    return Err(format!("Avro record `{}` needs `fields`", named.full_name));
                };
                let mut properties = Map::new();
                let mut required = Vec::new();
                for field in fields {
                    let name = field
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("a field of `{}` has no `name`", named.full_name))?;
                    let field_type = field.get("type").ok_or_else(|| {
                        format!("field `{name}` of `{}` has no `type`", named.full_name)
                    })?;
                    let mut schema = self.schema(field_type, namespace)?;
                    if let (Some(doc), Value::Object(schema)) = (field.get("doc"), &mut schema) {
                        schema.insert("description".to_owned(), doc.clone());
                    }
                    properties.insert(name.to_owned(), schema);
                    // The JSON encoding writes every field, defaults included.
                    required.push(Value::String(name.to_owned()));
                }
                json!({"type": "object", "properties": properties, "required": required})
            }
            Some("enum") => {
                let symbols = map.get("symbols").cloned().unwrap_or(json!([]));
                json!({"type": "string", "enum": symbols})
            }
            Some("fixed") => {
                let size = map.get("size").and_then(Value::as_u64).unwrap_or(0);
                json!({"type": "string", "minLength": size, "maxLength": size})
            }
            _ => return self.schema(&named.definition, namespace),
        };
        if let (Some(doc), Value::Object(out)) = (map.get("doc"), &mut out) {
            out.insert("description".to_owned(), doc.clone());
        }
        if let Value::Object(out) = &mut out {
            out.insert("title".to_owned(), Value::String(named.full_name.clone()));
        }
        Ok(out)
    }

    /// The JSON Schema of an Avro schema in the namespace `namespace`; named types are
    /// references to their definitions.
    pub(crate) fn schema(&self, schema: &Value, namespace: Option<&str>) -> Result<Value, String> {
        match schema {
            Value::String(name) => self.by_name(name, namespace),
            Value::Array(branches) => {
                let mut one_of = Vec::new();
                for branch in branches {
                    if branch == "null" || branch.get("type") == Some(&json!("null")) {
                        one_of.push(json!({"type": "null"}));
                        continue;
                    }
                    let label = self.branch_label(branch, namespace)?;
                    let inner = self.schema(branch, namespace)?;
                    one_of.push(json!({
                        "type": "object",
                        "required": [label],
                        "properties": {label.clone(): inner},
                        "additionalProperties": false,
                    }));
                }
                Ok(json!({"oneOf": one_of}))
            }
            Value::Object(map) => {
                let kind = map.get("type");
                match kind.and_then(Value::as_str) {
                    Some("record" | "error" | "enum" | "fixed") => {
                        let name = map.get("name").and_then(Value::as_str).unwrap_or_default();
                        let (full_name, _) = full_name(name, map, namespace);
                        self.reference(&full_name)
                    }
                    Some("array") => {
                        let items = map.get("items").ok_or("an Avro array needs `items`")?;
                        Ok(json!({"type": "array", "items": self.schema(items, namespace)?}))
                    }
                    Some("map") => {
                        let values = map.get("values").ok_or("an Avro map needs `values`")?;
                        Ok(json!({
                            "type": "object",
                            "additionalProperties": self.schema(values, namespace)?,
                        }))
                    }
                    Some(primitive) if PRIMITIVES.contains(&primitive) => {
                        let mut out = primitive_schema(primitive);
                        if map.get("logicalType").and_then(Value::as_str) == Some("uuid")
                            && let Value::Object(out) = &mut out
                        {
                            out.insert("format".to_owned(), json!("uuid"));
                        }
                        Ok(out)
                    }
                    Some(name) => self.by_name(name, namespace),
                    None => match kind {
                        Some(inner) => self.schema(inner, namespace),
                        None => Err("an Avro schema object needs a `type`".to_owned()),
                    },
                }
            }
            other => Err(format!("`{other}` is not an Avro schema")),
        }
    }

    fn by_name(&self, name: &str, namespace: Option<&str>) -> Result<Value, String> {
        if PRIMITIVES.contains(&name) {
            return Ok(primitive_schema(name));
        }
        let qualified = match namespace {
            Some(namespace) if !name.contains('.') => format!("{namespace}.{name}"),
            _ => name.to_owned(),
        };
        if self.names.contains_key(&qualified) {
            self.reference(&qualified)
        } else {
            self.reference(name)
        }
    }

    fn reference(&self, full_name: &str) -> Result<Value, String> {
        match self.names.get(full_name) {
            Some(name) => Ok(json!({"$ref": format!("#/definitions/{name}")})),
            None => Err(format!("Avro type `{full_name}` is not defined")),
        }
    }

    /// The member name of a union branch in the JSON encoding: its type's (full) name.
    fn branch_label(&self, branch: &Value, namespace: Option<&str>) -> Result<String, String> {
        match branch {
            Value::String(name) if PRIMITIVES.contains(&name.as_str()) => Ok(name.clone()),
            Value::String(name) => {
                let qualified = match namespace {
                    Some(namespace) if !name.contains('.') => format!("{namespace}.{name}"),
                    _ => name.clone(),
                };
                Ok(if self.names.contains_key(&qualified) {
                    qualified
                } else {
                    name.clone()
                })
            }
            Value::Object(map) => match map.get("type").and_then(Value::as_str) {
                Some("record" | "error" | "enum" | "fixed") => {
                    let name = map.get("name").and_then(Value::as_str).unwrap_or_default();
                    Ok(full_name(name, map, namespace).0)
                }
                Some(kind) => Ok(kind.to_owned()),
                None => Err("a union branch needs a `type`".to_owned()),
            },
            _ => Err("a union cannot directly contain a union".to_owned()),
        }
    }
}

fn primitive_schema(name: &str) -> Value {
    match name {
        "null" => json!({"type": "null"}),
        "boolean" => json!({"type": "boolean"}),
        "int" => json!({"type": "integer", "minimum": i32::MIN, "maximum": i32::MAX}),
        "long" => json!({"type": "integer"}),
        "float" | "double" => json!({"type": "number"}),
        // `bytes` and `fixed` are strings of code points 0-255 in the JSON encoding.
        _ => json!({"type": "string"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(schema: Value) -> (Value, Vec<(String, Value)>) {
        let named = named_types(&schema).unwrap();
        let names: HashMap<String, String> = named
            .iter()
            .map(|n| (n.full_name.clone(), n.full_name.replace('.', "_")))
            .collect();
        let converter = Converter { names: &names };
        let definitions = named
            .iter()
            .map(|n| (n.full_name.clone(), converter.definition(n).unwrap()))
            .collect();
        (converter.schema(&schema, None).unwrap(), definitions)
    }

    #[test]
    fn records_unions_and_named_types_follow_the_json_encoding() {
        let (root, definitions) = convert(json!({
            "type": "record", "name": "User", "namespace": "com.acme",
            "fields": [
                {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
                {"name": "age", "type": ["null", "int"], "default": null},
                {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
                {"name": "tags", "type": {"type": "map", "values": "string"}},
                {"name": "friends", "type": {"type": "array", "items": "User"}},
            ]
        }));
        assert_eq!(root, json!({"$ref": "#/definitions/com_acme_User"}));
        let (name, user) = &definitions[0];
        assert_eq!(name, "com.acme.User");
        assert_eq!(
            user["properties"]["id"],
            json!({"type": "string", "format": "uuid"})
        );
        assert_eq!(
            user["properties"]["age"]["oneOf"][1]["properties"]["int"]["type"],
            "integer"
        );
        assert_eq!(
            user["properties"]["kind"],
            json!({"$ref": "#/definitions/com_acme_Kind"})
        );
        assert_eq!(
            user["properties"]["friends"]["items"],
            json!({"$ref": "#/definitions/com_acme_User"})
        );
        assert_eq!(user["required"].as_array().unwrap().len(), 5);
        assert_eq!(definitions[1].1["enum"], json!(["A", "B"]));
    }

    #[test]
    fn unknown_names_are_errors() {
        let named = named_types(&json!("Missing")).unwrap();
        let names = HashMap::new();
        let converter = Converter { names: &names };
        assert!(named.is_empty());
        assert!(converter.schema(&json!("Missing"), None).is_err());
    }
}
