//! Recovery: a client that reconnects with `since=<id>` gets what it missed, then live alerts,
//! with no gap and no duplicate, even while alerts keep coming; bounded history says so when
//! alerts are gone.

use uuid::Uuid;
use wfs::contract::alert::{AlertClient, AlertOutbound};
use wfs_runtime::client::{ClientError, request};

use crate::server::{InFlightAlert, TestServer, next_alert, within};

async fn next(client: &mut AlertClient) -> AlertOutbound {
    within("a frame", client.recv())
        .await
        .expect("a frame the contract allows")
}

async fn publish(server: &TestServer, city: Uuid, message: &str) -> i64 {
    let alert = server
        .app
        .publish_alert(city, message)
        .await
        .expect("published")
        .expect("city exists");
    i64::try_from(alert.id.get()).unwrap()
}

#[tokio::test]
async fn a_reconnecting_client_gets_what_it_missed_then_live_alerts() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let tokyo = server.city("Tokyo").await.uuid;
    let mut ids = Vec::new();
    for index in 0..5 {
        ids.push(publish(&server, cairo, &format!("missed? {index}")).await);
        publish(&server, tokyo, "elsewhere").await;
    }
    let mut client = server.subscribe_alerts(cairo, Some(ids[1])).await;
    for index in 2..5 {
        let alert = next_alert(&mut client).await;
        assert_eq!(
            (alert.message.as_str(), alert.city_uuid),
            (format!("missed? {index}").as_str(), cairo)
        );
    }
    publish(&server, cairo, "live").await;
    assert_eq!(next_alert(&mut client).await.message, "live");
}

#[tokio::test]
async fn replay_and_a_concurrent_burst_join_without_gap_or_duplicate() {
    const BEFORE: usize = 600; // more than one replay page and than the outbound queue
    const DURING: usize = 200;
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let first = publish(&server, cairo, "0").await;
    for index in 1..BEFORE {
        publish(&server, cairo, &index.to_string()).await;
    }
    let publisher = {
        let app = server.app.clone();
        tokio::spawn(async move {
            for index in BEFORE..BEFORE + DURING {
                app.publish_alert(cairo, &index.to_string()).await.unwrap();
            }
        })
    };
    let mut client = server.subscribe_alerts(cairo, Some(first)).await;
    for index in 1..BEFORE + DURING {
        assert_eq!(
            next_alert(&mut client).await.message,
            index.to_string(),
            "gap, duplicate or disorder"
        );
    }
    within("publisher", publisher).await.unwrap();
    publish(&server, cairo, "end").await;
    assert_eq!(next_alert(&mut client).await.message, "end");
}

#[tokio::test]
async fn an_alert_that_went_by_before_the_client_joined_but_was_not_yet_committed_is_replayed() {
    // What another instance sharing the database does: its alert reaches this one over the bus,
    // and is fanned out here, before it is committed there. A client that joins in between
    // was not listening when it went by, and must still find it in the history.
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let first = publish(&server, cairo, "seen").await;
    let in_flight = InFlightAlert::start(&server, cairo, "in flight").await;
    let mut client = server.subscribe_alerts(cairo, Some(first)).await;
    in_flight.commit_later().await;
    assert_eq!(next_alert(&mut client).await.message, "in flight");
    publish(&server, cairo, "live").await;
    assert_eq!(next_alert(&mut client).await.message, "live", "once");
}

#[tokio::test]
async fn an_alert_abandoned_before_its_commit_holds_no_one_up() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let first = publish(&server, cairo, "seen").await;
    InFlightAlert::start(&server, cairo, "abandoned")
        .await
        .abandon()
        .await;
    // Its transaction ended with it: a client catching up waits for no lock (nothing else
    // touches the database in between), and the next alert is published.
    within(
        "the publishers' lock",
        server.app.store.wait_for_alert_writers(cairo),
    )
    .await
    .expect("the lock is free");
    let mut client = server.subscribe_alerts(cairo, Some(first)).await;
    publish(&server, cairo, "next").await;
    let alert = next_alert(&mut client).await;
    assert_eq!(
        alert.message, "next",
        "the abandoned alert was never stored"
    );
}

#[tokio::test]
async fn alerts_no_longer_kept_are_reported_as_history_truncated() {
    let history = wfs::HistoryPolicy {
        keep: 3,
        max_age: std::time::Duration::from_secs(3600),
    };
    let server = TestServer::start_with_history(wfs_runtime::Config::default(), history).await;
    let cairo = server.city("Cairo").await.uuid;
    let first = publish(&server, cairo, "0").await;
    for index in 1..6 {
        publish(&server, cairo, &index.to_string()).await;
    }
    let mut client = server.subscribe_alerts(cairo, Some(first)).await;
    match next(&mut client).await {
        AlertOutbound::Error(error) => assert_eq!(error.code.to_string(), "history_truncated"),
        other => panic!("expected history_truncated, got {other:?}"),
    }
    for index in 3..6 {
        assert_eq!(next_alert(&mut client).await.message, index.to_string());
    }
    // A client whose `since` is still covered is told nothing of the sort.
    let mut covered = server.subscribe_alerts(cairo, Some(first + 3)).await;
    assert_eq!(next_alert(&mut covered).await.message, "4");
}

#[tokio::test]
async fn an_invalid_since_is_accepted_then_closed_with_1008() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid.to_string();
    for bad in ["abc", "-1", "1.5"] {
        let query = [
            ("city_uuid", cairo.clone()),
            ("access_token", server.token(&server.alice)),
            ("since", bad.to_owned()),
        ];
        let request = request(&server.base_url, "/ws/v1/alert", &query, &[]).unwrap();
        let mut client = within("handshake", AlertClient::connect_with(request))
            .await
            .expect("accepted");
        match within("close", client.recv()).await {
            Err(ClientError::Closed { code, reason }) => {
                assert_eq!(
                    (code, reason.as_str()),
                    (1008, "Query parameter since is invalid."),
                    "since={bad}"
                );
            }
            other => panic!("since={bad}: expected close 1008, got {other:?}"),
        }
    }
}
