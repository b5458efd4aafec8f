//! Rust identifiers from contract names: valid, unique, never a keyword.

use heck::ToSnakeCase;
use proc_macro2::Ident;
use quote::format_ident;

/// Words that cannot be raw identifiers; they get a trailing `_` instead.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// A snake_case identifier for a field or module (`r#type` for keywords).
pub(crate) fn field_ident(name: &str) -> Ident {
    let mut text: String = name
        .to_snake_case()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if text.is_empty() {
        text.push_str("value");
    }
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        text.insert(0, '_');
    }
    if NOT_RAW.contains(&text.as_str()) {
        return format_ident!("{}_", text);
    }
    if syn::parse_str::<Ident>(&text).is_err() {
        return format_ident!("r#{}", text);
    }
    format_ident!("{}", text)
}

/// A snake_case method name from an operation id (`receiveChat` -> `receive_chat`).
pub(crate) fn method_ident(name: &str) -> Ident {
    field_ident(name)
}

/// `name`, or `name_2`, `name_3`... whichever is not in `taken` yet; records it.
pub(crate) fn unique(taken: &mut Vec<String>, name: &str) -> String {
    let mut candidate = name.to_owned();
    let mut counter = 2;
    while taken.contains(&candidate) {
        candidate = format!("{name}_{counter}");
        counter += 1;
    }
    taken.push(candidate.clone());
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_valid_rust() {
        assert_eq!(field_ident("city_uuid").to_string(), "city_uuid");
        assert_eq!(field_ident("type").to_string(), "r#type");
        assert_eq!(field_ident("self").to_string(), "self_");
        assert_eq!(field_ident("2fa").to_string(), "_2fa");
        assert_eq!(field_ident("X-Request-Id").to_string(), "x_request_id");
        assert_eq!(method_ident("receiveChat").to_string(), "receive_chat");
    }

    #[test]
    fn unique_names_get_a_suffix() {
        let mut taken = vec!["chat".to_owned()];
        assert_eq!(unique(&mut taken, "chat"), "chat_2");
        assert_eq!(unique(&mut taken, "chat"), "chat_3");
        assert_eq!(unique(&mut taken, "echo"), "echo");
    }
}
