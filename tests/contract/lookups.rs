//! The handshake cache (`store::lookups`): how stale a cached city or user may be. A city edited
//! by hand in the database is seen once its TTL has passed; a user removed through this server
//! is refused at the next handshake, and one removed by another process (`wfs user remove`)
//! once the user TTL has passed.

use std::time::Duration;

use uuid::Uuid;
use wfs::contract::alert::{AlertClient, AlertParams};
use wfs::contract::chat::{ChatClient, ChatOutbound, ChatParams};
use wfs::store::{LookupTtl, User};
use wfs_runtime::client::ClientError;

use crate::server::{Options, TestServer, http, within};
use crate::users::{text, user};

/// Short enough for a test, long enough that a handshake right after a change would still
/// see the cached row.
const TTL: Duration = Duration::from_millis(600);

async fn start() -> TestServer {
    TestServer::start_with_options(Options {
        lookup_ttl: Some(LookupTtl {
            cities: TTL,
            users: TTL,
        }),
        ..Options::default()
    })
    .await
}

/// A statement run on the server's database by another connection, as an operator's hand
/// edit (or another instance) would.
async fn by_hand(server: &TestServer, statement: &'static str, uuid: Uuid) {
    sqlx::any::install_default_drivers();
    let pool = within(
        "connect to the database",
        sqlx::AnyPool::connect(&server.database_url),
    )
    .await
    .expect("the database opens");
    within(
        statement,
        sqlx::query(statement).bind(uuid.to_string()).execute(&pool),
    )
    .await
    .expect("the statement runs");
    pool.close().await;
}

/// The welcome a chat member gets names the city: what the handshake read.
async fn welcome(server: &TestServer, city: Uuid) -> String {
    let params = ChatParams {
        city_uuid: city,
        access_token: server.token(&server.alice),
    };
    let mut client = within(
        "chat handshake",
        ChatClient::connect(&server.base_url, &params),
    )
    .await
    .expect("accepted");
    match within("the welcome", client.recv()).await {
        Ok(ChatOutbound::ChatWelcome(welcome)) => welcome.message,
        other => panic!("expected the welcome, got {other:?}"),
    }
}

async fn subscribe(
    server: &TestServer,
    user: &User,
    city: Uuid,
) -> Result<AlertClient, ClientError> {
    let params = AlertParams {
        city_uuid: city,
        access_token: server.token(user),
        since: None,
    };
    within(
        "alert handshake",
        AlertClient::connect(&server.base_url, &params),
    )
    .await
}

#[tokio::test]
async fn a_city_renamed_or_deleted_by_hand_is_seen_once_the_ttl_has_passed() {
    let server = start().await;
    let tokyo = server.city("Tokyo").await.uuid;
    assert_eq!(welcome(&server, tokyo).await, "Welcome in Tokyo chat.");

    by_hand(
        &server,
        "UPDATE cities SET name = 'Edo' WHERE uuid = $1",
        tokyo,
    )
    .await;
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    assert_eq!(welcome(&server, tokyo).await, "Welcome in Edo chat.");

    by_hand(&server, "DELETE FROM cities WHERE uuid = $1", tokyo).await;
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    let mut client = subscribe(&server, &server.alice, tokyo)
        .await
        .expect("accepted, then closed");
    match within("the close", client.recv()).await {
        Err(ClientError::Closed { code, reason }) => {
            assert_eq!(code, 1008);
            assert_eq!(reason, format!("City with {tokyo} doesn't exist."));
        }
        other => panic!("expected close 1008, got {other:?}"),
    }
}

fn refused_as_unknown(result: Result<AlertClient, ClientError>) {
    match result {
        Err(ClientError::Rejected { status, body }) => {
            assert_eq!((status, body.as_str()), (403, "User not found."));
        }
        other => panic!("expected HTTP 403, got {other:?}"),
    }
}

#[tokio::test]
async fn a_removed_user_is_refused_at_once_here_and_within_the_ttl_when_removed_elsewhere() {
    let server = start().await;
    let cairo = server.city("Cairo").await.uuid;

    // Removed through this server's API: forgotten at once, with the TTL still running.
    subscribe(&server, &server.alice, cairo)
        .await
        .expect("alice is admitted (and cached)");
    let admin = format!("Bearer {}", server.token(&server.admin));
    let (status, _, body) = http(
        &server,
        "DELETE",
        "/api/v1/users/alice",
        &[("Authorization", &admin)],
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    refused_as_unknown(subscribe(&server, &server.alice, cairo).await);

    // Removed by another process: this server cannot be told, the TTL bounds it.
    subscribe(&server, &server.bob, cairo)
        .await
        .expect("bob is admitted (and cached)");
    let removed = user(&server, &["remove", "bob"], "").await;
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    refused_as_unknown(subscribe(&server, &server.bob, cairo).await);
}
