//! HS256 JSON Web Tokens as the old service's clients use them, signed and checked by the
//! `jsonwebtoken` crate (on aws-lc-rs, the crypto library rustls already brings).
//!
//! The format follows WIRE.md ("Token"): claims `id`, `exp`, `iat`, `token_type` (`access` or
//! `refresh`) and `jti`, as djangorestframework-simplejwt issued them, and a token may arrive
//! raw or wrapped in standard Base64 (what the old pages put in `access_token`). Unwrapping that
//! Base64 and the token-type check are ours; the crate does the rest.
//!
//! The order of checks is deliberate: the header's algorithm first (only `HS256`: `none` and
//! anything asymmetric are refused before any key is used, which closes the classic
//! algorithm-confusion attacks), then the signature in constant time (aws-lc's HMAC verify),
//! and only then is the payload parsed and trusted for `exp` and the kind. The header is also
//! peeked at here, before the crate sees it, only so that a refusal can name the algorithm in
//! the log; the crate enforces the same rule on its own.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, Engine, GeneralPurpose, GeneralPurposeConfig};
use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Deserialize;
use uuid::Uuid;

use super::{AuthError, Claims, TokenKind};

/// Tokens longer than this are refused before any decoding (ours are about 250 bytes).
pub(crate) const MAX_TOKEN_LEN: usize = 4096;

/// The one algorithm we issue and accept.
const ALGORITHM: Algorithm = Algorithm::HS256;

/// JWT segments: base64url (RFC 7515), read here only to name a refused algorithm.
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

/// Issues and verifies tokens with one secret.
#[derive(Clone)]
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
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

/// Why a [`Jwt`] could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// HMAC needs a key; an empty one would sign every token with nothing.
    #[error("the JWT secret is empty")]
    EmptySecret,
}

/// The header field we peek at.
#[derive(Deserialize)]
struct Alg {
    alg: String,
}

impl Jwt {
    /// An issuer and checker signing with `secret` (any non-empty bytes).
    pub fn new(
        secret: Vec<u8>,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Result<Jwt, JwtError> {
        let mut validation = Validation::new(ALGORITHM);
        // Expiry is checked to the second below (simplejwt had no leeway either).
        validation.leeway = 0;
        validation.required_spec_claims = HashSet::from(["exp".to_owned()]);
        // The crate refuses only an empty key.
        let key_error = |_| JwtError::EmptySecret;
        Ok(Jwt {
            encoding: EncodingKey::from_secret(&secret).map_err(key_error)?,
            decoding: DecodingKey::from_secret(&secret).map_err(key_error)?,
            validation,
            access_ttl,
            refresh_ttl,
        })
    }

    /// The signing secret: see [`super::secret::load_or_create`].
    pub fn load_or_create_secret(
        data_dir: &Path,
        configured: Option<&str>,
    ) -> std::io::Result<Vec<u8>> {
        super::secret::load_or_create(data_dir, configured)
    }

    /// How long an access token is valid.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
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
    /// in constant time; `exp` checked; kind must match.
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
        if jwt.split('.').count() != 3 {
            return Err(AuthError::Malformed);
        }
        let alg = peek_alg(jwt)?;
        if alg != "HS256" {
            return Err(AuthError::UnsupportedAlgorithm(printable(&alg)));
        }

        let claims = jsonwebtoken::decode::<Claims>(jwt, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    AuthError::UnsupportedAlgorithm(printable(&alg))
                }
                _ => AuthError::Malformed,
            })?
            .claims;
        // The crate counts a token as expired from the second after `exp`; simplejwt (and
        // this service before) from `exp` itself.
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
        match jsonwebtoken::encode(&Header::new(ALGORITHM), claims, &self.encoding) {
            Ok(token) => token,
            // Cannot happen: the claims are numbers and strings, and HMAC signs any input.
            // An empty token is refused everywhere ("Token is missing."), never trusted.
            Err(error) => {
                tracing::error!(%error, "a token could not be signed");
                String::new()
            }
        }
    }
}

/// The `alg` of a token's header (base64url JSON); a header that is not that is malformed.
fn peek_alg(jwt: &str) -> Result<String, AuthError> {
    let header = jwt.split('.').next().unwrap_or_default();
    let bytes = JWT_SEGMENT
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    let header: Alg = serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
    Ok(header.alg)
}

/// At most 16 printable ASCII characters of an untrusted string, safe to log.
fn printable(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_graphic)
        .take(16)
        .collect()
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    const SECRET: &[u8] = b"test secret that is long enough for HS256 keys";
    const HOUR: Duration = Duration::from_secs(3600);
    const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    fn jwt() -> Jwt {
        Jwt::new(SECRET.to_vec(), HOUR, 24 * HOUR).expect("a key")
    }

    fn claims_json(id: i64, exp_from_now: i64, token_type: &str) -> String {
        let now = Utc::now().timestamp();
        format!(
            r#"{{"id":{id},"exp":{},"iat":{now},"token_type":"{token_type}","jti":"abc"}}"#,
            now + exp_from_now
        )
    }

    /// Signs any header and payload with the test secret, as a forger holding it could.
    fn sign_parts(header_json: &str, payload_json: &str) -> String {
        let signed = format!(
            "{}.{}",
            JWT_SEGMENT.encode(header_json),
            JWT_SEGMENT.encode(payload_json)
        );
        let key = EncodingKey::from_secret(SECRET).expect("a key");
        let tag = jsonwebtoken::crypto::sign(signed.as_bytes(), &key, ALGORITHM).expect("signed");
        format!("{signed}.{tag}")
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
        let header: serde_json::Value =
            serde_json::from_slice(&JWT_SEGMENT.decode(header).expect("base64url")).expect("json");
        let expected: serde_json::Value = serde_json::from_str(HEADER_JSON).expect("json");
        assert_eq!(header, expected);
    }

    #[test]
    fn tokens_signed_elsewhere_with_the_secret_are_accepted() {
        // What simplejwt (PyJWT) or the previous hand-written signer issued still verifies.
        let token = sign_parts(HEADER_JSON, &claims_json(5, 60, "access"));
        assert_eq!(
            jwt().verify(&token, TokenKind::Access).expect("valid").id,
            5
        );
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
        let instant = Jwt::new(SECRET.to_vec(), Duration::ZERO, Duration::ZERO).expect("a key");
        let token = instant.issue(1, TokenKind::Access);
        assert_eq!(
            jwt.verify(&token, TokenKind::Access),
            Err(AuthError::Expired)
        );
        let old = sign_parts(HEADER_JSON, &claims_json(1, -60, "access"));
        assert_eq!(jwt.verify(&old, TokenKind::Access), Err(AuthError::Expired));
    }

    #[test]
    fn forged_signatures_are_refused() {
        let other = Jwt::new(b"another secret".to_vec(), HOUR, HOUR).expect("a key");
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
        let signed = sign_parts(r#"{"alg":"none"}"#, &claims_json(1, 60, "access"));
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
            let token = sign_parts(&header, &claims_json(1, 60, "access"));
            assert_eq!(
                jwt.verify(&token, TokenKind::Access),
                Err(AuthError::UnsupportedAlgorithm(alg.into()))
            );
        }
        let critical = sign_parts(
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
        let odd = sign_parts(HEADER_JSON, &claims_json(1, 60, "sliding"));
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
        let not_json = sign_parts("not json", &claims_json(1, 60, "access"));
        let no_claims = sign_parts(HEADER_JSON, r#"{"id":1}"#);
        let array = sign_parts(HEADER_JSON, "[1,2]");
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
        let token = sign_parts(r#"{"alg":"evil<script>"}"#, &claims_json(1, 60, "access"));
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
        let long = sign_parts(
            &format!(r#"{{"alg":"{}\n"}}"#, "x".repeat(100)),
            &claims_json(1, 60, "access"),
        );
        match jwt.verify(&long, TokenKind::Access) {
            Err(AuthError::UnsupportedAlgorithm(alg)) => assert_eq!(alg, "x".repeat(16)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_empty_secret_is_refused() {
        assert_eq!(
            Jwt::new(Vec::new(), HOUR, HOUR).map(drop),
            Err(JwtError::EmptySecret)
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let secret = "super-secret-value-0123456789abcdef";
        let jwt = Jwt::new(secret.as_bytes().to_vec(), HOUR, HOUR).expect("a key");
        let debug = format!("{jwt:?} {jwt:#?}");
        assert!(!debug.contains(secret), "{debug}");
        assert!(!debug.contains("super"), "{debug}");
        assert!(
            !debug.contains(&format!("{:?}", secret.as_bytes())),
            "{debug}"
        );
        assert!(debug.contains("<redacted>"));
    }
}
