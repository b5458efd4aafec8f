//! Prometheus metrics of this instance (prometheus-client), served as the text exposition format
//! (version 0.0.4) at `GET /metrics`: on the main port, or only on `--metrics-listen` when set.
//!
//! The hot paths never touch this registry: frames are counted by the runtime in per-channel
//! atomics ([`wfs_runtime::observe::SocketCounters`]) and fan-out deliveries by the hub in its
//! own atomics; a collector reads both at scrape time. What is counted here happens once per
//! connection, refusal, publication or replayed alert. The database and Redis state are read
//! when scraped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use poem::web::Data;
use poem::{IntoResponse, Response, handler};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use wfs_runtime::observe::SocketCounters;

use crate::App;
use crate::hub::{BusHealth, Hub};

/// The version this binary was built as (`Cargo.toml`), in `/health`, `/metrics`, the
/// start-up line and `wfs --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Labels naming a channel.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
}

/// Why a handshake was refused, on which channel and transport.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    pub channel: String,
    /// `websocket` or `sse`.
    pub transport: &'static str,
    /// `host`, `origin`, `token`, `params`, `unknown_city`, `unavailable`, `shutting_down`,
    /// `at_capacity`, `not_websocket`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloseLabels {
    channel: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

/// Publication latency buckets: 100 µs to about 3 s, doubling.
fn publish_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Every metric of the instance, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    live: Arc<Live>,
    refused: Family<RefusedLabels, Counter>,
    closes: Family<CloseLabels, Counter>,
    slow_consumer_closes: Family<ChannelLabels, Counter>,
    publish_seconds: Family<ChannelLabels, Histogram, fn() -> Histogram>,
    replayed: Family<TransportLabels, Counter>,
    /// Set when `/metrics` is served on its own listener: the main port then answers 404.
    separate_listener: AtomicBool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// What the collector reads at scrape time.
#[derive(Debug)]
struct Live {
    hub: Arc<Hub>,
    /// WebSocket counters per channel; written once per channel, read once per connection.
    sockets: RwLock<HashMap<String, Arc<SocketCounters>>>,
    sse_streams: AtomicI64,
    /// 1 up, 0 down; set by the scrape itself.
    database_up: AtomicI64,
    /// -1 no Redis configured, 0 disconnected, 1 connected; set by the scrape itself.
    redis: AtomicI64,
}

impl Metrics {
    /// The metrics of an instance whose fan-out goes through `hub`.
    pub fn new(hub: Arc<Hub>) -> Metrics {
        let mut registry = Registry::with_prefix("wfs");
        registry.register(
            "build",
            "The version of this wfs binary",
            Info::new(VersionLabels { version: VERSION }),
        );
        let refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "handshakes_refused",
            "Handshakes (WebSocket upgrades, SSE streams) refused, by reason",
            refused.clone(),
        );
        let closes = Family::<CloseLabels, Counter>::default();
        registry.register(
            "websocket_closes",
            "WebSocket connections ended, by close code (1006: dropped without a close frame)",
            closes.clone(),
        );
        let slow_consumer_closes = Family::<ChannelLabels, Counter>::default();
        registry.register(
            "slow_consumer_closes",
            "WebSocket connections closed with 1013 because the client did not read fast enough",
            slow_consumer_closes.clone(),
        );
        let publish_seconds =
            Family::<ChannelLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                publish_histogram,
            );
        registry.register(
            "publish_duration_seconds",
            "Time to publish an alert (store, then bus) or a chat message (bus)",
            publish_seconds.clone(),
        );
        let replayed = Family::<TransportLabels, Counter>::default();
        registry.register(
            "alerts_replayed",
            "Stored alerts sent to clients that reconnected (since=, Last-Event-ID)",
            replayed.clone(),
        );
        let live = Arc::new(Live {
            hub,
            sockets: RwLock::new(HashMap::new()),
            sse_streams: AtomicI64::new(0),
            database_up: AtomicI64::new(0),
            redis: AtomicI64::new(-1),
        });
        registry.register_collector(Box::new(LiveCollector(live.clone())));
        Metrics {
            registry,
            live,
            refused,
            closes,
            slow_consumer_closes,
            publish_seconds,
            replayed,
            separate_listener: AtomicBool::new(false),
        }
    }

    /// The shared counters of a WebSocket channel (once per connection).
    pub fn socket_counters(&self, channel: &str) -> Arc<SocketCounters> {
        if let Some(counters) = self
            .live
            .sockets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(channel)
        {
            return counters.clone();
        }
        self.live
            .sockets
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(channel.to_owned())
            .or_default()
            .clone()
    }

    /// Counts a refused handshake.
    pub fn refused(&self, channel: &str, transport: &'static str, reason: &'static str) {
        self.refused
            .get_or_create(&RefusedLabels {
                channel: channel.to_owned(),
                transport,
                reason,
            })
            .inc();
    }

    /// Counts a WebSocket connection that ended with `code`.
    pub fn closed(&self, channel: &str, code: u16) {
        self.closes
            .get_or_create(&CloseLabels {
                channel: channel.to_owned(),
                code,
            })
            .inc();
        if code == wfs_runtime::connection::CLOSE_TOO_SLOW {
            self.slow_consumer_closes
                .get_or_create(&ChannelLabels {
                    channel: channel.to_owned(),
                })
                .inc();
        }
    }

    /// Records how long a publication on `channel` took.
    pub fn published(&self, channel: &str, took: std::time::Duration) {
        self.publish_seconds
            .get_or_create(&ChannelLabels {
                channel: channel.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// The counter of alerts replayed over `transport` (`websocket` or `sse`), for a replay task
    /// to bump as it sends.
    pub fn replayed(&self, transport: &'static str) -> Counter {
        self.replayed
            .get_or_create_owned(&TransportLabels { transport })
    }

    /// Counts an SSE stream as open until the guard is dropped.
    pub fn sse_stream(&self) -> StreamGuard {
        self.live.sse_streams.fetch_add(1, Ordering::Relaxed);
        StreamGuard(self.live.clone())
    }

    /// Serves `/metrics` on its own listener from now on: the main port answers 404 for it.
    pub fn serve_separately(&self) {
        self.separate_listener.store(true, Ordering::Relaxed);
    }

    /// The text exposition of every metric, with the database and bus state given.
    pub fn encode(&self, database_up: bool, bus: Option<BusHealth>) -> String {
        self.live
            .database_up
            .store(i64::from(database_up), Ordering::Relaxed);
        self.live.redis.store(
            match bus {
                None => -1,
                Some(BusHealth::Disconnected) => 0,
                Some(BusHealth::Connected) => 1,
            },
            Ordering::Relaxed,
        );
        let mut text = String::new();
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            // Only a formatting bug can get here; a partial scrape beats none.
            tracing::error!(%error, "metrics not fully encoded");
        }
        text
    }
}

/// Keeps an SSE stream counted as open.
#[derive(Debug)]
pub struct StreamGuard(Arc<Live>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.sse_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reads the atomics of the runtime, the hub and the scrape at each scrape (names get the
/// registry's `wfs_` prefix).
#[derive(Debug)]
struct LiveCollector(Arc<Live>);

impl Collector for LiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let live = &self.0;
        let sockets: Vec<(String, Arc<SocketCounters>)> = {
            let map = live.sockets.read().unwrap_or_else(PoisonError::into_inner);
            let mut list: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            list.sort_by(|a, b| a.0.cmp(&b.0));
            list
        };

        let mut connections = encoder.encode_descriptor(
            "connections",
            "Connections open now, by channel and transport.",
            None,
            MetricType::Gauge,
        )?;
        for (channel, counters) in &sockets {
            let labels = [("channel", channel.as_str()), ("transport", "websocket")];
            ConstGauge::new(counters.open()).encode(connections.encode_family(&labels)?)?;
        }
        let labels = [("channel", "alert"), ("transport", "sse")];
        ConstGauge::new(live.sse_streams.load(Ordering::Relaxed))
            .encode(connections.encode_family(&labels)?)?;

        for (name, help, read) in [
            (
                "frames_received",
                "WebSocket frames received from clients (not pings), by channel.",
                SocketCounters::frames_in as fn(&SocketCounters) -> u64,
            ),
            (
                "frames_sent",
                "WebSocket frames sent to clients (not pings or closes), by channel.",
                SocketCounters::frames_out,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (channel, counters) in &sockets {
                let labels = [("channel", channel.as_str())];
                ConstCounter::new(read(counters)).encode(family.encode_family(&labels)?)?;
            }
        }

        let deliveries = live.hub.deliveries();
        let mut family = encoder.encode_descriptor(
            "fanout_deliveries",
            "Publications handed to subscribers (one per subscriber), by channel.",
            None,
            MetricType::Counter,
        )?;
        for (channel, count) in [("alert", deliveries.alert), ("chat", deliveries.chat)] {
            ConstCounter::new(count).encode(family.encode_family(&[("channel", channel)])?)?;
        }

        ConstGauge::new(live.database_up.load(Ordering::Relaxed)).encode(
            encoder.encode_descriptor(
                "database_up",
                "Whether the database answered during this scrape (1) or not (0).",
                None,
                MetricType::Gauge,
            )?,
        )?;
        let redis = live.redis.load(Ordering::Relaxed);
        if redis >= 0 {
            ConstGauge::new(redis).encode(encoder.encode_descriptor(
                "redis_connected",
                "Whether the Redis bus to other instances is connected (1) or not (0).",
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}

/// `GET /metrics`.
#[handler]
pub async fn metrics(app: Data<&Arc<App>>) -> Response {
    if app.metrics.separate_listener.load(Ordering::Relaxed) {
        return poem::http::StatusCode::NOT_FOUND.into_response();
    }
    scrape(&app).await
}

/// `GET /metrics` on the `--metrics-listen` listener.
#[handler]
pub async fn metrics_only(app: Data<&Arc<App>>) -> Response {
    scrape(&app).await
}

async fn scrape(app: &App) -> Response {
    let database = crate::health::database_answers(app).await;
    let text = app.metrics.encode(database, app.bus.health());
    text.with_content_type(prometheus_client::encoding::prometheus_text::CONTENT_TYPE)
        .into_response()
}
