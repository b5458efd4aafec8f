//! Passwords: argon2id PHC strings, checked and made on tokio's blocking pool, and generated
//! passwords for accounts whose password nobody chose.
//!
//! Hashing takes tens of milliseconds of CPU and ~19 MiB of memory on purpose, so it never runs
//! on a runtime worker.

use argon2::Argon2;
use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Length of a generated password: 24 characters of 62 give about 143 bits.
pub const GENERATED_PASSWORD_LEN: usize = 24;

/// Why a password could not be hashed or checked (a wrong password is not an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Hashing or checking failed for a reason other than a wrong password.
    #[error("cannot hash or check a password: {0}")]
    Hash(String),
    /// The operating system's random source failed.
    #[error("cannot get random bytes from the operating system: {0}")]
    Random(String),
    /// A stored hash that is not a PHC string this build reads.
    #[error("unreadable password hash: {0}")]
    Corrupt(String),
}

/// The argon2id PHC string of `password` with a fresh random salt.
pub async fn hash(password: &str) -> Result<String, PasswordError> {
    let password = password.to_owned();
    blocking(move || hash_now(&password)).await
}

/// Whether `password` matches the stored PHC string (whatever parameters it was made with).
pub async fn verify(password: &str, stored: &str) -> Result<bool, PasswordError> {
    let (password, stored) = (password.to_owned(), stored.to_owned());
    blocking(move || check_now(&password, &stored)).await
}

/// Spends the time and memory a check would, for a user name that does not exist, so response
/// times do not tell which names exist.
pub async fn waste_a_check(password: &str) -> Result<(), PasswordError> {
    hash(password).await.map(drop)
}

/// Runs CPU-heavy work (argon2) on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
) -> Result<T, PasswordError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| PasswordError::Hash(format!("the hashing task did not finish: {error}")))?
}

fn hash_now(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|error| PasswordError::Random(error.to_string()))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|error| PasswordError::Hash(error.to_string()))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| PasswordError::Hash(error.to_string()))?;
    Ok(hash.to_string())
}

fn check_now(password: &str, stored: &str) -> Result<bool, PasswordError> {
    let parsed =
        PasswordHash::new(stored).map_err(|error| PasswordError::Corrupt(error.to_string()))?;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::Password) => Ok(false),
        Err(error) => Err(PasswordError::Hash(error.to_string())),
    }
}

/// A password of ASCII letters and digits: safe to paste anywhere, never mistaken for a flag.
pub fn generate() -> Result<String, PasswordError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // Bytes at or above the largest multiple of the alphabet's size are dropped, so every
    // character is equally likely.
    let unbiased_below = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut password = String::with_capacity(GENERATED_PASSWORD_LEN);
    let mut bytes = [0u8; 64];
    while password.len() < GENERATED_PASSWORD_LEN {
        getrandom::fill(&mut bytes).map_err(|error| PasswordError::Random(error.to_string()))?;
        for &byte in bytes.iter().filter(|&&byte| byte < unbiased_below) {
            if password.len() == GENERATED_PASSWORD_LEN {
                break;
            }
            password.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
        }
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_differ() {
        let one = generate().expect("random");
        let two = generate().expect("random");
        assert_eq!(one.len(), GENERATED_PASSWORD_LEN);
        assert_ne!(one, two);
        assert!(one.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[tokio::test]
    async fn hashes_verify_and_differ_by_salt() {
        let first = hash("correct horse").await.expect("hashed");
        let second = hash("correct horse").await.expect("hashed");
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert_ne!(first, second);
        assert_eq!(verify("correct horse", &first).await, Ok(true));
        assert_eq!(verify("battery staple", &first).await, Ok(false));
        assert!(matches!(
            verify("x", "not a phc string").await,
            Err(PasswordError::Corrupt(_))
        ));
    }
}
