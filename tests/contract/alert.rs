//! Alert fan-out: every alert reaches every subscriber of its city exactly once, in publish
//! order, and none of another city's; publishing works through the REST endpoint too; closed
//! connections leave nothing behind.

use uuid::Uuid;
use wfs::contract::alert::AlertOutbound;
use wfs_runtime::client::ClientError;

use crate::server::{TestServer, eventually, http, next_alert, within};

#[tokio::test]
async fn bursts_reach_every_subscriber_of_their_city_once_and_in_order() {
    const SUBSCRIBERS: usize = 4;
    const BURST: usize = 50;
    let server = TestServer::start().await;
    let cities = [
        server.city("Cairo").await,
        server.city("Tokyo").await,
        server.city("Sydney").await,
    ];
    let mut clients = Vec::new();
    for city in &cities {
        for _ in 0..SUBSCRIBERS {
            clients.push((city.uuid, server.subscribe_alerts(city.uuid, None).await));
        }
    }
    eventually("all subscribed", || {
        server.app.hub.stats().subscribers == cities.len() * SUBSCRIBERS
    })
    .await;

    // One publisher per city, all at once, so the bursts interleave.
    let publishers = cities.iter().map(|city| {
        let app = server.app.clone();
        let uuid = city.uuid;
        tokio::spawn(async move {
            for index in 0..BURST {
                app.publish_alert(uuid, &format!("{uuid} #{index}"))
                    .await
                    .expect("published")
                    .expect("city exists");
            }
        })
    });
    for publisher in publishers.collect::<Vec<_>>() {
        within("publisher", publisher)
            .await
            .expect("publisher finished");
    }
    // A last alert per city marks the end: nothing else may come before it.
    for city in &cities {
        server.app.publish_alert(city.uuid, "end").await.unwrap();
    }
    for (city, client) in &mut clients {
        let mut last_id = 0;
        for index in 0..BURST {
            let alert = next_alert(client).await;
            assert_eq!(alert.city_uuid, *city, "an alert of another city arrived");
            assert_eq!(
                alert.message,
                format!("{city} #{index}"),
                "out of order or lost"
            );
            assert!(alert.id.get() > last_id, "ids increase");
            last_id = alert.id.get();
        }
        assert_eq!(
            next_alert(client).await.message,
            "end",
            "a duplicate or stray alert arrived"
        );
    }
}

#[tokio::test]
async fn alerts_carry_id_city_and_timestamp_beside_the_message() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let mut client = server.subscribe_alerts(cairo, None).await;
    eventually("subscribed", || server.app.hub.stats().subscribers == 1).await;
    let before = chrono::Utc::now();
    server
        .app
        .publish_alert(cairo, "Hail storm is coming!")
        .await
        .unwrap();
    let text = within("frame", client.raw().recv_text())
        .await
        .expect("a frame");
    // Compact JSON, as old clients expect; `message` is what they read.
    assert!(text.starts_with('{') && !text.contains(": "), "{text}");
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["message"], "Hail storm is coming!");
    assert_eq!(value["type"], "alert");
    assert_eq!(value["city_uuid"], cairo.to_string());
    let created: chrono::DateTime<chrono::Utc> =
        value["created_at"].as_str().unwrap().parse().unwrap();
    assert!(created >= before - chrono::Duration::seconds(1));
    assert!(value["id"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn the_rest_endpoint_publishes_for_admins_only() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let mut client = server.subscribe_alerts(cairo, None).await;
    eventually("subscribed", || server.app.hub.stats().subscribers == 1).await;
    let path = format!("/api/v1/cities/{cairo}/alerts");
    let body = r#"{"message":"Flood warning"}"#;
    let alice = format!("Bearer {}", server.token(&server.alice));
    let (status, _, _) = http(
        &server,
        "POST",
        &path,
        &[("Authorization", &alice)],
        Some(body),
    )
    .await;
    assert_eq!(status, 403, "a user who is not an admin may not publish");
    let (status, _, _) = http(&server, "POST", &path, &[], Some(body)).await;
    assert_eq!(status, 401);
    let admin = format!("Bearer {}", server.token(&server.admin));
    let (status, _, answer) = http(
        &server,
        "POST",
        &path,
        &[("Authorization", &admin)],
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(next_alert(&mut client).await.message, "Flood warning");
    let (status, _, answer) = http(
        &server,
        "POST",
        "/api/v1/cities/abc/alerts",
        &[("Authorization", &admin)],
        Some(body),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let unknown = format!("/api/v1/cities/{}/alerts", Uuid::nil());
    let (status, _, answer) = http(
        &server,
        "POST",
        &unknown,
        &[("Authorization", &admin)],
        Some(body),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    let (status, _, answer) = http(
        &server,
        "POST",
        &path,
        &[("Authorization", &admin)],
        Some("{not json"),
    )
    .await;
    assert_eq!(status, 400, "bad input is never a 500: {answer}");
}

#[tokio::test]
async fn a_frame_sent_on_the_alert_channel_gets_an_error_message_and_the_connection_stays() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let mut client = server.subscribe_alerts(cairo, None).await;
    within("send", client.raw().send_text(r#"{"message":"hi"}"#))
        .await
        .unwrap();
    match within("error", client.recv()).await {
        Ok(AlertOutbound::Error(error)) => assert_eq!(error.code.to_string(), "invalid_message"),
        other => panic!("expected an error message, got {other:?}"),
    }
    server.app.publish_alert(cairo, "still here").await.unwrap();
    assert_eq!(next_alert(&mut client).await.message, "still here");
    within("send", client.raw().send_text("not json"))
        .await
        .unwrap();
    match within("close", client.recv()).await {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 1003),
        other => panic!("expected close 1003, got {other:?}"),
    }
}

#[tokio::test]
async fn connection_churn_leaves_no_subscriber_or_connection_behind() {
    const CYCLES: usize = 300;
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let mut listener = server.subscribe_alerts(cairo, None).await;
    for _ in 0..CYCLES {
        let client = server.subscribe_alerts(cairo, None).await;
        within("close", client.close()).await.expect("closed");
    }
    eventually("churned connections are gone", || {
        server.app.hub.stats().subscribers == 1 && server.config.active_connections() == 1
    })
    .await;
    assert_eq!(server.app.hub.stats().topics, 1);
    // The one that stayed still gets alerts, exactly once.
    server
        .app
        .publish_alert(cairo, "after churn")
        .await
        .unwrap();
    assert_eq!(next_alert(&mut listener).await.message, "after churn");
    drop(listener);
    eventually("all gone", || {
        server.app.hub.stats().topics == 0 && server.config.active_connections() == 0
    })
    .await;
    let (status, _, stats) = http(&server, "GET", "/api/stats", &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stats).unwrap(),
        serde_json::json!({"connections": 0, "topics": 0, "subscribers": 0})
    );
}

#[tokio::test]
async fn a_subscriber_that_does_not_read_is_closed_with_1013_and_slows_no_one() {
    const ALERTS: usize = 300;
    let mut config = wfs_runtime::Config::default();
    config.outbound_queue = 8;
    let server = TestServer::start_with(config).await;
    let cairo = server.city("Cairo").await.uuid;
    let mut slow = server.subscribe_alerts(cairo, None).await;
    let mut fast = server.subscribe_alerts(cairo, None).await;
    eventually("subscribed", || server.app.hub.stats().subscribers == 2).await;

    // Large alerts fill the slow client's socket buffers, then its queue of 8. They are paced
    // (a millisecond apart, 32 MB/s) so that the client that reads keeps up even on a machine
    // busy with other tests: the one that does not read is what this test is about.
    let filler = "x".repeat(32 * 1024);
    let publisher = {
        let app = server.app.clone();
        tokio::spawn(async move {
            for index in 0..ALERTS {
                app.publish_alert(cairo, &format!("{index} {filler}"))
                    .await
                    .expect("published");
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
    };
    for index in 0..ALERTS {
        let alert = next_alert(&mut fast).await;
        assert!(
            alert.message.starts_with(&format!("{index} ")),
            "the fast subscriber lost or reordered alerts"
        );
    }
    within("publisher", publisher)
        .await
        .expect("the publisher was never held up");

    // The slow one gets what was already in flight, in order, then a clear close.
    let mut received = 0;
    let close = loop {
        match within("slow subscriber", slow.recv()).await {
            Ok(AlertOutbound::Alert(alert)) => {
                assert!(
                    alert.message.starts_with(&format!("{received} ")),
                    "out of order"
                );
                received += 1;
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(error) => break error,
        }
    };
    assert!(
        received < ALERTS,
        "the slow subscriber should have been cut off"
    );
    match close {
        ClientError::Closed { code, reason } => {
            assert_eq!(code, 1013);
            assert!(reason.contains("not reading fast enough"), "{reason}");
        }
        other => panic!("expected close 1013, got {other:?}"),
    }
    eventually("the slow subscriber is gone", || {
        server.app.hub.stats().subscribers == 1
    })
    .await;
}
