//! The browser pages (WIRE.md, "Pages"): `/`, `/websocket/echo`, `/websocket/alert`,
//! `/websocket/chat`, `/sse/alert` (the alerts over Server-Sent Events), their scripts and
//! style under `/static/`, and the contract as a download at `/websocket/docs/schema/manual`.
//!
//! Every file is embedded in the binary (`pages/`), so the pages work offline and a release is
//! one file. The pages hold no credentials: the alert and chat pages ask for a user name and
//! password, obtain a token from `/api/jwt/obtain` and keep it in `sessionStorage` for the tab.
//! Their WebSocket URL follows the page (`wss://` over https, same host and port).
//!
//! The index is the only page rendered on the server (its list of cities), so it shows them
//! without JavaScript; every value put into it is HTML-escaped.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Html};
use poem::{IntoResponse, Response, Route, get, handler};

use crate::app::App;

const INDEX: &str = include_str!("../pages/index.html");
const ECHO: &str = include_str!("../pages/echo.html");
const ALERT: &str = include_str!("../pages/alert.html");
const CHAT: &str = include_str!("../pages/chat.html");
const SSE_ALERT: &str = include_str!("../pages/sse-alert.html");

/// The static files under `/static/`: (name, content type, content).
const STATIC: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../pages/style.css"),
    ),
    (
        "wfs.js",
        "text/javascript; charset=utf-8",
        include_str!("../pages/wfs.js"),
    ),
    (
        "echo.js",
        "text/javascript; charset=utf-8",
        include_str!("../pages/echo.js"),
    ),
    (
        "alert.js",
        "text/javascript; charset=utf-8",
        include_str!("../pages/alert.js"),
    ),
    (
        "chat.js",
        "text/javascript; charset=utf-8",
        include_str!("../pages/chat.js"),
    ),
    (
        "sse-alert.js",
        "text/javascript; charset=utf-8",
        include_str!("../pages/sse-alert.js"),
    ),
];

/// The pages' routes, to be merged into the service's route tree.
pub fn routes(route: Route) -> Route {
    let mut route = route
        .at("/", get(index))
        .at("/websocket/echo", get(page(ECHO)))
        .at("/websocket/alert", get(page(ALERT)))
        .at("/websocket/chat", get(page(CHAT)))
        .at("/sse/alert", get(page(SSE_ALERT)))
        .at("/websocket/docs/schema/manual", get(schema_download))
        // Browsers ask for /favicon.ico on every page without a declared icon (Swagger UI).
        .at("/favicon.svg", get(favicon))
        .at("/favicon.ico", get(favicon));
    for &(name, content_type, content) in STATIC {
        route = route.at(
            format!("/static/{name}"),
            get(poem::endpoint::make_sync(move |_| {
                // The files change only with the binary: a short cache keeps a page quick
                // without serving an old script for long after an upgrade.
                content
                    .with_content_type(content_type)
                    .with_header("cache-control", "public, max-age=300")
            })),
        );
    }
    route
}

/// A fixed page, never cached, so a new release's pages show at once.
fn page(html: &'static str) -> impl poem::Endpoint<Output = Response> {
    poem::endpoint::make_sync(move |_| {
        Html(html)
            .with_header("cache-control", "no-cache")
            .into_response()
    })
}

/// `/`: the index, with the cities from the store.
#[handler]
async fn index(app: Data<&Arc<App>>) -> Response {
    let rows = match app.store.cities().await {
        Ok(cities) if !cities.is_empty() => cities
            .iter()
            .map(|city| {
                let uuid = city.uuid.to_string();
                format!(
                    "          <tr><td><a href=\"/websocket/alert?city_uuid={uuid}\">{name}</a></td>\
                     <td>{country}</td><td><code>{uuid}</code></td>\
                     <td><a href=\"/websocket/chat?city_uuid={uuid}\">chat</a> \
                     <a href=\"/sse/alert?city_uuid={uuid}\">alerts over SSE</a></td></tr>",
                    name = escape(&city.name),
                    country = escape(&city.country),
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Ok(_) => "          <tr><td colspan=\"4\">No cities in the database.</td></tr>".to_owned(),
        Err(error) => {
            tracing::error!(%error, "index: cities not listed");
            "          <tr><td colspan=\"4\">The cities could not be read; try again later.</td></tr>"
                .to_owned()
        }
    };
    Html(INDEX.replace("{{cities}}", &rows))
        .with_header("cache-control", "no-cache")
        .into_response()
}

/// The service's icon (a sun behind a cloud), SVG.
#[handler]
fn favicon() -> Response {
    include_str!("../pages/favicon.svg")
        .with_content_type("image/svg+xml")
        .with_header("cache-control", "public, max-age=86400")
        .into_response()
}

/// `/websocket/docs/schema/manual`: the contract as a download named `v1-schema.yaml`.
#[handler]
fn schema_download() -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .content_type("application/yaml")
        .header(
            "content-disposition",
            "attachment; filename=\"v1-schema.yaml\"",
        )
        .body(crate::CONTRACT_YAML)
}

/// Text made safe for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            super::escape(r#"<a href="x">O'Hare & co</a>"#),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Hare &amp; co&lt;/a&gt;"
        );
    }
}
