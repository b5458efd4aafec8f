//! Contract tests: a real `wfs` server on 127.0.0.1:0, driven by the clients generated from the
//! contract, so every frame the server sends is also checked against the contract's schemas.
//!
//! One test binary (as DESIGN.md asks); each module covers one channel or concern.

mod abuse;
mod alert;
mod api;
mod browser;
mod chat;
mod cli;
mod conform;
mod documents;
mod echo;
mod fuzz;
mod handshake;
mod history;
mod limits;
mod login_limits;
mod logs;
mod lookups;
mod metrics;
mod observability;
mod official_parser;
mod origins;
mod pages;
mod postgres;
mod process;
mod protocol_errors;
mod readme;
mod redis;
mod server;
mod sse;
mod tls;
mod tokens;
mod users;
