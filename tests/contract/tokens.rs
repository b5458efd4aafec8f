//! The token lifecycle with simplejwt's shapes (WIRE.md): obtain, refresh (rotating), verify,
//! revoke, against a real server; a revoked refresh token is refused by another instance on
//! the same database.

use serde_json::{Value, json};

use crate::server::{ADMIN_PASSWORD, TestServer, http};

/// POSTs `body` to `path`: (status, JSON body).
async fn post(server: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    let (status, content_type, text) =
        http(server, "POST", path, &[], Some(&body.to_string())).await;
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}: {text}"
    );
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, json)
}

async fn obtain(server: &TestServer, username: &str, password: &str) -> (String, String) {
    let (status, pair) = post(
        server,
        "/api/jwt/obtain",
        &json!({"username": username, "password": password}),
    )
    .await;
    assert_eq!(status, 200, "{pair}");
    (
        pair["access"].as_str().expect("access").to_owned(),
        pair["refresh"].as_str().expect("refresh").to_owned(),
    )
}

fn invalid() -> Value {
    json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})
}

#[tokio::test]
async fn refresh_rotates_and_a_used_refresh_token_is_refused() {
    let server = TestServer::start().await;
    let (_, refresh) = obtain(&server, "alice", "alice-password").await;

    let (status, pair) = post(&server, "/api/jwt/refresh", &json!({"refresh": refresh})).await;
    assert_eq!(status, 200, "{pair}");
    let access = pair["access"].as_str().expect("a new access token");
    let rotated = pair["refresh"].as_str().expect("a new refresh token");
    assert_ne!(rotated, refresh);
    let claims = server
        .jwt
        .verify(access, wfs::auth::TokenKind::Access)
        .expect("a valid access token");
    assert_eq!(claims.id, server.alice.id);

    // The refresh token sent was spent: refused from now on, as a revoked one.
    let (status, body) = post(&server, "/api/jwt/refresh", &json!({"refresh": refresh})).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
    );
    // The new one works, once.
    let (status, _) = post(&server, "/api/jwt/refresh", &json!({"refresh": rotated})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn refresh_refuses_access_tokens_garbage_and_missing_fields_in_simplejwts_words() {
    let server = TestServer::start().await;
    let (access, _) = obtain(&server, "alice", "alice-password").await;

    let (status, body) = post(&server, "/api/jwt/refresh", &json!({"refresh": access})).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"detail": "Token has wrong type", "code": "token_not_valid"})
    );
    let (status, body) = post(&server, "/api/jwt/refresh", &json!({"refresh": "garbage"})).await;
    assert_eq!((status, body), (401, invalid()));
    let (status, body) = post(&server, "/api/jwt/refresh", &json!({})).await;
    assert_eq!(
        (status, body),
        (400, json!({"refresh": ["This field is required."]}))
    );
    let (status, body) = post(&server, "/api/jwt/refresh", &json!({"refresh": ""})).await;
    assert_eq!(
        (status, body),
        (400, json!({"refresh": ["This field may not be blank."]}))
    );
    let (status, body) = post(&server, "/api/jwt/verify", &json!({})).await;
    assert_eq!(
        (status, body),
        (400, json!({"token": ["This field is required."]}))
    );
    let (status, body) = post(&server, "/api/jwt/revoke", &json!({"other": 1})).await;
    assert_eq!(
        (status, body),
        (400, json!({"refresh": ["This field is required."]}))
    );
    // Not JSON at all: a 400 with a reason, never a 500.
    let (status, _, text) = http(&server, "POST", "/api/jwt/refresh", &[], Some("{")).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("detail"), "{text}");
}

#[tokio::test]
async fn refresh_of_a_removed_user_is_refused() {
    let server = TestServer::start().await;
    let (_, refresh) = obtain(&server, "bob", "bob-password").await;
    server.app.store.remove_user("bob").await.expect("removed");
    let (status, body) = post(&server, "/api/jwt/refresh", &json!({"refresh": refresh})).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"detail": "No active account found for the given token.", "code": "no_active_account"})
    );
}

#[tokio::test]
async fn verify_answers_200_for_valid_tokens_and_401_otherwise() {
    let server = TestServer::start().await;
    let (access, refresh) = obtain(&server, "admin", ADMIN_PASSWORD).await;
    for token in [&access, &refresh] {
        let (status, body) = post(&server, "/api/jwt/verify", &json!({"token": token})).await;
        assert_eq!((status, body), (200, json!({})));
    }
    // The standard-Base64 form old pages use is a token too.
    use base64::Engine;
    let wrapped = base64::engine::general_purpose::STANDARD.encode(&access);
    let (status, _) = post(&server, "/api/jwt/verify", &json!({"token": wrapped})).await;
    assert_eq!(status, 200);

    let forged = wfs::auth::Jwt::new(
        b"not the server's secret".to_vec(),
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(60),
    )
    .unwrap()
    .issue(server.admin.id, wfs::auth::TokenKind::Access);
    let expired = wfs::auth::Jwt::new(
        wfs::auth::Jwt::load_or_create_secret(&server.data_dir, None).unwrap(),
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
    )
    .unwrap()
    .issue(server.admin.id, wfs::auth::TokenKind::Access);
    let mut tampered = access.clone();
    tampered.pop();
    for token in [
        forged.as_str(),
        expired.as_str(),
        "x.y.z",
        tampered.as_str(),
    ] {
        let (status, body) = post(&server, "/api/jwt/verify", &json!({"token": token})).await;
        assert_eq!((status, body), (401, invalid()), "{token}");
    }
}

#[tokio::test]
async fn tokens_not_valid_yet_are_refused_everywhere() {
    let server = TestServer::start().await;
    let secret = wfs::auth::Jwt::load_or_create_secret(&server.data_dir, None).unwrap();
    let key = jsonwebtoken::EncodingKey::from_secret(&secret).unwrap();
    let now = chrono::Utc::now().timestamp();
    let sign = |nbf: Option<i64>, iat: i64| {
        let mut claims = json!({
            "id": server.alice.id, "exp": now + 3600, "iat": iat,
            "token_type": "access", "jti": "0123456789abcdef0123456789abcdef",
        });
        if let Some(nbf) = nbf {
            claims["nbf"] = json!(nbf);
        }
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
    };
    let not_before_later = sign(Some(now + 600), now);
    let issued_later = sign(None, now + 600);
    let fine = sign(Some(now - 10), now);
    for (token, expected) in [(&not_before_later, 401), (&issued_later, 401), (&fine, 200)] {
        let (status, _) = post(&server, "/api/jwt/verify", &json!({"token": token})).await;
        assert_eq!(status, expected, "{token}");
    }
    // The channels refuse them at the handshake too.
    let cairo = server.city("Cairo").await.uuid;
    let (status, _, body) = http(
        &server,
        "GET",
        &format!("/sse/v1/alert?city_uuid={cairo}&access_token={issued_later}"),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not valid yet"), "{body}");
}

#[tokio::test]
async fn a_revoked_refresh_token_is_refused_on_every_instance() {
    let first = TestServer::start().await;
    let second = first.another_instance(None).await;
    let (access, refresh) = obtain(&first, "alice", "alice-password").await;

    let (status, body) = post(&first, "/api/jwt/revoke", &json!({"refresh": refresh})).await;
    assert_eq!((status, body), (200, json!({})));

    // The other instance shares the database, so it knows.
    let (status, body) = post(&second, "/api/jwt/refresh", &json!({"refresh": refresh})).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
    );
    let (status, body) = post(&second, "/api/jwt/verify", &json!({"token": refresh})).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = post(&second, "/api/jwt/revoke", &json!({"refresh": refresh})).await;
    assert_eq!(status, 401);
    // Access tokens are short-lived and stay valid; revoking one is refused as the wrong type.
    let (status, _) = post(&second, "/api/jwt/verify", &json!({"token": access})).await;
    assert_eq!(status, 200);
    let (status, body) = post(&second, "/api/jwt/revoke", &json!({"refresh": access})).await;
    assert_eq!(status, 401);
    assert_eq!(body["detail"], "Token has wrong type");
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_yield_one_new_pair() {
    let server = TestServer::start().await;
    let (_, refresh) = obtain(&server, "alice", "alice-password").await;
    let body = json!({"refresh": refresh});
    let attempts = (0..8).map(|_| post(&server, "/api/jwt/refresh", &body));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 401).count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn the_token_endpoints_are_in_the_openapi_document() {
    let server = TestServer::start().await;
    let (status, _, text) = http(&server, "GET", "/api/openapi.json", &[], None).await;
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&text).expect("JSON");
    for path in ["/api/jwt/refresh", "/api/jwt/verify", "/api/jwt/revoke"] {
        assert!(
            document["paths"][path]["post"].is_object(),
            "{path} missing"
        );
    }
}
