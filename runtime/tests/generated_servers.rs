//! Generated servers over a real WebSocket: the code `wfs-codegen` makes from two of its
//! fixtures (`runtime/tests/generated/`, kept fresh by a codegen test), served on 127.0.0.1:0
//! and driven by real clients.
//!
//! - `mixed-address.yaml`: address segments that mix parameters and text are matched exactly
//!   at the handshake (anything else is a 404) and read into typed parameters.
//! - `validator-keywords.yaml`: `not`, `if`/`then`/`else`, `dependentSchemas` and
//!   `unevaluatedProperties` cannot become Rust types, so the run-time validator enforces them:
//!   a frame that breaks one is refused (close 1007) although its Rust type would accept it.

use std::sync::Arc;
use std::time::Duration;

use wfs_runtime::client::ClientError;
use wfs_runtime::{ChannelError, Handshake, ParamsError, Reject};

// A generated file declares more than one test uses (clients, frames of every message).
#[allow(dead_code)]
mod mixed {
    include!("generated/mixed_address.rs");
}

#[allow(dead_code)]
mod keywords {
    include!("generated/validator_keywords.rs");
}

const WAIT: Duration = Duration::from_secs(10);

/// Serves `route` on 127.0.0.1:0 until the test ends; returns `ws://127.0.0.1:<port>`.
async fn serve(route: wfs_runtime::poem::Route) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = wfs_runtime::poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(wfs_runtime::poem::Server::new_with_acceptor(acceptor).run(route));
    format!("ws://{address}")
}

/// Refuses a handshake whose parameters are wrong, as a real service would.
fn accept<P>(params: Result<P, ParamsError>) -> Result<P, Reject> {
    params.map_err(|error| Reject::close(1008, error.to_string()))
}

struct Markets;

impl mixed::trades::TradesChannel for Markets {
    type State = mixed::trades::TradesParams;

    async fn on_connect(
        &self,
        _: &Handshake,
        params: Result<mixed::trades::TradesParams, ParamsError>,
    ) -> Result<Self::State, Reject> {
        accept(params)
    }

    async fn receive_hello(
        &self,
        _: &mixed::trades::TradesConnection,
        state: &Self::State,
        _: mixed::types::Hello,
    ) -> Result<mixed::types::Market, ChannelError> {
        Ok(mixed::types::Market {
            exchange: state.exchange_code.clone(),
            pair: format!("{}/{}", state.primary_currency, state.secondary_currency),
        })
    }
}

impl mixed::spot::SpotChannel for Markets {
    type State = ();

    async fn on_connect(
        &self,
        _: &Handshake,
        params: Result<mixed::spot::SpotParams, ParamsError>,
    ) -> Result<(), Reject> {
        accept(params).map(|_| ())
    }

    async fn receive_spot(
        &self,
        _: &mixed::spot::SpotConnection,
        _: &(),
        _: mixed::types::Hello,
    ) -> Result<(), ChannelError> {
        Ok(())
    }
}

impl mixed::kinds::KindsChannel for Markets {
    type State = ();

    async fn on_connect(
        &self,
        _: &Handshake,
        params: Result<mixed::kinds::KindsParams, ParamsError>,
    ) -> Result<(), Reject> {
        accept(params).map(|_| ())
    }

    async fn receive_kind(
        &self,
        _: &mixed::kinds::KindsConnection,
        _: &(),
        _: mixed::types::Hello,
    ) -> Result<(), ChannelError> {
        Ok(())
    }
}

impl mixed::measured::MeasuredChannel for Markets {
    type State = ();

    async fn on_connect(
        &self,
        _: &Handshake,
        params: Result<mixed::measured::MeasuredParams, ParamsError>,
    ) -> Result<(), Reject> {
        accept(params).map(|_| ())
    }

    async fn receive_lumens(
        &self,
        _: &mixed::measured::MeasuredConnection,
        _: &(),
        _: mixed::types::Lumens,
    ) -> Result<(), ChannelError> {
        Ok(())
    }
}

/// The HTTP status a handshake to `url` is refused with, or `None` when it is accepted.
async fn refused_status(url: &str) -> Option<u16> {
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("the handshake answers in time")
    {
        Ok(_) => None,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Some(response.status().as_u16())
        }
        Err(other) => panic!("{url}: {other}"),
    }
}

#[tokio::test]
async fn mixed_address_segments_are_matched_exactly_and_read_into_typed_params() {
    let base = serve(mixed::routes(
        Arc::new(Markets),
        Arc::new(wfs_runtime::Config::default()),
    ))
    .await;

    // The typed client builds the path from typed parameters; the server reads them back.
    let params = mixed::trades::TradesParams {
        exchange_code: "kraken".to_owned(),
        primary_currency: "BTC".to_owned(),
        secondary_currency: "EUR".to_owned(),
    };
    assert_eq!(params.path(), "/markets/TRADE-kraken--BTC--EUR");
    let mut client =
        tokio::time::timeout(WAIT, mixed::trades::TradesClient::connect(&base, &params))
            .await
            .unwrap()
            .unwrap();
    client
        .send_hello(&mixed::types::Hello {
            hello: "hi".to_owned(),
        })
        .await
        .unwrap();
    let reply = tokio::time::timeout(WAIT, client.recv()).await.unwrap();
    assert_eq!(
        reply.unwrap(),
        mixed::trades::TradesOutbound::Market(mixed::types::Market {
            exchange: "kraken".to_owned(),
            pair: "BTC/EUR".to_owned(),
        })
    );

    // Paths that look alike but do not fit the address exactly are not served.
    for wrong in [
        "/markets/TRADE-kraken--BTC",
        "/markets/TRADE-kraken-BTC-EUR",
        "/markets/TRADEkraken--BTC--EUR",
        "/markets/TRADE---BTC--EUR",
        "/markets/XTRADE-kraken--BTC--EUR",
        "/dcat",
        "/smartylighting.streetlights.1.0.event.7.lighting.measuredX",
    ] {
        assert_eq!(
            refused_status(&format!("{base}{wrong}")).await,
            Some(404),
            "{wrong} should not be served"
        );
    }
    // `TRADE-{exchangeCode}.spot` shares the route of `trades`; each path goes to the one
    // address it matches.
    assert_eq!(
        refused_status(&format!("{base}/markets/TRADE-kraken.spot")).await,
        None
    );
    // Text glued to a parameter (`c{type}`) and dotted topics are served too.
    assert_eq!(refused_status(&format!("{base}/ccat")).await, None);
    assert_eq!(
        refused_status(&format!(
            "{base}/smartylighting.streetlights.1.0.event.7.lighting.measured"
        ))
        .await,
        None
    );
    // The parameter read from `c{type}` is checked against its enum (`cat`, `cow`).
    let mut dog = mixed::kinds::KindsClient::connect(
        &base,
        &mixed::kinds::KindsParams {
            r#type: "dog".to_owned(),
        },
    )
    .await
    .unwrap();
    match tokio::time::timeout(WAIT, dog.recv()).await.unwrap() {
        Err(ClientError::Closed { code, reason }) => {
            assert_eq!(code, 1008);
            assert!(reason.contains("type"), "{reason}");
        }
        other => panic!("expected close 1008, got {other:?}"),
    }
}

#[test]
fn addresses_of_any_protocol_are_built_and_parsed() {
    let parsed = mixed::measured::MeasuredParams::from_address(
        "smartylighting.streetlights.1.0.event.lamp-7.lighting.measured",
    )
    .unwrap();
    assert_eq!(parsed.streetlight_id, "lamp-7");
    assert_eq!(
        parsed.address(),
        "smartylighting.streetlights.1.0.event.lamp-7.lighting.measured"
    );
    let error = mixed::measured::MeasuredParams::from_address("smartylighting.other").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("not an address of channel `measured`"),
        "{error}"
    );
    let trade =
        mixed::trades::TradesParams::from_address("/markets/TRADE-kraken--BTC--EUR").unwrap();
    assert_eq!(
        (
            trade.exchange_code.as_str(),
            trade.primary_currency.as_str()
        ),
        ("kraken", "BTC")
    );
}

struct Shop;

impl keywords::orders::OrdersChannel for Shop {
    type State = ();

    async fn on_connect(
        &self,
        _: &Handshake,
        params: Result<keywords::orders::OrdersParams, ParamsError>,
    ) -> Result<(), Reject> {
        accept(params).map(|_| ())
    }

    async fn receive_order(
        &self,
        _: &keywords::orders::OrdersConnection,
        _: &(),
        _: keywords::types::Order,
    ) -> Result<keywords::types::Receipt, ChannelError> {
        Ok(keywords::types::Receipt { accepted: true })
    }
}

impl keywords::cards::CardsChannel for Shop {
    type State = ();

    async fn on_connect(
        &self,
        _: &Handshake,
        params: Result<keywords::cards::CardsParams, ParamsError>,
    ) -> Result<(), Reject> {
        accept(params).map(|_| ())
    }

    async fn receive_card(
        &self,
        _: &keywords::cards::CardsConnection,
        _: &(),
        _: keywords::types::Card,
    ) -> Result<(), ChannelError> {
        Ok(())
    }
}

/// Sends `frame` on a fresh connection to `path` and says how the server answered: the reply's
/// text, or the close code.
async fn answer(base: &str, path: &str, frame: &str) -> Result<String, u16> {
    let request = wfs_runtime::client::request(base, path, &[], &[]).unwrap();
    let mut client = tokio::time::timeout(WAIT, wfs_runtime::client::Client::connect(request))
        .await
        .unwrap()
        .unwrap();
    client.send_text(frame).await.unwrap();
    match tokio::time::timeout(WAIT, client.recv_text())
        .await
        .unwrap()
    {
        Ok(text) => Ok(text),
        Err(ClientError::Closed { code, .. }) => Err(code),
        Err(other) => panic!("{path} {frame}: {other}"),
    }
}

#[tokio::test]
async fn frames_breaking_a_keyword_the_types_cannot_hold_are_refused_at_run_time() {
    let base = serve(keywords::routes(
        Arc::new(Shop),
        Arc::new(wfs_runtime::Config::default()),
    ))
    .await;
    // Every one of these decodes into the generated `Order` type; the validator decides.
    let accepted = r#"{"accepted":true}"#;
    for (frame, expected) in [
        (r#"{"kind":"pickup"}"#, Ok(accepted.to_owned())),
        (
            r#"{"kind":"delivery","address":"1 Main St"}"#,
            Ok(accepted.to_owned()),
        ),
        // if kind is delivery then an address is required
        (r#"{"kind":"delivery"}"#, Err(1007)),
        // else (pickup): not an address
        (r#"{"kind":"pickup","address":"1 Main St"}"#, Err(1007)),
        // not both a coupon and a discount
        (r#"{"kind":"pickup","coupon":"X","discount":5}"#, Err(1007)),
    ] {
        assert_eq!(answer(&base, "/orders", frame).await, expected, "{frame}");
    }
    // dependentSchemas (a number needs an expiry) and unevaluatedProperties: false; the
    // channel has no reply, so an accepted frame leaves the connection open until closed.
    for frame in [
        r#"{"number":"4111"}"#,
        r#"{"number":"4111","expiry":"12/30","cvv":"1"}"#,
    ] {
        assert_eq!(answer(&base, "/cards", frame).await, Err(1007), "{frame}");
    }
}
