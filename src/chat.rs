//! The chat channel (`/ws/v1/chat`): one room per city.
//!
//! On open the member is welcomed (`Welcome in <City> chat.`) and joins the room's topic. Each
//! message a member sends is serialised once, with the sender's name, as a
//! `Frame<ChatBroadcast>`, and goes through the bus to every member of the room, the sender
//! included, by the channel's generated handle ([`ChatConnection`]).
//!
//! Each connection has its own rate limit ([`crate::rate`]): over it, messages are dropped and
//! the first one dropped is answered with an `error` (`rate_limited`); a member who keeps
//! sending while limited is closed with 1008. Frames that break the contract count too, so a
//! flood of bad frames is not answered frame for frame.

use std::sync::Arc;

use chrono::Utc;
use wfs_runtime::{ChannelError, Frame, FrameError, Handshake, ParamsError, Reject};

use crate::app::App;
use crate::contract::chat::{ChatChannel, ChatConnection, ChatParams};
use crate::contract::types::{
    ChatBroadcast, ChatMessage, ChatWelcome, Error as ErrorMessage, ErrorCode,
};
use crate::hub::{Outlet, Publication};
use crate::rate::{Bucket, Verdict};
use crate::store::{City, User};

/// The close reason of a member who keeps sending while limited (the contract's words).
const ABUSE_REASON: &str = "Too many messages: slow down.";

/// A member of one city's room.
#[derive(Debug)]
pub struct ChatSession {
    /// Shared with the handshake cache and the other members: the name goes in every message.
    pub user: Arc<User>,
    /// Shared with every member of the room.
    pub city: Arc<City>,
    /// This connection's rate limit.
    pub bucket: Bucket,
}

/// Whether a frame from this member may be handled; tells the member when it may not.
fn within_limit(connection: &ChatConnection, session: &ChatSession) -> bool {
    match session.bucket.check() {
        Verdict::Allowed => true,
        Verdict::Dropped { first } => {
            if first {
                let _ = connection.send_chat_error(&error_message(
                    ErrorCode::RateLimited,
                    "Too many messages, slow down: this one and any sent before the limit allows are dropped.",
                ));
            }
            false
        }
        Verdict::Abuse => {
            tracing::warn!(user = %session.user.username, "chat connection closed: kept sending while rate limited");
            connection.close(1008, ABUSE_REASON);
            false
        }
    }
}

fn error_message(code: ErrorCode, message: impl Into<String>) -> ErrorMessage {
    ErrorMessage {
        type_: "error".to_owned(),
        code,
        message: message.into(),
    }
}

/// A member's socket is where the room's messages go: through the generated handle, which takes
/// `Frame<ChatBroadcast>` only.
impl Outlet<ChatBroadcast> for ChatConnection {
    fn id(&self) -> u64 {
        self.connection().id()
    }

    fn push(&self, publication: &Publication<ChatBroadcast>) -> bool {
        // A full queue closes the connection (1013) and refuses: live fan-out never waits.
        self.send_chat_frame(&publication.frame).is_ok()
    }

    fn overflow(&self) {
        self.connection().close_too_slow();
    }
}

impl ChatChannel for App {
    type State = ChatSession;

    async fn on_connect(
        &self,
        handshake: &Handshake,
        params: Result<ChatParams, ParamsError>,
    ) -> Result<ChatSession, Reject> {
        let (user, city) = self.admit(handshake, params.map(|p| p.city_uuid)).await?;
        Ok(ChatSession {
            user,
            city,
            bucket: Bucket::new(self.chat_limit),
        })
    }

    async fn on_open(&self, connection: &ChatConnection, session: &ChatSession) {
        let welcome = ChatWelcome {
            type_: "welcome".to_owned(),
            message: format!("Welcome in {} chat.", session.city.name),
            city_uuid: session.city.uuid,
        };
        if let Err(error) = connection.send_chat_welcome(&welcome) {
            tracing::warn!(%error, "welcome not sent");
        }
        self.hub
            .chat
            .subscribe(session.city.uuid, Arc::new(connection.clone()));
    }

    async fn receive_chat(
        &self,
        connection: &ChatConnection,
        session: &ChatSession,
        message: ChatMessage,
    ) -> Result<(), ChannelError> {
        if !within_limit(connection, session) {
            return Ok(());
        }
        let broadcast = ChatBroadcast {
            type_: "chat".to_owned(),
            message: String::from(message.message),
            user: session.user.username.clone(),
            city_uuid: session.city.uuid,
            sent_at: Utc::now(),
        };
        let started = std::time::Instant::now();
        let frame = Frame::new(&broadcast).map_err(|error| {
            tracing::error!(%error, "chat message does not match the contract");
            ChannelError::internal()
        })?;
        if let Err(error) = self
            .bus
            .publish_chat(session.city.uuid, Publication { id: None, frame })
            .await
        {
            tracing::warn!(%error, "chat message not delivered");
            let _ = connection.send_chat_error(&error_message(
                ErrorCode::Internal,
                "Your message reached the members connected to this server only; members on other servers did not get it.",
            ));
        }
        self.metrics.published("chat", started.elapsed());
        Ok(())
    }

    async fn on_invalid_frame(
        &self,
        connection: &ChatConnection,
        session: &ChatSession,
        error: FrameError,
    ) {
        match error {
            FrameError::NotJson(_) | FrameError::Binary => {
                connection.close(error.close_code(), error.close_reason());
            }
            // Valid JSON that is not a chat message (not an object, no `message`, too long):
            // tell the member why and keep the connection.
            FrameError::Contract(_) => {
                if !within_limit(connection, session) {
                    return;
                }
                let _ = connection.send_chat_error(&error_message(
                    ErrorCode::InvalidMessage,
                    format!("Send {{\"message\": \"...\"}} with 1 to 4096 characters ({error})."),
                ));
            }
        }
    }

    async fn on_close(&self, connection: &ChatConnection, session: &ChatSession) {
        self.hub
            .chat
            .unsubscribe(session.city.uuid, connection.connection().id());
    }
}
