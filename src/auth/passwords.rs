//! Passwords: argon2id PHC strings, checked and made on tokio's blocking pool, and generated
//! passwords for accounts whose password nobody chose.
//!
//! The parameters are chosen on purpose: OWASP's Password Storage Cheat Sheet recommends
//! argon2id with 19 MiB of memory, 2 passes and 1 lane as its baseline, which costs about
//! 20-40 ms of one core here. A check reads the parameters from the stored hash, so hashes made
//! with other parameters keep working.
//!
//! Each hash takes those 19 MiB for its duration, so how many run at once is bounded: one per
//! core (more would only queue for the CPU and multiply the memory). The rest wait their turn
//! for up to [`QUEUE_WAIT`], at most [`QUEUED_PER_PERMIT`] per core; beyond that a check is
//! refused at once with [`PasswordError::Busy`] (the API answers 503 with `Retry-After`). The
//! memory of a hash is freed when it ends, so a burst leaves no lasting growth.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

/// argon2id memory in KiB (19 MiB), passes and lanes: OWASP's recommended baseline.
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
pub const ARGON2_PASSES: u32 = 2;
pub const ARGON2_LANES: u32 = 1;

/// How long a password check waits for a free core before it is refused as busy.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// Checks that may wait per core; more are refused at once rather than queued.
pub const QUEUED_PER_PERMIT: usize = 32;

/// Length of a generated password: 24 characters of 62 give about 143 bits.
pub const GENERATED_PASSWORD_LEN: usize = 24;

/// The shortest password `wfs user` and the users API accept (Django's default too).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The longest password accepted, in bytes: argon2 reads all of it, so it is bounded.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a chosen password is refused. `Display` says what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("the password is empty")]
    Empty,
    #[error("the password is too short: use at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password is too long: use at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("the password is only digits: mix in letters or other characters")]
    OnlyDigits,
    #[error("the password is the user name")]
    SameAsName,
}

/// Refuses passwords that are trivially guessed (Django's default validators, less its list
/// of common passwords): empty, shorter than 8 characters, only digits, or the user name.
pub fn check_strength(username: &str, password: &str) -> Result<(), WeakPassword> {
    if password.is_empty() {
        return Err(WeakPassword::Empty);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(WeakPassword::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(WeakPassword::TooShort);
    }
    if password.chars().all(|c| c.is_ascii_digit()) {
        return Err(WeakPassword::OnlyDigits);
    }
    if password.to_lowercase() == username.to_lowercase() {
        return Err(WeakPassword::SameAsName);
    }
    Ok(())
}

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
    /// Every core is hashing and the queue is full: try again in a moment.
    #[error("too many password checks at once")]
    Busy,
}

/// The hashes allowed to run at once (one per core) and how many wait for one.
struct Gate {
    permits: Arc<Semaphore>,
    size: usize,
    /// Waiters beyond this are refused at once.
    queue_limit: usize,
    /// How long a waiter waits.
    wait: Duration,
    waiting: AtomicUsize,
}

/// Counts a waiter for as long as it waits, even if its request is dropped meanwhile.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    fn new(size: usize, queue_limit: usize, wait: Duration) -> Gate {
        Gate {
            permits: Arc::new(Semaphore::new(size)),
            size,
            queue_limit,
            wait,
            waiting: AtomicUsize::new(0),
        }
    }

    /// Runs CPU-heavy work (argon2) on the blocking pool once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let before = self.waiting.fetch_add(1, Ordering::AcqRel);
                let _waiting = Waiting(&self.waiting);
                if before >= self.queue_limit {
                    return Err(PasswordError::Busy);
                }
                tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .ok_or(PasswordError::Busy)?
            }
        };
        // The permit goes with the work: if the request is dropped meanwhile, the hash still
        // runs to its end and holds its core (and memory) until then.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|error| PasswordError::Hash(format!("the hashing task did not finish: {error}")))?
    }
}

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        let size = std::thread::available_parallelism().map_or(1, usize::from);
        Gate::new(size, QUEUED_PER_PERMIT * size, QUEUE_WAIT)
    })
}

/// How many password hashes may run at once (the number of cores).
pub fn concurrent_hashes() -> usize {
    gate().size
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

/// Runs CPU-heavy work (argon2) on the blocking pool, once a core is free (see the module docs).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
) -> Result<T, PasswordError> {
    gate().run(work).await
}

fn hash_now(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|error| PasswordError::Random(error.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(hash_error)?;
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, None)
        .map_err(|error| PasswordError::Hash(error.to_string()))?;
    let hash = compute(
        Algorithm::Argon2id,
        Version::V0x13,
        params,
        password,
        salt.as_salt(),
    )?;
    Ok(hash.to_string())
}

fn check_now(password: &str, stored: &str) -> Result<bool, PasswordError> {
    let corrupt = |error: password_hash::Error| PasswordError::Corrupt(error.to_string());
    let parsed = PasswordHash::new(stored).map_err(corrupt)?;
    // The stored hash's own algorithm, version and parameters, not today's.
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(corrupt)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|error| PasswordError::Corrupt(error.to_string()))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(corrupt)?;
    let (Some(salt), Some(expected)) = (parsed.salt, &parsed.hash) else {
        return Err(PasswordError::Corrupt("no salt or no hash".to_owned()));
    };
    let computed = compute(algorithm, version, params, password, salt)?;
    // `Output`'s equality is constant-time.
    Ok(computed.hash.as_ref() == Some(expected))
}

/// Bytes reserved for a hash's working memory: more than glibc's largest dynamic mmap
/// threshold (32 MiB on 64-bit systems). A block that large is always mapped on its own and
/// unmapped when freed, and freeing it never raises the threshold; a 19 MiB block would, after
/// the first one, be carved from a per-thread arena that keeps it when freed (observed: 64
/// logins left 700 MB behind). Only the 19 MiB that argon2 writes become resident.
const RESERVED_BYTES: usize = 33 * 1024 * 1024;

/// argon2 of `password` with `salt`, its working memory in a block of its own (see
/// [`RESERVED_BYTES`]), as a PHC hash (what `PasswordHasher::hash_password` makes).
fn compute<'a>(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &str,
    salt: Salt<'a>,
) -> Result<PasswordHash<'a>, PasswordError> {
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(hash_error)?;
    let needed = params.block_count();
    let mut blocks: Vec<Block> = Vec::with_capacity(needed.max(RESERVED_BYTES / Block::SIZE));
    blocks.resize(needed, Block::default());
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let output = Output::init_with(output_len, |out| {
        argon2
            .hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, &mut blocks)
            .map_err(|_| password_hash::Error::Crypto)
    })
    .map_err(hash_error)?;
    Ok(PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(&params).map_err(hash_error)?,
        salt: Some(salt),
        hash: Some(output),
    })
}

fn hash_error(error: password_hash::Error) -> PasswordError {
    PasswordError::Hash(error.to_string())
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
    fn hashes_of_the_argon2_crate_and_of_others_parameters_still_verify() {
        use argon2::PasswordHasher;
        let salt = SaltString::encode_b64(b"sixteen byte slt").expect("salt");
        for params in [
            Params::default(),
            Params::new(4096, 3, 2, None).expect("params"),
        ] {
            let made = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"correct horse", &salt)
                .expect("hashed")
                .to_string();
            assert_eq!(check_now("correct horse", &made), Ok(true), "{made}");
            assert_eq!(check_now("battery staple", &made), Ok(false), "{made}");
        }
        // And ours are what the crate itself would make with these parameters.
        let ours = hash_now("correct horse").expect("hashed");
        let parsed = PasswordHash::new(&ours).expect("phc");
        let theirs = Argon2::default()
            .hash_password(b"correct horse", parsed.salt.expect("salt"))
            .expect("hashed")
            .to_string();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn generated_passwords_differ() {
        let one = generate().expect("random");
        let two = generate().expect("random");
        assert_eq!(one.len(), GENERATED_PASSWORD_LEN);
        assert_ne!(one, two);
        assert!(one.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[tokio::test]
    async fn a_burst_waits_its_turn_and_every_check_finishes() {
        let stored = hash("correct horse").await.expect("hashed");
        let checks = (0..3 * concurrent_hashes()).map(|_| verify("correct horse", &stored));
        for outcome in futures_util::future::join_all(checks).await {
            assert_eq!(outcome, Ok(true));
        }
    }

    #[tokio::test]
    async fn beyond_the_queue_checks_are_refused_as_busy_and_a_dropped_waiter_leaves_no_trace() {
        let gate = Arc::new(Gate::new(1, 1, Duration::from_secs(10)));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let busy = {
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.run(move || {
                    let _ = held.recv_timeout(Duration::from_secs(10));
                    Ok(())
                })
                .await
            })
        };
        while gate.permits.available_permits() != 0 {
            tokio::task::yield_now().await;
        }
        // One may wait; it is dropped (its client went away) and counts no more.
        let waiter = gate.run(|| Ok(()));
        let dropped = tokio::time::timeout(Duration::from_millis(50), waiter).await;
        assert!(dropped.is_err(), "it waited");
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
        // With one waiting, the next is refused at once.
        let first = tokio::spawn({
            let gate = gate.clone();
            async move { gate.run(|| Ok(())).await }
        });
        while gate.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.run(|| Ok(())).await, Err(PasswordError::Busy));
        release.send(()).expect("released");
        assert_eq!(busy.await.expect("joined"), Ok(()));
        assert_eq!(first.await.expect("joined"), Ok(()));
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        assert_eq!(check_strength("carol", ""), Err(WeakPassword::Empty));
        assert_eq!(
            check_strength("carol", "short"),
            Err(WeakPassword::TooShort)
        );
        assert_eq!(
            check_strength("carol", "12345678"),
            Err(WeakPassword::OnlyDigits)
        );
        assert_eq!(
            check_strength("carolina", "Carolina"),
            Err(WeakPassword::SameAsName)
        );
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(check_strength("carol", &long), Err(WeakPassword::TooLong));
        assert_eq!(check_strength("carol", "correct horse"), Ok(()));
        assert_eq!(check_strength("carol", "Zürich☔☔"), Ok(()));
        assert_eq!(
            check_strength("carol", &generate().expect("random")),
            Ok(())
        );
    }

    #[tokio::test]
    async fn hashes_verify_and_differ_by_salt() {
        let first = hash("correct horse").await.expect("hashed");
        let second = hash("correct horse").await.expect("hashed");
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        assert_ne!(first, second);
        assert_eq!(verify("correct horse", &first).await, Ok(true));
        assert_eq!(verify("battery staple", &first).await, Ok(false));
        assert!(matches!(
            verify("x", "not a phc string").await,
            Err(PasswordError::Corrupt(_))
        ));
    }
}
