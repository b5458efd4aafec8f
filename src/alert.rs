//! The alert channel (`/ws/v1/alert`): the server pushes every alert published for one city.
//!
//! Clients only listen. A connection subscribes to its city's topic when it opens and leaves it
//! when it closes, so a closed connection leaves nothing behind in the hub.

use wfs_runtime::{FrameError, Handshake, ParamsError, Reject};

use crate::App;
use crate::contract::alert::{AlertChannel, AlertConnection, AlertParams};
use crate::contract::types::{Error as ErrorMessage, ErrorCode};
use crate::hub::Topic;
use crate::store::{City, User};

/// Who is listening, to which city.
#[derive(Debug)]
pub struct AlertSession {
    pub user: User,
    pub city: City,
}

impl AlertChannel for App {
    type State = AlertSession;

    async fn on_connect(
        &self,
        handshake: &Handshake,
        params: Result<AlertParams, ParamsError>,
    ) -> Result<AlertSession, Reject> {
        let (user, city) = self.admit(handshake, params.map(|p| p.city_uuid)).await?;
        Ok(AlertSession { user, city })
    }

    async fn on_open(&self, connection: &AlertConnection, session: &AlertSession) {
        self.hub
            .subscribe(Topic::Alert(session.city.uuid), connection.connection());
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
                let _ = connection.send_alert_error(&ErrorMessage {
                    type_: "error".to_owned(),
                    code: ErrorCode::InvalidMessage,
                    message: "This channel only pushes alerts; clients send nothing on it."
                        .to_owned(),
                });
            }
        }
    }

    async fn on_close(&self, connection: &AlertConnection, session: &AlertSession) {
        self.hub.unsubscribe(
            Topic::Alert(session.city.uuid),
            connection.connection().id(),
        );
    }
}
