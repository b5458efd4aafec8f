//! The token signing secret: configured, or generated once and kept in the data directory.
//!
//! The key is the secret's text as bytes, for the file as for the configured value, so copying
//! the file's content into `WFS_JWT_SECRET` keeps every issued token valid.

use std::io::{self, Write};
use std::path::Path;

/// The name of the file in the data directory that keeps a generated secret.
pub(crate) const SECRET_FILE: &str = "jwt-secret";

/// Random bytes in a generated secret (kept as hex text, so the key is 64 ASCII characters).
pub(crate) const GENERATED_SECRET_BYTES: usize = 32;

/// Below this a configured secret is accepted with a warning: HS256 keys shorter than the hash
/// output can be brute-forced offline from any one token.
const MIN_SECRET_LEN: usize = 32;

/// The signing secret: `configured` if given, else the one kept in `data_dir/jwt-secret`
/// (created with 32 random bytes, hex, mode 0600 on unix, on first use).
///
/// Surrounding white space is ignored and an empty `configured` counts as not given.
pub fn load_or_create(data_dir: &Path, configured: Option<&str>) -> io::Result<Vec<u8>> {
    if let Some(secret) = configured
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
    {
        if secret.len() < MIN_SECRET_LEN {
            tracing::warn!(
                "the configured JWT secret is shorter than {MIN_SECRET_LEN} bytes: \
                 tokens signed with it can be brute-forced"
            );
        }
        return Ok(secret.as_bytes().to_vec());
    }

    let path = data_dir.join(SECRET_FILE);
    match read_secret(&path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        found => return found,
    }
    std::fs::create_dir_all(data_dir).map_err(|error| at(data_dir, error))?;
    let mut bytes = [0u8; GENERATED_SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|error| {
        io::Error::other(format!(
            "cannot get random bytes for the JWT secret: {error}"
        ))
    })?;
    let secret = hex(&bytes);

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(format!("{secret}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|error| at(&path, error))?;
            Ok(secret.into_bytes())
        }
        // Another process starting on the same data directory got there first: use its.
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => read_secret(&path),
        Err(error) => Err(at(&path, error)),
    }
}

/// Reads a kept secret: its trimmed text is the key.
fn read_secret(path: &Path) -> io::Result<Vec<u8>> {
    let text = std::fs::read_to_string(path).map_err(|error| at(path, error))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is empty: delete it to have a new secret made (this ends every session)",
                path.display()
            ),
        ));
    }
    #[cfg(unix)]
    if let Ok(metadata) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the JWT secret file is readable by other users: chmod 600 it"
            );
        }
    }
    Ok(secret.as_bytes().to_vec())
}

/// `error` with the path it happened at, so the message says which file.
fn at(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|&byte| [byte >> 4, byte & 0x0f])
        .map(|nibble| char::from(DIGITS[usize::from(nibble)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use uuid::Uuid;

    use super::*;
    use crate::auth::{Jwt, TokenKind};

    const HOUR: Duration = Duration::from_secs(3600);

    /// A directory under the system's temp dir, removed when dropped (even if the test fails).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            let path = std::env::temp_dir().join(format!("wfs-auth-test-{}", Uuid::new_v4()));
            std::fs::create_dir_all(&path).expect("temp dir is created");
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_secret_file_is_created_once_and_kept() {
        let dir = TempDir::new();
        let data_dir = dir.0.join("data");
        let first = load_or_create(&data_dir, None).expect("created");
        assert_eq!(first.len(), 2 * GENERATED_SECRET_BYTES);
        assert!(first.iter().all(u8::is_ascii_hexdigit));
        let second = load_or_create(&data_dir, Some("  ")).expect("reused");
        assert_eq!(first, second);

        let path = data_dir.join(SECRET_FILE);
        let on_disk = std::fs::read_to_string(&path).expect("readable");
        assert_eq!(on_disk.trim().as_bytes(), first.as_slice());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // Tokens survive a restart that reads the same file.
        let before = Jwt::new(first, HOUR, HOUR)
            .expect("a key")
            .issue(3, TokenKind::Access);
        let after = Jwt::new(second, HOUR, HOUR)
            .expect("a key")
            .verify(&before, TokenKind::Access);
        assert_eq!(after.expect("still valid").id, 3);
    }

    #[test]
    fn a_configured_secret_wins_and_writes_nothing() {
        let dir = TempDir::new();
        let configured = load_or_create(&dir.0, Some(" from-the-environment "));
        assert_eq!(configured.expect("given"), b"from-the-environment");
        assert!(!dir.0.join(SECRET_FILE).exists());
    }

    #[test]
    fn an_empty_secret_file_is_an_error() {
        let dir = TempDir::new();
        std::fs::write(dir.0.join(SECRET_FILE), "\n").expect("written");
        let error = load_or_create(&dir.0, None).expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains(SECRET_FILE), "{error}");
    }

    #[test]
    fn hex_is_lowercase_pairs() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
