//! Estimated sizes of the generated types, to box the large variants of message enums.
//!
//! An enum is as large as its largest variant, so one big payload beside small ones wastes
//! memory on every value, and clippy's `large_enum_variant` (on by default) flags a difference
//! of 200 bytes or more between the two largest variants. The exact sizes are only known to
//! rustc, so they are estimated here from typify's output (fields, their types, nesting),
//! rounding up: a variant estimated at [`BOX_FROM`] bytes or more is boxed, which keeps every
//! unboxed variant far enough below the lint's threshold that an estimate off by a third is
//! still clean.

use std::collections::{HashMap, HashSet};

use proc_macro2::TokenStream;

/// Variants estimated at this many bytes or more are boxed in enums of several messages.
pub(crate) const BOX_FROM: usize = 128;

/// The structs and enums typify generated, by name.
pub(crate) struct Sizes {
    items: HashMap<String, Shape>,
    /// Tuple structs of one `serde_json::Value` (a schema that allows any JSON).
    json_newtypes: HashSet<String>,
}

enum Shape {
    /// A struct: its field types (named or tuple).
    Struct(Vec<syn::Type>),
    /// An enum: the field types of each variant.
    Enum(Vec<Vec<syn::Type>>),
}

impl Sizes {
    /// Reads typify's output; anything that does not parse gives an empty table (every named
    /// type then counts as unknown, estimated as large).
    pub(crate) fn new(types: &TokenStream) -> Sizes {
        let mut items = HashMap::new();
        let mut json_newtypes = HashSet::new();
        if let Ok(file) = syn::parse2::<syn::File>(types.clone()) {
            for item in file.items {
                match item {
                    syn::Item::Struct(item) => {
                        if is_json_value_newtype(&item.fields) {
                            json_newtypes.insert(item.ident.to_string());
                        }
                        let fields = item.fields.iter().map(|field| field.ty.clone()).collect();
                        items.insert(item.ident.to_string(), Shape::Struct(fields));
                    }
                    syn::Item::Enum(item) => {
                        let variants = item
                            .variants
                            .iter()
                            .map(|variant| {
                                variant
                                    .fields
                                    .iter()
                                    .map(|field| field.ty.clone())
                                    .collect()
                            })
                            .collect();
                        items.insert(item.ident.to_string(), Shape::Enum(variants));
                    }
                    syn::Item::Type(item) => {
                        items.insert(item.ident.to_string(), Shape::Struct(vec![*item.ty]));
                    }
                    _ => {}
                }
            }
        }
        Sizes {
            items,
            json_newtypes,
        }
    }

    /// Whether typify made `name` a newtype of `serde_json::Value` (a schema that allows any
    /// JSON): a value its schema accepted is then the message as it is, with no deserialising.
    pub(crate) fn wraps_json_value(&self, name: &str) -> bool {
        self.json_newtypes.contains(name)
    }

    /// The estimated size in bytes of the generated type `name`.
    pub(crate) fn of(&self, name: &str) -> usize {
        self.named(name, 0)
    }

    fn named(&self, name: &str, depth: usize) -> usize {
        // Recursive types go through a Box or a Vec, so depth only guards against surprises.
        if depth > 16 {
            return 8;
        }
        match self.items.get(name) {
            Some(Shape::Struct(fields)) => fields.iter().map(|ty| self.ty(ty, depth + 1)).sum(),
            Some(Shape::Enum(variants)) => {
                let largest = variants
                    .iter()
                    .map(|fields| {
                        fields
                            .iter()
                            .map(|ty| self.ty(ty, depth + 1))
                            .sum::<usize>()
                    })
                    .max()
                    .unwrap_or(0);
                if largest == 0 { 1 } else { largest + 8 }
            }
            None => BOX_FROM,
        }
    }

    fn ty(&self, ty: &syn::Type, depth: usize) -> usize {
        match ty {
            syn::Type::Path(path) => {
                let Some(last) = path.path.segments.last() else {
                    return 8;
                };
                let argument = match &last.arguments {
                    syn::PathArguments::AngleBracketed(arguments) => {
                        arguments.args.iter().find_map(|argument| match argument {
                            syn::GenericArgument::Type(ty) => Some(ty),
                            _ => None,
                        })
                    }
                    _ => None,
                };
                match last.ident.to_string().as_str() {
                    "String" | "Vec" | "BTreeMap" | "BTreeSet" | "Cow" => 24,
                    "HashMap" | "HashSet" => 48,
                    // serde_json's map keeps insertion order (an IndexMap): 72 bytes.
                    "Map" => 72,
                    "Value" => 80,
                    "Box" | "Arc" | "Rc" => 16,
                    "Option" => argument.map_or(8, |inner| self.ty(inner, depth) + 8),
                    "i64" | "u64" | "f64" | "isize" | "usize" | "NonZeroU64" | "NonZeroI64"
                    | "NaiveTime" => 8,
                    "i32" | "u32" | "f32" | "char" | "NonZeroU32" | "NaiveDate" => 4,
                    "i16" | "u16" => 2,
                    "i8" | "u8" | "bool" => 1,
                    "Uuid" | "i128" | "u128" => 16,
                    "DateTime" => 12,
                    other => self.named(other, depth),
                }
            }
            syn::Type::Tuple(tuple) => tuple.elems.iter().map(|ty| self.ty(ty, depth)).sum(),
            syn::Type::Array(array) => {
                let length = match &array.len {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Int(length),
                        ..
                    }) => length.base10_parse::<usize>().unwrap_or(1),
                    _ => 1,
                };
                self.ty(&array.elem, depth) * length
            }
            _ => 8,
        }
    }
}

/// `(pub serde_json::Value)`: one public unnamed field of that type. typify makes the field
/// private when the newtype has constraints of its own (checked by a `TryFrom`), and such a
/// type is built by deserialising it, not by wrapping the value.
fn is_json_value_newtype(fields: &syn::Fields) -> bool {
    let syn::Fields::Unnamed(fields) = fields else {
        return false;
    };
    let mut fields = fields.unnamed.iter();
    let (Some(field), None) = (fields.next(), fields.next()) else {
        return false;
    };
    if !matches!(field.vis, syn::Visibility::Public(_)) {
        return false;
    }
    let syn::Type::Path(path) = &field.ty else {
        return false;
    };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    segments == ["serde_json", "Value"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_add_up_fields_and_nesting() {
        let sizes = Sizes::new(&quote::quote! {
            pub struct Small { pub a: ::std::string::String, pub b: i64 }
            pub struct Big { pub small: Small, pub many: [f64; 16], pub maybe: ::std::option::Option<Small> }
            pub enum Either { A(Small), B(::std::boxed::Box<Big>), C }
            pub enum Kind { X, Y }
        });
        assert_eq!(sizes.of("Small"), 32);
        assert_eq!(sizes.of("Big"), 32 + 128 + 40);
        assert_eq!(sizes.of("Either"), 40);
        assert_eq!(sizes.of("Kind"), 1);
        assert_eq!(sizes.of("Unknown"), BOX_FROM);
    }

    #[test]
    fn only_a_public_newtype_of_one_json_value_wraps_any_json() {
        let sizes = Sizes::new(&quote::quote! {
            pub struct Anything(pub ::serde_json::Value);
            pub struct Constrained(::serde_json::Value);
            pub struct Maybe(pub ::std::option::Option<::serde_json::Value>);
            pub struct Named { pub value: ::serde_json::Value }
            pub struct Pair(pub ::serde_json::Value, pub ::serde_json::Value);
            pub struct Other(pub other::Value);
        });
        assert!(sizes.wraps_json_value("Anything"));
        for name in ["Constrained", "Maybe", "Named", "Pair", "Other", "Unknown"] {
            assert!(!sizes.wraps_json_value(name), "{name}");
        }
    }
}
