//! Errors of the generator: every problem in a contract is a [`Diagnostic`] that says where it is.
//!
//! A maintainer who breaks the YAML must see the file, line and column of each problem, not a
//! backtrace; so loading collects every problem it can find before giving up, and each one keeps
//! the JSON pointer of the node it is about (the line and column are looked up from the pointer).

use std::fmt;
use std::path::PathBuf;

/// The generator's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem in a contract, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// The file the problem is in, as it was named (the root file) or resolved (a referenced file).
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// JSON pointer (RFC 6901) of the node the problem is about; empty for the document itself.
    pub pointer: String,
    /// What is wrong, in words a maintainer can act on.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if !self.pointer.is_empty() {
            write!(f, " (at {})", self.pointer)?;
        }
        Ok(())
    }
}

/// Everything that can stop the generator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The contract has problems; all that were found, in file and line order.
    #[error("{} problem(s) in the contract:\n{}", .0.len(), DisplayList(.0))]
    Contract(Vec<Diagnostic>),
    /// A file could not be read at all.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Error {
    /// The located problems, if this is a contract error.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Error::Contract(list) => list,
            Error::Read { .. } => &[],
        }
    }
}

struct DisplayList<'a>(&'a [Diagnostic]);

impl fmt::Display for DisplayList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "  {diagnostic}")?;
        }
        Ok(())
    }
}
