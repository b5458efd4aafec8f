//! The in-memory market: a fixed list of symbols, deterministic ticks published on an
//! interval, and the subscriptions of every open connection.
//!
//! Prices follow a fixed pattern of the tick number, so a run is reproducible and tests can
//! reason about what arrives. Each tick publishes one `ticker` and one `trade` per symbol; each
//! update is serialised once and queued on every connection subscribed to it (queueing never
//! waits: a client that does not keep up is closed with 1013 by the runtime).
//!
//! Subscriptions are changed and read under one lock, and updates are queued while holding it,
//! so once an `unsubscribe` has taken effect no update for it can be queued after its reply.

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wfs_runtime::Frame;

use crate::contract::feed::FeedConnection;
use crate::contract::types::{MarketChannel, Symbol, Ticker, Trade, TradeSide};

/// The listed symbols and the price each one's pattern moves around.
pub const LISTINGS: [(&str, f64); 4] = [
    ("BTC-USD", 65_000.0),
    ("ETH-USD", 3_200.0),
    ("SOL-USD", 150.0),
    ("XRP-USD", 0.5),
];

/// One listed symbol.
#[derive(Debug)]
struct Listing {
    symbol: Symbol,
    base: f64,
}

/// What one connection is subscribed to.
#[derive(Debug)]
struct Subscriber {
    connection: FeedConnection,
    ticker: BTreeSet<String>,
    trade: BTreeSet<String>,
}

impl Subscriber {
    fn symbols(&mut self, channel: MarketChannel) -> &mut BTreeSet<String> {
        match channel {
            MarketChannel::Ticker => &mut self.ticker,
            MarketChannel::Trade => &mut self.trade,
        }
    }
}

/// Why a subscription change was refused (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// These symbols are not listed.
    Unknown(Vec<Symbol>),
    /// An unsubscribe named these symbols, which are not subscribed on that channel.
    NotSubscribed(Vec<Symbol>),
}

/// The market and its subscribers, shared by every connection and the publishing task.
#[derive(Debug)]
pub struct Market {
    listings: Vec<Listing>,
    /// By connection id.
    subscribers: Mutex<HashMap<u64, Subscriber>>,
}

impl Market {
    /// A market with the [`LISTINGS`], not yet ticking (see [`Market::start`]).
    pub fn new() -> Market {
        let listings = LISTINGS
            .iter()
            .filter_map(|&(symbol, base)| {
                // The listed names are constants the contract accepts (1 to 32 characters);
                // a test holds every one of them to that.
                let symbol = Symbol::try_from(symbol).ok()?;
                Some(Listing { symbol, base })
            })
            .collect();
        Market {
            listings,
            subscribers: Mutex::new(HashMap::new()),
        }
    }

    /// A market that publishes a tick every `interval` from a task of its own, until the last
    /// `Arc` of it is dropped. Needs a tokio runtime.
    pub fn start(interval: Duration) -> Arc<Market> {
        let market = Arc::new(Market::new());
        tokio::spawn(publish(Arc::downgrade(&market), interval));
        market
    }

    /// The listed symbols, in listing order.
    pub fn symbols(&self) -> impl Iterator<Item = &Symbol> {
        self.listings.iter().map(|listing| &listing.symbol)
    }

    /// Subscribes `connection` to `channel` for `symbols`: all of them, or none when one is
    /// not listed.
    pub fn add_subscription(
        &self,
        connection: &FeedConnection,
        channel: MarketChannel,
        symbols: &[Symbol],
    ) -> Result<(), Refusal> {
        let unknown = self.unknown(symbols);
        if !unknown.is_empty() {
            return Err(Refusal::Unknown(unknown));
        }
        let mut subscribers = self.lock();
        let subscriber = subscribers
            .entry(connection.connection().id())
            .or_insert_with(|| Subscriber {
                connection: connection.clone(),
                ticker: BTreeSet::new(),
                trade: BTreeSet::new(),
            });
        subscriber
            .symbols(channel)
            .extend(symbols.iter().map(|symbol| symbol.to_string()));
        Ok(())
    }

    /// Unsubscribes `connection` from `channel` for `symbols`: all of them, or none when one
    /// is not listed or not subscribed.
    pub fn remove_subscription(
        &self,
        connection: &FeedConnection,
        channel: MarketChannel,
        symbols: &[Symbol],
    ) -> Result<(), Refusal> {
        let unknown = self.unknown(symbols);
        if !unknown.is_empty() {
            return Err(Refusal::Unknown(unknown));
        }
        let mut subscribers = self.lock();
        let subscribed = subscribers
            .get_mut(&connection.connection().id())
            .map(|subscriber| subscriber.symbols(channel));
        let missing: Vec<Symbol> = symbols
            .iter()
            .filter(|symbol| {
                subscribed
                    .as_ref()
                    .is_none_or(|set| !set.contains(symbol.as_str()))
            })
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::NotSubscribed(missing));
        }
        if let Some(set) = subscribed {
            for symbol in symbols {
                set.remove(symbol.as_str());
            }
        }
        Ok(())
    }

    /// Forgets a connection that ended.
    pub fn forget(&self, connection: &FeedConnection) {
        self.lock().remove(&connection.connection().id());
    }

    /// Publishes tick number `tick`: a ticker and a trade per symbol, each to its subscribers.
    pub fn tick(&self, tick: u64) {
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            });
        let subscribers = self.lock();
        for (index, listing) in self.listings.iter().enumerate() {
            let (ticker, trade) = listing.updates(index as u64, tick, time_ms);
            // Serialised once for every subscriber (and, in debug builds, checked against the
            // contract: a wrong update fails loudly here rather than in a client).
            let (ticker, trade) = match (Frame::new(&ticker), Frame::new(&trade)) {
                (Ok(ticker), Ok(trade)) => (ticker, trade),
                (Err(error), _) | (_, Err(error)) => {
                    wfs_runtime::tracing::error!(%error, symbol = %listing.symbol.as_str(), "update does not match the contract");
                    continue;
                }
            };
            let symbol = listing.symbol.as_str();
            for subscriber in subscribers.values() {
                // A closed or too slow connection is the runtime's to end; the others go on.
                if subscriber.ticker.contains(symbol) {
                    let _ = subscriber.connection.push_ticker_frame(&ticker);
                }
                if subscriber.trade.contains(symbol) {
                    let _ = subscriber.connection.push_trade_frame(&trade);
                }
            }
        }
    }

    fn unknown(&self, symbols: &[Symbol]) -> Vec<Symbol> {
        symbols
            .iter()
            .filter(|symbol| self.symbols().all(|listed| listed != *symbol))
            .cloned()
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Subscriber>> {
        // A panic elsewhere while holding the lock leaves the map usable.
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Market {
    fn default() -> Market {
        Market::new()
    }
}

impl Listing {
    /// The ticker and the trade of tick `tick` for the listing at `index`: prices step around
    /// the base by up to 1 % in a pattern of 21 ticks, quantities cycle through 0.1 to 0.5.
    fn updates(&self, index: u64, tick: u64, time_ms: u64) -> (Ticker, Trade) {
        let step = ((tick * 7 + index * 5) % 21) as f64 - 10.0;
        let last = round(self.base * (1.0 + step / 1000.0));
        let spread = round(self.base / 10_000.0);
        // Tenths, so that the running volume is exact.
        let qty_tenths = (tick + index) % 5 + 1;
        // The quantities of ticks 0 to `tick`: 15 tenths per full cycle of 5, then the rest.
        let count = tick + 1;
        let volume_tenths =
            count / 5 * 15 + (0..count % 5).map(|t| (t + index) % 5 + 1).sum::<u64>();
        let symbol = self.symbol.clone();
        let ticker = Ticker {
            type_: "ticker".to_owned(),
            symbol: symbol.clone(),
            seq: tick,
            bid: round(last - spread),
            ask: round(last + spread),
            last,
            volume: volume_tenths as f64 / 10.0,
            time_ms,
        };
        let trade = Trade {
            type_: "trade".to_owned(),
            symbol,
            trade_id: NonZeroU64::MIN.saturating_add(tick),
            side: if (tick + index).is_multiple_of(2) {
                TradeSide::Buy
            } else {
                TradeSide::Sell
            },
            price: last,
            qty: qty_tenths as f64 / 10.0,
            time_ms,
        };
        (ticker, trade)
    }
}

/// Four decimals: enough for every listed price, and short on the wire.
fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// Ticks every `interval` while the market exists.
async fn publish(market: Weak<Market>, interval: Duration) {
    let mut timer = tokio::time::interval(interval);
    // A late tick is published late, not in a burst to catch up.
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for tick in 0u64.. {
        timer.tick().await;
        let Some(market) = market.upgrade() else {
            return;
        };
        market.tick(tick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listing_is_a_symbol_the_contract_accepts() {
        assert_eq!(Market::new().symbols().count(), LISTINGS.len());
    }

    #[test]
    fn updates_are_deterministic_and_match_the_contract() {
        let market = Market::new();
        for (index, listing) in market.listings.iter().enumerate() {
            for tick in 0..100 {
                let (ticker, trade) = listing.updates(index as u64, tick, 1);
                assert_eq!(
                    (ticker.clone(), trade.clone()),
                    listing.updates(index as u64, tick, 1)
                );
                // Frame::new checks the contract's schema in debug builds (tests).
                Frame::new(&ticker).expect("ticker matches the contract");
                Frame::new(&trade).expect("trade matches the contract");
                assert!(
                    ticker.bid < ticker.last && ticker.last < ticker.ask,
                    "{ticker:?}"
                );
                // The running volume is the sum of every trade so far.
                let traded: u64 = (0..=tick).map(|t| (t + index as u64) % 5 + 1).sum();
                assert_eq!(ticker.volume, traded as f64 / 10.0, "{ticker:?}");
            }
        }
    }
}
