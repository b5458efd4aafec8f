//! Snapshots of the generated Rust for small fixtures (one concern each) and the real contract,
//! and of the located errors for broken documents.
//!
//! Review changes with `cargo insta review`; CI runs with `INSTA_UPDATE=no`, so a changed or
//! missing snapshot fails.

use wfs_codegen::{Generator, Settings};

fn generate(path: &str) -> String {
    let settings = Settings::default().with_source_name(path);
    match Generator::new(settings).generate_file(path) {
        Ok((_, code)) => code,
        Err(error) => panic!("{path} should generate:\n{error}"),
    }
}

fn errors(path: &str) -> String {
    match Generator::default().generate_file(path) {
        Ok(_) => panic!("{path} should be refused"),
        Err(error) => error.to_string(),
    }
}

macro_rules! generated {
    ($($name:ident => $path:literal,)*) => {$(
        #[test]
        fn $name() {
            insta::assert_snapshot!(stringify!($name), generate($path));
        }
    )*};
}

generated! {
    params => "tests/fixtures/generate/params.yaml",
    reply => "tests/fixtures/generate/reply.yaml",
    oneof => "tests/fixtures/generate/oneof.yaml",
    discriminator => "tests/fixtures/generate/discriminator.yaml",
    refs_across_files => "tests/fixtures/generate/refs/main.yaml",
    cross_file_pointers => "tests/fixtures/generate/cross-file/main.yaml",
    unused_parameter => "tests/fixtures/generate/unused-parameter.yaml",
    url_channel_name => "tests/fixtures/generate/url-channel.yaml",
    validator_keywords => "tests/fixtures/generate/validator-keywords.yaml",
    tuples => "tests/fixtures/generate/tuples.yaml",
    mixed_address => "tests/fixtures/generate/mixed-address.yaml",
    large_message => "tests/fixtures/generate/large-message.yaml",
    avro => "tests/fixtures/generate/avro/main.yaml",
    openapi_schemas => "tests/fixtures/generate/openapi.yaml",
    asyncapi_2_6 => "tests/fixtures/generate/v2.yaml",
    shared_address => "tests/fixtures/generate/shared-address.yaml",
    json_and_3_1 => "tests/fixtures/generate/json-3-1.json",
    v1_contract => "../asyncapi/v1-schema.yaml",
}

macro_rules! refused {
    ($($name:ident => $path:literal,)*) => {$(
        #[test]
        fn $name() {
            insta::assert_snapshot!(stringify!($name), errors($path));
        }
    )*};
}

refused! {
    error_bad_indentation => "tests/fixtures/broken/bad-indentation.yaml",
    error_ref_to_nothing => "tests/fixtures/broken/ref-to-nothing.yaml",
    error_message_not_in_channel => "tests/fixtures/broken/message-not-in-channel.yaml",
    error_unsupported_constructs => "tests/fixtures/broken/unsupported.yaml",
    error_several_problems_at_once => "tests/fixtures/broken/several-problems.yaml",
    error_remote_and_missing_refs => "tests/fixtures/broken/remote-and-missing-refs.yaml",
}

/// Warnings do not stop generation, and each says where it is, like an error.
#[test]
fn an_unused_parameter_is_a_located_warning() {
    let path = "tests/fixtures/generate/unused-parameter.yaml";
    let (contract, _) = Generator::default()
        .generate_file(path)
        .unwrap_or_else(|error| panic!("{path} should generate:\n{error}"));
    let warnings: Vec<String> = contract.warnings.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!("warning_unused_parameter", warnings.join("\n"));
}

/// The fixtures whose generated code the runtime's tests serve over a real WebSocket
/// (`runtime/tests/generated/`) are committed as the generator makes them today, like the
/// snapshots. `WFS_BLESS=1 cargo test -p wfs-codegen --test generate` rewrites them.
#[test]
fn code_served_by_the_runtime_tests_is_fresh() {
    for (fixture, file) in [
        ("mixed-address.yaml", "mixed_address.rs"),
        ("validator-keywords.yaml", "validator_keywords.rs"),
    ] {
        let source = format!("codegen/tests/fixtures/generate/{fixture}");
        let settings = Settings::default().with_source_name(&source);
        let code = match Generator::new(settings).generate_file(format!("../{source}")) {
            Ok((_, code)) => code,
            Err(error) => panic!("{source} should generate:\n{error}"),
        };
        let path = std::path::Path::new("../runtime/tests/generated").join(file);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(code.as_str()) {
            continue;
        }
        if std::env::var_os("WFS_BLESS").is_some() {
            std::fs::write(&path, code).unwrap();
        } else {
            panic!(
                "{} is stale: run `WFS_BLESS=1 cargo test -p wfs-codegen --test generate`",
                path.display()
            );
        }
    }
}

/// The document `cargo xtask codegen --time` is timed on (see the README) generates.
#[test]
fn a_4000_line_document_generates() {
    generate("tests/fixtures/timing/large.yaml");
}

#[test]
fn the_same_contract_gives_byte_identical_output() {
    let first = generate("../asyncapi/v1-schema.yaml");
    for _ in 0..3 {
        assert_eq!(generate("../asyncapi/v1-schema.yaml"), first);
    }
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let error = Generator::default()
        .generate_file("tests/fixtures/no-such.yaml")
        .unwrap_err();
    assert!(
        error.to_string().contains("tests/fixtures/no-such.yaml"),
        "{error}"
    );
}
