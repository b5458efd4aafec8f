//! The contract's JSON Schemas, compiled once and checked against frames.
//!
//! typify's types do not enforce every keyword (`minimum`, `maxLength`, `pattern` on some
//! shapes...), so every inbound frame is checked against the schema itself before it is
//! decoded; outbound frames are checked in debug builds and tests.

use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

/// A lazily compiled JSON Schema (draft-07, or the later draft its `$schema` names; formats
/// checked) embedded as text.
pub struct Validator {
    name: &'static str,
    schema: &'static str,
    compiled: OnceLock<Result<jsonschema::Validator, String>>,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("name", &self.name)
            .finish()
    }
}

/// Why a value does not match a schema: every violation, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations {
    /// The name of the schema that was broken (a message type, or `<channel> parameters`).
    pub schema: &'static str,
    /// Every violation found, in the validator's order.
    pub problems: Vec<Violation>,
}

/// One violation: the JSON pointer of the offending value (empty for the whole value) and what
/// is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer (RFC 6901) of the offending value; empty for the whole value.
    pub path: String,
    /// What is wrong, as the validator words it.
    pub message: String,
}

impl Violations {
    /// A single violation of the whole value.
    pub fn single(schema: &'static str, message: impl Into<String>) -> Violations {
        Violations {
            schema,
            problems: vec![Violation {
                path: String::new(),
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.schema)?;
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

impl Validator {
    /// `schema` is the JSON text of a self-contained schema; `name` names it in errors.
    pub const fn new(name: &'static str, schema: &'static str) -> Validator {
        Validator {
            name,
            schema,
            compiled: OnceLock::new(),
        }
    }

    /// The schema's name, as errors give it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Checks `value`; every violation is listed.
    pub fn check(&self, value: &Value) -> Result<(), Violations> {
        let compiled = self.compiled.get_or_init(|| {
            let schema: Value =
                serde_json::from_str(self.schema).map_err(|error| error.to_string())?;
            jsonschema::options()
                .with_draft(draft_of(&schema))
                .should_validate_formats(true)
                // Draft-07 predates the `uuid` format that AsyncAPI contracts use; without this
                // it would be ignored. Canonical form only, as at the handshake.
                .with_format("uuid", |value: &str| crate::params::uuid(value).is_ok())
                .build(&schema)
                .map_err(|error| error.to_string())
        });
        match compiled {
            // A valid value (nearly every frame) is answered by the fast check, which builds
            // no error; the errors are collected only for a value that has some.
            Ok(validator) if validator.is_valid(value) => Ok(()),
            Ok(validator) => {
                let problems: Vec<Violation> = validator
                    .iter_errors(value)
                    .map(|error| Violation {
                        path: error.instance_path().to_string(),
                        message: error.to_string(),
                    })
                    .collect();
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(Violations {
                        schema: self.name,
                        problems,
                    })
                }
            }
            // A schema that does not compile is a generator bug; refuse rather than panic.
            Err(error) => Err(Violations::single(
                self.name,
                format!("the contract's schema does not compile: {error}"),
            )),
        }
    }
}

/// The draft a schema names in `$schema`: 2020-12 or 2019-09 when it says so (a contract that
/// uses `dependentSchemas` or `unevaluatedProperties` needs them enforced), draft-07 otherwise.
fn draft_of(schema: &Value) -> jsonschema::Draft {
    let named = schema
        .get("$schema")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if named.contains("2020-12") {
        jsonschema::Draft::Draft202012
    } else if named.contains("2019-09") {
        jsonschema::Draft::Draft201909
    } else {
        jsonschema::Draft::Draft7
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static MESSAGE: Validator = Validator::new(
        "Message",
        r#"{"type":"object","required":["message"],"properties":{"message":{"type":"string","maxLength":3},"id":{"type":"string","format":"uuid"}}}"#,
    );

    #[test]
    fn reports_every_violation_with_its_path() {
        assert!(MESSAGE.check(&json!({"message": "hi"})).is_ok());
        let violations = MESSAGE
            .check(&json!({"message": "toolong", "id": "nope"}))
            .unwrap_err();
        let paths: Vec<&str> = violations
            .problems
            .iter()
            .map(|problem| problem.path.as_str())
            .collect();
        assert_eq!(paths, ["/message", "/id"], "{violations}");
    }

    #[test]
    fn later_draft_keywords_are_enforced_when_the_schema_names_its_draft() {
        static LATER: Validator = Validator::new(
            "Later",
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"card":{"type":"string"}},"dependentSchemas":{"card":{"required":["expiry"]}},"unevaluatedProperties":false,"prefixItems":[{"type":"string"}]}"#,
        );
        assert!(LATER.check(&json!({"card": "x", "expiry": 1})).is_err());
        assert!(LATER.check(&json!({"card": "x"})).is_err());
        assert!(LATER.check(&json!({"other": 1})).is_err());
        assert!(LATER.check(&json!({})).is_ok());
    }

    #[test]
    fn a_broken_schema_refuses_instead_of_panicking() {
        static BROKEN: Validator = Validator::new("Broken", "{not json");
        assert!(BROKEN.check(&json!({})).is_err());
    }
}
