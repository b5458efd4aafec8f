//! The files of one contract and `$ref` resolution across them.
//!
//! A contract may reference other files (`./common/messages.yaml#/components/messages/X`); they
//! are read when first referenced and kept with their source maps, so a problem anywhere can be
//! reported at its own file, line and column. Reference chains (a `$ref` to a `$ref`) are
//! followed with cycle detection; cycles *through* schemas are fine and handled by the schema
//! registry, which names each referenced schema once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::yaml::{self, SourceMap};
use crate::error::{Diagnostic, Error};

/// A node in one of the contract's files.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Loc {
    pub file: usize,
    pub pointer: String,
}

impl Loc {
    pub fn child(&self, token: &str) -> Loc {
        Loc {
            file: self.file,
            pointer: yaml::push_token(&self.pointer, token),
        }
    }

    pub fn index(&self, index: usize) -> Loc {
        self.child(&index.to_string())
    }
}

struct SourceFile {
    /// The path as the user named it (root) or as resolved from the referencing file.
    path: PathBuf,
    canonical: PathBuf,
    value: Value,
    map: SourceMap,
}

/// All files read for one contract, the root first.
pub(crate) struct Sources {
    files: Vec<SourceFile>,
    /// Problems found so far, in the order found.
    pub diagnostics: Vec<Diagnostic>,
    /// Things that do not stop generation but that a maintainer should see, in the order found.
    pub warnings: Vec<Diagnostic>,
}

impl Sources {
    /// Reads and parses the root document.
    pub fn open(path: &Path) -> Result<Sources, Error> {
        let mut sources = Sources {
            files: Vec::new(),
            diagnostics: Vec::new(),
            warnings: Vec::new(),
        };
        match sources.read(path.to_path_buf()) {
            Ok(_) => Ok(sources),
            Err(ReadFailure::Io(source)) => Err(Error::Read {
                path: path.to_path_buf(),
                source,
            }),
            Err(ReadFailure::Syntax(diagnostic)) => Err(Error::Contract(vec![diagnostic])),
        }
    }

    /// Parses a root document from text; `path` is only used to name it in diagnostics.
    pub fn from_text(path: &Path, text: &str) -> Result<Sources, Error> {
        let mut sources = Sources {
            files: Vec::new(),
            diagnostics: Vec::new(),
            warnings: Vec::new(),
        };
        sources
            .parse(path.to_path_buf(), path.to_path_buf(), text)
            .map_err(|diagnostic| Error::Contract(vec![diagnostic]))?;
        Ok(sources)
    }

    pub fn root(&self) -> Loc {
        Loc {
            file: 0,
            pointer: String::new(),
        }
    }

    /// Every file read, root first, as named in diagnostics.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|file| file.path.clone()).collect()
    }

    /// The source maps of every file, for locating nodes after loading.
    pub fn maps(&self) -> Vec<(PathBuf, SourceMap)> {
        self.files
            .iter()
            .map(|file| (file.path.clone(), file.map.clone()))
            .collect()
    }

    pub fn path(&self, file: usize) -> &Path {
        &self.files[file].path
    }

    pub fn get(&self, loc: &Loc) -> Option<&Value> {
        self.files[loc.file].value.pointer(&loc.pointer)
    }

    /// Records a problem at `loc` (or its nearest existing ancestor).
    pub fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        let diagnostic = self.diagnostic(loc, message.into());
        self.diagnostics.push(diagnostic);
    }

    /// Records a warning at `loc`: generation goes on.
    pub fn warn(&mut self, loc: &Loc, message: impl Into<String>) {
        let diagnostic = self.diagnostic(loc, message.into());
        self.warnings.push(diagnostic);
    }

    pub fn diagnostic(&self, loc: &Loc, message: String) -> Diagnostic {
        let file = &self.files[loc.file];
        let position = file.map.nearest(&loc.pointer);
        Diagnostic {
            file: file.path.clone(),
            line: position.line,
            column: position.column,
            pointer: loc.pointer.clone(),
            message,
        }
    }

    /// Follows `$ref` chains from `loc` until a node that is not a reference.
    ///
    /// Returns `None` (with a diagnostic recorded) when a reference is broken or loops.
    pub fn deref(&mut self, loc: &Loc) -> Option<Loc> {
        let mut current = loc.clone();
        let mut seen = HashSet::new();
        loop {
            let Some(reference) = self.reference_at(&current) else {
                return Some(current);
            };
            if !seen.insert(current.clone()) {
                self.error(
                    loc,
                    format!("`$ref` cycle: `{reference}` leads back to itself"),
                );
                return None;
            }
            current = self.resolve(&current, &reference)?;
        }
    }

    /// The `$ref` string of the node at `loc`, if it is a reference object.
    pub fn reference_at(&self, loc: &Loc) -> Option<String> {
        match self.get(loc)? {
            Value::Object(map) => map.get("$ref").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        }
    }

    /// Resolves one `$ref` string written at `at` (the reference object) to the node it names.
    pub fn resolve(&mut self, at: &Loc, reference: &str) -> Option<Loc> {
        let ref_loc = at.child("$ref");
        let (file_part, fragment) = match reference.split_once('#') {
            Some((file, fragment)) => (file, fragment),
            None => (reference, ""),
        };
        let file = if file_part.is_empty() {
            at.file
        } else if file_part.contains("://") {
            self.error(
                &ref_loc,
                format!(
                    "unsupported: remote reference `{reference}`: builds stay offline, so \
                     nothing is fetched; vendor the file (save it beside this document) and \
                     point the `$ref` at it by a relative path, like `./{}`",
                    vendored_name(file_part)
                ),
            );
            return None;
        } else {
            let base = self.files[at.file]
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            match self.read(normalize(&base.join(file_part))) {
                Ok(file) => file,
                Err(ReadFailure::Io(error)) => {
                    self.error(
                        &ref_loc,
                        format!("`$ref` to `{file_part}`, which cannot be read: {error}"),
                    );
                    return None;
                }
                Err(ReadFailure::Syntax(diagnostic)) => {
                    self.diagnostics.push(diagnostic);
                    return None;
                }
            }
        };
        let pointer = match decode_fragment(fragment) {
            Some(pointer) => pointer,
            None => {
                self.error(
                    &ref_loc,
                    format!("`$ref` `{reference}` has a fragment that is not a JSON pointer"),
                );
                return None;
            }
        };
        match self.walk(file, &pointer) {
            Some(target) => Some(target),
            None => {
                let file_name = self.files[file].path.display().to_string();
                self.error(
                    &ref_loc,
                    format!(
                        "`$ref` `{reference}` points to nothing: `{file_name}` has no `#{pointer}`"
                    ),
                );
                None
            }
        }
    }

    /// The node `pointer` names in `file`, following every `$ref` met on the way: in
    /// `#/channels/echo/messages/echo`, `#/channels/echo` may itself be a reference to another
    /// file, and the rest of the pointer is read there (as the official parser does).
    fn walk(&mut self, file: usize, pointer: &str) -> Option<Loc> {
        let mut current = Loc {
            file,
            pointer: String::new(),
        };
        for token in pointer_tokens(pointer) {
            let child = current.child(&token);
            current = if self.get(&child).is_some() {
                child
            } else {
                // Only a reference in between can make the rest of the pointer exist.
                self.reference_at(&current)?;
                self.deref(&current)?.child(&token)
            };
            self.get(&current)?;
        }
        Some(current)
    }

    fn read(&mut self, path: PathBuf) -> Result<usize, ReadFailure> {
        let canonical = path.canonicalize().map_err(ReadFailure::Io)?;
        if let Some(index) = self.files.iter().position(|f| f.canonical == canonical) {
            return Ok(index);
        }
        let text = std::fs::read_to_string(&path).map_err(ReadFailure::Io)?;
        self.parse(path, canonical, &text)
            .map_err(ReadFailure::Syntax)
    }

    fn parse(
        &mut self,
        path: PathBuf,
        canonical: PathBuf,
        text: &str,
    ) -> Result<usize, Diagnostic> {
        match yaml::parse(text) {
            Ok((value, map)) => {
                self.files.push(SourceFile {
                    path,
                    canonical,
                    value,
                    map,
                });
                Ok(self.files.len() - 1)
            }
            Err(error) => Err(Diagnostic {
                file: path,
                line: error.position.line,
                column: error.position.column,
                pointer: String::new(),
                message: format!(
                    "not valid YAML: {}{}",
                    error.message,
                    syntax_hint(&error.message)
                ),
            }),
        }
    }
}

/// A hint for the YAML errors people meet most, which the scanner words for its own authors.
fn syntax_hint(message: &str) -> &'static str {
    if message.contains("mapping values are not allowed")
        || message.contains("did not find expected key")
    {
        " (check the indentation: a key is probably indented more or less than the keys beside it)"
    } else if message.contains("found character that cannot start any token") {
        " (YAML indents with spaces, not tabs; or quote a value that starts with `@` or `` ` ``)"
    } else {
        ""
    }
}

enum ReadFailure {
    Io(std::io::Error),
    Syntax(Diagnostic),
}

/// The file name a remote reference's document would have once vendored (`schemas.yaml`).
fn vendored_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() && !path.ends_with("://") => name.to_owned(),
        _ => "vendored.yaml".to_owned(),
    }
}

/// Removes `.` and resolves `..` lexically, so `a/./b/../c.yaml` is named `a/c.yaml`.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Turns a URI fragment (`/components/schemas/A%20B`) into a JSON pointer.
fn decode_fragment(fragment: &str) -> Option<String> {
    if !fragment.is_empty() && !fragment.starts_with('/') {
        return None;
    }
    let bytes = fragment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The reference tokens of a JSON pointer, unescaped.
pub(crate) fn pointer_tokens(pointer: &str) -> impl Iterator<Item = String> + '_ {
    pointer
        .split('/')
        .skip(1)
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_decode_percent_escapes() {
        assert_eq!(decode_fragment("/a%20b/c").as_deref(), Some("/a b/c"));
        assert_eq!(decode_fragment("").as_deref(), Some(""));
        assert_eq!(decode_fragment("a/b"), None);
        assert_eq!(decode_fragment("/bad%zz"), None);
    }

    #[test]
    fn paths_are_normalised_lexically() {
        assert_eq!(
            normalize(Path::new("a/./b/../c.yaml")),
            PathBuf::from("a/c.yaml")
        );
        assert_eq!(
            normalize(Path::new("../x/./y.yaml")),
            PathBuf::from("../x/y.yaml")
        );
    }

    #[test]
    fn pointer_tokens_unescape() {
        let tokens: Vec<_> = pointer_tokens("/channels/~1ws~1v1~1echo/a~0b").collect();
        assert_eq!(tokens, ["channels", "/ws/v1/echo", "a~b"]);
    }
}
