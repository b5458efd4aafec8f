//! Per-city fan-out: which outlets (WebSocket connections, SSE streams) listen to which topic,
//! and the [`Bus`] that carries each publication to them.
//!
//! A publication is serialised once by the publisher and the same bytes are handed to every
//! subscriber's bounded queue. Handing them over never waits: a subscriber whose queue is full is
//! closed (1013) by its connection, so it cannot slow the publisher or the other subscribers.
//! Each topic's subscribers are served under that topic's lock, so all of them see publications
//! in the same order. Nothing polls: a publication is pushed as it is made.
//!
//! Alerts carry an id, and every subscriber remembers the last id it was given. A subscriber
//! gets an alert only if its id is higher. So an alert that arrives twice (published here and
//! echoed back by Redis, or caught up after an outage) reaches each subscriber exactly once. A
//! subscriber that is still being sent its history ([`Hub::subscribe_catching_up`]) keeps live
//! alerts in a backlog until [`Hub::go_live`], so history and live alerts join without a gap.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use uuid::Uuid;
use wfs_runtime::Connection;

/// What a connection can listen to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Alerts of one city.
    Alert(Uuid),
    /// The chat room of one city.
    Chat(Uuid),
}

/// Where a subscriber's frames go: a WebSocket connection, or another kind of stream (SSE).
pub trait Outlet: Send + Sync + 'static {
    /// Unique among live outlets.
    fn id(&self) -> u64;
    /// Queues `frame` without waiting; `false` when the outlet is closed or too slow (it then
    /// closes itself).
    fn push(&self, frame: Bytes) -> bool;
    /// Closes the outlet because it fell too far behind (its backlog overflowed).
    fn overflow(&self);
}

impl Outlet for Connection {
    fn id(&self) -> u64 {
        Connection::id(self)
    }

    fn push(&self, frame: Bytes) -> bool {
        self.send_text(frame).is_ok()
    }

    fn overflow(&self) {
        self.close(
            wfs_runtime::connection::CLOSE_TOO_SLOW,
            "Client is not reading fast enough.",
        );
    }
}

/// One publication: its bytes, and for alerts the id that orders and deduplicates them.
#[derive(Debug, Clone)]
pub struct Publication {
    pub id: Option<i64>,
    pub frame: Bytes,
}

struct Subscriber {
    outlet: Arc<dyn Outlet>,
    /// The highest alert id this subscriber was given.
    last_id: i64,
    /// While catching up: live alerts held back until the history has been sent.
    backlog: Option<Vec<Publication>>,
}

impl Subscriber {
    fn offer(&mut self, publication: &Publication, backlog_limit: usize) -> bool {
        if let Some(id) = publication.id
            && id <= self.last_id
        {
            return true; // already given
        }
        if let Some(backlog) = &mut self.backlog {
            if backlog.len() >= backlog_limit {
                self.outlet.overflow();
                return false;
            }
            backlog.push(publication.clone());
            return true;
        }
        let taken = self.outlet.push(publication.frame.clone());
        if taken && let Some(id) = publication.id {
            self.last_id = id;
        }
        taken
    }
}

type Subscribers = HashMap<u64, Subscriber>;

/// Hears of topics gaining their first subscriber (`true`) or losing their last (`false`).
type Watcher = Box<dyn Fn(Topic, bool) + Send + Sync>;

/// The outlets of this process, by topic.
pub struct Hub {
    topics: Mutex<HashMap<Topic, Arc<Mutex<Subscribers>>>>,
    /// Live alerts a catching-up subscriber may hold back before it counts as too slow.
    backlog_limit: usize,
    /// Told when a topic gets its first subscriber or loses its last (the Redis bus subscribes
    /// to exactly the topics that have local subscribers).
    watcher: Mutex<Option<Watcher>>,
    /// Frames handed to subscribers, for `/metrics`: added once per publication, not per
    /// subscriber.
    delivered_alerts: AtomicU64,
    delivered_chat: AtomicU64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("stats", &self.stats()).finish()
    }
}

impl Default for Hub {
    fn default() -> Hub {
        Hub::new(1024)
    }
}

/// Publications handed to subscribers since the start (one per subscriber that took one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deliveries {
    pub alert: u64,
    pub chat: u64,
}

/// Counts a test or an operator can read (`GET /api/stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HubStats {
    pub topics: usize,
    pub subscribers: usize,
}

impl Hub {
    pub fn new(backlog_limit: usize) -> Hub {
        Hub {
            topics: Mutex::new(HashMap::new()),
            backlog_limit,
            watcher: Mutex::new(None),
            delivered_alerts: AtomicU64::new(0),
            delivered_chat: AtomicU64::new(0),
        }
    }

    /// Publications handed to subscribers since the start.
    pub fn deliveries(&self) -> Deliveries {
        Deliveries {
            alert: self.delivered_alerts.load(Ordering::Relaxed),
            chat: self.delivered_chat.load(Ordering::Relaxed),
        }
    }

    /// Calls `watch(topic, true)` when a topic gets its first subscriber and
    /// `watch(topic, false)` when it loses its last; the topics already watched are reported
    /// at once.
    pub fn watch(&self, watch: impl Fn(Topic, bool) + Send + Sync + 'static) {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        for topic in topics.keys() {
            watch(*topic, true);
        }
        *self.watcher.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(watch));
    }

    /// Whether `topic` has subscribers here.
    pub fn has_topic(&self, topic: Topic) -> bool {
        self.topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&topic)
    }

    /// The topics that have subscribers now.
    pub fn topics(&self) -> Vec<Topic> {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<Topic> = topics.keys().copied().collect();
        list.sort();
        list
    }

    /// Adds a WebSocket connection to `topic`, live at once.
    pub fn subscribe(&self, topic: Topic, connection: &Connection) {
        self.add(topic, Arc::new(connection.clone()), None);
    }

    /// Adds any outlet to `topic`, live at once.
    pub fn subscribe_outlet(&self, topic: Topic, outlet: Arc<dyn Outlet>) {
        self.add(topic, outlet, None);
    }

    /// Adds an outlet that is about to be sent the history it missed: live alerts are held
    /// back until [`Hub::go_live`] says which id the history ended with.
    pub fn subscribe_catching_up(&self, topic: Topic, outlet: Arc<dyn Outlet>) {
        self.add(topic, outlet, Some(Vec::new()));
    }

    fn add(&self, topic: Topic, outlet: Arc<dyn Outlet>, backlog: Option<Vec<Publication>>) {
        // Inserted under the outer lock: `unsubscribe` drops empty topics under it too, so a
        // new subscriber can never land in a topic that was just dropped.
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let first = !topics.contains_key(&topic);
        let id = outlet.id();
        topics
            .entry(topic)
            .or_default()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id,
                Subscriber {
                    outlet,
                    last_id: 0,
                    backlog,
                },
            );
        if first {
            self.notify(topic, true);
        }
    }

    /// Ends a catch-up: the history sent ended with alert `last_id` (0 if none); the live
    /// alerts held back meanwhile that are newer go out now, in order.
    pub fn go_live(&self, topic: Topic, outlet_id: u64, last_id: i64) {
        let Some(subscribers) = self.subscribers(topic) else {
            return;
        };
        let mut subscribers = subscribers.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(subscriber) = subscribers.get_mut(&outlet_id) else {
            return;
        };
        subscriber.last_id = subscriber.last_id.max(last_id);
        let backlog = subscriber.backlog.take().unwrap_or_default();
        for publication in &backlog {
            subscriber.offer(publication, self.backlog_limit);
        }
    }

    /// Removes an outlet; a topic left without subscribers is dropped, so closed connections
    /// leave nothing behind.
    pub fn unsubscribe(&self, topic: Topic, outlet_id: u64) {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(subscribers) = topics.get(&topic) {
            let mut subscribers = subscribers.lock().unwrap_or_else(PoisonError::into_inner);
            subscribers.remove(&outlet_id);
            let empty = subscribers.is_empty();
            drop(subscribers);
            if empty {
                topics.remove(&topic);
                self.notify(topic, false);
            }
        }
    }

    /// Hands `publication` to every subscriber of `topic` (each alert at most once per
    /// subscriber); returns how many took it.
    pub fn deliver(&self, topic: Topic, publication: &Publication) -> usize {
        let Some(subscribers) = self.subscribers(topic) else {
            return 0;
        };
        let mut subscribers = subscribers.lock().unwrap_or_else(PoisonError::into_inner);
        let mut taken = 0;
        for subscriber in subscribers.values_mut() {
            if subscriber.offer(publication, self.backlog_limit) {
                taken += 1;
            }
        }
        drop(subscribers);
        let counter = match topic {
            Topic::Alert(_) => &self.delivered_alerts,
            Topic::Chat(_) => &self.delivered_chat,
        };
        counter.fetch_add(taken as u64, Ordering::Relaxed);
        taken
    }

    fn subscribers(&self, topic: Topic) -> Option<Arc<Mutex<Subscribers>>> {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        topics.get(&topic).cloned()
    }

    fn notify(&self, topic: Topic, added: bool) {
        if let Some(watch) = self
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            watch(topic, added);
        }
    }

    pub fn stats(&self) -> HubStats {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        HubStats {
            topics: topics.len(),
            subscribers: topics
                .values()
                .map(|subscribers| {
                    subscribers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .len()
                })
                .sum(),
        }
    }
}

/// Why a publication could not be handed on.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the message bus is unavailable: {0}")]
    Unavailable(String),
}

/// A future returned by a [`Bus`].
pub type BusFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BusError>> + Send + 'a>>;

/// Carries publications to the subscribers of a topic on every instance: in-process
/// ([`LocalBus`]) or across instances through Redis ([`crate::redis_bus::RedisBus`]).
pub trait Bus: Send + Sync + 'static {
    /// Publishes on `topic`. Local subscribers get it even when the bus cannot reach other
    /// instances; the error then says so.
    fn publish(&self, topic: Topic, publication: Publication) -> BusFuture<'_, ()>;

    /// A short state for the health endpoint: `None` when there is nothing to report.
    fn health(&self) -> Option<BusHealth> {
        None
    }
}

/// The state of a bus that reaches other instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BusHealth {
    Connected,
    Disconnected,
}

/// The bus of a single instance: publishing is delivering to the local hub.
#[derive(Debug)]
pub struct LocalBus {
    hub: Arc<Hub>,
}

impl LocalBus {
    pub fn new(hub: Arc<Hub>) -> LocalBus {
        LocalBus { hub }
    }
}

impl Bus for LocalBus {
    fn publish(&self, topic: Topic, publication: Publication) -> BusFuture<'_, ()> {
        self.hub.deliver(topic, &publication);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// An outlet that records what it was given.
    struct Recorder {
        id: u64,
        frames: Mutex<Vec<String>>,
    }

    impl Outlet for Recorder {
        fn id(&self) -> u64 {
            self.id
        }

        fn push(&self, frame: Bytes) -> bool {
            self.frames
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&frame).into_owned());
            true
        }

        fn overflow(&self) {
            self.frames.lock().unwrap().push("overflow".to_owned());
        }
    }

    static NEXT: AtomicU64 = AtomicU64::new(1_000_000);

    fn recorder() -> Arc<Recorder> {
        Arc::new(Recorder {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            frames: Mutex::new(Vec::new()),
        })
    }

    fn alert(id: i64) -> Publication {
        Publication {
            id: Some(id),
            frame: Bytes::from(format!("a{id}")),
        }
    }

    const TOPIC: Topic = Topic::Alert(Uuid::nil());

    #[test]
    fn an_alert_reaches_a_subscriber_once_however_often_it_arrives() {
        let hub = Hub::default();
        let outlet = recorder();
        hub.subscribe_outlet(TOPIC, outlet.clone());
        for id in [1, 2, 2, 1, 3] {
            hub.deliver(TOPIC, &alert(id));
        }
        assert_eq!(*outlet.frames.lock().unwrap(), ["a1", "a2", "a3"]);
    }

    #[test]
    fn a_catching_up_subscriber_gets_live_alerts_after_its_history_without_duplicates() {
        let hub = Hub::default();
        let outlet = recorder();
        hub.subscribe_catching_up(TOPIC, outlet.clone());
        // Live alerts arrive while the history (ids 4 and 5) is being read.
        hub.deliver(TOPIC, &alert(5));
        hub.deliver(TOPIC, &alert(6));
        assert!(outlet.frames.lock().unwrap().is_empty(), "held back");
        outlet.push(Bytes::from("a4"));
        outlet.push(Bytes::from("a5"));
        hub.go_live(TOPIC, outlet.id, 5);
        hub.deliver(TOPIC, &alert(7));
        assert_eq!(*outlet.frames.lock().unwrap(), ["a4", "a5", "a6", "a7"]);
    }

    #[test]
    fn chat_messages_have_no_id_and_always_go_through() {
        let hub = Hub::default();
        let outlet = recorder();
        let topic = Topic::Chat(Uuid::nil());
        hub.subscribe_outlet(topic, outlet.clone());
        let message = Publication {
            id: None,
            frame: Bytes::from("hi"),
        };
        hub.deliver(topic, &message);
        hub.deliver(topic, &message);
        assert_eq!(outlet.frames.lock().unwrap().len(), 2);
    }

    #[test]
    fn the_watcher_hears_of_first_and_last_subscribers() {
        let hub = Hub::default();
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        hub.watch(move |topic, added| seen.lock().unwrap().push((topic, added)));
        let (one, two) = (recorder(), recorder());
        hub.subscribe_outlet(TOPIC, one.clone());
        hub.subscribe_outlet(TOPIC, two.clone());
        hub.unsubscribe(TOPIC, one.id);
        hub.unsubscribe(TOPIC, two.id);
        assert_eq!(*events.lock().unwrap(), [(TOPIC, true), (TOPIC, false)]);
        assert_eq!(
            hub.stats(),
            HubStats {
                topics: 0,
                subscribers: 0
            }
        );
    }
}
