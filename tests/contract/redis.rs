//! Scale-out through a real Redis (Debian's `redis-server`, started here on a free loopback
//! port): two instances sharing one database and one Redis, cross-instance alerts and chat,
//! Redis killed and restarted in the middle of a burst with every alert accounted for, and
//! the health endpoint reporting the outage.

use std::process::Stdio;
use std::time::Duration;

use uuid::Uuid;
use wfs::contract::alert::{AlertClient, AlertParams};
use wfs::contract::chat::{ChatClient, ChatOutbound, ChatParams};
use wfs::contract::types::ChatMessage;

use crate::server::{TestServer, eventually, http, next_alert, within};

async fn next_message_of(client: &mut AlertClient) -> String {
    next_alert(client).await.message
}

/// A `redis-server` child process, killed when dropped.
pub struct Redis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl Redis {
    pub async fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis { port, child: None };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (`cargo xtask ci` installs Debian's redis-server)");
        self.child = Some(child);
        let port = self.port;
        within("redis-server answers", async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// Waits until `instances` instances subscribe to the channel of `topic`
    /// (Redis's own `PUBSUB NUMSUB`), so a publication from now on reaches them.
    pub async fn wait_subscribed(&self, channel: &str, instances: i64) {
        let client = redis::Client::open(self.url()).unwrap();
        within("Redis subscriptions", async {
            loop {
                if let Ok(mut connection) = client.get_multiplexed_async_connection().await {
                    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                        .arg("NUMSUB")
                        .arg(channel)
                        .query_async(&mut connection)
                        .await
                        .unwrap_or_default();
                    if counts.first().is_some_and(|(_, count)| *count >= instances) {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn pair(redis: &Redis) -> (TestServer, TestServer) {
    let first = TestServer::start_with_options(crate::server::Options {
        redis_url: Some(redis.url()),
        ..Default::default()
    })
    .await;
    let second = first.another_instance(Some(redis.url())).await;
    for server in [&first, &second] {
        eventually("the bus is connected", || {
            server.app.bus.health() == Some(wfs::hub::BusHealth::Connected)
        })
        .await;
    }
    (first, second)
}

#[tokio::test]
async fn alerts_and_chat_cross_instances_once_each() {
    let redis = Redis::start().await;
    let (first, second) = pair(&redis).await;
    let cairo = first.city("Cairo").await.uuid;
    let mut here = first.subscribe_alerts(cairo, None).await;
    let mut there = second.subscribe_alerts(cairo, None).await;
    redis
        .wait_subscribed(&format!("wfs:alert:{cairo}"), 2)
        .await;
    for index in 0..20 {
        let publisher = if index % 2 == 0 { &first } else { &second };
        publisher
            .app
            .publish_alert(cairo, &index.to_string())
            .await
            .unwrap();
    }
    publish_end(&first, cairo).await;
    for client in [&mut here, &mut there] {
        for index in 0..20 {
            assert_eq!(
                next_message_of(client).await,
                index.to_string(),
                "lost, duplicated or out of order"
            );
        }
        assert_eq!(next_message_of(client).await, "end");
    }

    let alice_params = ChatParams {
        city_uuid: cairo,
        access_token: first.token(&first.alice),
    };
    let bob_params = ChatParams {
        city_uuid: cairo,
        access_token: second.token(&second.bob),
    };
    let mut alice = within("chat", ChatClient::connect(&first.base_url, &alice_params))
        .await
        .unwrap();
    let mut bob = within("chat", ChatClient::connect(&second.base_url, &bob_params))
        .await
        .unwrap();
    for client in [&mut alice, &mut bob] {
        assert!(matches!(
            within("welcome", client.recv()).await,
            Ok(ChatOutbound::ChatWelcome(_))
        ));
    }
    redis.wait_subscribed(&format!("wfs:chat:{cairo}"), 2).await;
    let hello: ChatMessage =
        serde_json::from_value(serde_json::json!({"message": "across"})).unwrap();
    within("send", alice.send_chat_message(&hello))
        .await
        .unwrap();
    for client in [&mut alice, &mut bob] {
        match within("chat", client.recv()).await {
            Ok(ChatOutbound::ChatBroadcast(message)) => assert_eq!(
                (message.user.as_str(), message.message.as_str()),
                ("alice", "across")
            ),
            other => panic!("expected alice's message, got {other:?}"),
        }
    }
}

async fn publish_end(server: &TestServer, city: Uuid) {
    server.app.publish_alert(city, "end").await.unwrap();
}

#[tokio::test]
async fn every_alert_is_accounted_for_when_redis_restarts_mid_burst() {
    const BURST: usize = 150;
    let mut redis = Redis::start().await;
    let (first, second) = pair(&redis).await;
    let cairo = first.city("Cairo").await.uuid;
    let mut here = first.subscribe_alerts(cairo, None).await;
    let mut there = second.subscribe_alerts(cairo, None).await;
    redis
        .wait_subscribed(&format!("wfs:alert:{cairo}"), 2)
        .await;
    for index in 0..BURST {
        if index == BURST / 3 {
            redis.kill();
            eventually("the outage is seen", || {
                second.app.bus.health() == Some(wfs::hub::BusHealth::Disconnected)
            })
            .await;
            let (status, _, body) = http(&second, "GET", "/health", &[], None).await;
            assert_eq!(status, 503, "{body}");
            assert!(
                body.contains("degraded") && body.contains("disconnected"),
                "{body}"
            );
            let (_, _, metrics) = http(&second, "GET", "/metrics", &[], None).await;
            let connected = crate::metrics::sample(&metrics, "wfs_redis_connected");
            assert_eq!(connected, Some(0.0), "{metrics}");
        }
        if index == 2 * BURST / 3 {
            redis.restart().await;
        }
        first
            .app
            .publish_alert(cairo, &index.to_string())
            .await
            .expect("published, stored, delivered here");
    }
    eventually("reconnected", || {
        second.app.bus.health() == Some(wfs::hub::BusHealth::Connected)
    })
    .await;
    publish_end(&first, cairo).await;
    for client in [&mut here, &mut there] {
        for index in 0..BURST {
            assert_eq!(
                next_message_of(client).await,
                index.to_string(),
                "an alert was lost, duplicated or reordered"
            );
        }
        assert_eq!(next_message_of(client).await, "end");
    }
    let (status, _, body) = http(&second, "GET", "/health", &[], None).await;
    assert_eq!(status, 200, "{body}");
    let (_, _, metrics) = http(&second, "GET", "/metrics", &[], None).await;
    let connected = crate::metrics::sample(&metrics, "wfs_redis_connected");
    assert_eq!(connected, Some(1.0), "{metrics}");
}

#[tokio::test]
async fn a_client_recovers_on_another_instance_with_since() {
    let redis = Redis::start().await;
    let (first, second) = pair(&redis).await;
    let cairo = first.city("Cairo").await.uuid;
    let seen = first
        .app
        .publish_alert(cairo, "seen")
        .await
        .unwrap()
        .unwrap();
    for message in ["missed 1", "missed 2"] {
        first.app.publish_alert(cairo, message).await.unwrap();
    }
    let params = AlertParams {
        city_uuid: cairo,
        access_token: second.token(&second.alice),
        since: Some(i64::try_from(seen.id.get()).unwrap()),
    };
    let mut client = within("alert", AlertClient::connect(&second.base_url, &params))
        .await
        .unwrap();
    assert_eq!(next_message_of(&mut client).await, "missed 1");
    assert_eq!(next_message_of(&mut client).await, "missed 2");
    redis
        .wait_subscribed(&format!("wfs:alert:{cairo}"), 1)
        .await;
    first.app.publish_alert(cairo, "live").await.unwrap();
    assert_eq!(next_message_of(&mut client).await, "live");
}

/// A frame from Redis comes from outside the process: it reaches sockets only if it is the
/// message of the channel it came on, and then byte for byte as the publisher wrote it.
#[tokio::test]
async fn a_bus_message_that_is_not_its_channels_message_reaches_no_one() {
    let redis = Redis::start().await;
    let server = TestServer::start_with_options(crate::server::Options {
        redis_url: Some(redis.url()),
        ..Default::default()
    })
    .await;
    let city = server.city("Tokyo").await.uuid;
    let mut client = server.subscribe_alerts(city, None).await;
    let channel = format!("wfs:alert:{city}");
    redis.wait_subscribed(&channel, 1).await;

    // As another instance would send them, tagged so this one does not skip them as its echo.
    let chat_frame = format!(
        r#"{{"type":"chat","message":"hi","user":"eve","city_uuid":"{city}","sent_at":"2026-01-01T00:00:00Z"}}"#
    );
    let alert_without_message = format!(
        r#"{{"type":"alert","id":8,"city_uuid":"{city}","created_at":"2026-01-01T00:00:00Z"}}"#
    );
    // Keys out of the server's order and spaces after colons: what arrives must be these bytes.
    let alert = format!(
        r#"{{"message": "through Redis", "type": "alert", "id": 9, "city_uuid": "{city}", "created_at": "2026-01-01T00:00:00Z"}}"#
    );
    let publisher = redis::Client::open(redis.url()).unwrap();
    let mut connection = within("Redis", publisher.get_multiplexed_async_connection())
        .await
        .unwrap();
    for payload in [
        format!("elsewhere - {chat_frame}"),
        format!("elsewhere 8 {alert_without_message}"),
        "elsewhere 8 not json".to_owned(),
        format!("elsewhere 9 {alert}"),
    ] {
        let _: i64 = within(
            "PUBLISH",
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(payload)
                .query_async(&mut connection),
        )
        .await
        .unwrap();
    }
    // Frames are delivered in order: the first to arrive is the first the server let through.
    let received = within("the alert", client.raw().recv_text()).await.unwrap();
    assert_eq!(received, alert);
}
