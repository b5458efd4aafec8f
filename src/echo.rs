//! The echo channel (`/ws/v1/echo`): every JSON value a client sends (object, array, string,
//! number, `null`) comes back unchanged, as the old service did; only non-JSON closes (1003).

use wfs_runtime::{ChannelError, Handshake, ParamsError, Reject};

use crate::app::App;
use crate::contract::echo::{EchoChannel, EchoConnection, EchoParams};
use crate::contract::types::EchoMessage;

impl EchoChannel for App {
    type State = ();

    async fn on_connect(
        &self,
        _handshake: &Handshake,
        params: Result<EchoParams, ParamsError>,
    ) -> Result<(), Reject> {
        // Echo has no parameters; a failure here would be a contract change.
        params
            .map(|_| ())
            .map_err(|error| Reject::close(1008, error.to_string()))
    }

    async fn receive_echo(
        &self,
        _connection: &EchoConnection,
        _state: &(),
        message: EchoMessage,
    ) -> Result<EchoMessage, ChannelError> {
        Ok(message)
    }
}
