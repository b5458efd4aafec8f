//! `impl FeedChannel for Market`: each request of the contract and its reply.
//!
//! The generator gives the reply's type, not its `req_id`: copying the request's `req_id`
//! into every reply (and the constant `type` of each message) is written here by hand.

use std::time::{SystemTime, UNIX_EPOCH};

use wfs_runtime::{ChannelError, Handshake, ParamsError, Reject};

use crate::contract::feed::{
    FeedChannel, FeedConnection, FeedParams, SubscribeReply, UnsubscribeReply,
};
use crate::contract::types::{
    ErrorReply, ErrorReplyCode, Ping, Pong, ReqId, Subscribe, Subscribed, Symbol, Unsubscribe,
    Unsubscribed,
};
use crate::market::{Market, Refusal};

impl FeedChannel for Market {
    /// Nothing per connection beyond its subscriptions, which the market holds by id.
    type State = ();

    async fn on_connect(
        &self,
        _handshake: &Handshake,
        _params: Result<FeedParams, ParamsError>,
    ) -> Result<(), Reject> {
        // The feed is public and its address has no parameters: everyone may connect.
        Ok(())
    }

    async fn ping(
        &self,
        _connection: &FeedConnection,
        _state: &(),
        message: Ping,
    ) -> Result<Pong, ChannelError> {
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            });
        Ok(Pong {
            type_: "pong".to_owned(),
            req_id: message.req_id,
            time_ms,
        })
    }

    async fn subscribe(
        &self,
        connection: &FeedConnection,
        _state: &(),
        message: Subscribe,
    ) -> Result<SubscribeReply, ChannelError> {
        let Subscribe { req_id, params, .. } = message;
        Ok(
            match self.add_subscription(connection, params.channel, &params.symbols) {
                Ok(()) => SubscribeReply::Subscribed(Subscribed {
                    type_: "subscribed".to_owned(),
                    req_id,
                    channel: params.channel,
                    symbols: params.symbols,
                }),
                Err(refusal) => SubscribeReply::Error(error_reply(req_id, refusal)),
            },
        )
    }

    async fn unsubscribe(
        &self,
        connection: &FeedConnection,
        _state: &(),
        message: Unsubscribe,
    ) -> Result<UnsubscribeReply, ChannelError> {
        let Unsubscribe { req_id, params, .. } = message;
        Ok(
            match self.remove_subscription(connection, params.channel, &params.symbols) {
                Ok(()) => UnsubscribeReply::Unsubscribed(Unsubscribed {
                    type_: "unsubscribed".to_owned(),
                    req_id,
                    channel: params.channel,
                    symbols: params.symbols,
                }),
                Err(refusal) => UnsubscribeReply::Error(error_reply(req_id, refusal)),
            },
        )
    }

    async fn on_close(&self, connection: &FeedConnection, _state: &()) {
        self.forget(connection);
    }
}

/// The `error` reply to request `req_id`.
fn error_reply(req_id: ReqId, refusal: Refusal) -> ErrorReply {
    let (code, what, symbols) = match refusal {
        Refusal::Unknown(symbols) => (ErrorReplyCode::UnknownSymbol, "not listed", symbols),
        Refusal::NotSubscribed(symbols) => {
            (ErrorReplyCode::NotSubscribed, "not subscribed", symbols)
        }
    };
    ErrorReply {
        type_: "error".to_owned(),
        req_id,
        code,
        message: format!("{what}: {}", join(&symbols)),
        symbols,
    }
}

fn join(symbols: &[Symbol]) -> String {
    symbols
        .iter()
        .map(|symbol| symbol.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
