//! Contract tests: a real `wfs` server on 127.0.0.1:0, driven by the clients generated from the
//! contract, so every frame the server sends is also checked against the contract's schemas.
//!
//! One test binary (as DESIGN.md asks); each module covers one channel or concern.

mod alert;
mod api;
mod browser;
mod chat;
mod cli;
mod documents;
mod echo;
mod handshake;
mod history;
mod limits;
mod logs;
mod official_parser;
mod origins;
mod pages;
mod postgres;
mod readme;
mod redis;
mod server;
mod sse;
mod tls;
