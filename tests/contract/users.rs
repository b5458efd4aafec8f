//! Users: `wfs user add | list | passwd | remove` run as the real binary on a running server's
//! database (SQLite, or PostgreSQL with `WFS_TEST_DATABASE=postgres`), the admin REST API at
//! `/api/v1/users`, and the first start of `wfs serve` (the admin's password is printed only
//! once the address is bound; a late `WFS_ADMIN_PASSWORD` is reported as ignored).

use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::{TestServer, http, within};

/// `wfs user ARGS` on `server`'s database, with `stdin` piped in.
pub(crate) async fn user(server: &TestServer, args: &[&str], stdin: &str) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs"));
    command
        .arg("user")
        .args(args)
        .arg("--data-dir")
        .arg(&server.data_dir)
        .env("WFS_DATABASE_URL", &server.database_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("wfs runs");
    let mut input = child.stdin.take().expect("stdin");
    // A command that refuses before reading closes its stdin: a broken pipe here is fine.
    let _ = within("write stdin", input.write_all(stdin.as_bytes())).await;
    drop(input);
    within("wfs user", child.wait_with_output())
        .await
        .expect("wfs finishes")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `POST /api/jwt/obtain`: the status.
async fn login(server: &TestServer, username: &str, password: &str) -> u16 {
    let body = json!({"username": username, "password": password}).to_string();
    http(server, "POST", "/api/jwt/obtain", &[], Some(&body))
        .await
        .0
}

#[tokio::test]
async fn user_add_list_passwd_remove_on_the_servers_database() {
    let server = TestServer::start().await;

    let added = user(
        &server,
        &["add", "carol", "--password-stdin"],
        "carol-password\n",
    )
    .await;
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert_eq!(text(&added.stdout), "Created user 'carol'.\n");
    assert_eq!(login(&server, "carol", "carol-password").await, 200);

    let generated = user(
        &server,
        &["add", "dave", "--admin", "--generate-password"],
        "",
    )
    .await;
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let out = text(&generated.stdout);
    let password = out
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("Created administrator 'dave' with password: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(password.len() >= 20, "{password}");
    assert_eq!(login(&server, "dave", password).await, 200);

    let listed = user(&server, &["list"], "").await;
    assert!(listed.status.success());
    assert_eq!(
        text(&listed.stdout),
        "admin admin\nalice user\nbob user\ncarol user\ndave admin\n"
    );

    let changed = user(
        &server,
        &["passwd", "carol", "--password-stdin"],
        "new carol pw",
    )
    .await;
    assert!(changed.status.success(), "{}", text(&changed.stderr));
    assert_eq!(text(&changed.stdout), "Password of 'carol' changed.\n");
    assert_eq!(login(&server, "carol", "carol-password").await, 401);
    assert_eq!(login(&server, "carol", "new carol pw").await, 200);

    // Tokens of a removed user stop working at once for the running server's REST API (its
    // channel handshakes, within the user TTL: see lookups.rs).
    let token = server.jwt.issue(
        server
            .app
            .store
            .user_by_name("carol")
            .await
            .unwrap()
            .unwrap()
            .id,
        wfs::auth::TokenKind::Access,
    );
    let removed = user(&server, &["remove", "carol"], "").await;
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    assert_eq!(text(&removed.stdout), "Removed user 'carol'.\n");
    assert_eq!(login(&server, "carol", "new carol pw").await, 401);
    let bearer = format!("Bearer {token}");
    let cairo = server.city("Cairo").await.uuid;
    let (status, _, _) = http(
        &server,
        "GET",
        &format!("/api/v1/cities/{cairo}/alerts"),
        &[("Authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn user_commands_refuse_clearly() {
    let server = TestServer::start().await;
    let cases: [(&[&str], &str, &str); 8] = [
        (
            &["add", "alice", "--password-stdin"],
            "whatever-long",
            "User 'alice' already exists.",
        ),
        (
            &["passwd", "nobody", "--password-stdin"],
            "whatever-long",
            "There is no user 'nobody'",
        ),
        (&["remove", "nobody"], "", "There is no user 'nobody'"),
        (
            &["add", "erin", "--password-stdin"],
            "\n",
            "Weak password: the password is empty",
        ),
        (
            &["add", "erin", "--password-stdin"],
            "short",
            "Weak password: the password is too short",
        ),
        (
            &["add", "erin", "--password-stdin"],
            "1234567890",
            "only digits",
        ),
        (&["add", "erin"], "", "No terminal to ask for the password"),
        (
            &["remove", "admin"],
            "",
            "'admin' is the last administrator",
        ),
    ];
    for (args, stdin, expected) in cases {
        let output = user(&server, args, stdin).await;
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(text(&output.stdout).is_empty(), "{args:?}");
    }
    // Nothing was created or changed.
    assert_eq!(server.app.store.user_by_name("erin").await.unwrap(), None);
    assert_eq!(login(&server, "alice", "alice-password").await, 200);
}

#[tokio::test]
async fn user_commands_never_create_a_database() {
    let empty = std::env::temp_dir().join(format!("wfs-users-empty-{}", std::process::id()));
    let output = within(
        "wfs user list",
        tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs"))
            .args(["user", "list", "--data-dir"])
            .arg(&empty)
            .env_remove("WFS_DATABASE_URL")
            .output(),
    )
    .await
    .expect("wfs runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("There is no wfs database in"), "{stderr}");
    assert!(stderr.contains("--data-dir"), "{stderr}");
    assert!(!empty.exists(), "a data directory was created");

    // Nor through a SQLite URL naming a file that does not exist.
    std::fs::create_dir_all(&empty).expect("folder");
    let file = empty.join("elsewhere.sqlite3");
    let output = within(
        "wfs user list",
        tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs"))
            .args(["user", "list"])
            .env("WFS_DATABASE_URL", format!("sqlite://{}", file.display()))
            .output(),
    )
    .await
    .expect("wfs runs");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    assert!(!file.exists(), "a database was created");
    let _ = std::fs::remove_dir_all(&empty);
}

/// An admin's and alice's bearer headers.
fn bearers(server: &TestServer) -> (String, String) {
    (
        format!("Bearer {}", server.token(&server.admin)),
        format!("Bearer {}", server.token(&server.alice)),
    )
}

async fn api(
    server: &TestServer,
    method: &str,
    path: &str,
    bearer: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|body| body.to_string());
    let (status, _, text) = http(
        server,
        method,
        path,
        &[("Authorization", bearer)],
        body.as_deref(),
    )
    .await;
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, json)
}

#[tokio::test]
async fn the_users_api_is_for_administrators() {
    let server = TestServer::start().await;
    let (admin, alice) = bearers(&server);

    let (status, users) = api(&server, "GET", "/api/v1/users", &admin, None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = users
        .as_array()
        .expect("a list")
        .iter()
        .map(|user| user["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice", "bob"]);
    assert!(users[0].get("password_hash").is_none());

    let (status, body) = api(&server, "GET", "/api/v1/users", &alice, None).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (403, Some("Only administrators may manage users."))
    );
    let (status, _) = api(&server, "GET", "/api/v1/users", "Bearer nonsense", None).await;
    assert_eq!(status, 401);

    // Create with a chosen password, then with a generated one.
    let new = json!({"username": "frank", "password": "frank-password"});
    let (status, created) = api(&server, "POST", "/api/v1/users", &admin, Some(new.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["user"]["username"], "frank");
    assert_eq!(created["user"]["is_admin"], false);
    assert!(
        created.get("password").is_none_or(Value::is_null),
        "{created}"
    );
    assert_eq!(login(&server, "frank", "frank-password").await, 200);
    let (status, body) = api(&server, "POST", "/api/v1/users", &admin, Some(new)).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (409, Some("User 'frank' already exists."))
    );
    let weak = json!({"username": "gina", "password": "gina"});
    let (status, body) = api(&server, "POST", "/api/v1/users", &admin, Some(weak)).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("too short"),
        "{body}"
    );
    let generated = json!({"username": "gina", "is_admin": true});
    let (status, created) = api(&server, "POST", "/api/v1/users", &admin, Some(generated)).await;
    assert_eq!(status, 201, "{created}");
    let password = created["password"].as_str().expect("a generated password");
    assert_eq!(login(&server, "gina", password).await, 200);
    assert_eq!(created["user"]["is_admin"], true);

    let (status, got) = api(&server, "GET", "/api/v1/users/gina", &admin, None).await;
    assert_eq!((status, got["is_admin"].as_bool()), (200, Some(true)));
    let (status, body) = api(&server, "GET", "/api/v1/users/nobody", &admin, None).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (404, Some("There is no user 'nobody'."))
    );

    let change = json!({"password": "another frank password"});
    let path = "/api/v1/users/frank/password";
    let (status, body) = api(&server, "PUT", path, &admin, Some(change)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(login(&server, "frank", "another frank password").await, 200);
    let (status, _) = api(&server, "PUT", path, &alice, Some(json!({}))).await;
    assert_eq!(status, 403);

    let (status, body) = api(&server, "DELETE", "/api/v1/users/frank", &admin, None).await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(login(&server, "frank", "another frank password").await, 401);
    let (status, _) = api(&server, "DELETE", "/api/v1/users/frank", &admin, None).await;
    assert_eq!(status, 404);
    let (status, _) = api(&server, "DELETE", "/api/v1/users/bob", &alice, None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_users_api_is_in_the_openapi_document() {
    let server = TestServer::start().await;
    let (status, _, text) = http(&server, "GET", "/api/openapi.json", &[], None).await;
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&text).expect("JSON");
    let paths = &document["paths"];
    for (path, method) in [
        ("/api/v1/users", "get"),
        ("/api/v1/users", "post"),
        ("/api/v1/users/{username}", "get"),
        ("/api/v1/users/{username}", "delete"),
        ("/api/v1/users/{username}/password", "put"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
        assert!(
            !paths[path][method]["security"].is_null(),
            "{method} {path} needs a token"
        );
    }
}

/// `wfs serve` on `port` with `data_dir`: its output once it exits or `settle` has passed.
async fn serve_output(
    port: u16,
    data_dir: &std::path::Path,
    admin_password: Option<&str>,
    settle: Duration,
) -> (Option<i32>, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs"));
    command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .env_remove("WFS_DATABASE_URL")
        .env_remove("WFS_ADMIN_PASSWORD")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(password) = admin_password {
        command.env("WFS_ADMIN_PASSWORD", password);
    }
    let mut child = command.spawn().expect("wfs serve starts");
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let code = match tokio::time::timeout(settle, child.wait()).await {
        Ok(status) => status.expect("waited").code(),
        Err(_) => {
            // Still serving: stop it (it has said what it says on start by now).
            let _ = child.start_kill();
            let _ = within("serve stops", child.wait()).await;
            None
        }
    };
    let mut text = String::new();
    let _ = within("stdout", stdout.read_to_string(&mut text)).await;
    let _ = within("stderr", stderr.read_to_string(&mut text)).await;
    (code, text)
}

#[tokio::test]
async fn the_first_start_binds_before_it_prints_the_admin_password() {
    let data_dir = std::env::temp_dir().join(format!("wfs-first-start-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();

    // The address is taken: the start fails and no password is printed or created.
    let (code, out) = serve_output(port, &data_dir, None, Duration::from_secs(10)).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(!out.contains("Created user"), "{out}");
    drop(taken);

    // The next start gets the address, creates the admin and prints its password once.
    let (code, out) = serve_output(port, &data_dir, None, Duration::from_secs(3)).await;
    assert_eq!(code, None, "it kept serving: {out}");
    assert!(
        out.contains("Created user `admin` with password: "),
        "{out}"
    );
    assert!(out.contains("wfs user passwd admin"), "{out}");

    // Later starts print no password; a WFS_ADMIN_PASSWORD now is said to be ignored.
    let (code, out) = serve_output(
        port,
        &data_dir,
        Some("too-late-password"),
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(code, None, "{out}");
    assert!(!out.contains("Created user"), "{out}");
    assert!(out.contains("WFS_ADMIN_PASSWORD is ignored"), "{out}");
    assert!(!out.contains("too-late-password"), "{out}");

    // The database holds password hashes: only its owner may read it, like the JWT secret.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["wfs.sqlite3", "jwt-secret"] {
            let mode = std::fs::metadata(data_dir.join(file))
                .expect("the file exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    let _ = std::fs::remove_dir_all(&data_dir);
}
