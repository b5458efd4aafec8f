//! YAML and JSON text to `serde_json` values, with the line and column of every node.
//!
//! Errors in an AsyncAPI document must name file:line:column, but `serde_json::Value`
//! forgets where its nodes came from. So the value is built here from the spanned events
//! of `saphyr-parser` (the maintained successor of yaml-rust2), and a [`SourceMap`] keyed
//! by JSON pointer keeps every node's position for the checks that run on the value later.
//!
//! saphyr-parser gives us the YAML 1.2 scanner and parser: events with the span of every
//! node, errors with their position, unknown anchors refused, flow nesting bounded at 255.
//! saphyr's own spanned tree (`MarkedYaml`, checked on 0.3.4) is not used: it would lose
//! what this module keeps by hand, namely merge keys (`<<` stays an ordinary key there),
//! a depth bound (10,000 nested `- ` overflow its recursion and abort the process),
//! duplicate keys named with the first one's line and compared as JSON keys (it accepts
//! `200` beside `'200'`), keys kept as written (it turns `0x10` into 16), recursive
//! aliases refused (it leaves a silent bad value), integers up to `u64::MAX`, and no
//! infinity or NaN. Its alias budget (100,000 nodes) lives in that tree's loader, so the
//! bound on alias copies is ours too. Also by hand: the event loop (`Parser::load`
//! recurses per level), and placing a node with an anchor or a tag at its content rather
//! than at those properties (see `Source`).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span, Tag};
use serde_json::{Map, Value};

/// Deepest nesting of mappings and sequences accepted. saphyr-parser only bounds flow
/// collections (at 255), and this module and the code that walks the value afterwards
/// recurse, so thousands of nested block collections must stop here rather than
/// overflow the stack. Real documents stay far below it; `serde_json` stops at 127.
const MAX_DEPTH: usize = 128;

/// Most nodes that aliases may copy in one document, so that a "billion laughs"
/// document (aliases of aliases of aliases) fails instead of exhausting memory.
const MAX_ALIAS_NODES: usize = 1_000_000;

/// Prefix of the YAML core schema tags (`!!str` is `tag:yaml.org,2002:str`).
const CORE_TAG: &str = "tag:yaml.org,2002:";

/// A 1-based line and column in the source text.
///
/// The column counts characters (Unicode scalar values), not bytes, as an editor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl Position {
    const START: Position = Position { line: 1, column: 1 };

    /// saphyr counts lines from 1 but columns from 0.
    fn from_marker(mark: Marker) -> Position {
        Position {
            line: saturate(mark.line()),
            column: saturate(mark.col().saturating_add(1)),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Option<Position>,
    value: Position,
}

/// Where each node of a parsed document came from, by JSON pointer (RFC 6901, "" is the root).
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    entries: HashMap<String, Entry>,
}

impl SourceMap {
    /// Position of the node's key when it is an object member (the line a reader looks at), else of its value.
    pub fn position(&self, pointer: &str) -> Option<Position> {
        self.entries
            .get(pointer)
            .map(|entry| entry.key.unwrap_or(entry.value))
    }

    /// Position of the value itself.
    pub fn value_position(&self, pointer: &str) -> Option<Position> {
        self.entries.get(pointer).map(|entry| entry.value)
    }

    /// Position for a pointer that may not exist: walks up to the nearest ancestor that does
    /// (e.g. a missing required field is reported at its parent object). Falls back to 1:1.
    pub fn nearest(&self, pointer: &str) -> Position {
        let mut pointer = pointer;
        loop {
            if let Some(position) = self.position(pointer) {
                return position;
            }
            match pointer.rfind('/') {
                Some(slash) => pointer = &pointer[..slash],
                None if pointer.is_empty() => return Position::START,
                None => pointer = "",
            }
        }
    }
}

/// A document that is not well-formed YAML, or that has no JSON equivalent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {message}")]
pub struct SyntaxError {
    /// Where the problem is.
    pub position: Position,
    /// What is wrong, without the position.
    pub message: String,
}

fn error(position: Position, message: impl Into<String>) -> SyntaxError {
    SyntaxError {
        position,
        message: message.into(),
    }
}

/// Parses YAML 1.2 (or JSON, which is YAML) into a JSON value and the positions of its nodes.
pub fn parse(text: &str) -> Result<(Value, SourceMap), SyntaxError> {
    // Editors hide a byte-order mark: dropped here, it can count neither as part of the
    // first key nor as a column, whatever the parser's version does with it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder {
        source: Source::new(text),
        ..Builder::default()
    };
    // Pull events one at a time rather than calling `Parser::load`: `load` recurses once
    // per nesting level and asserts on its input (in saphyr-parser 0.3.4 as in yaml-rust2),
    // and this loop stops at the first error, whether the parser's or the builder's.
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(scan_error)?;
        builder.handle(event, span)?;
    }
    builder.finish()
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/` (RFC 6901).
pub fn push_token(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    append_token(&mut out, token);
    out
}

fn append_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// saphyr keeps the position apart from the message (only its `Display` adds
/// "at byte .. line .. column .."), so the message can be used as it is.
fn scan_error(scan: ScanError) -> SyntaxError {
    error(Position::from_marker(*scan.marker()), scan.info())
}

/// The text being parsed, to find where a node's content starts after its properties.
///
/// saphyr-parser starts the span of a node with an anchor or a tag (`&base`, `!!int`) at
/// those properties, on the line before its content for `key: &base` and a block mapping.
/// The content is where a reader looks (and where yaml-rust2 placed such nodes), so the
/// properties between are skipped here. Line starts are found once, and only when needed.
#[derive(Default)]
struct Source<'input> {
    text: &'input str,
    /// Byte offset of each line's start; empty until the first node with properties.
    lines: Vec<usize>,
}

impl<'input> Source<'input> {
    fn new(text: &'input str) -> Self {
        Source {
            text,
            lines: Vec::new(),
        }
    }

    /// Where the content of a node spanning `span` starts, or the span's start when the
    /// text there does not read as properties followed by content before the span's end.
    fn content_start(&mut self, span: Span) -> Position {
        let start = Position::from_marker(span.start);
        let end = Position::from_marker(span.end);
        if self.lines.is_empty() {
            self.lines = line_starts(self.text);
        }
        let Some(&line_start) = span
            .start
            .line()
            .checked_sub(1)
            .and_then(|line| self.lines.get(line))
        else {
            return start;
        };
        let rest = &self.text[line_start..];
        let Some((offset, _)) = rest.char_indices().nth(span.start.col()) else {
            return start;
        };
        let found = skip_properties(&rest[offset..], start);
        if found > end { start } else { found }
    }
}

/// Byte offsets where lines start; `\r\n`, `\n` and a lone `\r` each end a line, as
/// they do for saphyr-parser.
fn line_starts(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut starts = vec![0];
    for (index, &byte) in bytes.iter().enumerate() {
        let ends_line = byte == b'\n' || (byte == b'\r' && bytes.get(index + 1) != Some(&b'\n'));
        if ends_line {
            starts.push(index + 1);
        }
    }
    starts
}

/// The position of the first character after the anchors, tags, blanks, comments and
/// line breaks that `text` (starting at `from`) opens with.
fn skip_properties(text: &str, from: Position) -> Position {
    let mut pos = from;
    let mut chars = text.chars().peekable();
    let advance = |pos: &mut Position| pos.column = pos.column.saturating_add(1);
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
                advance(&mut pos);
            }
            '\r' | '\n' => {
                chars.next();
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                pos = Position {
                    line: pos.line.saturating_add(1),
                    column: 1,
                };
            }
            '#' => {
                while chars.next_if(|&c| c != '\r' && c != '\n').is_some() {
                    advance(&mut pos);
                }
            }
            '!' | '&' => {
                chars.next();
                advance(&mut pos);
                // A verbatim tag (`!<...>`) ends at its `>`; other tags and anchors at a
                // blank or a flow indicator.
                if c == '!' && chars.peek() == Some(&'<') {
                    while let Some(c) = chars.next_if(|&c| c != '\r' && c != '\n') {
                        advance(&mut pos);
                        if c == '>' {
                            break;
                        }
                    }
                } else {
                    let in_token = |c: &char| {
                        !matches!(c, ' ' | '\t' | '\r' | '\n' | ',' | '[' | ']' | '{' | '}')
                    };
                    while chars.next_if(in_token).is_some() {
                        advance(&mut pos);
                    }
                }
            }
            _ => break,
        }
    }
    pos
}

/// A node before it becomes a `Value`: positions travel with the node, so copies made
/// for aliases and merge keys keep the positions of the text they were copied from.
#[derive(Debug, Clone)]
struct Node {
    pos: Position,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Scalar(Value),
    Seq(Vec<Node>),
    Map(Vec<Member>),
}

#[derive(Debug, Clone)]
struct Member {
    key: String,
    key_pos: Position,
    value: Node,
    /// The key is a plain `<<`, to be merged when its mapping ends.
    merge: bool,
}

/// A finished node with what the limits need: `height` counts collection levels
/// (0 for a scalar) and `size` counts nodes.
#[derive(Debug, Clone)]
struct Built {
    node: Node,
    height: usize,
    size: usize,
}

/// What an anchor names. Scalars are kept as written so that an alias used as a mapping
/// key gets the same key text as the original, and is resolved afresh where it is used.
#[derive(Debug, Clone)]
enum Anchored<'input> {
    Scalar {
        text: Cow<'input, str>,
        style: ScalarStyle,
        tag: Option<Cow<'input, Tag>>,
        pos: Position,
    },
    Node(Built),
}

struct Frame {
    pos: Position,
    anchor: usize,
    height: usize,
    size: usize,
    kind: FrameKind,
}

enum FrameKind {
    Seq(Vec<Node>),
    Map {
        members: Vec<Member>,
        first_seen: HashMap<String, Position>,
        key: Option<PendingKey>,
    },
}

struct PendingKey {
    text: String,
    pos: Position,
    merge: bool,
}

#[derive(Default)]
struct Builder<'input> {
    source: Source<'input>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored<'input>>,
    root: Option<Node>,
    documents: usize,
    alias_nodes: usize,
}

impl<'input> Builder<'input> {
    fn handle(&mut self, event: Event<'input>, span: Span) -> Result<(), SyntaxError> {
        let pos = match &event {
            Event::Scalar(_, _, anchor, tag)
            | Event::SequenceStart(anchor, tag)
            | Event::MappingStart(anchor, tag)
                if *anchor != 0 || tag.is_some() =>
            {
                self.source.content_start(span)
            }
            _ => Position::from_marker(span.start),
        };
        match event {
            Event::DocumentStart(_) => {
                if self.documents > 0 {
                    return Err(error(
                        pos,
                        "a second YAML document starts here; the file must hold exactly one",
                    ));
                }
                self.documents += 1;
            }
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 {
                    let anchored = Anchored::Scalar {
                        text: text.clone(),
                        style,
                        tag: tag.clone(),
                        pos,
                    };
                    self.anchors.insert(anchor, anchored);
                }
                self.scalar(text, style, tag.as_deref(), pos)?;
            }
            Event::Alias(id) => self.alias(id, pos)?,
            Event::SequenceStart(anchor, _) => {
                self.open(pos, anchor, FrameKind::Seq(Vec::new()), "sequence")?;
            }
            Event::MappingStart(anchor, _) => {
                let kind = FrameKind::Map {
                    members: Vec::new(),
                    first_seen: HashMap::new(),
                    key: None,
                };
                self.open(pos, anchor, kind, "mapping")?;
            }
            Event::SequenceEnd | Event::MappingEnd => self.close()?,
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<(Value, SourceMap), SyntaxError> {
        let root = self
            .root
            .ok_or_else(|| error(Position::START, "empty document"))?;
        let mut map = SourceMap::default();
        let mut pointer = String::new();
        let value = emit(root, None, &mut pointer, &mut map.entries);
        Ok((value, map))
    }

    fn awaiting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame {
                kind: FrameKind::Map { key: None, .. },
                ..
            })
        )
    }

    fn pending_key_pos(&self) -> Option<Position> {
        match self.stack.last() {
            Some(Frame {
                kind: FrameKind::Map { key: Some(key), .. },
                ..
            }) => Some(key.pos),
            _ => None,
        }
    }

    fn scalar(
        &mut self,
        text: Cow<'input, str>,
        style: ScalarStyle,
        tag: Option<&Tag>,
        pos: Position,
    ) -> Result<(), SyntaxError> {
        if self.awaiting_key() {
            // Keys keep the text as written (`200` stays "200", not a number turned back
            // into text), except that every spelling of null becomes "null".
            let merge = style == ScalarStyle::Plain && tag.is_none() && text == "<<";
            let text = match resolve(&text, style, tag) {
                Ok(Value::Null) => "null".to_owned(),
                _ => text.into_owned(),
            };
            return self.set_key(text, pos, merge);
        }
        let value = resolve(&text, style, tag).map_err(|message| error(pos, message))?;
        // saphyr-parser places an empty value (`key:` and a line break) at the `:` after
        // its key (yaml-rust2 at the next token, often on the next line); the key is
        // where a reader looks.
        let pos = match self.pending_key_pos() {
            Some(key_pos) if text.is_empty() && style == ScalarStyle::Plain => key_pos,
            _ => pos,
        };
        self.attach(Built {
            node: Node {
                pos,
                kind: Kind::Scalar(value),
            },
            height: 0,
            size: 1,
        })
    }

    fn set_key(&mut self, text: String, pos: Position, merge: bool) -> Result<(), SyntaxError> {
        let Some(Frame {
            kind: FrameKind::Map {
                first_seen, key, ..
            },
            ..
        }) = self.stack.last_mut()
        else {
            return Err(error(pos, "a key outside of a mapping"));
        };
        if let Some(first) = first_seen.get(&text) {
            return Err(error(
                pos,
                format!("duplicate key {text:?} (first at line {})", first.line),
            ));
        }
        first_seen.insert(text.clone(), pos);
        *key = Some(PendingKey { text, pos, merge });
        Ok(())
    }

    fn alias(&mut self, id: usize, pos: Position) -> Result<(), SyntaxError> {
        // saphyr-parser rejects unknown anchor names itself; an id it knows but that is not
        // stored yet belongs to a collection still open around this alias.
        let anchored = self.anchors.get(&id).ok_or_else(|| {
            error(
                pos,
                "alias refers to a node that contains it (recursive aliases are not supported)",
            )
        })?;
        let size = match anchored {
            Anchored::Node(built) => built.size,
            Anchored::Scalar { .. } => 1,
        };
        // Checked before copying, so that an oversized copy is never made.
        let alias_nodes = self.alias_nodes.saturating_add(size);
        if alias_nodes > MAX_ALIAS_NODES {
            return Err(error(
                pos,
                format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"),
            ));
        }
        let anchored = anchored.clone();
        self.alias_nodes = alias_nodes;
        match anchored {
            Anchored::Scalar {
                text,
                style,
                tag,
                pos: original,
            } => {
                // A key is reported where this mapping uses it; a value where it is written.
                let pos = if self.awaiting_key() { pos } else { original };
                self.scalar(text, style, tag.as_deref(), pos)
            }
            Anchored::Node(built) => {
                if self.awaiting_key() {
                    return Err(error(
                        pos,
                        "a mapping key must be a scalar, but this alias names a collection",
                    ));
                }
                if self.stack.len() + built.height > MAX_DEPTH {
                    return Err(error(
                        pos,
                        format!("nesting deeper than {MAX_DEPTH} levels"),
                    ));
                }
                self.attach(built)
            }
        }
    }

    fn open(
        &mut self,
        pos: Position,
        anchor: usize,
        kind: FrameKind,
        what: &str,
    ) -> Result<(), SyntaxError> {
        if self.awaiting_key() {
            return Err(error(
                pos,
                format!("a mapping key must be a scalar, not a {what}"),
            ));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(error(
                pos,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.stack.push(Frame {
            pos,
            anchor,
            height: 1,
            size: 1,
            kind,
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), SyntaxError> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let (pos, kind) = match frame.kind {
            FrameKind::Seq(items) => (frame.pos, Kind::Seq(items)),
            // A block mapping starts at its first key, a flow mapping at its `{`.
            FrameKind::Map { members, .. } => (frame.pos, Kind::Map(merge(members)?)),
        };
        let built = Built {
            node: Node { pos, kind },
            height: frame.height,
            size: frame.size,
        };
        if frame.anchor != 0 {
            self.anchors
                .insert(frame.anchor, Anchored::Node(built.clone()));
        }
        self.attach(built)
    }

    fn attach(&mut self, built: Built) -> Result<(), SyntaxError> {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(built.node);
            return Ok(());
        };
        frame.height = frame.height.max(built.height + 1);
        frame.size = frame.size.saturating_add(built.size);
        match &mut frame.kind {
            FrameKind::Seq(items) => items.push(built.node),
            FrameKind::Map { members, key, .. } => {
                let Some(key) = key.take() else {
                    return Err(error(built.node.pos, "a mapping key must be a scalar"));
                };
                members.push(Member {
                    key: key.text,
                    key_pos: key.pos,
                    value: built.node,
                    merge: key.merge,
                });
            }
        }
        Ok(())
    }
}

/// Applies merge keys (`<<: *base`, `<<: [*a, *b]`): a merged key appears where its `<<`
/// stood, keys written in the mapping itself win, and earlier sources win over later ones.
fn merge(members: Vec<Member>) -> Result<Vec<Member>, SyntaxError> {
    if !members.iter().any(|member| member.merge) {
        return Ok(members);
    }
    let explicit: HashSet<String> = members
        .iter()
        .filter(|member| !member.merge)
        .map(|member| member.key.clone())
        .collect();
    let mut merged = HashSet::new();
    let mut out = Vec::with_capacity(members.len());
    for member in members {
        if !member.merge {
            out.push(member);
            continue;
        }
        const NOT_MERGEABLE: &str = "a merge key (<<) takes a mapping or a list of mappings";
        let sources = match member.value.kind {
            Kind::Map(source) => vec![source],
            Kind::Seq(items) => items
                .into_iter()
                .map(|item| match item.kind {
                    Kind::Map(source) => Ok(source),
                    _ => Err(error(item.pos, NOT_MERGEABLE)),
                })
                .collect::<Result<_, _>>()?,
            Kind::Scalar(_) => return Err(error(member.value.pos, NOT_MERGEABLE)),
        };
        for source in sources {
            for entry in source {
                if !explicit.contains(&entry.key) && merged.insert(entry.key.clone()) {
                    out.push(entry);
                }
            }
        }
    }
    Ok(out)
}

/// Turns a node into its value, recording positions under `pointer`. The recursion is
/// bounded by `MAX_DEPTH`.
fn emit(
    node: Node,
    key: Option<Position>,
    pointer: &mut String,
    entries: &mut HashMap<String, Entry>,
) -> Value {
    entries.insert(
        pointer.clone(),
        Entry {
            key,
            value: node.pos,
        },
    );
    let len = pointer.len();
    match node.kind {
        Kind::Scalar(value) => value,
        Kind::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                // Writing to a String cannot fail.
                let _ = write!(pointer, "/{index}");
                out.push(emit(item, None, pointer, entries));
                pointer.truncate(len);
            }
            Value::Array(out)
        }
        Kind::Map(members) => {
            let mut out = Map::with_capacity(members.len());
            for member in members {
                append_token(pointer, &member.key);
                let value = emit(member.value, Some(member.key_pos), pointer, entries);
                pointer.truncate(len);
                out.insert(member.key, value);
            }
            Value::Object(out)
        }
    }
}

/// Resolves a scalar by its tag, or for untagged plain scalars by the YAML 1.2 core
/// schema. The error is a message for the scalar's position.
fn resolve(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let string = || Ok(Value::String(text.to_owned()));
    let untagged = || {
        if style == ScalarStyle::Plain {
            resolve_plain(text)
        } else {
            string()
        }
    };
    let Some(tag) = tag else {
        return untagged();
    };
    // The non-specific tag `!` asks for the scalar not to be resolved, so it stays text.
    if tag.handle.is_empty() && tag.suffix == "!" {
        return string();
    }
    // `!!int` arrives as handle "tag:yaml.org,2002:", `!<tag:yaml.org,2002:int>` as a suffix.
    let name = if tag.handle == CORE_TAG {
        Some(tag.suffix.as_str())
    } else if tag.handle.is_empty() {
        tag.suffix.strip_prefix(CORE_TAG)
    } else {
        None
    };
    match name {
        Some("str") => string(),
        Some("null") if is_null(text) => Ok(Value::Null),
        Some("null") => Err(format!("{text:?} is not null (tagged !!null)")),
        Some("bool") => {
            parse_bool(text).ok_or_else(|| format!("{text:?} is not a boolean (tagged !!bool)"))
        }
        Some("int") => int_value(text)
            .unwrap_or_else(|| Err(format!("{text:?} is not an integer (tagged !!int)"))),
        Some("float") => {
            let number = int_value(text).or_else(|| float_value(text));
            match number {
                Some(Ok(Value::Number(n))) => {
                    match n.as_f64().and_then(serde_json::Number::from_f64) {
                        Some(float) => Ok(Value::Number(float)),
                        None => Err(format!("{text:?} is out of range for a JSON number")),
                    }
                }
                Some(Err(message)) => Err(message),
                _ => Err(format!("{text:?} is not a number (tagged !!float)")),
            }
        }
        // Other tags (`!!binary`, `!!timestamp`, application tags) have no JSON form of
        // their own, so the value reads as if untagged.
        _ => untagged(),
    }
}

fn resolve_plain(text: &str) -> Result<Value, String> {
    if is_null(text) {
        return Ok(Value::Null);
    }
    if let Some(value) = parse_bool(text) {
        return Ok(value);
    }
    match int_value(text).or_else(|| float_value(text)) {
        Some(number) => number,
        None => Ok(Value::String(text.to_owned())),
    }
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(text: &str) -> Option<Value> {
    match text {
        "true" | "True" | "TRUE" => Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => Some(Value::Bool(false)),
        _ => None,
    }
}

/// The core schema's integers (`[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`), or `None`
/// when `text` is not one.
fn int_value(text: &str) -> Option<Result<Value, String>> {
    if let Some(digits) = text.strip_prefix("0x") {
        return radix_value(text, digits, 16);
    }
    if let Some(digits) = text.strip_prefix("0o") {
        return radix_value(text, digits, 8);
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !is_digits(unsigned) {
        return None;
    }
    let value = if text.starts_with('-') {
        text.parse::<i64>().ok().map(Value::from)
    } else {
        unsigned.parse::<u64>().ok().map(Value::from)
    };
    // Like serde_json reading JSON, decimals beyond 64 bits become floats.
    Some(value.map_or_else(|| finite(text), Ok))
}

fn radix_value(text: &str, digits: &str, radix: u32) -> Option<Result<Value, String>> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    Some(
        u64::from_str_radix(digits, radix)
            .map(Value::from)
            .map_err(|_| format!("{text} does not fit in 64 bits")),
    )
}

/// The core schema's floats (`[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`), or
/// `None` when `text` is not one. Infinity and NaN are errors: JSON cannot hold them.
fn float_value(text: &str) -> Option<Result<Value, String>> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF")
        || (unsigned.len() == text.len() && matches!(text, ".nan" | ".NaN" | ".NAN"))
    {
        return Some(Err(format!(
            "{text} is not a JSON number (JSON has no infinity or NaN); quote it for a string"
        )));
    }
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (!whole.is_empty() || !fraction.is_empty())
                && (whole.is_empty() || is_digits(whole))
                && (fraction.is_empty() || is_digits(fraction))
        }
        None => is_digits(mantissa),
    };
    let exponent_ok = exponent
        .is_none_or(|exponent| is_digits(exponent.strip_prefix(['-', '+']).unwrap_or(exponent)));
    (mantissa_ok && exponent_ok).then(|| finite(text))
}

/// Whether `text` is one or more ASCII digits.
fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn finite(text: &str) -> Result<Value, String> {
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| format!("{text} is out of range for a JSON number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(line: u32, column: u32) -> Position {
        Position { line, column }
    }

    fn load(text: &str) -> Value {
        match parse(text) {
            Ok((value, _)) => value,
            Err(error) => panic!("{text:?} failed to parse: {error}"),
        }
    }

    fn fails(text: &str) -> SyntaxError {
        match parse(text) {
            Ok((value, _)) => panic!("{text:?} parsed to {value}"),
            Err(error) => error,
        }
    }

    /// The value of `v` in a one-line mapping `v: <scalar>`.
    fn scalar(text: &str) -> Value {
        load(&format!("v: {text}\n"))["v"].clone()
    }

    #[test]
    fn plain_scalars_follow_the_core_schema() {
        let cases = [
            ("~", json!(null)),
            ("null", json!(null)),
            ("Null", json!(null)),
            ("NULL", json!(null)),
            ("true", json!(true)),
            ("True", json!(true)),
            ("TRUE", json!(true)),
            ("false", json!(false)),
            ("False", json!(false)),
            ("FALSE", json!(false)),
            ("tRue", json!("tRue")),
            ("yes", json!("yes")),
            ("42", json!(42)),
            ("-17", json!(-17)),
            ("+5", json!(5)),
            ("007", json!(7)),
            ("0x1F", json!(31)),
            ("0o17", json!(15)),
            ("0x", json!("0x")),
            ("0o8", json!("0o8")),
            ("1_000", json!("1_000")),
            ("18446744073709551615", json!(u64::MAX)),
            ("-9223372036854775808", json!(i64::MIN)),
            (
                "18446744073709551616",
                json!(18_446_744_073_709_551_616.0_f64),
            ),
            ("1.0", json!(1.0)),
            ("1.", json!(1.0)),
            (".5", json!(0.5)),
            ("1e3", json!(1000.0)),
            ("-1.5E-2", json!(-0.015)),
            ("+2.5e+1", json!(25.0)),
            ("3.0.0", json!("3.0.0")),
            ("1.2.3-beta", json!("1.2.3-beta")),
            (".", json!(".")),
            ("-x", json!("-x")),
            ("e3", json!("e3")),
            ("1e", json!("1e")),
            ("hello world", json!("hello world")),
        ];
        for (text, expected) in cases {
            assert_eq!(scalar(text), expected, "plain scalar {text:?}");
        }
        // `1.0` must stay a float, not become the integer 1.
        assert!(scalar("1.0").is_f64());
        assert!(scalar("42").is_u64());
        assert_eq!(load("a:\n")["a"], json!(null));
    }

    #[test]
    fn quoted_and_block_scalars_are_strings() {
        let cases = [
            ("'42'", json!("42")),
            ("\"true\"", json!("true")),
            ("\"null\"", json!("null")),
            ("''", json!("")),
            ("'.inf'", json!(".inf")),
            ("\"3.0.0\"", json!("3.0.0")),
            ("\"caf\\u00e9 \\/\"", json!("café /")),
            ("|\n  42\n", json!("42\n")),
            (">-\n  1.0\n", json!("1.0")),
        ];
        for (text, expected) in cases {
            assert_eq!(scalar(text), expected, "quoted scalar {text:?}");
        }
    }

    #[test]
    fn explicit_tags_force_the_type() {
        let cases = [
            ("!!str 42", json!("42")),
            ("!!str true", json!("true")),
            ("!!str", json!("")),
            ("!!int \"42\"", json!(42)),
            ("!!int 0x10", json!(16)),
            ("!!float 1", json!(1.0)),
            ("!!float '2.5'", json!(2.5)),
            ("!!bool \"false\"", json!(false)),
            ("!!null ''", json!(null)),
            ("!<tag:yaml.org,2002:str> 5", json!("5")),
            ("! 12", json!("12")),
            ("!custom 12", json!(12)),
            ("!custom '12'", json!("12")),
            ("!!binary aGk=", json!("aGk=")),
        ];
        for (text, expected) in cases {
            assert_eq!(scalar(text), expected, "tagged scalar {text:?}");
        }
        assert!(scalar("!!float 1").is_f64());
        let error = fails("v: !!int abc\n");
        assert_eq!(error.position, at(1, 10));
        assert_eq!(error.message, "\"abc\" is not an integer (tagged !!int)");
        let error = fails("v: !!bool yes\n");
        assert_eq!(error.position, at(1, 11));
        assert_eq!(error.message, "\"yes\" is not a boolean (tagged !!bool)");
    }

    #[test]
    fn numbers_without_a_json_form_are_errors() {
        let error = fails("a: 1\nb: .inf\n");
        assert_eq!(error.position, at(2, 4));
        assert_eq!(
            error.message,
            ".inf is not a JSON number (JSON has no infinity or NaN); quote it for a string"
        );
        assert_eq!(fails("b: -.Inf").position, at(1, 4));
        assert_eq!(fails("[1, .NaN]").position, at(1, 5));
        assert_eq!(fails("!!float .inf").position, at(1, 9));
        let error = fails("v: 1e400");
        assert_eq!(error.position, at(1, 4));
        assert_eq!(error.message, "1e400 is out of range for a JSON number");
        let error = fails("v: 0x10000000000000000");
        assert_eq!(error.message, "0x10000000000000000 does not fit in 64 bits");
    }

    #[test]
    fn keys_keep_document_order_and_their_text() {
        let (value, _) = parse("z: 1\na: 2\nm: 3\n").unwrap();
        assert_eq!(value.to_string(), r#"{"z":1,"a":2,"m":3}"#);
        let (value, _) = parse("200: a\ntrue: b\n~: c\n1.0: d\n0x10: e\n'x': f\n").unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["200", "true", "null", "1.0", "0x10", "x"]);
        assert_eq!(value["null"], json!("c"));
        assert_eq!(load("{null: 1}")["null"], json!(1));
    }

    #[test]
    fn collection_keys_are_errors() {
        let error = fails("a: 1\n? [x]\n: 1\n");
        assert_eq!(error.position, at(2, 3));
        assert_eq!(
            error.message,
            "a mapping key must be a scalar, not a sequence"
        );
        let error = fails("? {x: 1}\n: 1\n");
        assert_eq!(error.position, at(1, 3));
        assert_eq!(
            error.message,
            "a mapping key must be a scalar, not a mapping"
        );
        let error = fails("a: &m {x: 1}\n*m : 2\n");
        assert_eq!(error.position, at(2, 1));
    }

    #[test]
    fn positions_of_keys_and_values() {
        let text = "\
asyncapi: 3.0.0
info:
  title: Echo
  version: '1.0'
channels:
  /ws/v1/echo:
    address: /ws/v1/echo
    messages:
      - a~b: 1
";
        let (value, map) = parse(text).unwrap();
        assert_eq!(value["asyncapi"], json!("3.0.0"));
        assert_eq!(value["info"]["version"], json!("1.0"));
        assert_eq!(map.position(""), Some(at(1, 1)));
        assert_eq!(map.value_position(""), Some(at(1, 1)));
        assert_eq!(map.position("/asyncapi"), Some(at(1, 1)));
        assert_eq!(map.value_position("/asyncapi"), Some(at(1, 11)));
        assert_eq!(map.position("/info"), Some(at(2, 1)));
        assert_eq!(map.value_position("/info"), Some(at(3, 3)));
        assert_eq!(map.position("/info/title"), Some(at(3, 3)));
        assert_eq!(map.value_position("/info/title"), Some(at(3, 10)));
        assert_eq!(map.value_position("/info/version"), Some(at(4, 12)));

        let channel = push_token("/channels", "/ws/v1/echo");
        assert_eq!(channel, "/channels/~1ws~1v1~1echo");
        assert_eq!(value.pointer(&channel).unwrap()["address"], "/ws/v1/echo");
        assert_eq!(map.position(&channel), Some(at(6, 3)));
        assert_eq!(map.value_position(&channel), Some(at(7, 5)));
        let messages = push_token(&channel, "messages");
        assert_eq!(
            map.value_position(&format!("{channel}/address")),
            Some(at(7, 14))
        );
        assert_eq!(map.value_position(&messages), Some(at(9, 7)));
        let item = push_token(&messages, "0");
        assert_eq!(map.position(&item), Some(at(9, 9)));
        let member = push_token(&item, "a~b");
        assert_eq!(member, format!("{channel}/messages/0/a~0b"));
        assert_eq!(value.pointer(&member), Some(&json!(1)));
        assert_eq!(map.position(&member), Some(at(9, 9)));
        assert_eq!(map.value_position(&member), Some(at(9, 14)));
        assert_eq!(map.position("/channels/~1ws~1v1~1echo/nope"), None);
    }

    #[test]
    fn empty_values_sit_at_their_key() {
        let (value, map) = parse("a:\nb:\n  c: 1\n").unwrap();
        assert_eq!(value, json!({"a": null, "b": {"c": 1}}));
        assert_eq!(map.value_position("/a"), Some(at(1, 1)));
    }

    #[test]
    fn push_token_escapes() {
        assert_eq!(push_token("", "/ws/v1/echo"), "/~1ws~1v1~1echo");
        assert_eq!(push_token("/a", "m~n"), "/a/m~0n");
        assert_eq!(push_token("/a", "~1"), "/a/~01");
        assert_eq!(push_token("/a", ""), "/a/");
        assert_eq!(push_token("", "0"), "/0");
    }

    #[test]
    fn nearest_walks_up_to_an_existing_ancestor() {
        let (_, map) = parse("# comment\n\ninfo:\n  title: x\n").unwrap();
        assert_eq!(map.nearest("/info/title"), at(4, 3));
        assert_eq!(map.nearest("/info/title/deeper/still"), at(4, 3));
        assert_eq!(map.nearest("/info/version"), at(3, 1));
        assert_eq!(map.nearest("/missing"), at(3, 1));
        assert_eq!(map.nearest("not-a-pointer"), at(3, 1));
        assert_eq!(SourceMap::default().nearest("/a/b"), at(1, 1));
    }

    #[test]
    fn duplicate_keys_are_errors_at_the_second() {
        let error = fails("a: 1\nb:\n  c: 2\n  c: 3\n");
        assert_eq!(error.position, at(4, 3));
        assert_eq!(error.message, "duplicate key \"c\" (first at line 3)");
        assert_eq!(
            error.to_string(),
            "4:3: duplicate key \"c\" (first at line 3)"
        );
        // `~` and `null` are the same key.
        assert_eq!(fails("~: 1\nnull: 2\n").position, at(2, 1));
        assert_eq!(fails("{\"a\": 1, \"a\": 2}").position, at(1, 10));
    }

    #[test]
    fn bad_indentation_is_an_error_at_the_scanner_position() {
        // At the start of the misplaced key (yaml-rust2 said its end: 3:3, and 3:4 for `cc`).
        assert_eq!(fails("a:\n  b: 1\n cc: 2\n").position, at(3, 2));
        let error = fails("a:\n  b: 1\n c: 2\n");
        assert_eq!(error.position, at(3, 2));
        assert_eq!(
            error.message,
            "while parsing a block mapping, did not find expected key"
        );
        assert_eq!(
            error.to_string(),
            "3:2: while parsing a block mapping, did not find expected key"
        );
    }

    #[test]
    fn unclosed_quotes_are_errors() {
        let error = fails("a: 1\nb: \"abc");
        assert_eq!(error.position, at(2, 4));
        assert_eq!(
            error.message,
            "while scanning a quoted scalar, found unexpected end of stream"
        );
        assert_eq!(fails("b: 'abc").position, at(1, 4));
    }

    #[test]
    fn tab_indentation_is_an_error() {
        let error = fails("a:\n\tb: 1\n");
        assert_eq!(error.position, at(2, 2));
        assert_eq!(
            error.message,
            "tabs disallowed within this context (block indentation)"
        );
    }

    #[test]
    fn aliases_copy_the_anchored_node_and_its_positions() {
        let text = "\
base: &base
  type: object
  x: [1, 2]
copy: *base
list:
  - &s hello
  - *s
";
        let (value, map) = parse(text).unwrap();
        assert_eq!(value["copy"], json!({"type": "object", "x": [1, 2]}));
        assert_eq!(value["list"], json!(["hello", "hello"]));
        assert_eq!(map.position("/copy"), Some(at(4, 1)));
        assert_eq!(map.value_position("/copy"), Some(at(2, 3)));
        assert_eq!(map.position("/copy/type"), Some(at(2, 3)));
        assert_eq!(map.value_position("/copy/type"), Some(at(2, 9)));
        assert_eq!(map.value_position("/copy/x/1"), Some(at(3, 10)));
        assert_eq!(map.value_position("/list/0"), Some(at(6, 8)));
        assert_eq!(map.value_position("/list/1"), Some(at(6, 8)));
        // An alias of a scalar works as a key too, placed where it is used.
        let (value, map) = parse("k: &k name\nm: {x: 0, *k : 1}\n").unwrap();
        assert_eq!(value["m"], json!({"x": 0, "name": 1}));
        assert_eq!(map.position("/m/name"), Some(at(2, 11)));
        assert_eq!(map.value_position("/m/name"), Some(at(2, 16)));
    }

    #[test]
    fn recursive_aliases_are_errors() {
        let error = fails("a: &x [1, *x]\n");
        assert_eq!(error.position, at(1, 11));
        assert_eq!(
            error.message,
            "alias refers to a node that contains it (recursive aliases are not supported)"
        );
        assert_eq!(fails("a: *nope\n").position, at(1, 4));
    }

    #[test]
    fn merge_keys_merge_and_explicit_keys_win() {
        let text = "\
defaults: &d
  a: 1
  b: 2
other: &o
  b: 20
  c: 30
m:
  b: 99
  <<: [*d, *o]
  z: 0
single:
  <<: *d
  a: 5
quoted:
  '<<': 1
";
        let (value, map) = parse(text).unwrap();
        assert_eq!(value["m"].to_string(), r#"{"b":99,"a":1,"c":30,"z":0}"#);
        assert_eq!(value["single"].to_string(), r#"{"b":2,"a":5}"#);
        assert_eq!(value["quoted"], json!({"<<": 1}));
        assert_eq!(map.position("/m/a"), Some(at(2, 3)));
        assert_eq!(map.value_position("/m/a"), Some(at(2, 6)));
        assert_eq!(map.position("/m/c"), Some(at(6, 3)));
        assert_eq!(map.position("/m/b"), Some(at(8, 3)));
        assert_eq!(map.position("/single/b"), Some(at(3, 3)));
        assert_eq!(map.position("/m/<<"), None);

        let error = fails("a:\n  <<: 5\n");
        assert_eq!(error.position, at(2, 7));
        assert_eq!(
            error.message,
            "a merge key (<<) takes a mapping or a list of mappings"
        );
        assert_eq!(fails("a:\n  <<: [{x: 1}, 2]\n").position, at(2, 16));
    }

    #[test]
    fn nodes_with_an_anchor_or_a_tag_sit_at_their_content() {
        // saphyr-parser starts these nodes at their properties; a reader looks at the content.
        let text = "\
a: &x
  b: 1
c: &y # a comment
  - 2
d: !!str &z 5
e: &m {f: 1}
g: !<tag:yaml.org,2002:str> 6
h: [&i 7, !!int 8]
";
        let (value, map) = parse(text).unwrap();
        assert_eq!(value["d"], json!("5"));
        assert_eq!(value["g"], json!("6"));
        assert_eq!(map.value_position("/a"), Some(at(2, 3)));
        assert_eq!(map.value_position("/c"), Some(at(4, 3)));
        assert_eq!(map.value_position("/d"), Some(at(5, 13)));
        assert_eq!(map.value_position("/e"), Some(at(6, 7)));
        assert_eq!(map.value_position("/g"), Some(at(7, 29)));
        assert_eq!(map.value_position("/h/0"), Some(at(8, 8)));
        assert_eq!(map.value_position("/h/1"), Some(at(8, 17)));
        // Keys too, in a flow mapping, where a property ends at a blank.
        let (value, map) = parse("k: {&q a: 1, !!str 2: b, c: \t3}\n").unwrap();
        assert_eq!(value["k"], json!({"a": 1, "2": "b", "c": 3}));
        assert_eq!(map.position("/k/a"), Some(at(1, 8)));
        assert_eq!(map.position("/k/2"), Some(at(1, 20)));
        assert_eq!(map.value_position("/k/c"), Some(at(1, 30)));
        // JSON indented with tabs.
        let (_, map) = parse("{\n\t\"a\": &x\t1\n}\n").unwrap();
        assert_eq!(map.position("/a"), Some(at(2, 2)));
        assert_eq!(map.value_position("/a"), Some(at(2, 10)));
        // Columns count characters, a tab is one, and CRLF ends a line once.
        let (_, map) = parse("é: !!str ü\r\nb: &x\tv\r\nc: &y\r\n  d: 1\r\n").unwrap();
        assert_eq!(map.value_position("/é"), Some(at(1, 10)));
        assert_eq!(map.value_position("/b"), Some(at(2, 7)));
        assert_eq!(map.value_position("/c"), Some(at(4, 3)));
        // An anchored empty value has no content: it sits at its key like any empty value.
        let (value, map) = parse("a: &x\nb: 1\n").unwrap();
        assert_eq!(value["a"], json!(null));
        assert_eq!(map.value_position("/a"), Some(at(1, 1)));
        let (value, map) = parse("- &x\n- 1\n").unwrap();
        assert_eq!(value, json!([null, 1]));
        assert_eq!(map.value_position("/0"), Some(at(1, 3)));
    }

    #[test]
    fn a_second_document_is_an_error() {
        let error = fails("a: 1\n---\nb: 2\n");
        assert_eq!(error.position, at(2, 1));
        assert_eq!(
            error.message,
            "a second YAML document starts here; the file must hold exactly one"
        );
        assert_eq!(fails("--- a\n--- b\n").position, at(2, 1));
        // After an end marker, a document may start without `---`.
        assert_eq!(fails("a: 1\n...\nb: 2\n").position, at(3, 1));
        // One document with explicit markers is fine.
        assert_eq!(load("---\na: 1\n...\n"), json!({"a": 1}));
    }

    #[test]
    fn an_empty_stream_is_an_error() {
        for text in ["", "\n\n", "# only a comment\n", "\u{feff}"] {
            let error = fails(text);
            assert_eq!(error.position, at(1, 1), "{text:?}");
            assert_eq!(error.message, "empty document", "{text:?}");
        }
        // An explicit empty document is null, not an empty stream.
        assert_eq!(load("---\n"), json!(null));
    }

    #[test]
    fn json_documents_parse_with_positions() {
        let (value, map) = parse(r#"{"a": [1, 2, {"b": null}]}"#).unwrap();
        assert_eq!(value, json!({"a": [1, 2, {"b": null}]}));
        assert_eq!(map.position(""), Some(at(1, 1)));
        assert_eq!(map.position("/a"), Some(at(1, 2)));
        assert_eq!(map.value_position("/a"), Some(at(1, 7)));
        assert_eq!(map.position("/a/0"), Some(at(1, 8)));
        assert_eq!(map.position("/a/1"), Some(at(1, 11)));
        assert_eq!(map.position("/a/2"), Some(at(1, 14)));
        assert_eq!(map.position("/a/2/b"), Some(at(1, 15)));
        assert_eq!(map.value_position("/a/2/b"), Some(at(1, 20)));

        let text = "{\n  \"x\":1.5e+2,\n  \"y\": [true, \"s\\n\"]\n}\n";
        let (value, map) = parse(text).unwrap();
        assert_eq!(value.to_string(), r#"{"x":150.0,"y":[true,"s\n"]}"#);
        assert_eq!(map.value_position("/x"), Some(at(2, 7)));
        assert_eq!(map.value_position("/y/1"), Some(at(3, 15)));
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_text() {
        let (value, map) = parse("\u{feff}a: 1\n").unwrap();
        assert_eq!(value, json!({"a": 1}));
        assert_eq!(map.position("/a"), Some(at(1, 1)));
    }

    #[test]
    fn crlf_line_breaks_count_once() {
        let (_, map) = parse("a: 1\r\nb:\r\n  c: 2\r\n").unwrap();
        assert_eq!(map.position("/b"), Some(at(2, 1)));
        assert_eq!(map.value_position("/b/c"), Some(at(3, 6)));
    }

    #[test]
    fn columns_count_characters() {
        let (_, map) = parse("é: ü\n").unwrap();
        assert_eq!(map.value_position("/é"), Some(at(1, 4)));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // saphyr-parser stops flow collections itself (at 255 levels).
        let error = fails(&"[".repeat(10_000));
        assert_eq!(error.position, at(1, 256));
        assert_eq!(error.message, "recursion limit exceeded");

        // Block collections are only stopped by MAX_DEPTH.
        let mut text = "- ".repeat(10_000);
        text.push('x');
        let error = fails(&text);
        assert_eq!(error.position, at(1, 257));
        assert_eq!(error.message, "nesting deeper than 128 levels");

        let at_limit = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(parse(&at_limit).is_ok());
        let over = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert_eq!(fails(&over).position, at(1, 129));

        // An alias cannot smuggle in more depth than MAX_DEPTH either.
        let anchored = format!("a: &x {}{}\n", "[".repeat(100), "]".repeat(100));
        let text = format!("{anchored}b: {}*x{}\n", "[".repeat(28), "]".repeat(28));
        let error = fails(&text);
        assert_eq!(error.position, at(2, 32));
        assert_eq!(error.message, "nesting deeper than 128 levels");
        let text = format!("{anchored}b: {}*x{}\n", "[".repeat(27), "]".repeat(27));
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn alias_expansion_is_bounded() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (name, previous) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e")] {
            let items = vec![format!("*{previous}"); 10].join(", ");
            text.push_str(&format!("{name}: &{name} [{items}]\n"));
        }
        let error = fails(&text);
        assert_eq!(error.position, at(6, 36));
        assert_eq!(error.message, "aliases expand to more than 1000000 nodes");
    }
}
