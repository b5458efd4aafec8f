//! The REST API under `/api`: its OpenAPI document and UI, the cities, alert history and
//! publishing, the token endpoint as old clients use it, and errors that are always
//! `{"detail": "..."}` with the right status (never a 500 for bad input).

use serde_json::Value;
use uuid::Uuid;

use crate::server::{ADMIN_PASSWORD, TestServer, http};

/// A request whose answer must be JSON: (status, body).
async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|value| ("Authorization", value.as_str()))
        .collect();
    let (status, content_type, text) = http(server, method, path, &headers, body).await;
    assert!(
        content_type.starts_with("application/json"),
        "{method} {path}: {status} {content_type} {text}"
    );
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{method} {path}: not JSON ({error}): {text}"));
    (status, value)
}

/// Asserts a JSON error: the status, and a `detail` sentence (containing `needle`).
fn assert_problem(answer: (u16, Value), status: u16, needle: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    let detail = answer.1["detail"].as_str().unwrap_or_else(|| {
        panic!("no detail in {}", answer.1);
    });
    assert!(detail.contains(needle), "`{detail}` lacks `{needle}`");
}

#[tokio::test]
async fn the_openapi_document_describes_every_operation_and_the_ui_is_served_offline() {
    let server = TestServer::start().await;
    let (status, spec) = call(&server, "GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/jwt/obtain", "post"),
        ("/api/v1/cities", "get"),
        ("/api/v1/cities/{uuid}", "get"),
        ("/api/v1/cities/{uuid}/alerts", "get"),
        ("/api/v1/cities/{uuid}/alerts", "post"),
        ("/api/stats", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not in the document"
        );
    }
    let publish = &paths["/api/v1/cities/{uuid}/alerts"]["post"];
    for status in ["201", "400", "401", "403", "404", "422"] {
        assert!(
            publish["responses"].get(status).is_some(),
            "publishing does not document {status}"
        );
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["AccessToken"]["scheme"],
        "bearer"
    );

    let (status, content_type, html) = http(&server, "GET", "/api/docs/", &[], None).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        html.contains("SwaggerUIBundle"),
        "the UI script is embedded"
    );
    assert!(
        !html.contains("<script src=\"http") && !html.contains("<link href=\"http"),
        "nothing is loaded from another site"
    );
}

#[tokio::test]
async fn cities_are_listed_sorted_and_found_by_uuid_in_either_case() {
    let server = TestServer::start().await;
    let (status, cities) = call(&server, "GET", "/api/v1/cities", None, None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = cities
        .as_array()
        .unwrap()
        .iter()
        .map(|city| city["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Cairo",
            "Istanbul",
            "Mexico City",
            "Sao Paulo",
            "Sydney",
            "Tokyo"
        ]
    );
    let cairo = server.city("Cairo").await.uuid;
    let upper = cairo.to_string().to_uppercase();
    let (status, city) = call(
        &server,
        "GET",
        &format!("/api/v1/cities/{upper}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{city}");
    assert_eq!(city["uuid"], cairo.to_string());
    assert_eq!(city["timezone"], "Africa/Cairo");
    assert_eq!(city["latitude"], 30.06263);

    assert_problem(
        call(&server, "GET", "/api/v1/cities/1", None, None).await,
        400,
        "City uuid '1' is not valid!",
    );
    let unknown = Uuid::nil();
    assert_problem(
        call(
            &server,
            "GET",
            &format!("/api/v1/cities/{unknown}"),
            None,
            None,
        )
        .await,
        404,
        "does not exist",
    );
}

#[tokio::test]
async fn alert_history_pages_backwards_newest_first() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let tokyo = server.city("Tokyo").await.uuid;
    for index in 1..=5 {
        server
            .app
            .publish_alert(cairo, &format!("Cairo #{index}"))
            .await
            .unwrap();
        server
            .app
            .publish_alert(tokyo, &format!("Tokyo #{index}"))
            .await
            .unwrap();
    }
    let token = server.token(&server.alice);
    let path = format!("/api/v1/cities/{cairo}/alerts");
    let mut messages = Vec::new();
    let mut next = format!("{path}?limit=2");
    loop {
        let (status, page) = call(&server, "GET", &next, Some(&token), None).await;
        assert_eq!(status, 200, "{page}");
        let alerts = page["alerts"].as_array().unwrap();
        assert!(alerts.len() <= 2);
        for alert in alerts {
            assert_eq!(alert["type"], "alert");
            assert_eq!(alert["city_uuid"], cairo.to_string());
            messages.push(alert["message"].as_str().unwrap().to_owned());
        }
        match page["next_before"].as_i64() {
            Some(before) => next = format!("{path}?limit=2&before={before}"),
            None => break,
        }
    }
    assert_eq!(
        messages,
        ["Cairo #5", "Cairo #4", "Cairo #3", "Cairo #2", "Cairo #1"]
    );
    let (status, page) = call(&server, "GET", &path, Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(page["alerts"].as_array().unwrap().len(), 5);
    assert!(page.get("next_before").is_none_or(Value::is_null));

    assert_problem(call(&server, "GET", &path, None, None).await, 401, "token");
    assert_problem(
        call(&server, "GET", &path, Some("not-a-token"), None).await,
        401,
        "Token",
    );
    for query in ["limit=0", "limit=101", "limit=abc", "before=0", "before=x"] {
        assert_problem(
            call(
                &server,
                "GET",
                &format!("{path}?{query}"),
                Some(&token),
                None,
            )
            .await,
            400,
            "",
        );
    }
    assert_problem(
        call(
            &server,
            "GET",
            &format!("/api/v1/cities/{}/alerts", Uuid::nil()),
            Some(&token),
            None,
        )
        .await,
        404,
        "does not exist",
    );
}

#[tokio::test]
async fn publishing_answers_the_stored_alert_and_refuses_bad_input_with_json() {
    let server = TestServer::start().await;
    let cairo = server.city("Cairo").await.uuid;
    let path = format!("/api/v1/cities/{cairo}/alerts");
    let admin = server.token(&server.admin);
    let (status, alert) = call(
        &server,
        "POST",
        &path,
        Some(&admin),
        Some(r#"{"message":"Zürich ☔"}"#),
    )
    .await;
    assert_eq!(status, 201, "{alert}");
    assert_eq!(alert["message"], "Zürich ☔");
    assert_eq!(alert["city_uuid"], cairo.to_string());
    assert!(alert["id"].as_i64().unwrap() >= 1);
    assert!(alert["created_at"].as_str().is_some());

    for (body, status, needle) in [
        (r#"{"message":"   "}"#, 422, "empty"),
        (r#"{"message":""}"#, 422, "empty"),
        (r#"{"text":"hi"}"#, 400, ""),
        (r#"{"message":null}"#, 400, ""),
        ("[]", 400, ""),
        ("{", 400, ""),
    ] {
        assert_problem(
            call(&server, "POST", &path, Some(&admin), Some(body)).await,
            status,
            needle,
        );
    }
    let long = serde_json::json!({ "message": "x".repeat(4097) }).to_string();
    assert_problem(
        call(&server, "POST", &path, Some(&admin), Some(&long)).await,
        422,
        "longer than 4096",
    );
    assert_problem(
        call(
            &server,
            "POST",
            &path,
            Some(&server.token(&server.bob)),
            Some(r#"{"message":"hi"}"#),
        )
        .await,
        403,
        "administrators",
    );
    // A refresh token is not an access token.
    let refresh = server
        .jwt
        .issue(server.admin.id, wfs::auth::TokenKind::Refresh);
    assert_problem(
        call(
            &server,
            "POST",
            &path,
            Some(&refresh),
            Some(r#"{"message":"hi"}"#),
        )
        .await,
        401,
        "wrong type",
    );
    // Nothing of the refused requests was stored.
    let (_, page) = call(&server, "GET", &path, Some(&admin), None).await;
    assert_eq!(page["alerts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn tokens_are_obtained_as_old_clients_expect() {
    let server = TestServer::start().await;
    let body = serde_json::json!({ "username": "admin", "password": ADMIN_PASSWORD }).to_string();
    let (status, tokens) = call(&server, "POST", "/api/jwt/obtain", None, Some(&body)).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access"].as_str().unwrap();
    assert!(tokens["refresh"].as_str().is_some());
    server
        .jwt
        .verify(access, wfs::auth::TokenKind::Access)
        .expect("a valid access token");

    let wrong = r#"{"username":"admin","password":"nope"}"#;
    let (status, answer) = call(&server, "POST", "/api/jwt/obtain", None, Some(wrong)).await;
    assert_eq!(
        (status, answer),
        (
            401,
            serde_json::json!({"detail": "No active account found with the given credentials"})
        )
    );
    for body in ["{", r#"{"username":"admin"}"#, "null"] {
        assert_problem(
            call(&server, "POST", "/api/jwt/obtain", None, Some(body)).await,
            400,
            "",
        );
    }
}

#[tokio::test]
async fn unknown_api_paths_and_methods_answer_json() {
    let server = TestServer::start().await;
    assert_problem(
        call(&server, "GET", "/api/v1/nothing", None, None).await,
        404,
        "No such",
    );
    assert_problem(
        call(&server, "DELETE", "/api/v1/cities", None, None).await,
        405,
        "not allowed",
    );
}
