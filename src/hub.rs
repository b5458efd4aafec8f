//! Per-city fan-out: which outlets (WebSocket connections, SSE streams) listen to which city's
//! alerts or chat room, and the [`Bus`] that carries each publication to them.
//!
//! Typed by channel: the [`Hub`] holds one [`Fanout`] per channel that publishes, each typed by
//! the contract message it carries (`Fanout<Alert>`, `Fanout<ChatBroadcast>`), and an outlet
//! takes [`Frame`]s of that message only. A chat message handed to alert subscribers is a type
//! error, not a bug found in production:
//!
//! ```compile_fail,E0308
//! use wfs::contract::types::ChatBroadcast;
//! use wfs::hub::{Hub, Publication};
//! use wfs_runtime::Frame;
//!
//! fn misroute(hub: &Hub, city: uuid::Uuid, frame: Frame<ChatBroadcast>) {
//!     hub.alert.deliver(city, &Publication { id: None, frame });
//! }
//! ```
//!
//! (the compiler says: expected `Frame<Alert>`, found `Frame<ChatBroadcast>`; stable rustdoc
//! does not check the error code, so the twin below shows the same call compiles with an
//! alert's frame, and the refusal is the frame's type, nothing else):
//!
//! ```
//! use wfs::contract::types::Alert;
//! use wfs::hub::{Hub, Publication};
//! use wfs_runtime::Frame;
//!
//! fn route(hub: &Hub, city: uuid::Uuid, frame: Frame<Alert>) {
//!     hub.alert.deliver(city, &Publication { id: Some(1), frame });
//! }
//! ```
//!
//! A publication is serialised once by the publisher and the same bytes are handed to every
//! subscriber's bounded queue. Handing them over never waits: a subscriber whose queue is full is
//! closed (1013) by its connection, so it cannot slow the publisher or the other subscribers.
//! Each city's subscribers are served under that city's lock, so all of them see publications
//! in the same order. Nothing polls: a publication is pushed as it is made.
//!
//! Alerts carry an id, and every subscriber remembers the last id it was given. A subscriber
//! gets an alert only if its id is higher. So an alert that arrives twice (published here and
//! echoed back by Redis, or caught up after an outage) reaches each subscriber exactly once. A
//! subscriber that is still being sent its history ([`Fanout::subscribe_catching_up`]) keeps
//! live alerts in a backlog until [`Fanout::go_live`], so history and live alerts join without
//! a gap.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use uuid::Uuid;
use wfs_runtime::Frame;

use crate::contract::types::{Alert, ChatBroadcast};

/// What a connection can listen to, across channels: the Redis bus names its channels after
/// topics, and subscribes to those that have subscribers here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Alerts of one city.
    Alert(Uuid),
    /// The chat room of one city.
    Chat(Uuid),
}

/// One publication: its frame, and for alerts the id that orders and deduplicates them.
pub struct Publication<M> {
    /// The alert id; `None` for messages that are neither ordered nor deduplicated (chat).
    pub id: Option<i64>,
    pub frame: Frame<M>,
}

// By hand: derived, they would ask `M` to be `Clone` and `Debug` too, which a frame does not.
impl<M> Clone for Publication<M> {
    fn clone(&self) -> Self {
        Publication {
            id: self.id,
            frame: self.frame.clone(),
        }
    }
}

impl<M> std::fmt::Debug for Publication<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publication")
            .field("id", &self.id)
            .field("frame", &self.frame)
            .finish()
    }
}

/// Where a subscriber's frames of message `M` go: a WebSocket connection of the channel that
/// sends `M` (through its generated, typed handle), or another kind of stream (SSE).
pub trait Outlet<M>: Send + Sync + 'static {
    /// Unique among live outlets.
    fn id(&self) -> u64;
    /// Queues the publication's frame without waiting; `false` when the outlet is closed or too
    /// slow (it then closes itself).
    fn push(&self, publication: &Publication<M>) -> bool;
    /// Closes the outlet because it fell too far behind (its backlog overflowed).
    fn overflow(&self);
}

struct Subscriber<M> {
    outlet: Arc<dyn Outlet<M>>,
    /// The highest alert id this subscriber was given.
    last_id: i64,
    /// While catching up: live alerts held back until the history has been sent.
    backlog: Option<Vec<Publication<M>>>,
}

impl<M: 'static> Subscriber<M> {
    fn offer(&mut self, publication: &Publication<M>, backlog_limit: usize) -> bool {
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
        let taken = self.outlet.push(publication);
        if taken && let Some(id) = publication.id {
            self.last_id = id;
        }
        taken
    }
}

type Subscribers<M> = HashMap<u64, Subscriber<M>>;

/// Hears of topics gaining their first subscriber (`true`) or losing their last (`false`).
/// Shared by the fan-outs of a [`Hub`], so one watcher hears of them all.
type Watcher = Arc<dyn Fn(Topic, bool) + Send + Sync>;

/// The outlets of one channel's publications, by city: every outlet here takes frames of `M`.
pub struct Fanout<M> {
    /// The topic of a city on this fan-out (what the watcher is told).
    topic: fn(Uuid) -> Topic,
    cities: Mutex<HashMap<Uuid, Arc<Mutex<Subscribers<M>>>>>,
    /// Live alerts a catching-up subscriber may hold back before it counts as too slow.
    backlog_limit: usize,
    /// Told when a city gets its first subscriber or loses its last (the Redis bus subscribes
    /// to exactly the topics that have local subscribers).
    watcher: Mutex<Option<Watcher>>,
    /// Frames handed to subscribers, for `/metrics`: added once per publication, not per
    /// subscriber.
    delivered: AtomicU64,
}

impl<M: 'static> std::fmt::Debug for Fanout<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("stats", &self.stats())
            .finish()
    }
}

impl<M: 'static> Fanout<M> {
    /// A fan-out whose cities are `topic(city)` to the watcher.
    pub fn new(topic: fn(Uuid) -> Topic, backlog_limit: usize) -> Fanout<M> {
        Fanout {
            topic,
            cities: Mutex::new(HashMap::new()),
            backlog_limit,
            watcher: Mutex::new(None),
            delivered: AtomicU64::new(0),
        }
    }

    /// Publications handed to subscribers since the start (one per subscriber that took one).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Whether `city` has subscribers here.
    pub fn has_subscribers(&self, city: Uuid) -> bool {
        self.cities
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&city)
    }

    /// The cities that have subscribers now.
    pub fn cities(&self) -> Vec<Uuid> {
        let cities = self.cities.lock().unwrap_or_else(PoisonError::into_inner);
        cities.keys().copied().collect()
    }

    /// Adds an outlet to `city`, live at once.
    pub fn subscribe(&self, city: Uuid, outlet: Arc<dyn Outlet<M>>) {
        self.add(city, outlet, None);
    }

    /// Adds an outlet that is about to be sent the history it missed: live alerts are held
    /// back until [`Fanout::go_live`] says which id the history ended with. The history is
    /// read after this, and after [`crate::store::Store::wait_for_alert_writers`], so that an
    /// alert which went by just before is in it.
    pub fn subscribe_catching_up(&self, city: Uuid, outlet: Arc<dyn Outlet<M>>) {
        self.add(city, outlet, Some(Vec::new()));
    }

    fn add(&self, city: Uuid, outlet: Arc<dyn Outlet<M>>, backlog: Option<Vec<Publication<M>>>) {
        // Inserted under the outer lock: `unsubscribe` drops empty cities under it too, so a
        // new subscriber can never land in a city that was just dropped.
        let mut cities = self.cities.lock().unwrap_or_else(PoisonError::into_inner);
        let first = !cities.contains_key(&city);
        let id = outlet.id();
        cities
            .entry(city)
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
            self.notify(city, true);
        }
    }

    /// Ends a catch-up: the history sent ended with alert `last_id` (0 if none); the live
    /// alerts held back meanwhile that are newer go out now, in order.
    pub fn go_live(&self, city: Uuid, outlet_id: u64, last_id: i64) {
        let Some(subscribers) = self.subscribers(city) else {
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

    /// Removes an outlet; a city left without subscribers is dropped, so closed connections
    /// leave nothing behind.
    pub fn unsubscribe(&self, city: Uuid, outlet_id: u64) {
        let mut cities = self.cities.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(subscribers) = cities.get(&city) {
            let mut subscribers = subscribers.lock().unwrap_or_else(PoisonError::into_inner);
            subscribers.remove(&outlet_id);
            let empty = subscribers.is_empty();
            drop(subscribers);
            if empty {
                cities.remove(&city);
                self.notify(city, false);
            }
        }
    }

    /// Hands `publication` to every subscriber of `city` (each alert at most once per
    /// subscriber); returns how many took it.
    pub fn deliver(&self, city: Uuid, publication: &Publication<M>) -> usize {
        let Some(subscribers) = self.subscribers(city) else {
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
        self.delivered.fetch_add(taken as u64, Ordering::Relaxed);
        taken
    }

    fn subscribers(&self, city: Uuid) -> Option<Arc<Mutex<Subscribers<M>>>> {
        let cities = self.cities.lock().unwrap_or_else(PoisonError::into_inner);
        cities.get(&city).cloned()
    }

    /// Sets the watcher; the cities already watched are reported to it at once.
    fn watch(&self, watch: Watcher) {
        let cities = self.cities.lock().unwrap_or_else(PoisonError::into_inner);
        for city in cities.keys() {
            watch((self.topic)(*city), true);
        }
        *self.watcher.lock().unwrap_or_else(PoisonError::into_inner) = Some(watch);
    }

    fn notify(&self, city: Uuid, added: bool) {
        if let Some(watch) = self
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            watch((self.topic)(city), added);
        }
    }

    /// Cities with subscribers, and subscribers.
    pub fn stats(&self) -> HubStats {
        let cities = self.cities.lock().unwrap_or_else(PoisonError::into_inner);
        HubStats {
            topics: cities.len(),
            subscribers: cities
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

/// The fan-outs of this process, one per channel that publishes.
pub struct Hub {
    /// Alerts, to the alert channel's sockets and to SSE streams.
    pub alert: Fanout<Alert>,
    /// Chat messages, to the members of a city's room.
    pub chat: Fanout<ChatBroadcast>,
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
    /// A catching-up subscriber may hold back `backlog_limit` live publications.
    pub fn new(backlog_limit: usize) -> Hub {
        Hub {
            alert: Fanout::new(Topic::Alert, backlog_limit),
            chat: Fanout::new(Topic::Chat, backlog_limit),
        }
    }

    /// Publications handed to subscribers since the start.
    pub fn deliveries(&self) -> Deliveries {
        Deliveries {
            alert: self.alert.delivered(),
            chat: self.chat.delivered(),
        }
    }

    /// Calls `watch(topic, true)` when a topic gets its first subscriber and
    /// `watch(topic, false)` when it loses its last; the topics already watched are reported
    /// at once.
    pub fn watch(&self, watch: impl Fn(Topic, bool) + Send + Sync + 'static) {
        let watch: Watcher = Arc::new(watch);
        self.alert.watch(watch.clone());
        self.chat.watch(watch);
    }

    /// The topics that have subscribers now.
    pub fn topics(&self) -> Vec<Topic> {
        let alerts = self.alert.cities().into_iter().map(Topic::Alert);
        let chats = self.chat.cities().into_iter().map(Topic::Chat);
        let mut list: Vec<Topic> = alerts.chain(chats).collect();
        list.sort();
        list
    }

    /// Topics with subscribers, and subscribers, over every channel.
    pub fn stats(&self) -> HubStats {
        let (alert, chat) = (self.alert.stats(), self.chat.stats());
        HubStats {
            topics: alert.topics + chat.topics,
            subscribers: alert.subscribers + chat.subscribers,
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

/// Carries publications to the subscribers of a city on every instance: in-process
/// ([`LocalBus`]) or across instances through Redis ([`crate::redis_bus::RedisBus`]).
///
/// One method per channel, each taking that channel's frames, so what a bus carries is as
/// typed as what a hub delivers. Local subscribers get a publication even when the bus cannot
/// reach other instances; the error then says so.
pub trait Bus: Send + Sync + 'static {
    /// Publishes an alert (its `id` set) to `city`'s alert subscribers.
    fn publish_alert(&self, city: Uuid, publication: Publication<Alert>) -> BusFuture<'_, ()>;

    /// Publishes a chat message to the members of `city`'s room.
    fn publish_chat(
        &self,
        city: Uuid,
        publication: Publication<ChatBroadcast>,
    ) -> BusFuture<'_, ()>;

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
    fn publish_alert(&self, city: Uuid, publication: Publication<Alert>) -> BusFuture<'_, ()> {
        self.hub.alert.deliver(city, &publication);
        Box::pin(async { Ok(()) })
    }

    fn publish_chat(
        &self,
        city: Uuid,
        publication: Publication<ChatBroadcast>,
    ) -> BusFuture<'_, ()> {
        self.hub.chat.deliver(city, &publication);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU64;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// An outlet that records what it was given: the message's text, or `overflow`.
    struct Recorder {
        id: u64,
        frames: Mutex<Vec<String>>,
    }

    impl<M> Outlet<M> for Recorder {
        fn id(&self) -> u64 {
            self.id
        }

        fn push(&self, publication: &Publication<M>) -> bool {
            self.frames
                .lock()
                .unwrap()
                .push(publication.frame.as_str().to_owned());
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

    const CITY: Uuid = Uuid::nil();

    /// Alert `id`, its message `a<id>`.
    fn alert(id: i64) -> Publication<Alert> {
        let message = Alert {
            type_: "alert".to_owned(),
            id: NonZeroU64::new(id as u64).unwrap(),
            city_uuid: CITY,
            message: format!("a{id}"),
            created_at: chrono::DateTime::UNIX_EPOCH,
        };
        Publication {
            id: Some(id),
            frame: Frame::new(&message).unwrap(),
        }
    }

    /// The messages of the alerts an outlet was given, in order.
    fn messages(outlet: &Recorder) -> Vec<String> {
        outlet
            .frames
            .lock()
            .unwrap()
            .iter()
            .map(|frame| {
                let value: serde_json::Value = serde_json::from_str(frame).unwrap();
                value["message"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn an_alert_reaches_a_subscriber_once_however_often_it_arrives() {
        let hub = Hub::default();
        let outlet = recorder();
        hub.alert.subscribe(CITY, outlet.clone());
        for id in [1, 2, 2, 1, 3] {
            hub.alert.deliver(CITY, &alert(id));
        }
        assert_eq!(messages(&outlet), ["a1", "a2", "a3"]);
    }

    #[test]
    fn a_catching_up_subscriber_gets_live_alerts_after_its_history_without_duplicates() {
        let hub = Hub::default();
        let outlet = recorder();
        hub.alert.subscribe_catching_up(CITY, outlet.clone());
        // Live alerts arrive while the history (ids 4 and 5) is being read.
        hub.alert.deliver(CITY, &alert(5));
        hub.alert.deliver(CITY, &alert(6));
        assert!(outlet.frames.lock().unwrap().is_empty(), "held back");
        Outlet::<Alert>::push(&*outlet, &alert(4));
        Outlet::<Alert>::push(&*outlet, &alert(5));
        hub.alert.go_live(CITY, outlet.id, 5);
        hub.alert.deliver(CITY, &alert(7));
        assert_eq!(messages(&outlet), ["a4", "a5", "a6", "a7"]);
    }

    #[test]
    fn chat_messages_have_no_id_and_always_go_through() {
        let hub = Hub::default();
        let outlet = recorder();
        hub.chat.subscribe(CITY, outlet.clone());
        let message = ChatBroadcast {
            type_: "chat".to_owned(),
            message: "hi".to_owned(),
            user: "alice".to_owned(),
            city_uuid: CITY,
            sent_at: chrono::DateTime::UNIX_EPOCH,
        };
        let message = Publication {
            id: None,
            frame: Frame::new(&message).unwrap(),
        };
        hub.chat.deliver(CITY, &message);
        hub.chat.deliver(CITY, &message);
        assert_eq!(outlet.frames.lock().unwrap().len(), 2);
    }

    #[test]
    fn the_watcher_hears_of_first_and_last_subscribers_on_every_channel() {
        let hub = Hub::default();
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        hub.watch(move |topic, added| seen.lock().unwrap().push((topic, added)));
        let (one, two, member) = (recorder(), recorder(), recorder());
        hub.alert.subscribe(CITY, one.clone());
        hub.alert.subscribe(CITY, two.clone());
        hub.chat.subscribe(CITY, member.clone());
        assert_eq!(hub.topics(), [Topic::Alert(CITY), Topic::Chat(CITY)]);
        hub.alert.unsubscribe(CITY, one.id);
        hub.alert.unsubscribe(CITY, two.id);
        hub.chat.unsubscribe(CITY, member.id);
        assert_eq!(
            *events.lock().unwrap(),
            [
                (Topic::Alert(CITY), true),
                (Topic::Chat(CITY), true),
                (Topic::Alert(CITY), false),
                (Topic::Chat(CITY), false)
            ]
        );
        assert_eq!(
            hub.stats(),
            HubStats {
                topics: 0,
                subscribers: 0
            }
        );
    }
}
