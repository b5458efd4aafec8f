//! `cargo xtask ci`: everything CI runs, in the order that fails fastest.
//!
//! 1. installs what the tests run for real and a fresh machine may lack ([`TOOLS`]: Node.js
//!    and npm for the official AsyncAPI parser and the browser tests, redis-server for the
//!    fan-out tests, Debian's Chromium for the browser tests, PostgreSQL for the contract suite
//!    on PostgreSQL);
//! 2. `cargo fmt --check`, `cargo clippy --all-targets -D warnings`;
//! 3. `cargo xtask docs --check` (the committed docs match the contract);
//! 4. every test of the workspace with `INSTA_UPDATE=no`, then the contract suite again on
//!    PostgreSQL; last, so the total closes the log.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};

pub fn run(args: &[String], root: &Path) -> anyhow::Result<ExitCode> {
    if let Some(other) = args.first() {
        bail!("unknown argument `{other}` (ci takes none)");
    }
    ensure_built_here(root)?;
    ensure_tools()?;
    cargo(
        root,
        &["fmt", "--all", "--", "--check"],
        "formatting (run `cargo fmt --all`)",
    )?;
    cargo(
        root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        "clippy",
    )?;
    println!("==> cargo xtask docs --check");
    crate::docs::run(&["--check".to_owned()], root)
        .context("docs are stale (run `cargo xtask docs`)")?;
    test(root)
}

/// Fails, saying what to do, when this xtask was compiled in another checkout: the build
/// cache (`CARGO_TARGET_DIR`) is shared with it, and cargo does not rebuild a workspace crate
/// when only its checkout's path changed, so the test binaries in that cache would read the
/// other checkout's files (`env!("CARGO_MANIFEST_DIR")`) and fail, or pass, for it.
fn ensure_built_here(root: &Path) -> anyhow::Result<()> {
    let compiled_root = Path::new(env!("CARGO_MANIFEST_DIR")).parent();
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    match compiled_root {
        Some(compiled_root) if !same(compiled_root, root) => bail!(
            "the build cache holds binaries built in {} (this checkout is {}); cargo does not \
             rebuild them for a move, and the tests would read that checkout's files. Give \
             this checkout a cache of its own (unset CARGO_TARGET_DIR: `.ci/run` keeps one per \
             checkout under ~/.cache/wfs-targets), or run `cargo clean` on this one",
            compiled_root.display(),
            root.display()
        ),
        _ => Ok(()),
    }
}

/// Runs every test, echoing the output, and closes with one total line (`N passed, N failed`):
/// cargo prints a line per test binary, and the last ones (doc tests) often read `0 passed`.
/// An environment variable for one test run: name and value.
type EnvVar = (&'static str, &'static str);

fn test(root: &Path) -> anyhow::Result<ExitCode> {
    // Every test on the default store (SQLite), then the contract suite again on PostgreSQL.
    let runs: [(&[&str], Option<EnvVar>); 2] = [
        (&["test", "--workspace"], None),
        (
            &["test", "--test", "contract"],
            Some(("WFS_TEST_DATABASE", "postgres")),
        ),
    ];
    let (mut passed, mut failed, mut all_ok) = (0u64, 0u64, true);
    for (args, env) in runs {
        match env {
            Some((name, value)) => println!("==> {name}={value} cargo {}", args.join(" ")),
            None => println!("==> cargo {}", args.join(" ")),
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command
            .args(args)
            .current_dir(root)
            .env("INSTA_UPDATE", "no")
            .stdout(Stdio::piped());
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        let mut child = command.spawn().context("cannot run cargo test")?;
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines() {
                let line = line.context("cannot read cargo test output")?;
                println!("{line}");
                if let Some(result) = line.strip_prefix("test result: ") {
                    passed += count(result, " passed");
                    failed += count(result, " failed");
                }
            }
        }
        all_ok &= child.wait().context("cargo test did not finish")?.success();
    }
    println!("ci: {passed} passed, {failed} failed");
    if !all_ok || failed > 0 {
        bail!("tests failed");
    }
    if passed == 0 {
        bail!("no test ran");
    }
    Ok(ExitCode::SUCCESS)
}

/// The number before `label` in a cargo `test result:` line (`ok. 7 passed; 0 failed; ...`).
fn count(result: &str, label: &str) -> u64 {
    result
        .split(';')
        .find_map(|part| part.trim_end().strip_suffix(label))
        .and_then(|number| number.rsplit(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or(0)
}

fn cargo(root: &Path, args: &[&str], what: &str) -> anyhow::Result<()> {
    println!("==> cargo {}", args.join(" "));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(root)
        .env("INSTA_UPDATE", "no")
        .status()
        .with_context(|| format!("cannot run cargo for {what}"))?;
    if !status.success() {
        bail!("{what} failed");
    }
    Ok(())
}

/// What the tests run for real, each with the Debian package that provides it: checked by
/// running it, installed with apt-get where missing (CI runs on a fresh machine).
const TOOLS: &[(&str, &[&str], &str, &str)] = &[
    (
        "node",
        &["--version"],
        "nodejs",
        "the official AsyncAPI parser test",
    ),
    (
        "npm",
        &["--version"],
        "npm",
        "the official AsyncAPI parser test",
    ),
    (
        "redis-server",
        &["--version"],
        "redis-server",
        "the Redis fan-out tests",
    ),
    // Debian's Chromium, driven by playwright-core from npm (which the browser tests install
    // under target/ themselves); a browser is never downloaded.
    ("chromium", &["--version"], "chromium", "the browser tests"),
    // Debian keeps the server's binaries off PATH, under /usr/lib/postgresql/<version>/bin.
    (
        "sh",
        &[
            "-c",
            "for server in /usr/lib/postgresql/*/bin/postgres; do [ -x \"$server\" ] && exit 0; done; exit 1",
        ],
        "postgresql",
        "the contract suite on PostgreSQL",
    ),
];

fn ensure_tools() -> anyhow::Result<()> {
    let missing: Vec<&(&str, &[&str], &str, &str)> = TOOLS
        .iter()
        .filter(|(program, args, _, _)| !command_works(program, args))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|(_, _, package, _)| *package).collect();
    for (program, _, package, purpose) in &missing {
        println!("==> installing {package} ({program}, for {purpose})");
    }
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&packages);
    for args in [vec!["update"], install] {
        let status = Command::new("apt-get")
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| {
                format!(
                    "{} missing and apt-get cannot run: install them",
                    packages.join(", ")
                )
            })?;
        if !status.success() {
            bail!(
                "`apt-get {}` failed: install {}",
                args.join(" "),
                packages.join(", ")
            );
        }
    }
    Ok(())
}

fn command_works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|output| output.status.success())
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_come_from_cargo_result_lines() {
        let line =
            "ok. 17 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.19s";
        assert_eq!(super::count(line, " passed"), 17);
        assert_eq!(super::count(line, " failed"), 2);
    }
}
