//! Per-city fan-out: which connections listen to which topic, and the [`Bus`] that carries
//! each publication to them.
//!
//! A publication is serialised once by the publisher and the same bytes are handed to every
//! subscriber's bounded queue. Handing them over never waits: a subscriber whose queue is full is
//! closed (1013) by its connection, so it cannot slow the publisher or the other subscribers.
//! Each topic's subscribers are served under that topic's lock, so all of them see publications
//! in the same order. Nothing polls: a publication is pushed as it is made.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
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

/// The connections of this process, by topic.
#[derive(Debug, Default)]
pub struct Hub {
    topics: Mutex<HashMap<Topic, Arc<Mutex<Subscribers>>>>,
}

type Subscribers = HashMap<u64, Connection>;

/// Counts a test or an operator can read (`GET /api/stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HubStats {
    pub topics: usize,
    pub subscribers: usize,
}

impl Hub {
    /// Adds `connection` to `topic`'s subscribers.
    pub fn subscribe(&self, topic: Topic, connection: &Connection) {
        // Inserted under the outer lock: `unsubscribe` drops empty topics under it too, so a
        // new subscriber can never land in a topic that was just dropped.
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        topics
            .entry(topic)
            .or_default()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(connection.id(), connection.clone());
    }

    /// Removes a connection; a topic left without subscribers is dropped, so closed connections
    /// leave nothing behind.
    pub fn unsubscribe(&self, topic: Topic, connection_id: u64) {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(subscribers) = topics.get(&topic) {
            let mut subscribers = subscribers.lock().unwrap_or_else(PoisonError::into_inner);
            subscribers.remove(&connection_id);
            let empty = subscribers.is_empty();
            drop(subscribers);
            if empty {
                topics.remove(&topic);
            }
        }
    }

    /// Hands `frame` to every subscriber of `topic`; returns how many took it.
    pub fn deliver(&self, topic: Topic, frame: &Bytes) -> usize {
        let subscribers = {
            let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
            match topics.get(&topic) {
                Some(subscribers) => subscribers.clone(),
                None => return 0,
            }
        };
        let subscribers = subscribers.lock().unwrap_or_else(PoisonError::into_inner);
        subscribers
            .values()
            .filter(|connection| connection.send_text(frame.clone()).is_ok())
            .count()
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

/// Carries publications to the subscribers of a topic on every instance. In-process now
/// ([`LocalBus`]); across instances through Redis later, behind the same trait.
pub trait Bus: Send + Sync + 'static {
    /// Publishes already serialised `frame` on `topic`.
    fn publish(&self, topic: Topic, frame: Bytes) -> BusFuture<'_, ()>;
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
    fn publish(&self, topic: Topic, frame: Bytes) -> BusFuture<'_, ()> {
        self.hub.deliver(topic, &frame);
        Box::pin(async { Ok(()) })
    }
}
