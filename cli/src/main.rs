//! The `asyncapi-rs` binary: parses the command line and runs it (the commands live in the lib).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    asyncapi_rs::run(asyncapi_rs::Cli::parse())
}
