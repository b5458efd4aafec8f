//! `cargo xtask docs [--input FILE] [--out DIR] [--check]`: the HTML docs of the contract.
//!
//! Renders the contract (by default `asyncapi/v1-schema.yaml`) into `<out>/index.html` (by
//! default `docs/`, committed). With `--check` nothing is written: the page is rendered in memory
//! and compared with the committed one, and a stale or missing file is an error that names it,
//! so CI catches a contract change whose docs were not regenerated.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask docs [--input FILE] [--out DIR] [--check]

  --input FILE  the AsyncAPI document (default: asyncapi/v1-schema.yaml)
  --out DIR     where index.html goes (default: docs/)
  --check       render in memory and fail if DIR/index.html is missing or stale";

/// Runs `docs` with the arguments that follow it on the command line.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let root = workspace_root();
    let mut input = root.join("asyncapi/v1-schema.yaml");
    let mut out = root.join("docs");
    let mut check = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--input" => input = PathBuf::from(args.next().context("--input needs a file")?),
            "--out" => out = PathBuf::from(args.next().context("--out needs a directory")?),
            "--check" => check = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let html = wfs_codegen::docs::render_file(&input)
        .with_context(|| format!("rendering the docs of {}", input.display()))?;
    let target = out.join("index.html");
    if check {
        return match fs::read(&target) {
            Ok(current) if current == html.as_bytes() => {
                println!("{} is up to date", target.display());
                Ok(())
            }
            Ok(_) => bail!(
                "{} is stale: it does not match {}; run `cargo xtask docs` and commit the result",
                target.display(),
                input.display()
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} is missing; run `cargo xtask docs` and commit the result",
                target.display()
            ),
            Err(error) => Err(error).with_context(|| format!("reading {}", target.display())),
        };
    }
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    if fs::read(&target).is_ok_and(|current| current == html.as_bytes()) {
        println!("{} is up to date", target.display());
    } else {
        fs::write(&target, &html).with_context(|| format!("writing {}", target.display()))?;
        println!("wrote {} ({} bytes)", target.display(), html.len());
    }
    Ok(())
}

/// The workspace root, so the defaults work from any directory `cargo xtask` is run in.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
