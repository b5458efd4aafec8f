//! Server-Sent Events: `GET /sse/v1/alert?city_uuid=&access_token=` streams a city's alerts,
//! for clients that cannot or would rather not speak WebSocket (an `EventSource` in a page,
//! `curl -N`).
//!
//! It is the alert channel by other means, so it shares everything that matters with it:
//! - the handshake ([`App::admit`]): a bad token is HTTP 403 as on the WebSocket; a bad or
//!   unknown `city_uuid`, which the WebSocket reports with a 1008 close, is HTTP 400 or 404
//!   with the same sentence (an SSE response has no close frame, and a non-200 answer also
//!   stops a browser's `EventSource` from retrying);
//! - the hub: each stream is an [`Outlet`] of the alert fan-out, so an alert published anywhere
//!   (REST, `wfs alert`, another instance through the bus) reaches it like a socket, as the same
//!   typed `Frame<Alert>`;
//! - the bytes: each event's `data:` is the very JSON the WebSocket sends (the frame's text),
//!   and its `id:` is the alert id (the publication's, so no event is parsed to find it).
//!
//! `Last-Event-ID` (sent by browsers when they reconnect) resumes after that alert: the stream
//! subscribes first with live alerts held back, sends the stored alerts after the id, then
//! lets the held-back ones through, skipping any it already sent (the hub's `go_live`): no gap
//! and no duplicate.
//!
//! A stream whose client does not read fast enough is ended (its queue is bounded, like a
//! socket's); the client reconnects with `Last-Event-ID` and catches up from the store.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures_util::Stream;
use poem::http::StatusCode;
use poem::web::Data;
use poem::web::sse::{Event, SSE};
use poem::{IntoResponse, Request, Response, handler};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;
use wfs_runtime::{Frame, Handshake, ParamsError, Reject};

use crate::app::{App, alert_payload};
use crate::contract::types::Alert;
use crate::hub::{Hub, Outlet, Publication};
use crate::store::Store;

/// Stored alerts read per round trip while catching up.
const REPLAY_PAGE: u32 = 256;

/// How long a browser waits before reconnecting after the stream ends.
const RETRY_MS: u64 = 2000;

/// Outlet ids share the hub's id space with WebSocket connections, which count up from 1:
/// streams count down from the top, so the two can never meet.
static NEXT_STREAM_ID: AtomicU64 = AtomicU64::new(u64::MAX);

/// One SSE stream as the hub sees it: a bounded queue that is never waited on.
struct SseOutlet {
    id: u64,
    queue: mpsc::Sender<Publication<Alert>>,
    /// Set when the queue overflowed: the stream ends (the client resumes from the store).
    overflowed: AtomicBool,
    wake: Notify,
}

impl Outlet<Alert> for SseOutlet {
    fn id(&self) -> u64 {
        self.id
    }

    fn push(&self, publication: &Publication<Alert>) -> bool {
        // A clone shares the frame's bytes: nothing is copied until the event is written.
        match self.queue.try_send(publication.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn overflow(&self) {
        self.overflowed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// Leaves the hub when the stream is dropped, whatever ended it (client gone, overflow,
/// shutdown), so a closed stream leaves nothing behind.
struct Subscription {
    hub: Arc<Hub>,
    city: Uuid,
    outlet: Arc<SseOutlet>,
    /// Counts the stream as open for `/metrics` while it lives.
    _open: crate::metrics::StreamGuard,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.alert.unsubscribe(self.city, self.outlet.id);
    }
}

/// `GET /sse/v1/alert?city_uuid=&access_token=`, optionally with `Last-Event-ID`.
#[handler]
pub async fn alert_stream(
    request: &Request,
    app: Data<&Arc<App>>,
    config: Data<&Arc<wfs_runtime::Config>>,
) -> Response {
    // As for WebSockets: a server on its way down takes no new streams.
    if config.is_shutting_down() {
        app.metrics.refused("alert", "sse", "shutting_down");
        return plain(503, "Server is shutting down.".to_owned());
    }
    let handshake = Handshake::from_request(request, &[]);
    let city_param = match handshake.query("city_uuid") {
        None => Err(ParamsError {
            problems: vec![wfs_runtime::ParamProblem {
                location: "query",
                name: "city_uuid".to_owned(),
                invalid: None,
            }],
        }),
        Some(raw) => wfs_runtime::params::uuid(raw).map_err(|why| ParamsError {
            problems: vec![ParamsError::invalid("query", "city_uuid", why)],
        }),
    };
    let city_given = city_param.is_ok();
    let city = match app.admit(&handshake, city_param).await {
        Ok((_user, city)) => city,
        Err(Reject::Http { status, body }) => return plain(status, body),
        // The WebSocket's 1008 cases: the parameter itself, or no such city.
        Err(Reject::Close { reason, .. }) => {
            let status = if city_given { 404 } else { 400 };
            return plain(status, reason);
        }
    };
    // Only a number is a position in the history; anything else starts live, as a first
    // connection does.
    let resume_after = request
        .header("last-event-id")
        .and_then(|id| id.trim().parse::<i64>().ok())
        .filter(|id| *id >= 0);

    // A comment line every ping interval keeps proxies from closing an idle stream, and is how
    // a client that went away is noticed (a write fails): the server never reads the socket
    // of a streaming response.
    let keep_alive = config.ping_interval;
    let (queue, frames) = mpsc::channel(config.outbound_queue.max(1));
    let outlet = Arc::new(SseOutlet {
        id: NEXT_STREAM_ID.fetch_sub(1, Ordering::Relaxed),
        queue,
        overflowed: AtomicBool::new(false),
        wake: Notify::new(),
    });
    match resume_after {
        None => app.hub.alert.subscribe(city.uuid, outlet.clone()),
        Some(after) => {
            app.hub
                .alert
                .subscribe_catching_up(city.uuid, outlet.clone());
            tokio::spawn(catch_up(
                app.metrics.replayed("sse"),
                app.store.clone(),
                app.hub.clone(),
                outlet.clone(),
                city.uuid,
                after,
            ));
        }
    }
    let subscription = Subscription {
        hub: app.hub.clone(),
        city: city.uuid,
        outlet,
        _open: app.metrics.sse_stream(),
    };
    SSE::new(events(subscription, frames, config.0.clone()))
        .keep_alive(keep_alive)
        .into_response()
}

fn plain(status: u16, body: String) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

/// Sends the stored alerts after `after` (waiting for queue room: the client sets the pace),
/// then lets the live alerts the hub held back meanwhile through. When the history cannot be
/// read, the stream ends instead: going live would skip what was missed with nothing said,
/// and the browser's `EventSource` reconnects by itself with the last id it got.
async fn catch_up(
    replayed: Counter,
    store: Store,
    hub: Arc<Hub>,
    outlet: Arc<SseOutlet>,
    city: Uuid,
    after: i64,
) {
    let mut last = after;
    let unreadable = |error: crate::store::StoreError| {
        tracing::warn!(%error, "missed alerts not replayed; the SSE stream ends");
        outlet.overflow(); // ends the stream
    };
    // An alert that went by before this stream joined is in the history once this returns.
    if let Err(error) = store.wait_for_alert_writers(city).await {
        return unreadable(error);
    }
    loop {
        let page = match store.alerts_after(city, last, REPLAY_PAGE).await {
            Ok(page) => page,
            Err(error) => return unreadable(error),
        };
        let full = page.len() == REPLAY_PAGE as usize;
        for stored in page {
            let id = stored.id;
            let Some(frame) = alert_payload(stored)
                .ok()
                .and_then(|alert| Frame::new(&alert).ok())
            else {
                continue;
            };
            let publication = Publication {
                id: Some(id),
                frame,
            };
            if outlet.queue.send(publication).await.is_err() {
                return; // the stream is gone
            }
            replayed.inc();
            last = id;
        }
        if !full {
            break;
        }
    }
    hub.alert.go_live(city, outlet.id, last);
}

/// The stream of events: one per frame, ending on overflow or shutdown. It holds the
/// subscription, so dropping it (the client went away) leaves the hub.
fn events(
    subscription: Subscription,
    frames: mpsc::Receiver<Publication<Alert>>,
    config: Arc<wfs_runtime::Config>,
) -> Pin<Box<dyn Stream<Item = Event> + Send>> {
    let first = futures_util::stream::iter([Event::retry(RETRY_MS)]);
    let state = (subscription, frames, config);
    let rest =
        futures_util::stream::unfold(state, |(subscription, mut frames, config)| async move {
            let outlet = subscription.outlet.clone();
            let publication = tokio::select! {
                publication = frames.recv() => publication,
                () = outlet.wake.notified(), if !outlet.overflowed.load(Ordering::Acquire) => None,
                () = config.shutting_down() => None,
            };
            // An overflow noticed between two frames ends the stream too.
            if outlet.overflowed.load(Ordering::Acquire) {
                return None;
            }
            let publication = publication?;
            Some((event(&publication), (subscription, frames, config)))
        });
    Box::pin(futures_util::StreamExt::chain(first, rest))
}

/// `data:` the JSON as sent on the WebSocket, `id:` the alert's id.
fn event(publication: &Publication<Alert>) -> Event {
    let event = Event::message(publication.frame.as_str());
    match publication.id {
        Some(id) => event.id(id.to_string()),
        None => event,
    }
}
