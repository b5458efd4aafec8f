//! [`Json`]: a payload the contract lets be any JSON value, kept as its compact text rather than
//! as a tree of [`Value`]s.
//!
//! A server that only passes such a payload on (echo, a relay) never needs the tree: building
//! it costs an allocation per string, array and object and a hash per key, and serialising it
//! again walks it all once more. Instead the text is read once, and written as serde_json
//! writes a value (no insignificant whitespace, the same escapes and number forms); the frame
//! sends that. A frame a client sent in that form already (what serde_json, `JSON.stringify`
//! and Python's compact `json.dumps` write) is kept as it came: the check compares instead of
//! copying, and the reply shares the frame's bytes. A handler that wants to look inside parses
//! the text on demand ([`Json::parse`], [`Json::to_value`]).

use std::fmt;
use std::io;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Any JSON value, as the compact text serde_json writes for it.
///
/// Two values serde_json writes the same way compare equal. Object members keep the order they
/// came in, and (unlike a [`Value`]'s) a repeated name is kept as it came, not merged.
#[derive(Clone)]
pub struct Json(Utf8Bytes);

impl Json {
    /// Checks that `text` is one JSON value and keeps it in compact form; serde_json's error
    /// (with line and column) when it is not JSON.
    pub fn from_text(text: &str) -> Result<Json, serde_json::Error> {
        Ok(match compact(text)? {
            Some(rewritten) => Json::from_written(rewritten),
            None => Json(Utf8Bytes::from(text)),
        })
    }

    /// [`Json::from_text`] for a frame as tungstenite read it: when it is compact already, the
    /// value is the frame's bytes, taken rather than copied.
    pub fn from_frame(text: Utf8Bytes) -> Result<Json, serde_json::Error> {
        Ok(match compact(text.as_str())? {
            Some(rewritten) => Json::from_written(rewritten),
            None => Json(text),
        })
    }

    /// The compact text of `value`.
    pub fn from_value(value: &Value) -> Json {
        // A `Value` always serialises: its map keys are strings and its numbers finite.
        let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
        Json(Utf8Bytes::from(text))
    }

    /// Bytes [`Compact`] wrote, which are UTF-8: it writes the source's strings whole, and
    /// ASCII around them.
    fn from_written(bytes: Vec<u8>) -> Json {
        match String::from_utf8(bytes) {
            Ok(text) => Json(Utf8Bytes::from(text)),
            Err(_) => Json(Utf8Bytes::from_static("null")),
        }
    }

    /// The compact text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The value as a tree.
    pub fn to_value(&self) -> Value {
        self.parse().unwrap_or(Value::Null)
    }

    /// The value as `T`; serde_json's error when it is not one.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.as_str())
    }

    /// The text as a frame's payload: shared, not copied.
    pub(crate) fn text(&self) -> Utf8Bytes {
        self.0.clone()
    }
}

/// `text` rewritten compactly, or `None` when it is compact already.
fn compact(text: &str) -> Result<Option<Vec<u8>>, serde_json::Error> {
    let mut written = Rewritten {
        source: text.as_bytes(),
        agreed: 0,
        own: None,
    };
    let mut source = serde_json::Deserializer::from_str(text);
    Compact::new(&mut written, Source::Text).deserialize(&mut source)?;
    source.end()?;
    Ok(written.finish())
}

/// Where [`Compact`] writes when reading a text: compared with that text while the two agree,
/// so that a text in compact form already is neither copied nor written; copied up to the
/// first difference, and written from there, when they do not.
struct Rewritten<'s> {
    source: &'s [u8],
    /// How much of `source` the bytes written so far equal.
    agreed: usize,
    /// The bytes written, once they differ from `source`.
    own: Option<Vec<u8>>,
}

impl Rewritten<'_> {
    /// The rewritten text; `None` when it is the source as it is.
    fn finish(self) -> Option<Vec<u8>> {
        match self.own {
            Some(own) => Some(own),
            // Everything written agreed, but whitespace after the value was left out.
            None if self.agreed < self.source.len() => Some(self.source[..self.agreed].to_vec()),
            None => None,
        }
    }
}

impl io::Write for Rewritten<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match &mut self.own {
            Some(own) => own.extend_from_slice(bytes),
            // A string the source holds without escapes is written from the source itself:
            // the same bytes at the same place, which need no comparing.
            None if self.source[self.agreed..]
                .get(..bytes.len())
                .is_some_and(|here| std::ptr::eq(here.as_ptr(), bytes.as_ptr())) =>
            {
                self.agreed += bytes.len();
            }
            None if self.source[self.agreed..].starts_with(bytes) => self.agreed += bytes.len(),
            None => {
                let mut own = Vec::with_capacity(self.source.len());
                own.extend_from_slice(&self.source[..self.agreed]);
                own.extend_from_slice(bytes);
                self.own = Some(own);
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Json {}

impl std::hash::Hash for Json {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl AsRef<str> for Json {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Value> for Json {
    fn from(value: Value) -> Json {
        Json::from_value(&value)
    }
}

impl From<&Value> for Json {
    fn from(value: &Value) -> Json {
        Json::from_value(value)
    }
}

impl From<Json> for Value {
    fn from(json: Json) -> Value {
        json.to_value()
    }
}

/// Written as it is: the text is JSON already. (A frame of a message that is a `Json` takes
/// the text itself, through [`crate::Payload::json`]; this is for a `Json` inside another
/// type.)
impl Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue =
            serde_json::from_str(self.as_str()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// Any value any deserializer yields (JSON text, a [`Value`]), written compactly.
impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        let mut written = Vec::new();
        Compact::new(&mut written, Source::Other).deserialize(deserializer)?;
        Ok(Json::from_written(written))
    }
}

/// Writes the value a deserializer yields into `out` as serde_json writes it. Each scalar goes
/// through serde_json's own writer, so escapes and number forms are the ones a [`Value`] gets.
struct Compact<'w, W> {
    out: &'w mut W,
    source: Source,
}

/// What the deserializer reads.
#[derive(Clone, Copy, PartialEq)]
enum Source {
    /// JSON text, through serde_json: a string it lends (rather than unescapes into a copy)
    /// had no escapes there, so it holds no character that needs one.
    Text,
    /// Anything else (a [`Value`]), whose strings may hold any character.
    Other,
}

impl<'w, W: io::Write> Compact<'w, W> {
    fn new(out: &'w mut W, source: Source) -> Compact<'w, W> {
        Compact { out, source }
    }

    /// The same writer and source, for a value inside this one.
    fn inner(&mut self) -> Compact<'_, W> {
        Compact::new(&mut *self.out, self.source)
    }

    fn scalar<T: Serialize + ?Sized, E: de::Error>(self, value: &T) -> Result<(), E> {
        serde_json::to_writer(&mut *self.out, value).map_err(E::custom)
    }

    fn punctuation<E: de::Error>(&mut self, mark: &[u8]) -> Result<(), E> {
        self.out.write_all(mark).map_err(E::custom)
    }
}

impl<'de, W: io::Write> DeserializeSeed<'de> for Compact<'_, W> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, W: io::Write> Visitor<'de> for Compact<'_, W> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        self.scalar(&value)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.scalar(&value)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.scalar(&value)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        self.scalar(&value)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.scalar(value)
    }

    /// A string that had no escapes in the text holds no character that needs one (a quote,
    /// a backslash or a control character would have had to be escaped there), so it is
    /// written as it is, between quotes.
    fn visit_borrowed_str<E: de::Error>(mut self, value: &'de str) -> Result<(), E> {
        if self.source != Source::Text {
            return self.scalar(value);
        }
        self.punctuation(b"\"")?;
        self.punctuation(value.as_bytes())?;
        self.punctuation(b"\"")
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.punctuation(b"null")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, value: D) -> Result<(), D::Error> {
        self.deserialize(value)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut items: A) -> Result<(), A::Error> {
        self.punctuation(b"[")?;
        let mut first = true;
        while items
            .next_element_seed(Separated(self.inner(), !first))?
            .is_some()
        {
            first = false;
        }
        self.punctuation(b"]")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut members: A) -> Result<(), A::Error> {
        self.punctuation(b"{")?;
        let mut first = true;
        // A name is a string: written as one, escaped as serde_json escapes it.
        while members
            .next_key_seed(Separated(self.inner(), !first))?
            .is_some()
        {
            first = false;
            self.punctuation(b":")?;
            members.next_value_seed(self.inner())?;
        }
        self.punctuation(b"}")
    }
}

/// An element of an array or a member name: a comma first unless it is the first. The comma
/// is written only once there is an element, since the access only says so by yielding one.
struct Separated<'w, W>(Compact<'w, W>, bool);

impl<'de, W: io::Write> DeserializeSeed<'de> for Separated<'_, W> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let Separated(mut value, comma) = self;
        if comma {
            value.punctuation(b",")?;
        }
        value.deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a `Value` makes of `text`, written back: what every `Json` must equal.
    fn through_value(text: &str) -> String {
        let value: Value = serde_json::from_str(text).expect("test input is JSON");
        serde_json::to_string(&value).expect("a value serialises")
    }

    #[test]
    fn text_is_written_as_a_value_would_be() {
        let texts = [
            r#"{"message":"Hello WebSocket!"}"#,
            r#"{ "message" : "Zürich ☔", "seq" : 2 }"#,
            "\"Hello WebSocket!\"",
            "[1, \"two\", null, true, false, -3, 1.5, 1e3, 1E-2, 0.0, -0.0, 18446744073709551615]",
            "12345678901234567890123",
            r#"{"escaped":"a\"b\\c\/d\u00fc\n\t\u0001\ud83d\ude00","empty":{},"none":[]}"#,
            r#"{"nested":{"deep":[[[{"x":[1,{"y":null}]}]]]},"after":1}"#,
            "  [ ]  ",
            "\n{\"a\"\r\n:\t1}\n",
            "null",
            "-0",
            "0.1",
            "100000000000000000000000000000000",
        ];
        for text in texts {
            let json = Json::from_text(text).expect("JSON");
            assert_eq!(json.as_str(), through_value(text), "from {text:?}");
            let from_value = Json::from_value(&serde_json::from_str(text).expect("JSON"));
            assert_eq!(json, from_value, "from {text:?}");
        }
    }

    #[test]
    fn compact_frames_share_their_bytes() {
        let frame = Utf8Bytes::from(r#"{"message":"hi","n":[1,2]}"#);
        let bytes = frame.as_str().as_ptr();
        let json = Json::from_frame(frame).expect("JSON");
        assert_eq!(json.as_str().as_ptr(), bytes);

        let spaced = Utf8Bytes::from(r#"{"message": "hi"}"#);
        let bytes = spaced.as_str().as_ptr();
        let json = Json::from_frame(spaced).expect("JSON");
        assert_eq!(json.as_str(), r#"{"message":"hi"}"#);
        assert_ne!(json.as_str().as_ptr(), bytes);
    }

    #[test]
    fn strings_from_a_value_are_escaped() {
        // A `Value` lends its strings unescaped: they must not be written as they are.
        let value = serde_json::json!({"q\"": ["a\"b\\c\n\u{1}", "plain"]});
        let json: Json = serde_json::from_value(value.clone()).expect("any value");
        assert_eq!(
            json.as_str(),
            serde_json::to_string(&value).expect("serialises")
        );
        let json: Json = Deserialize::deserialize(&value).expect("any value");
        assert_eq!(json.as_str(), r#"{"q\"":["a\"b\\c\n\u0001","plain"]}"#);
    }

    #[test]
    fn repeated_names_are_kept() {
        // A `Value` keeps the last; the text is kept as it came (RFC 8259 leaves it open).
        let json = Json::from_text(r#"{"a":1,"a":2}"#).expect("JSON");
        assert_eq!(json.as_str(), r#"{"a":1,"a":2}"#);
    }

    #[test]
    fn what_is_not_one_json_value_is_refused() {
        for text in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "nul",
            "1 2",
            "{\"a\" 1}",
            "'a'",
            "[1] x",
        ] {
            assert!(Json::from_text(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn a_json_inside_another_type_is_written_and_read_as_its_value() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Envelope {
            kind: String,
            data: Json,
        }
        let envelope: Envelope =
            serde_json::from_str(r#"{"kind":"k","data":{ "x" : [1, 2] }}"#).expect("JSON");
        assert_eq!(envelope.data.as_str(), r#"{"x":[1,2]}"#);
        assert_eq!(
            serde_json::to_string(&envelope).expect("serialises"),
            r#"{"kind":"k","data":{"x":[1,2]}}"#
        );
        let from_value: Envelope = serde_json::from_value(serde_json::json!({
            "kind": "k", "data": {"x": [1, 2]}
        }))
        .expect("deserialises");
        assert_eq!(from_value, envelope);
        assert_eq!(envelope.data.to_value(), serde_json::json!({"x": [1, 2]}));
    }
}
