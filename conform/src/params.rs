//! Handshake parameters: values a server should accept (given, from the document, or made from
//! the schema), values that break each parameter's schema, and the URL and headers they make.

use serde_json::Value;
use wfs_runtime::client::encode;

use crate::options::Options;
use crate::report::short;
use crate::schema::{out_of_range, string_of};
use crate::surface::{Endpoint, ParamSpec, Place, TokenPlace, text_of, typed};

/// The URL and headers of one handshake.
#[derive(Debug, Clone)]
pub(crate) struct Handshake {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// A parameter's value in a handshake; `None`: left out.
pub(crate) type Values = Vec<(usize, Option<String>)>;
/// Parameter values for a handshake the server should accept: `--param`, the token, the
/// document's example, default or enum, else a value made from the schema. Optional query
/// parameters are left out unless given.
pub(crate) fn valid_values(endpoint: &Endpoint, options: &Options) -> Result<Values, String> {
    let mut values = Vec::new();
    for (index, param) in endpoint.params.iter().enumerate() {
        let given = options
            .params
            .iter()
            .find(|(name, _)| *name == param.name)
            .map(|(_, value)| value.clone());
        let is_token = match &endpoint.token {
            Some(TokenPlace::Query(name)) => param.place == Place::Query && *name == param.name,
            Some(TokenPlace::Header { name, .. }) => {
                param.place == Place::Header && name.eq_ignore_ascii_case(&param.name)
            }
            None => false,
        };
        let value = given
            .or_else(|| is_token.then(|| options.token.clone()).flatten())
            .or_else(|| {
                (param.required || param.place == Place::Path)
                    .then(|| made_value(param))
                    .flatten()
            });
        if value.is_none() && param.place == Place::Path {
            return Err(format!(
                "no value for the address parameter `{}` (give --param {}=VALUE)",
                param.name, param.name
            ));
        }
        values.push((index, value));
    }
    Ok(values)
}

/// A value for `param` that its schema accepts, when one can be found.
pub(crate) fn made_value(param: &ParamSpec) -> Option<String> {
    let mut candidates: Vec<String> = param.hint.iter().cloned().collect();
    let kind = param
        .schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    candidates.push(match kind {
        "integer" | "number" => param
            .schema
            .get("minimum")
            .map_or_else(|| "1".to_owned(), text_of),
        "boolean" => "true".to_owned(),
        _ => text_of(&string_of(&param.schema)),
    });
    candidates
        .into_iter()
        .find(|candidate| param.accepts(candidate))
}

/// Handshakes with one parameter broken: (label, values, what is wrong). A required query or
/// header parameter is also left out once; the token is never altered.
pub(crate) fn bad_cases(endpoint: &Endpoint, valid: &Values) -> Vec<(String, Values, String)> {
    let mut out = Vec::new();
    for (index, param) in endpoint.params.iter().enumerate() {
        let replace = |value: Option<String>| -> Values {
            valid
                .iter()
                .map(|(at, old)| {
                    if *at == index {
                        (*at, value.clone())
                    } else {
                        (*at, old.clone())
                    }
                })
                .collect()
        };
        let is_token = matches!(&endpoint.token, Some(TokenPlace::Query(name)) if *name == param.name && param.place == Place::Query);
        if param.required && param.place != Place::Path {
            out.push((
                format!("{} missing", param.name),
                replace(None),
                format!("the required parameter `{}` is missing", param.name),
            ));
        }
        if is_token {
            continue;
        }
        let mut bad: Vec<String> = Vec::new();
        let format = param.schema.get("format").and_then(Value::as_str);
        let kind = param.schema.get("type").and_then(Value::as_str);
        // Formats of strings (`uuid`, `date-time`); numeric ones (`int64`) are covered below.
        if let (Some(format), None | Some("string")) = (format, kind) {
            bad.push(format!("not-a-{format}"));
        }
        if let Some(value) = out_of_range(&param.schema) {
            bad.push(text_of(&value));
        }
        match kind {
            Some("integer" | "number") => bad.push("not-a-number".to_owned()),
            Some("boolean") => bad.push("maybe".to_owned()),
            _ => {}
        }
        if param.schema.get("pattern").is_some() {
            bad.push("!".to_owned());
        }
        let mut kept = 0;
        for value in bad {
            // An empty path segment would not reach the channel at all.
            if kept == 3
                || (value.is_empty() && param.place == Place::Path)
                || param.accepts(&value)
            {
                continue;
            }
            if out.iter().any(|(label, _, _): &(String, Values, String)| {
                *label == format!("{}={value}", param.name)
            }) {
                continue;
            }
            kept += 1;
            let problems = param
                .compiled
                .as_ref()
                .map(|schema| schema.problems(&typed(&param.schema, &value)))
                .unwrap_or_default();
            let why = problems
                .iter()
                .map(|problem| problem.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            out.push((
                format!("{}={}", param.name, short(&value)),
                replace(Some(value)),
                format!("`{}` violates its schema: {why}", param.name),
            ));
        }
    }
    out
}

/// The URL and headers of a handshake with `values`.
pub(crate) fn handshake(endpoint: &Endpoint, values: &Values, options: &Options) -> Handshake {
    let mut path = endpoint.address.clone();
    let mut query: Vec<(String, String)> = Vec::new();
    let mut headers = options.headers.clone();
    for (index, value) in values {
        let param = &endpoint.params[*index];
        let Some(value) = value else { continue };
        match param.place {
            Place::Path => {
                path = path.replace(&format!("{{{}}}", param.name), &encode(value));
            }
            Place::Query => query.push((param.name.clone(), value.clone())),
            Place::Header => headers.push((param.name.clone(), value.clone())),
        }
    }
    match (&endpoint.token, &options.token) {
        (Some(TokenPlace::Query(name)), Some(token))
            if !endpoint
                .params
                .iter()
                .any(|param| param.place == Place::Query && param.name == *name) =>
        {
            query.push((name.clone(), token.clone()));
        }
        (Some(TokenPlace::Header { name, prefix }), Some(token))
            if !headers
                .iter()
                .any(|(header, _)| header.eq_ignore_ascii_case(name)) =>
        {
            headers.push((name.clone(), format!("{prefix}{token}")));
        }
        _ => {}
    }
    let mut url = format!("{}{path}", options.server.trim_end_matches('/'));
    for (position, (name, value)) in query.iter().enumerate() {
        url.push(if position == 0 { '?' } else { '&' });
        url.push_str(&encode(name));
        url.push('=');
        url.push_str(&encode(value));
    }
    Handshake { url, headers }
}
