//! The cross-instance bus: Redis pub/sub, one Redis subscription per topic that has local
//! subscribers (never one per connection).
//!
//! Publishing delivers to this instance's hub first, then PUBLISHes to Redis, tagged with this
//! instance's id so it can skip its own echo. Local subscribers are therefore served even while
//! Redis is down. Every instance sees alerts in id order: publishers hold the database's write
//! lock while publishing.
//!
//! When the subscription connection drops, or Redis cannot be reached at start, this instance
//! retries with backoff and warns at every failed try (an operator who mistyped `--redis-url`
//! hears of it at once, not never), then resubscribes. It then reads from the shared database every alert published after the last
//! one it delivered, so its subscribers miss nothing. The hub gives each subscriber an alert
//! at most once, so this catch-up never duplicates. Chat messages are not stored; those sent
//! between instances during an outage are lost, and their senders are told.
//!
//! A publisher PUBLISHes inside its database transaction (that is what orders alerts), so an
//! alert published just before this instance's SUBSCRIBE took effect can still be uncommitted
//! when the catch-up that follows reads the database: Redis never gives it to this instance and
//! the catch-up does not see it. Such a city stays *unsettled* until it is caught up once more:
//! before the first alert Redis brings for it (whose publisher began only after every older
//! alert of the city was committed), or after [`SETTLE`] if none comes.
//!
//! On Redis a publication is `<instance> <id or -> <frame>`, the frame's bytes as the publisher
//! serialised them. A frame received from Redis comes from outside this process, so it is
//! checked against its channel's message once ([`Frame::parse`]) before it is a `Frame<Alert>`
//! or a `Frame<ChatBroadcast>` the hub will take; its bytes are kept as they are.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use uuid::Uuid;
use wfs_runtime::Frame;

use crate::app::alert_payload;
use crate::contract::types::{Alert, ChatBroadcast};
use crate::hub::{Bus, BusError, BusFuture, BusHealth, Hub, Publication, Topic};
use crate::store::Store;

/// How long one Redis operation may take before the bus counts as disconnected.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection backoff: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));
/// Alerts read per round trip when catching up.
const CATCH_UP_PAGE: u32 = 500;
/// How long after subscribing an unsettled city is caught up again when Redis brings nothing
/// for it: a publisher's PUBLISH is bounded by [`REDIS_TIMEOUT`] and its commit follows at once.
const SETTLE: Duration = REDIS_TIMEOUT;

/// Publishes through Redis; see the module documentation.
pub struct RedisBus {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("instance", &self.shared.instance)
            .field("connected", &self.shared.connected.load(Ordering::Relaxed))
            .finish()
    }
}

struct Shared {
    hub: Arc<Hub>,
    store: Store,
    client: redis::Client,
    /// The URL without its password, for the warnings.
    url: String,
    /// Tags this instance's publications so it can skip their echo.
    instance: String,
    publisher: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    /// Whether the subscription connection is up (the health endpoint reports it).
    connected: AtomicBool,
    /// The last alert id this instance delivered, per city: where a catch-up starts.
    last_alert: Mutex<HashMap<Uuid, i64>>,
}

impl RedisBus {
    /// Starts the bus on `url` (`redis://host:port`). Only a malformed URL is an error here:
    /// an unreachable Redis is retried in the background, and local delivery works meanwhile.
    pub fn start(url: &str, hub: Arc<Hub>, store: Store) -> Result<RedisBus, BusError> {
        let client = redis::Client::open(url).map_err(|error| {
            BusError::Unavailable(format!("`{}` is not a Redis URL: {error}", redact(url)))
        })?;
        let shared = Arc::new(Shared {
            hub: hub.clone(),
            store,
            client,
            url: redact(url),
            instance: Uuid::new_v4().simple().to_string(),
            publisher: tokio::sync::Mutex::new(None),
            connected: AtomicBool::new(false),
            last_alert: Mutex::new(HashMap::new()),
        });
        let (wake, woken) = mpsc::unbounded_channel();
        hub.watch(move |_, _| {
            let _ = wake.send(());
        });
        tokio::spawn(subscriber(shared.clone(), woken));
        Ok(RedisBus { shared })
    }
}

impl Bus for RedisBus {
    fn publish_alert(&self, city: Uuid, publication: Publication<Alert>) -> BusFuture<'_, ()> {
        Box::pin(async move {
            // The publisher holds the database's write lock, so every older alert of the city is
            // committed: deliver any not yet seen here before this one, so this instance never
            // gives an alert before an older one still on its way through Redis.
            if self.shared.hub.alert.has_subscribers(city) {
                self.shared.ensure_baseline(city).await;
                self.shared.catch_up(city).await;
            }
            self.shared.deliver_alert(city, &publication);
            let payload = self.shared.wire(&publication);
            self.shared
                .publish(&channel_name(Topic::Alert(city)), payload)
                .await
        })
    }

    fn publish_chat(
        &self,
        city: Uuid,
        publication: Publication<ChatBroadcast>,
    ) -> BusFuture<'_, ()> {
        Box::pin(async move {
            self.shared.hub.chat.deliver(city, &publication);
            let payload = self.shared.wire(&publication);
            self.shared
                .publish(&channel_name(Topic::Chat(city)), payload)
                .await
        })
    }

    fn health(&self) -> Option<BusHealth> {
        Some(if self.shared.connected.load(Ordering::Relaxed) {
            BusHealth::Connected
        } else {
            BusHealth::Disconnected
        })
    }
}

impl Shared {
    /// Delivers an alert here, and remembers it as this instance's position for the city.
    fn deliver_alert(&self, city: Uuid, publication: &Publication<Alert>) {
        if let Some(id) = publication.id {
            let mut last = self
                .last_alert
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let entry = last.entry(city).or_insert(0);
            *entry = (*entry).max(id);
        }
        self.hub.alert.deliver(city, publication);
    }

    /// The Redis message of a publication: tagged with this instance so it can skip its echo,
    /// then the id (`-` for none), then the frame's bytes unchanged.
    fn wire<M>(&self, publication: &Publication<M>) -> Vec<u8> {
        let id = publication
            .id
            .map_or_else(|| "-".to_owned(), |id| id.to_string());
        let mut payload = format!("{} {id} ", self.instance).into_bytes();
        payload.extend_from_slice(publication.frame.as_str().as_bytes());
        payload
    }

    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), BusError> {
        let mut publisher = self.publisher.lock().await;
        if publisher.is_none() {
            let connection = tokio::time::timeout(
                REDIS_TIMEOUT,
                self.client.get_multiplexed_async_connection(),
            )
            .await
            .map_err(|_| unavailable("connecting timed out"))?
            .map_err(|error| unavailable(&error.to_string()))?;
            *publisher = Some(connection);
        }
        let Some(connection) = publisher.as_mut() else {
            return Err(unavailable("no connection"));
        };
        let sent = tokio::time::timeout(
            REDIS_TIMEOUT,
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload)
                .query_async::<i64>(connection),
        )
        .await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => {
                *publisher = None;
                Err(unavailable(&error.to_string()))
            }
            Err(_) => {
                *publisher = None;
                Err(unavailable("publishing timed out"))
            }
        }
    }

    /// Handles one message from Redis. An alert for an `unsettled` city (see the module
    /// documentation) is preceded by a catch-up, so older alerts still reach subscribers first.
    async fn receive(&self, channel: &str, payload: &[u8], unsettled: &mut HashSet<Uuid>) {
        let Some(topic) = topic_of(channel) else {
            return;
        };
        let mut parts = payload.splitn(3, |byte| *byte == b' ');
        let (Some(instance), Some(id), Some(frame)) = (parts.next(), parts.next(), parts.next())
        else {
            tracing::warn!(channel, "malformed bus message ignored");
            return;
        };
        if instance == self.instance.as_bytes() {
            return; // delivered locally when it was published
        }
        let id = std::str::from_utf8(id)
            .ok()
            .and_then(|id| id.parse::<i64>().ok());
        let frame = Bytes::copy_from_slice(frame);
        if let Topic::Alert(city) = topic
            && unsettled.remove(&city)
        {
            self.catch_up(city).await;
        }
        let refused = match topic {
            Topic::Alert(city) => Frame::parse(frame).map(|frame| {
                self.deliver_alert(city, &Publication { id, frame });
            }),
            Topic::Chat(city) => Frame::parse(frame).map(|frame| {
                self.hub.chat.deliver(city, &Publication { id, frame });
            }),
        };
        if let Err(error) = refused {
            tracing::warn!(channel, %error, "bus message that is not its channel's message ignored");
        }
    }

    /// Delivers the alerts of `city` published after the last one delivered here (nothing when
    /// this instance has no position for the city yet: see [`Shared::ensure_baseline`]).
    async fn catch_up(&self, city: Uuid) {
        loop {
            let after = self
                .last_alert
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&city)
                .copied();
            let Some(after) = after else {
                return;
            };
            let page = match self.store.alerts_after(city, after, CATCH_UP_PAGE).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, %city, "cannot catch up on alerts");
                    return;
                }
            };
            let full = page.len() == CATCH_UP_PAGE as usize;
            for stored in page {
                let id = stored.id;
                let Ok(frame) = alert_payload(stored).and_then(|alert| Frame::new(&alert)) else {
                    continue;
                };
                self.deliver_alert(
                    city,
                    &Publication {
                        id: Some(id),
                        frame,
                    },
                );
            }
            if !full {
                return;
            }
        }
    }

    /// For a city this instance has no position for yet, the newest alert id now: where its
    /// deliveries start (a new subscriber without `since` gets alerts from now on).
    async fn ensure_baseline(&self, city: Uuid) {
        let known = self
            .last_alert
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&city);
        if known {
            return;
        }
        match self.store.recent_alerts(city, 1, None).await {
            Ok(newest) => {
                let id = newest.first().map_or(0, |alert| alert.id);
                let mut last = self
                    .last_alert
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let entry = last.entry(city).or_insert(0);
                *entry = (*entry).max(id);
            }
            Err(error) => tracing::warn!(%error, %city, "cannot read where alerts start"),
        }
    }

    /// Forgets the positions of cities no longer watched: a later subscriber starts afresh.
    fn forget_unwatched(&self, watched: &HashSet<Topic>) {
        self.last_alert
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|city, _| watched.contains(&Topic::Alert(*city)));
    }
}

/// Keeps the subscription connection up and its subscriptions equal to the hub's topics.
async fn subscriber(shared: Arc<Shared>, mut woken: mpsc::UnboundedReceiver<()>) {
    let mut backoff = BACKOFF.0;
    let mut failures: u32 = 0;
    loop {
        let pubsub = tokio::time::timeout(REDIS_TIMEOUT, shared.client.get_async_pubsub()).await;
        let pubsub = match pubsub {
            Ok(Ok(pubsub)) => pubsub,
            failed => {
                shared.connected.store(false, Ordering::Relaxed);
                failures = failures.saturating_add(1);
                let error = match failed {
                    Ok(Err(error)) => error.to_string(),
                    _ => format!("no answer within {REDIS_TIMEOUT:?}"),
                };
                tracing::warn!(
                    url = %shared.url,
                    %error,
                    attempt = failures,
                    retry_in_ms = backoff.as_millis() as u64,
                    "Redis unreachable: serving local connections only; other instances get nothing from here until it answers"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
                continue;
            }
        };
        backoff = BACKOFF.0;
        failures = 0;
        let (mut sink, mut stream) = pubsub.split();
        let mut subscribed = HashSet::new();
        let mut unsettled = HashSet::new();
        // Subscribing catches each city up from where this instance left it, so what was
        // published while it was away is delivered now.
        if sync(&shared, &mut sink, &mut subscribed, &mut unsettled)
            .await
            .is_err()
        {
            continue;
        }
        shared.connected.store(true, Ordering::Relaxed);
        tracing::info!(url = %shared.url, topics = subscribed.len(), "Redis connected");
        let settle = tokio::time::sleep(SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => {
                        shared
                            .receive(message.get_channel_name(), message.get_payload_bytes(), &mut unsettled)
                            .await;
                    }
                    None => break,
                },
                () = &mut settle, if !unsettled.is_empty() => {
                    for city in std::mem::take(&mut unsettled) {
                        shared.catch_up(city).await;
                    }
                }
                woke = woken.recv() => {
                    if woke.is_none() {
                        return; // the hub is gone: the server stopped
                    }
                    let before = unsettled.len();
                    if sync(&shared, &mut sink, &mut subscribed, &mut unsettled)
                        .await
                        .is_err()
                    {
                        break;
                    }
                    if unsettled.len() > before {
                        settle.as_mut().reset(tokio::time::Instant::now() + SETTLE);
                    }
                }
            }
        }
        shared.connected.store(false, Ordering::Relaxed);
        tracing::warn!("Redis connection lost: serving local connections only, reconnecting");
    }
}

/// Subscribes to the hub's topics not yet subscribed, and unsubscribes from the others.
async fn sync(
    shared: &Shared,
    sink: &mut redis::aio::PubSubSink,
    subscribed: &mut HashSet<Topic>,
    unsettled: &mut HashSet<Uuid>,
) -> Result<(), ()> {
    let wanted: HashSet<Topic> = shared.hub.topics().into_iter().collect();
    shared.forget_unwatched(&wanted);
    for topic in wanted.difference(&subscribed.clone()) {
        if let Topic::Alert(city) = topic {
            shared.ensure_baseline(*city).await;
        }
        timed(sink.subscribe(channel_name(*topic))).await?;
        subscribed.insert(*topic);
        // Alerts published since this instance's position: between the baseline and the
        // subscription, or while Redis was away.
        if let Topic::Alert(city) = topic {
            shared.catch_up(*city).await;
            unsettled.insert(*city);
        }
    }
    for topic in subscribed.difference(&wanted).copied().collect::<Vec<_>>() {
        timed(sink.unsubscribe(channel_name(topic))).await?;
        subscribed.remove(&topic);
        if let Topic::Alert(city) = topic {
            unsettled.remove(&city);
        }
    }
    Ok(())
}

async fn timed(
    operation: impl std::future::Future<Output = redis::RedisResult<()>>,
) -> Result<(), ()> {
    match tokio::time::timeout(REDIS_TIMEOUT, operation).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

fn channel_name(topic: Topic) -> String {
    match topic {
        Topic::Alert(city) => format!("wfs:alert:{city}"),
        Topic::Chat(city) => format!("wfs:chat:{city}"),
    }
}

fn topic_of(channel: &str) -> Option<Topic> {
    let (kind, city) = channel.strip_prefix("wfs:")?.split_once(':')?;
    let city = Uuid::parse_str(city).ok()?;
    match kind {
        "alert" => Some(Topic::Alert(city)),
        "chat" => Some(Topic::Chat(city)),
        _ => None,
    }
}

fn unavailable(why: &str) -> BusError {
    BusError::Unavailable(format!("Redis: {why}"))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_round_trip() {
        let city = Uuid::new_v4();
        for topic in [Topic::Alert(city), Topic::Chat(city)] {
            assert_eq!(topic_of(&channel_name(topic)), Some(topic));
        }
        assert_eq!(topic_of("other:alert:x"), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://user:secret@host:6379"),
            "redis://***@host:6379"
        );
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }
}
