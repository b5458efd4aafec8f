//! The whole server against its contract, as a team using the generator would check theirs in
//! CI: `asyncapi-conform` connects to a running server and sends every example of every request,
//! checks each reply (message and `req_id`), every push, and frames that break the contract.

use std::path::Path;

use crate::{WAIT, start};

#[tokio::test]
async fn the_server_conforms_to_its_contract() {
    let document = Path::new(env!("CARGO_MANIFEST_DIR")).join("asyncapi.yaml");
    let contract = wfs_codegen::Contract::load(&document).expect("the example's contract loads");
    let server = start().await;
    let mut options = asyncapi_conform::Options::new(server.url.clone());
    options.timeout = WAIT;
    let report = tokio::time::timeout(WAIT * 6, asyncapi_conform::run(&contract, &options))
        .await
        .expect("conform finishes in time");
    assert_eq!(report.violations(), 0, "{}", report.render_text());
    // Every request has an example and a reply: none may be left unchecked.
    let text = report.render_text();
    for request in [
        "reply ping",
        "reply subscribe",
        "reply unsubscribe",
        "push every frame",
    ] {
        assert!(text.contains(request), "no `{request}` check:\n{text}");
    }
}
