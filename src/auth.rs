//! Authentication: HS256 JSON Web Tokens as the old service's clients use them, and the signing
//! secret they rest on.
//!
//! The format follows WIRE.md ("Token"): claims `id`, `exp`, `iat`, `token_type` (`access` or
//! `refresh`) and `jti`, as djangorestframework-simplejwt issued them, and a token may arrive
//! raw or wrapped in standard Base64 (what the old pages put in `access_token`).
//!
//! The old service never checked signatures; here the order of checks is deliberate: the
//! header's algorithm first (only `HS256`: `none` and anything asymmetric are refused before any
//! key is used, which closes the classic algorithm-confusion attacks), then the signature in
//! constant time, and only then is the payload parsed and trusted for `exp` and the kind.
//!
//! A small hand-written JWT rather than a JWT crate: one algorithm is all we accept, and
//! `hmac` + `sha2` + `base64` are already (or nearly) in the dependency tree.

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, Engine, GeneralPurpose, GeneralPurposeConfig};
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use uuid::Uuid;

use crate::store::{Store, User};

/// The name of the file in the data directory that keeps a generated secret.
const SECRET_FILE: &str = "jwt-secret";

/// Random bytes in a generated secret (kept as hex text, so the key is 64 ASCII characters).
const GENERATED_SECRET_BYTES: usize = 32;

/// Below this a configured secret is accepted with a warning: HS256 keys shorter than the hash
/// output can be brute-forced offline from any one token.
const MIN_SECRET_LEN: usize = 32;

/// Tokens longer than this are refused before any decoding (ours are about 250 bytes).
const MAX_TOKEN_LEN: usize = 4096;

/// JWT segments: base64url without padding (RFC 7515). Padding is tolerated on input: the
/// signature covers the text as sent, so tolerance cannot make a forgery pass.
const JWT_SEGMENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The Base64 wrapping that old clients put around the whole token: standard alphabet.
const WRAPPED: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The one header we issue.
const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// What a token is for: `access` opens channels, `refresh` only obtains new access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    /// The `token_type` claim of this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// The claims of our tokens (the old service's names).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The user's id in the store.
    pub id: i64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// `"access"` or `"refresh"`.
    pub token_type: String,
    /// A unique id (32 hex digits), so two tokens issued in the same second differ.
    pub jti: String,
}

/// Why a token was refused. `Display` is a short reason fit for an HTTP 403 body and never
/// contains any part of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Token is missing.")]
    Missing,
    #[error("Token is malformed.")]
    Malformed,
    /// The header's `alg`, cut to a few printable characters: for logs, not for the client.
    #[error("Token algorithm is not supported.")]
    UnsupportedAlgorithm(String),
    #[error("Token signature is invalid.")]
    BadSignature,
    #[error("Token is expired.")]
    Expired,
    #[error("Token has the wrong type.")]
    WrongKind,
    #[error("User not found.")]
    UnknownUser,
    /// The store failed while looking the user up; the field has the details for the log.
    /// Not the client's fault: answer it as a server error, not 403.
    #[error("Token could not be checked.")]
    Store(String),
}

impl AuthError {
    /// True when the failure is ours (the store), not the token's.
    pub fn is_server_error(&self) -> bool {
        matches!(self, AuthError::Store(_))
    }
}

/// Issues and verifies tokens with one secret.
#[derive(Clone)]
pub struct Jwt {
    /// HMAC-SHA256 keyed with the secret (the key schedule is done once, cloned per use).
    mac: Hmac<Sha256>,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

/// Written by hand so that no log line can ever show the secret.
impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwt")
            .field("secret", &"<redacted>")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish()
    }
}

/// The header fields we look at.
#[derive(Deserialize)]
struct Header {
    alg: String,
    /// RFC 7515: extensions listed here must be understood, and we understand none.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

impl Jwt {
    pub fn new(secret: Vec<u8>, access_ttl: Duration, refresh_ttl: Duration) -> Jwt {
        // HMAC takes keys of any length (long ones are hashed first), so this cannot fail.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret)
            .expect("HMAC accepts keys of every length");
        Jwt {
            mac,
            access_ttl,
            refresh_ttl,
        }
    }

    /// The signing secret: `configured` if given, else the one kept in `data_dir/jwt-secret`
    /// (created with 32 random bytes, hex, mode 0600 on unix, on first use).
    ///
    /// Surrounding white space is ignored and an empty `configured` counts as not given. The
    /// key is the secret's text as bytes, for the file as for `configured`, so copying the
    /// file's content into the configuration keeps every issued token valid.
    pub fn load_or_create_secret(data_dir: &Path, configured: Option<&str>) -> io::Result<Vec<u8>> {
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

    /// A signed token of `kind` for `user_id`, valid from now for the kind's time to live.
    pub fn issue(&self, user_id: i64, kind: TokenKind) -> String {
        let now = Utc::now().timestamp();
        let ttl = match kind {
            TokenKind::Access => self.access_ttl,
            TokenKind::Refresh => self.refresh_ttl,
        };
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        self.sign(&Claims {
            id: user_id,
            exp: now.saturating_add(ttl),
            iat: now,
            token_type: kind.as_str().to_owned(),
            jti: Uuid::new_v4().simple().to_string(),
        })
    }

    /// Accepts the raw JWT or the standard Base64 encoding of it (old clients send that).
    /// Header must be {"alg":"HS256"...}: `none` and every other alg refused; signature checked
    /// in constant time (hmac's verify); `exp` checked; kind must match.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed);
        }
        // A JWT always has dots and Base64 never does, so the two forms cannot be confused.
        let unwrapped;
        let jwt = if token.contains('.') {
            token
        } else {
            // A `+` that reached us unescaped in a query string was decoded as a space.
            let bytes = WRAPPED
                .decode(token.replace(' ', "+"))
                .map_err(|_| AuthError::Malformed)?;
            unwrapped = String::from_utf8(bytes).map_err(|_| AuthError::Malformed)?;
            unwrapped.trim()
        };

        let mut segments = jwt.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(AuthError::Malformed);
        };

        let header: Header = decode_json(header)?;
        if header.alg != "HS256" {
            return Err(AuthError::UnsupportedAlgorithm(printable(&header.alg)));
        }
        if header.crit.is_some() {
            return Err(AuthError::Malformed);
        }

        let signature = JWT_SEGMENT
            .decode(signature)
            .map_err(|_| AuthError::Malformed)?;
        let signed = &jwt[..header_len_plus_payload(jwt)];
        self.mac
            .clone()
            .chain_update(signed.as_bytes())
            .verify_slice(&signature)
            .map_err(|_| AuthError::BadSignature)?;

        let claims: Claims = decode_json(payload)?;
        if Utc::now().timestamp() >= claims.exp {
            return Err(AuthError::Expired);
        }
        if claims.token_type != kind.as_str() {
            return Err(AuthError::WrongKind);
        }
        Ok(claims)
    }

    /// `header.payload.signature` for `claims`.
    fn sign(&self, claims: &Claims) -> String {
        // Built as a `Value` rather than through `serde_json::to_string`, which returns a
        // `Result` for types that can fail; these fields cannot.
        let payload = serde_json::Value::Object(serde_json::Map::from_iter([
            ("id".to_owned(), claims.id.into()),
            ("exp".to_owned(), claims.exp.into()),
            ("iat".to_owned(), claims.iat.into()),
            ("token_type".to_owned(), claims.token_type.clone().into()),
            ("jti".to_owned(), claims.jti.clone().into()),
        ]));
        self.sign_parts(HEADER_JSON, &payload.to_string())
    }

    fn sign_parts(&self, header_json: &str, payload_json: &str) -> String {
        let signed = format!(
            "{}.{}",
            JWT_SEGMENT.encode(header_json),
            JWT_SEGMENT.encode(payload_json)
        );
        let tag = self
            .mac
            .clone()
            .chain_update(signed.as_bytes())
            .finalize()
            .into_bytes();
        format!("{signed}.{}", JWT_SEGMENT.encode(tag))
    }
}

/// verify + the user exists in the store.
pub async fn authenticate(
    jwt: &Jwt,
    store: &Store,
    token: Option<&str>,
) -> Result<User, AuthError> {
    let claims = jwt.verify(token.ok_or(AuthError::Missing)?, TokenKind::Access)?;
    match store.user(claims.id).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(AuthError::UnknownUser),
        Err(error) => Err(AuthError::Store(error_chain(&error))),
    }
}

/// The length of `header.payload` in a token already known to have exactly two dots.
fn header_len_plus_payload(jwt: &str) -> usize {
    jwt.rfind('.').unwrap_or(jwt.len())
}

fn decode_json<T: serde::de::DeserializeOwned>(segment: &str) -> Result<T, AuthError> {
    let bytes = JWT_SEGMENT
        .decode(segment)
        .map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)
}

/// At most 16 printable ASCII characters of an untrusted string, safe to log.
fn printable(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_graphic)
        .take(16)
        .collect()
}

/// An error and its sources, joined by `: `.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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

    use base64::engine::general_purpose::STANDARD;

    use super::*;

    const SECRET: &[u8] = b"test secret that is long enough for HS256 keys";
    const HOUR: Duration = Duration::from_secs(3600);

    fn jwt() -> Jwt {
        Jwt::new(SECRET.to_vec(), HOUR, 24 * HOUR)
    }

    fn claims_json(id: i64, exp_from_now: i64, token_type: &str) -> String {
        let now = Utc::now().timestamp();
        format!(
            r#"{{"id":{id},"exp":{},"iat":{now},"token_type":"{token_type}","jti":"abc"}}"#,
            now + exp_from_now
        )
    }

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
    fn round_trip() {
        let jwt = jwt();
        let token = jwt.issue(42, TokenKind::Access);
        assert_eq!(token.matches('.').count(), 2);
        let claims = jwt.verify(&token, TokenKind::Access).expect("valid");
        assert_eq!(claims.id, 42);
        assert_eq!(claims.token_type, "access");
        assert_eq!(claims.exp - claims.iat, 3600);
        assert_eq!(claims.jti.len(), 32);

        let refresh = jwt.issue(42, TokenKind::Refresh);
        let claims = jwt.verify(&refresh, TokenKind::Refresh).expect("valid");
        assert_eq!(claims.exp - claims.iat, 24 * 3600);
        assert_ne!(jwt.issue(42, TokenKind::Access), token, "jti differs");
    }

    #[test]
    fn header_is_hs256() {
        let token = jwt().issue(1, TokenKind::Access);
        let header = token.split('.').next().expect("header");
        let header = JWT_SEGMENT.decode(header).expect("base64url");
        assert_eq!(header, HEADER_JSON.as_bytes());
    }

    #[test]
    fn base64_wrapped_tokens_are_accepted() {
        let jwt = jwt();
        let token = jwt.issue(7, TokenKind::Access);
        let wrapped = STANDARD.encode(&token);
        assert_eq!(
            jwt.verify(&wrapped, TokenKind::Access).expect("valid").id,
            7
        );
        let unpadded = wrapped.trim_end_matches('=');
        assert_eq!(
            jwt.verify(unpadded, TokenKind::Access).expect("valid").id,
            7
        );
        // A `+` decoded to a space by a careless query string still works.
        let spaced = wrapped.replace('+', " ");
        assert_eq!(jwt.verify(&spaced, TokenKind::Access).expect("valid").id, 7);
    }

    #[test]
    fn expired_tokens_are_refused() {
        let jwt = jwt();
        let instant = Jwt::new(SECRET.to_vec(), Duration::ZERO, Duration::ZERO);
        let token = instant.issue(1, TokenKind::Access);
        assert_eq!(
            jwt.verify(&token, TokenKind::Access),
            Err(AuthError::Expired)
        );
        let old = jwt.sign_parts(HEADER_JSON, &claims_json(1, -60, "access"));
        assert_eq!(jwt.verify(&old, TokenKind::Access), Err(AuthError::Expired));
    }

    #[test]
    fn forged_signatures_are_refused() {
        let other = Jwt::new(b"another secret".to_vec(), HOUR, HOUR);
        let token = other.issue(1, TokenKind::Access);
        assert_eq!(
            jwt().verify(&token, TokenKind::Access),
            Err(AuthError::BadSignature)
        );
        let wrapped = STANDARD.encode(&token);
        assert_eq!(
            jwt().verify(&wrapped, TokenKind::Access),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let jwt = jwt();
        let payload = JWT_SEGMENT.encode(claims_json(1, 60, "access"));
        for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"None"}"#] {
            let unsigned = format!("{}.{payload}.", JWT_SEGMENT.encode(header));
            let refused = jwt.verify(&unsigned, TokenKind::Access);
            assert!(
                matches!(refused, Err(AuthError::UnsupportedAlgorithm(_))),
                "{refused:?}"
            );
        }
        // Even with a valid HS256 tag appended, `none` is refused.
        let signed = jwt.sign_parts(r#"{"alg":"none"}"#, &claims_json(1, 60, "access"));
        assert_eq!(
            jwt.verify(&signed, TokenKind::Access),
            Err(AuthError::UnsupportedAlgorithm("none".into()))
        );
    }

    #[test]
    fn other_algorithms_are_refused() {
        let jwt = jwt();
        for alg in ["HS512", "RS256", "ES256", "hs256"] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
            let token = jwt.sign_parts(&header, &claims_json(1, 60, "access"));
            assert_eq!(
                jwt.verify(&token, TokenKind::Access),
                Err(AuthError::UnsupportedAlgorithm(alg.into()))
            );
        }
        let critical = jwt.sign_parts(
            r#"{"alg":"HS256","crit":["exp"]}"#,
            &claims_json(1, 60, "access"),
        );
        assert_eq!(
            jwt.verify(&critical, TokenKind::Access),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn tampered_payloads_are_refused() {
        let jwt = jwt();
        let token = jwt.issue(1, TokenKind::Access);
        let segments: Vec<&str> = token.split('.').collect();
        let forged_payload = JWT_SEGMENT.encode(claims_json(2, 3600, "access"));
        let tampered = format!("{}.{forged_payload}.{}", segments[0], segments[2]);
        assert_eq!(
            jwt.verify(&tampered, TokenKind::Access),
            Err(AuthError::BadSignature)
        );
        // A truncated signature is no signature (40 of 43 characters still decode cleanly).
        let (signed, signature) = token.rsplit_once('.').expect("three segments");
        let short = format!("{signed}.{}", &signature[..40]);
        assert_eq!(
            jwt.verify(&short, TokenKind::Access),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn kinds_are_not_interchangeable() {
        let jwt = jwt();
        let refresh = jwt.issue(1, TokenKind::Refresh);
        assert_eq!(
            jwt.verify(&refresh, TokenKind::Access),
            Err(AuthError::WrongKind)
        );
        let access = jwt.issue(1, TokenKind::Access);
        assert_eq!(
            jwt.verify(&access, TokenKind::Refresh),
            Err(AuthError::WrongKind)
        );
        let odd = jwt.sign_parts(HEADER_JSON, &claims_json(1, 60, "sliding"));
        assert_eq!(
            jwt.verify(&odd, TokenKind::Access),
            Err(AuthError::WrongKind)
        );
    }

    #[test]
    fn garbage_and_empty_are_refused() {
        let jwt = jwt();
        assert_eq!(jwt.verify("", TokenKind::Access), Err(AuthError::Missing));
        assert_eq!(
            jwt.verify("  \n", TokenKind::Access),
            Err(AuthError::Missing)
        );
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        let not_json = jwt.sign_parts("not json", &claims_json(1, 60, "access"));
        let no_claims = jwt.sign_parts(HEADER_JSON, r#"{"id":1}"#);
        let array = jwt.sign_parts(HEADER_JSON, "[1,2]");
        let valid = jwt.issue(1, TokenKind::Access);
        let four = format!("{valid}.x");
        for garbage in [
            "garbage",
            "a.b",
            "a.b.c",
            "...",
            "!!!",
            "é.é.é",
            "aGVsbG8=",
            huge.as_str(),
            not_json.as_str(),
            no_claims.as_str(),
            array.as_str(),
            four.as_str(),
        ] {
            assert_eq!(
                jwt.verify(garbage, TokenKind::Access),
                Err(AuthError::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    fn reasons_never_echo_the_token() {
        let jwt = jwt();
        let token = jwt.sign_parts(r#"{"alg":"evil<script>"}"#, &claims_json(1, 60, "access"));
        let error = jwt.verify(&token, TokenKind::Access).expect_err("refused");
        assert_eq!(error.to_string(), "Token algorithm is not supported.");
        assert_eq!(
            error,
            AuthError::UnsupportedAlgorithm("evil<script>".into())
        );
        assert_eq!(AuthError::Expired.to_string(), "Token is expired.");
        assert_eq!(
            AuthError::BadSignature.to_string(),
            "Token signature is invalid."
        );
        let long = jwt.sign_parts(
            &format!(r#"{{"alg":"{}\n"}}"#, "x".repeat(100)),
            &claims_json(1, 60, "access"),
        );
        match jwt.verify(&long, TokenKind::Access) {
            Err(AuthError::UnsupportedAlgorithm(alg)) => assert_eq!(alg, "x".repeat(16)),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn authenticate_needs_an_existing_user() {
        tokio::time::timeout(Duration::from_secs(60), async {
            let store = Store::open("sqlite::memory:").await.expect("store");
            let alice = store
                .create_user("alice", "pw", false)
                .await
                .expect("created");
            let jwt = jwt();

            let token = jwt.issue(alice.id, TokenKind::Access);
            let user = authenticate(&jwt, &store, Some(&token)).await;
            assert_eq!(user, Ok(alice.clone()));
            let wrapped = STANDARD.encode(&token);
            let user = authenticate(&jwt, &store, Some(&wrapped)).await;
            assert_eq!(user, Ok(alice.clone()));

            let ghost = jwt.issue(alice.id + 1000, TokenKind::Access);
            let refused = authenticate(&jwt, &store, Some(&ghost)).await;
            assert_eq!(refused, Err(AuthError::UnknownUser));
            assert_eq!(
                authenticate(&jwt, &store, None).await,
                Err(AuthError::Missing)
            );
            let refresh = jwt.issue(alice.id, TokenKind::Refresh);
            let refused = authenticate(&jwt, &store, Some(&refresh)).await;
            assert_eq!(refused, Err(AuthError::WrongKind));

            store.close().await;
            let closed = authenticate(&jwt, &store, Some(&token)).await;
            assert!(
                matches!(&closed, Err(error @ AuthError::Store(_)) if error.is_server_error()),
                "{closed:?}"
            );
        })
        .await
        .expect("the test did not finish in time");
    }

    #[test]
    fn the_secret_file_is_created_once_and_kept() {
        let dir = TempDir::new();
        let data_dir = dir.0.join("data");
        let first = Jwt::load_or_create_secret(&data_dir, None).expect("created");
        assert_eq!(first.len(), 2 * GENERATED_SECRET_BYTES);
        assert!(first.iter().all(u8::is_ascii_hexdigit));
        let second = Jwt::load_or_create_secret(&data_dir, Some("  ")).expect("reused");
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
        let before = Jwt::new(first, HOUR, HOUR).issue(3, TokenKind::Access);
        let after = Jwt::new(second, HOUR, HOUR).verify(&before, TokenKind::Access);
        assert_eq!(after.expect("still valid").id, 3);
    }

    #[test]
    fn a_configured_secret_wins_and_writes_nothing() {
        let dir = TempDir::new();
        let configured = Jwt::load_or_create_secret(&dir.0, Some(" from-the-environment "));
        assert_eq!(configured.expect("given"), b"from-the-environment");
        assert!(!dir.0.join(SECRET_FILE).exists());
    }

    #[test]
    fn an_empty_secret_file_is_an_error() {
        let dir = TempDir::new();
        std::fs::write(dir.0.join(SECRET_FILE), "\n").expect("written");
        let error = Jwt::load_or_create_secret(&dir.0, None).expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains(SECRET_FILE), "{error}");
    }

    #[test]
    fn debug_shows_no_secret() {
        let secret = "super-secret-value-0123456789abcdef";
        let jwt = Jwt::new(secret.as_bytes().to_vec(), HOUR, HOUR);
        let debug = format!("{jwt:?} {jwt:#?}");
        assert!(!debug.contains(secret), "{debug}");
        assert!(!debug.contains("super"), "{debug}");
        assert!(
            !debug.contains(&format!("{:?}", secret.as_bytes())),
            "{debug}"
        );
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn hex_is_lowercase_pairs() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
