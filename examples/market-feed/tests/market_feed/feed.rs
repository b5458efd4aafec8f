//! The feed as a client sees it: replies carry their request's `req_id`, pushes follow the
//! subscriptions, refusals are `error` replies, and frames the contract forbids close the
//! connection with the contract's codes.

use market_feed::contract::feed::FeedOutbound;
use market_feed::contract::types::{ErrorReplyCode, MarketChannel};
use wfs_runtime::client::ClientError;
use wfs_runtime::tokio_tungstenite::tungstenite::Message;

use crate::{
    TICK, WAIT, connect, count, ping, pushes_during, pushes_until, recv, reply, start, subscribe,
    symbols, unsubscribe,
};

#[tokio::test]
async fn ping_is_answered_by_pong_with_the_same_req_id() {
    let server = start().await;
    let mut client = connect(&server).await;
    client.send_ping(&ping(7)).await.expect("ping sent");
    client.send_ping(&ping(1 << 40)).await.expect("ping sent");
    // Nothing is subscribed, so nothing but the replies arrives, in order.
    for id in [7, 1 << 40] {
        match recv(&mut client).await {
            FeedOutbound::Pong(pong) => assert_eq!(pong.req_id.0, id),
            other => panic!("a pong, not {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_ticker_subscription_pushes_tickers_of_its_symbols_only() {
    let server = start().await;
    let mut client = connect(&server).await;
    let wanted = ["BTC-USD", "ETH-USD"];
    client
        .send_subscribe(&subscribe(1, MarketChannel::Ticker, &wanted))
        .await
        .expect("subscribe sent");
    let (ack, early) = reply(&mut client, 1).await;
    match ack {
        FeedOutbound::Subscribed(ack) => {
            assert_eq!(ack.channel, MarketChannel::Ticker);
            assert_eq!(ack.symbols, symbols(&wanted));
        }
        other => panic!("subscribed, not {other:?}"),
    }
    // Updates may come before the reply (the contract says so); they too are of the request,
    // and count in the order check like the ones after it.
    let mut seqs: std::collections::HashMap<String, Vec<u64>> = std::collections::HashMap::new();
    let take = |seqs: &mut std::collections::HashMap<String, Vec<u64>>, frame: FeedOutbound| {
        let FeedOutbound::Ticker(ticker) = frame else {
            panic!("only tickers, not {frame:?}");
        };
        assert!(wanted.contains(&ticker.symbol.as_str()), "{ticker:?}");
        seqs.entry(ticker.symbol.to_string())
            .or_default()
            .push(ticker.seq);
    };
    for frame in early {
        take(&mut seqs, frame);
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while seqs.len() < 2 || seqs.values().any(|seen| seen.len() < 3) {
        let frame = tokio::time::timeout_at(deadline, client.recv())
            .await
            .expect("three tickers of each symbol in time")
            .expect("a frame the contract allows");
        take(&mut seqs, frame);
    }
    for (symbol, seen) in seqs {
        assert!(
            seen.windows(2).all(|pair| pair[0] < pair[1]),
            "{symbol}: ticks in order: {seen:?}"
        );
    }
}

#[tokio::test]
async fn a_trade_subscription_adds_trades_beside_the_tickers() {
    let server = start().await;
    let mut client = connect(&server).await;
    client
        .send_subscribe(&subscribe(1, MarketChannel::Ticker, &["BTC-USD"]))
        .await
        .expect("subscribe sent");
    let (ack, _) = reply(&mut client, 1).await;
    assert!(matches!(ack, FeedOutbound::Subscribed(_)), "{ack:?}");
    client
        .send_subscribe(&subscribe(2, MarketChannel::Trade, &["ETH-USD", "SOL-USD"]))
        .await
        .expect("subscribe sent");
    let (ack, _) = reply(&mut client, 2).await;
    match ack {
        FeedOutbound::Subscribed(ack) => assert_eq!(ack.channel, MarketChannel::Trade),
        other => panic!("subscribed, not {other:?}"),
    }
    let seen = pushes_until(&mut client, |seen| {
        count(seen, "ticker", "BTC-USD") >= 2
            && count(seen, "trade", "ETH-USD") >= 2
            && count(seen, "trade", "SOL-USD") >= 2
    })
    .await;
    let allowed = [
        ("ticker", "BTC-USD"),
        ("trade", "ETH-USD"),
        ("trade", "SOL-USD"),
    ];
    for (kind, symbol) in &seen {
        assert!(
            allowed.contains(&(*kind, symbol.as_str())),
            "{kind} {symbol} was not subscribed"
        );
    }
}

#[tokio::test]
async fn after_unsubscribed_no_more_updates_of_that_kind_arrive() {
    let server = start().await;
    let mut client = connect(&server).await;
    client
        .send_subscribe(&subscribe(
            1,
            MarketChannel::Ticker,
            &["BTC-USD", "ETH-USD"],
        ))
        .await
        .expect("subscribe sent");
    reply(&mut client, 1).await;
    client
        .send_subscribe(&subscribe(2, MarketChannel::Trade, &["BTC-USD"]))
        .await
        .expect("subscribe sent");
    reply(&mut client, 2).await;
    pushes_until(&mut client, |seen| {
        count(seen, "ticker", "ETH-USD") >= 1 && count(seen, "trade", "BTC-USD") >= 1
    })
    .await;

    client
        .send_unsubscribe(&unsubscribe(3, MarketChannel::Ticker, &["ETH-USD"]))
        .await
        .expect("unsubscribe sent");
    match reply(&mut client, 3).await.0 {
        FeedOutbound::Unsubscribed(ack) => {
            assert_eq!(ack.channel, MarketChannel::Ticker);
            assert_eq!(ack.symbols, symbols(&["ETH-USD"]));
        }
        other => panic!("unsubscribed, not {other:?}"),
    }
    // The other subscriptions keep flowing (five ticks of each, however slow the machine);
    // over those ticks, no ETH-USD ticker.
    let seen = pushes_until(&mut client, |seen| {
        count(seen, "ticker", "BTC-USD") >= 5 && count(seen, "trade", "BTC-USD") >= 5
    })
    .await;
    assert_eq!(count(&seen, "ticker", "ETH-USD"), 0, "{seen:?}");

    client
        .send_unsubscribe(&unsubscribe(4, MarketChannel::Ticker, &["BTC-USD"]))
        .await
        .expect("unsubscribe sent");
    client
        .send_unsubscribe(&unsubscribe(5, MarketChannel::Trade, &["BTC-USD"]))
        .await
        .expect("unsubscribe sent");
    reply(&mut client, 4).await;
    let (ack, _) = reply(&mut client, 5).await;
    assert!(matches!(ack, FeedOutbound::Unsubscribed(_)), "{ack:?}");
    let seen = pushes_during(&mut client, TICK * 10).await;
    assert!(seen.is_empty(), "nothing is subscribed any more: {seen:?}");
}

#[tokio::test]
async fn refused_requests_get_an_error_reply_with_their_req_id_and_change_nothing() {
    let server = start().await;
    let mut client = connect(&server).await;
    client
        .send_subscribe(&subscribe(
            9,
            MarketChannel::Ticker,
            &["BTC-USD", "DOGE-USD"],
        ))
        .await
        .expect("subscribe sent");
    match recv(&mut client).await {
        FeedOutbound::Error(error) => {
            assert_eq!(error.req_id.0, 9);
            assert_eq!(error.code, ErrorReplyCode::UnknownSymbol);
            assert_eq!(error.symbols, symbols(&["DOGE-USD"]));
        }
        other => panic!("an error reply, not {other:?}"),
    }
    client
        .send_unsubscribe(&unsubscribe(10, MarketChannel::Trade, &["ETH-USD"]))
        .await
        .expect("unsubscribe sent");
    match recv(&mut client).await {
        FeedOutbound::Error(error) => {
            assert_eq!(error.req_id.0, 10);
            assert_eq!(error.code, ErrorReplyCode::NotSubscribed);
            assert_eq!(error.symbols, symbols(&["ETH-USD"]));
        }
        other => panic!("an error reply, not {other:?}"),
    }
    // BTC-USD was not subscribed either: five ticks later, the next frame is the pong.
    tokio::time::sleep(TICK * 5).await;
    client.send_ping(&ping(11)).await.expect("ping sent");
    match recv(&mut client).await {
        FeedOutbound::Pong(pong) => assert_eq!(pong.req_id.0, 11),
        other => panic!("no update, then the pong; not {other:?}"),
    }
}

#[tokio::test]
async fn frames_the_contract_does_not_allow_close_with_its_codes() {
    let server = start().await;
    let cases: [(&str, Message, u16); 4] = [
        ("not JSON", Message::text("subscribe BTC-USD"), 1003),
        ("binary", Message::binary(vec![1, 2, 3]), 1003),
        ("no req_id", Message::text(r#"{"method":"ping"}"#), 1007),
        (
            "no symbols",
            Message::text(
                r#"{"method":"subscribe","req_id":1,"params":{"channel":"ticker","symbols":[]}}"#,
            ),
            1007,
        ),
    ];
    for (what, frame, code) in cases {
        let mut client = connect(&server).await;
        client.raw().send_raw(frame).await.expect("frame sent");
        match tokio::time::timeout(WAIT, client.recv()).await {
            Ok(Err(ClientError::Closed { code: got, .. })) => {
                assert_eq!(got, code, "{what}: closed with {code}");
            }
            other => panic!("{what}: a close with {code}, not {other:?}"),
        }
    }
}
