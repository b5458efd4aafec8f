//! The server under test: where it listens, its paths, how an alert is published on it, which
//! cities it knows, and its pid (for `/proc`).

use std::net::SocketAddr;

use anyhow::{Context, bail};

use crate::http;

/// The alert channel's address, as both wfs and the baselines serve it. Baselines ignore the
/// token.
pub const ALERT_PATH: &str = "/ws/v1/alert";
/// The echo channel's address, on every server.
pub const ECHO_PATH: &str = "/ws/v1/echo";
/// The chat channel's address (wfs, and the ceiling's room that forwards every frame).
pub const CHAT_PATH: &str = "/ws/v1/chat";
/// The alert channel as Server-Sent Events (wfs only).
pub const SSE_PATH: &str = "/sse/v1/alert";

/// How an alert is published: each server's normal path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publish {
    /// wfs: `POST /api/v1/cities/{city}/alerts` with `{"message"}` and an admin's Bearer token
    /// (stored, then fanned out); answers 201.
    Rest { token: String },
    /// The baselines: `GET /publish?city=&message=` (the ceiling and the websockets server
    /// broadcast it; the Starlette replica publishes it into Redis); answers 200.
    Get,
}

/// A server to drive.
#[derive(Debug, Clone)]
pub struct Target {
    pub address: SocketAddr,
    /// Access token for the alert channel (wfs checks it; baselines ignore it).
    pub token: String,
    pub publish: Publish,
    /// City UUIDs to subscribe to and publish for.
    pub cities: Vec<String>,
    /// The server's pid, when it is a process whose `/proc` this one may read.
    pub pid: Option<u32>,
    /// The pid of the database server it uses when that runs apart (PostgreSQL's postmaster),
    /// whose process tree's CPU time is counted beside the server's.
    pub database_pid: Option<u32>,
}

impl Target {
    /// A wfs server: logs in as `username` (`POST /api/jwt/obtain`) for a token that reads
    /// alerts and publishes them, and reads the cities (`GET /api/v1/cities`).
    pub async fn wfs(
        address: SocketAddr,
        username: &str,
        password: &str,
        pid: Option<u32>,
    ) -> anyhow::Result<Target> {
        let credentials = serde_json::json!({ "username": username, "password": password });
        let answer = http::request(
            address,
            "POST",
            "/api/jwt/obtain",
            &[("Content-Type", "application/json")],
            &credentials.to_string(),
        )
        .await?;
        if answer.status != 200 {
            bail!("log-in refused (HTTP {}): {}", answer.status, answer.body);
        }
        let tokens: serde_json::Value =
            serde_json::from_str(&answer.body).context("token answer is not JSON")?;
        let token = tokens["access"]
            .as_str()
            .context("no access token in the answer")?
            .to_owned();
        let answer = http::request(address, "GET", "/api/v1/cities", &[], "").await?;
        if answer.status != 200 {
            bail!(
                "cannot list cities (HTTP {}): {}",
                answer.status,
                answer.body
            );
        }
        let cities: Vec<serde_json::Value> =
            serde_json::from_str(&answer.body).context("city list is not JSON")?;
        let cities: Vec<String> = cities
            .iter()
            .filter_map(|city| city["uuid"].as_str().map(str::to_owned))
            .collect();
        if cities.is_empty() {
            bail!("the server has no cities");
        }
        Ok(Target {
            address,
            publish: Publish::Rest {
                token: token.clone(),
            },
            token,
            cities,
            pid,
            database_pid: None,
        })
    }

    /// A baseline server: any UUID is a city; six of them, like wfs.
    pub fn baseline(address: SocketAddr, pid: Option<u32>) -> Target {
        Target {
            address,
            token: "unused".to_owned(),
            publish: Publish::Get,
            cities: (1..=6)
                .map(|n| format!("00000000-0000-4000-8000-{n:012}"))
                .collect(),
            pid,
            database_pid: None,
        }
    }

    /// `wss` when this process speaks TLS ([`crate::tls`]), else `ws`.
    fn scheme(&self) -> &'static str {
        if crate::tls::config().is_some() {
            "wss"
        } else {
            "ws"
        }
    }

    pub fn echo_url(&self) -> String {
        format!("{}://{}{ECHO_PATH}", self.scheme(), self.address)
    }

    pub fn alert_url(&self, city: &str) -> String {
        format!(
            "{}://{}{ALERT_PATH}?city_uuid={city}&access_token={}",
            self.scheme(),
            self.address,
            http::encode_query_value(&self.token)
        )
    }

    pub fn chat_url(&self, city: &str) -> String {
        format!(
            "{}://{}{CHAT_PATH}?city_uuid={city}&access_token={}",
            self.scheme(),
            self.address,
            http::encode_query_value(&self.token)
        )
    }

    /// The path and query of the SSE alert stream of `city`.
    pub fn sse_path(&self, city: &str) -> String {
        format!(
            "{SSE_PATH}?city_uuid={city}&access_token={}",
            http::encode_query_value(&self.token)
        )
    }

    /// Publishes `message` for `city` through the server's normal path; answers the alert's
    /// id when the server gives one (wfs does, in its 201 answer).
    pub async fn publish(&self, city: &str, message: &str) -> anyhow::Result<Option<i64>> {
        let answer = match &self.publish {
            Publish::Rest { token } => {
                let body = serde_json::json!({ "message": message }).to_string();
                let bearer = format!("Bearer {token}");
                let answer = http::request(
                    self.address,
                    "POST",
                    &format!("/api/v1/cities/{city}/alerts"),
                    &[
                        ("Content-Type", "application/json"),
                        ("Authorization", &bearer),
                    ],
                    &body,
                )
                .await?;
                (answer.status == 201, answer)
            }
            Publish::Get => {
                let path = format!(
                    "/publish?city={city}&message={}",
                    http::encode_query_value(message)
                );
                let answer = http::request(self.address, "GET", &path, &[], "").await?;
                (answer.status == 200, answer)
            }
        };
        match answer {
            (true, answer) => Ok(serde_json::from_str::<serde_json::Value>(&answer.body)
                .ok()
                .and_then(|body| body["id"].as_i64())),
            (false, answer) => bail!("publish refused (HTTP {}): {}", answer.status, answer.body),
        }
    }
}
