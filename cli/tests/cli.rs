//! The `asyncapi-rs` binary as a user runs it: exit codes, what goes to stdout and to stderr,
//! the JSON report, the files `-o` writes and the help, on the generator's own fixtures.
//!
//! Every run is in the workspace root (paths in the output stay relative) and has a deadline.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::{Run, run};

const GOOD: &str = "codegen/tests/fixtures/generate/params.yaml";
const BROKEN: &str = "codegen/tests/fixtures/broken/several-problems.yaml";
const WARNS: &str = "codegen/tests/fixtures/generate/unused-parameter.yaml";

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", run.stdout))
}

#[test]
fn generate_prints_the_code_on_stdout_and_nothing_on_stderr() {
    let run = run(&["generate", GOOD]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with(&format!("// Generated from {GOOD} by wfs-codegen.")),
        "{}",
        &run.stdout[..run.stdout.len().min(200)]
    );
    // stderr is not a terminal here and no -v: no progress line.
    assert_eq!(run.stderr, "");
}

#[test]
fn generate_out_creates_the_directory_and_writes_the_same_code() {
    let dir = scratch("generate").join("new/sub");
    let dir_arg = dir.to_str().expect("UTF-8 path");
    let written = run(&["generate", GOOD, "-o", dir_arg]);
    assert_eq!(written.code, 0, "{}", written.stderr);
    let file = dir.join("params.rs");
    assert_eq!(written.stdout, format!("wrote {}\n", file.display()));
    let code = std::fs::read_to_string(&file).expect("params.rs was written");
    assert_eq!(code, run(&["generate", GOOD]).stdout);
    // -q leaves out the "wrote" line.
    assert_eq!(run(&["-q", "generate", GOOD, "-o", dir_arg]).stdout, "");
}

#[test]
fn generate_refuses_a_broken_document_on_stderr_and_writes_nothing() {
    let dir = scratch("refused");
    let run = run(&["generate", BROKEN, "-o", dir.to_str().expect("UTF-8 path")]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.matches("error: ").count(), 6, "{}", run.stderr);
    assert!(!dir.join("several-problems.rs").exists());
}

#[test]
fn check_prints_every_located_problem_and_the_warnings_at_once() {
    let run = run(&["check", BROKEN]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let errors: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 6, "{}", run.stdout);
    for error in &errors {
        // error: FILE:LINE:COLUMN: message (at /pointer)
        let rest = error
            .strip_prefix(&format!("error: {BROKEN}:"))
            .unwrap_or_else(|| panic!("not located in {BROKEN}: {error}"));
        let mut parts = rest.splitn(3, ':');
        for part in [parts.next(), parts.next()] {
            let number: u32 = part.and_then(|n| n.parse().ok()).unwrap_or(0);
            assert!(number >= 1, "no line and column: {error}");
        }
    }
    assert!(
        run.stdout
            .contains(&format!("warning: {BROKEN}:8:7: parameter `user`")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .ends_with(&format!("{BROKEN}: invalid: 6 error(s), 1 warning(s)\n"))
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn check_json_reports_errors_and_warnings_with_where_and_how_serious() {
    let run = run(&["check", BROKEN, "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    let report = json(&run);
    assert_eq!(report["file"], BROKEN);
    assert_eq!(report["valid"], false);
    let errors = report["errors"].as_array().expect("errors is an array");
    let warnings = report["warnings"].as_array().expect("warnings is an array");
    assert_eq!((errors.len(), warnings.len()), (6, 1), "{report:#}");
    for (finding, severity) in errors
        .iter()
        .map(|e| (e, "error"))
        .chain(warnings.iter().map(|w| (w, "warning")))
    {
        assert_eq!(finding["file"], BROKEN, "{finding}");
        assert!(
            finding["line"].as_u64().is_some_and(|n| n >= 1),
            "{finding}"
        );
        assert!(
            finding["column"].as_u64().is_some_and(|n| n >= 1),
            "{finding}"
        );
        assert!(
            finding["pointer"]
                .as_str()
                .is_some_and(|p| p.starts_with('/')),
            "{finding}"
        );
        assert!(
            finding["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{finding}"
        );
        assert_eq!(finding["severity"], severity, "{finding}");
    }
    assert_eq!(warnings[0]["pointer"], "/channels/chat/parameters/user");
    assert_eq!(
        (warnings[0]["line"].as_u64(), warnings[0]["column"].as_u64()),
        (Some(8), Some(7))
    );
}

#[test]
fn warnings_alone_exit_0_and_quiet_leaves_them_out() {
    let human = run(&["check", WARNS]);
    assert_eq!(human.code, 0, "{}", human.stdout);
    assert!(
        human
            .stdout
            .starts_with(&format!("warning: {WARNS}:11:7: ")),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.ends_with("valid: 0 error(s), 1 warning(s)\n"),
        "{}",
        human.stdout
    );

    let report = json(&run(&["check", WARNS, "--format", "json"]));
    assert_eq!(report["valid"], true);
    assert_eq!(report["errors"], Value::Array(Vec::new()));
    assert_eq!(report["warnings"][0]["severity"], "warning");

    let quiet = run(&["check", "-q", WARNS]);
    assert_eq!(
        (quiet.code, quiet.stdout.as_str(), quiet.stderr.as_str()),
        (0, "", "")
    );
    // generate shows the warning on stderr, apart from the code.
    let generated = run(&["generate", WARNS]);
    assert_eq!(generated.code, 0);
    assert!(
        generated
            .stderr
            .starts_with(&format!("warning: {WARNS}:11:7: ")),
        "{}",
        generated.stderr
    );
}

#[test]
fn verbose_progress_goes_to_stderr_and_leaves_the_json_intact() {
    let run = run(&["-v", "check", "asyncapi/v1-schema.yaml", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(json(&run)["valid"], true);
    assert!(
        run.stderr
            .starts_with("loading asyncapi/v1-schema.yaml… 1 file(s), 3 channel(s)")
            && run.stderr.contains("generating… done in "),
        "{}",
        run.stderr
    );
    let generated = run_verbose_generate();
    assert!(
        generated.stderr.contains("\ntiming: "),
        "{}",
        generated.stderr
    );
}

fn run_verbose_generate() -> Run {
    let run = run(&["generate", "-v", GOOD]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("// Generated from"));
    run
}

/// `check` runs the Rust generator too: it refuses exactly what `generate` refuses, on every
/// fixture (`broken/unsupported.yaml` loads, and only the generator refuses it).
#[test]
fn check_refuses_exactly_what_generate_refuses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut fixtures = Vec::new();
    for dir in [
        "codegen/tests/fixtures/generate",
        "codegen/tests/fixtures/broken",
    ] {
        for entry in std::fs::read_dir(root.join(dir)).expect("fixture directory") {
            let entry = entry.expect("fixture entry");
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".yaml") || name.ends_with(".json") {
                fixtures.push(format!("{dir}/{name}"));
            } else if entry.path().join("main.yaml").is_file() {
                // A document spread over files (`refs/`, `cross-file/`, `avro/`).
                fixtures.push(format!("{dir}/{name}/main.yaml"));
            }
        }
    }
    fixtures.sort();
    assert!(fixtures.len() > 20, "{fixtures:?}");
    let mut refused = 0;
    for fixture in &fixtures {
        let generate = run(&["generate", fixture]);
        let check = run(&["check", fixture]);
        assert_eq!(
            check.code, generate.code,
            "{fixture}: check said\n{}\ngenerate said\n{}",
            check.stdout, generate.stderr
        );
        refused += usize::from(check.code == 1);
    }
    assert!(refused >= 5, "the broken fixtures are refused ({refused})");
}

#[test]
fn unreadable_input_and_unwritable_output_are_clear_errors_exiting_2() {
    let missing = run(&["check", "no/such.yaml", "--format", "json"]);
    assert_eq!(missing.code, 2);
    assert_eq!(missing.stdout, "");
    assert!(
        missing
            .stderr
            .starts_with("error: cannot read no/such.yaml: "),
        "{}",
        missing.stderr
    );

    let file = scratch("unwritable").join("a-file");
    std::fs::write(&file, "not a directory").expect("scratch file");
    let under_a_file = file.join("out");
    let blocked = run(&[
        "generate",
        GOOD,
        "-o",
        under_a_file.to_str().expect("UTF-8"),
    ]);
    assert_eq!(blocked.code, 2);
    assert_eq!(blocked.stdout, "");
    assert!(
        blocked.stderr.starts_with(&format!(
            "error: cannot create {}: ",
            under_a_file.display()
        )),
        "{}",
        blocked.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["check"],
        &["check", GOOD, "--format", "xml"],
        &["-q", "-v", "check", GOOD],
        &["-v", "check", GOOD, "-q"],
        &["docs", GOOD, "--check"],
    ] {
        let run = run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{args:?}");
    }
}

#[test]
fn help_has_worked_examples_for_every_command() {
    for (args, example) in [
        (
            &["--help"][..],
            "asyncapi-rs check asyncapi.yaml --format json",
        ),
        (
            &["generate", "--help"],
            "asyncapi-rs generate asyncapi.yaml -o src/gen",
        ),
        (
            &["docs", "--help"],
            "asyncapi-rs docs asyncapi.yaml -o docs",
        ),
        (
            &["check", "--help"],
            "asyncapi-rs check asyncapi.yaml --format json",
        ),
    ] {
        let run = run(args);
        assert_eq!(run.code, 0, "{args:?}");
        assert!(
            run.stdout.contains("Examples:") && run.stdout.contains(example),
            "{args:?}:\n{}",
            run.stdout
        );
    }
}

#[test]
fn docs_writes_the_page_and_check_finds_it_fresh_or_stale() {
    let dir = scratch("docs").join("site");
    let dir_arg = dir.to_str().expect("UTF-8 path");
    let written = run(&["docs", GOOD, "-o", dir_arg]);
    assert_eq!(written.code, 0, "{}", written.stderr);
    let page = std::fs::read_to_string(dir.join("index.html")).expect("index.html was written");
    assert!(
        page.starts_with("<!DOCTYPE html>"),
        "{}",
        &page[..100.min(page.len())]
    );
    assert_eq!(page, run(&["docs", GOOD]).stdout);

    let fresh = run(&["docs", GOOD, "-o", dir_arg, "--check"]);
    assert_eq!(fresh.code, 0, "{}", fresh.stderr);
    std::fs::write(
        dir.join("index.html"),
        page.replace("</html>", "<!-- edited --></html>"),
    )
    .expect("edit the page");
    let stale = run(&["docs", GOOD, "-o", dir_arg, "--check"]);
    assert_eq!(stale.code, 1);
    assert!(
        stale.stderr.contains("index.html is stale")
            && stale
                .stderr
                .contains(&format!("run `asyncapi-rs docs {GOOD} -o {dir_arg}`")),
        "{}",
        stale.stderr
    );
}
