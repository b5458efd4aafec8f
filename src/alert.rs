//! The alert channel (`/ws/v1/alert`): the server pushes every alert published for one city.
//!
//! Clients only listen. A connection subscribes to its city's topic when it opens and leaves it
//! when it closes, so a closed connection leaves nothing behind in the hub. A client that
//! reconnects with `since=<id>` first gets the alerts it missed (from the store), then live
//! ones: the hub holds live alerts back until the replay is done and drops the ones already
//! sent, so there is no gap and no duplicate.
//!
//! Both paths send typed frames, serialised from the contract's types: the hub hands
//! `Frame<Alert>`s to the channel's generated handle ([`AlertConnection`]), and the replay sends
//! frames of this channel's two messages only, `Alert` and `Error` ([`Replayed`]).

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use uuid::Uuid;
use wfs_runtime::{Frame, FrameError, Handshake, ParamsError, Reject, SendError};

use crate::app::{App, alert_payload};
use crate::contract::alert::{AlertChannel, AlertConnection, AlertParams};
use crate::contract::types::{Alert, Error as ErrorMessage, ErrorCode};
use crate::hub::{Hub, Outlet, Publication};
use crate::store::Store;

/// Which city a connection listens to, from which alert on. Only the ids: this lives as long
/// as the connection, 10,000 times over, and nothing after the handshake needs the user or the
/// city's other fields (the handshake checked both).
#[derive(Debug)]
pub struct AlertSession {
    pub city: Uuid,
    /// The last alert the client saw, when it reconnects.
    pub since: Option<i64>,
}

fn error_message(code: ErrorCode, message: impl Into<String>) -> ErrorMessage {
    ErrorMessage {
        type_: "error".to_owned(),
        code,
        message: message.into(),
    }
}

/// A socket of this channel is where the hub's alerts go: through the generated handle, which
/// takes `Frame<Alert>` only.
impl Outlet<Alert> for AlertConnection {
    fn id(&self) -> u64 {
        self.connection().id()
    }

    fn push(&self, publication: &Publication<Alert>) -> bool {
        // A full queue closes the connection (1013) and refuses: live fan-out never waits.
        self.send_alert_frame(&publication.frame).is_ok()
    }

    fn overflow(&self) {
        self.connection().close_too_slow();
    }
}

impl AlertChannel for App {
    type State = AlertSession;

    async fn on_connect(
        &self,
        handshake: &Handshake,
        params: Result<AlertParams, ParamsError>,
    ) -> Result<AlertSession, Reject> {
        let since = params.as_ref().ok().and_then(|params| params.since);
        let (_user, city) = self.admit(handshake, params.map(|p| p.city_uuid)).await?;
        Ok(AlertSession {
            city: city.uuid,
            since,
        })
    }

    async fn on_open(&self, connection: &AlertConnection, session: &AlertSession) {
        let city = session.city;
        let outlet = Arc::new(connection.clone());
        match session.since {
            None => self.hub.alert.subscribe(city, outlet),
            Some(since) => {
                self.hub.alert.subscribe_catching_up(city, outlet);
                // Replayed from a task of its own, paced by the client, so the socket loop
                // keeps draining the queue meanwhile.
                tokio::spawn(replay(
                    self.metrics.replayed("websocket"),
                    self.store.clone(),
                    self.hub.clone(),
                    connection.clone(),
                    city,
                    since,
                ));
            }
        }
    }

    async fn on_invalid_frame(
        &self,
        connection: &AlertConnection,
        _session: &AlertSession,
        error: FrameError,
    ) {
        match error {
            // Not JSON text at all: WIRE.md's 1003.
            FrameError::NotJson(_) | FrameError::Binary => {
                connection.close(error.close_code(), error.close_reason());
            }
            // JSON, but clients send nothing on this channel: say so and stay open.
            FrameError::Contract(_) => {
                let _ = connection.send_alert_error(&error_message(
                    ErrorCode::InvalidMessage,
                    "This channel only pushes alerts; clients send nothing on it.",
                ));
            }
        }
    }

    async fn on_close(&self, connection: &AlertConnection, session: &AlertSession) {
        self.hub
            .alert
            .unsubscribe(session.city, connection.connection().id());
    }
}

/// Alerts read from the store per round trip while replaying.
const REPLAY_PAGE: u32 = 256;

/// Sends `city`'s alerts after `since`, then lets the hub's held-back live alerts through.
async fn replay(
    replayed: Counter,
    store: Store,
    hub: Arc<Hub>,
    connection: AlertConnection,
    city: Uuid,
    since: i64,
) {
    let mut last = since;
    if let Err(error) = send_missed(&replayed, &store, &connection, city, &mut last).await {
        tracing::warn!(%error, "alert history not replayed");
        let message = error_message(
            ErrorCode::Internal,
            "The missed alerts could not be read; live alerts follow.",
        );
        if let Ok(frame) = Frame::new(&message) {
            let _ = send_waiting(&connection, Replayed::Error(frame)).await;
        }
    }
    hub.alert.go_live(city, connection.connection().id(), last);
}

/// What the replay sends: this channel's two messages, as frames.
enum Replayed {
    Alert(Frame<Alert>),
    Error(Frame<ErrorMessage>),
}

/// Queues a replayed frame, waiting for room: the replay is paced by the client. The
/// generated handle's sends never wait (they serve live traffic), so this goes one level
/// down, to the runtime's waiting send; [`Replayed`] keeps it to this channel's messages.
async fn send_waiting(connection: &AlertConnection, frame: Replayed) -> Result<(), SendError> {
    let connection = connection.connection();
    match frame {
        Replayed::Alert(frame) => connection.send_frame_waiting(&frame).await,
        Replayed::Error(frame) => connection.send_frame_waiting(&frame).await,
    }
}

#[derive(Debug, thiserror::Error)]
enum ReplayError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Send(#[from] SendError),
}

async fn send_missed(
    replayed: &Counter,
    store: &Store,
    connection: &AlertConnection,
    city: Uuid,
    last: &mut i64,
) -> Result<(), ReplayError> {
    // An alert that went by before this subscriber joined is in the history once this returns.
    store.wait_for_alert_writers(city).await?;
    let floor = store.history_floor(city).await?;
    if *last < floor {
        let message = error_message(
            ErrorCode::HistoryTruncated,
            format!(
                "Alerts after id {last} are no longer all kept (history starts after id {floor}); the alerts still kept follow."
            ),
        );
        send_waiting(connection, Replayed::Error(Frame::new(&message)?)).await?;
    }
    loop {
        let page = store.alerts_after(city, *last, REPLAY_PAGE).await?;
        let full = page.len() == REPLAY_PAGE as usize;
        for stored in page {
            let id = stored.id;
            let frame = Frame::new(&alert_payload(stored)?)?;
            send_waiting(connection, Replayed::Alert(frame)).await?;
            replayed.inc();
            *last = id;
        }
        if !full {
            return Ok(());
        }
    }
}
