//! The data directory as the commands see it: `serve` makes it (and says "permission denied"
//! with the path when it cannot), the client commands (`alert`, `cities`) only ever read an
//! existing one, and say where they looked when there is none.
//!
//! An operator who runs `wfs cities` in the wrong folder must be told so, not handed a fresh
//! empty database (which is what opening SQLite with `mode=rwc` there would do).

use std::path::{Path, PathBuf};

/// The SQLite file's name inside the data directory.
pub const SQLITE_FILE: &str = "wfs.sqlite3";

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "permission denied: cannot write in the data directory {path}; fix its permissions or choose another with --data-dir or WFS_DATA_DIR"
    )]
    PermissionDenied {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot use {path} as the data directory; choose another with --data-dir or WFS_DATA_DIR"
    )]
    Unusable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no wfs database in {path} (looked for {file}). Run this where `wfs serve` keeps its data, or point at it with --data-dir / WFS_DATA_DIR (or --database-url / WFS_DATABASE_URL); `wfs serve` creates it on its first start"
    )]
    NoDatabase { path: PathBuf, file: PathBuf },
}

/// `path` made absolute for messages (relative to the current directory), as given otherwise.
pub fn shown(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// For `serve`: makes the data directory if needed and checks that it can be written, so a
/// read-only directory is reported as such, with its path, before SQLite says only that it
/// cannot open a file.
pub fn prepare(dir: &Path) -> Result<(), DataDirError> {
    let failed = |source: std::io::Error| {
        let path = shown(dir);
        if source.kind() == std::io::ErrorKind::PermissionDenied
            || source.kind() == std::io::ErrorKind::ReadOnlyFilesystem
        {
            DataDirError::PermissionDenied { path, source }
        } else {
            DataDirError::Unusable { path, source }
        }
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    // Probing with a file of our own is the only portable check (permissions, read-only
    // mounts and ACLs all show up here), and it leaves nothing behind.
    let probe = dir.join(format!(".wfs-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(failed)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// For the client commands: the SQLite file of an existing data directory; never creates
/// anything.
pub fn existing_sqlite(dir: &Path) -> Result<PathBuf, DataDirError> {
    let file = dir.join(SQLITE_FILE);
    if file.is_file() {
        Ok(file)
    } else {
        Err(DataDirError::NoDatabase {
            path: shown(dir),
            file: shown(&file),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_database_is_reported_with_where_it_was_looked_for() {
        let dir = std::env::temp_dir().join(format!("wfs-no-data-{}", std::process::id()));
        let error = existing_sqlite(&dir).unwrap_err().to_string();
        assert!(error.contains(&dir.display().to_string()), "{error}");
        assert!(error.contains("--data-dir"), "{error}");
        assert!(!dir.exists(), "nothing created");
    }
}
