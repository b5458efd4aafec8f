//! TLS (`wfs serve --tls`, `TLS_ENABLE=1`, `wfs cert`) on the real binary: https and wss on
//! one port, trusted through the certificate the server made (its own self-signed one, or the
//! local CA of `wfs cert`) as the only root — never by accepting any certificate. Plain ws and
//! http are refused; the certificate is reused across restarts; the echo page runs over https
//! in Chromium.

use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use wfs_runtime::client::{Client, ClientError, request};
use wfs_runtime::tokio_tungstenite::Connector;

use crate::browser::{Served, scenario};
use crate::server::within;

const PASSWORD: &str = "tls-admin-password";

/// A client configuration whose only root is the PEM certificate at `root`.
fn trusting(root: &Path) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.expect("a PEM certificate")).expect("a root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// `GET path` over https to `name` (which the certificate must cover): (status, body).
async fn https_get(
    port: u16,
    name: &str,
    path: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<(u16, String), String> {
    let tcp = within(
        "connect",
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .map_err(|e| e.to_string())?;
    let server_name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let mut stream = within(
        "TLS handshake",
        tokio_rustls::TlsConnector::from(config).connect(server_name, tcp),
    )
    .await
    .map_err(|e| e.to_string())?;
    let host = if name.contains(':') {
        format!("[{name}]:{port}")
    } else {
        format!("{name}:{port}")
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    // A peer that closes without close_notify ends the read with an error; what came counts.
    let _ = within("response", stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP response: {text:?}"))?;
    Ok((status, text))
}

async fn wss_echo(
    port: u16,
    host: &str,
    origin: Option<String>,
    config: Arc<rustls::ClientConfig>,
) -> Result<String, ClientError> {
    let headers: Vec<(&str, String)> = origin.into_iter().map(|o| ("origin", o)).collect();
    let request = request(
        &format!("wss://{host}:{port}"),
        "/ws/v1/echo",
        &[],
        &headers,
    )?;
    let mut client = within(
        "wss handshake",
        Client::connect_with(request, Connector::Rustls(config)),
    )
    .await?;
    within("send", client.send_text(r#"{"message":"over TLS ☔"}"#)).await?;
    within("echo", client.recv_text()).await
}

#[tokio::test]
async fn serve_tls_speaks_https_and_wss_with_its_own_certificate_and_refuses_plain_text() {
    let served = Served::start(&["--tls"], PASSWORD).await;
    let port = served.port;
    let cert = served.data_dir.join("tls/server.crt");
    let config = trusting(&cert);

    // Every name the certificate is for verifies: localhost, 127.0.0.1, ::1 (by IP address).
    for name in ["localhost", "127.0.0.1"] {
        let (status, body) = https_get(port, name, "/", config.clone())
            .await
            .expect("https");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("<title>Weather Forecast Service API</title>"));
    }
    let v6 = https_get(port, "::1", "/api/v1/cities", config.clone()).await;
    // Over 127.0.0.1 with the name ::1: the certificate must cover it (the host check is ours).
    assert!(v6.is_ok(), "::1 is a subject alternative name: {v6:?}");
    assert!(
        https_get(port, "example.com", "/", config.clone())
            .await
            .is_err(),
        "a name the certificate is not for fails verification"
    );

    assert_eq!(
        wss_echo(port, "localhost", None, config.clone())
            .await
            .expect("wss echo"),
        r#"{"message":"over TLS ☔"}"#
    );
    // The default origins are the https ones.
    let own = format!("https://localhost:{port}");
    assert!(
        wss_echo(port, "localhost", Some(own), config.clone())
            .await
            .is_ok()
    );
    match wss_echo(
        port,
        "localhost",
        Some(format!("http://localhost:{port}")),
        config.clone(),
    )
    .await
    {
        Err(ClientError::Rejected { status: 403, body }) => assert_eq!(body, "Origin not allowed"),
        other => panic!("an http origin on a TLS server: {other:?}"),
    }

    // Plain text is refused: no WebSocket and no HTTP answer.
    let plain = request(&format!("ws://127.0.0.1:{port}"), "/ws/v1/echo", &[], &[]).unwrap();
    match within("plain ws", Client::connect(plain)).await {
        Err(ClientError::Transport(_)) => {}
        other => panic!("plain ws on a TLS port: {other:?}"),
    }
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = within("plain http", tcp.read_to_end(&mut answer)).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
        "plain http served"
    );
}

#[tokio::test]
async fn the_self_signed_certificate_is_reused_and_tls_enable_switches_tls_on() {
    let data_dir = std::env::temp_dir().join(format!("wfs-reuse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let first = Served::start_full(&[], PASSWORD, &[("TLS_ENABLE", "1")], Some(&data_dir)).await;
    let cert_path = data_dir.join("tls/server.crt");
    let cert = std::fs::read_to_string(&cert_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = data_dir.join("tls/server.key");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the private key is readable by others: {mode:o}"
        );
    }
    let (status, _) = https_get(first.port, "localhost", "/", trusting(&cert_path))
        .await
        .unwrap();
    assert_eq!(status, 200);
    drop(first);

    // The same data directory on a second start: the same certificate.
    let second = Served::start_full(&["--tls"], PASSWORD, &[], Some(&data_dir)).await;
    assert_eq!(
        std::fs::read_to_string(&cert_path).unwrap(),
        cert,
        "the certificate was made again"
    );
    let (status, _) = https_get(second.port, "localhost", "/", trusting(&cert_path))
        .await
        .unwrap();
    assert_eq!(status, 200);
    drop(second);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn wfs_cert_makes_a_ca_that_clients_trust_and_keeps_it() {
    let data_dir = std::env::temp_dir().join(format!("wfs-cert-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let run_cert = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_wfs"))
            .args(["cert", "--data-dir"])
            .arg(&data_dir)
            .output()
            .expect("wfs cert runs")
    };
    let output = run_cert();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Created a local CA"), "{stdout}");
    assert!(
        stdout.contains("certutil") && stdout.contains("update-ca-certificates"),
        "{stdout}"
    );
    let ca = data_dir.join("tls/ca.crt");
    let ca_pem = std::fs::read_to_string(&ca).unwrap();

    // Again: the CA stays (browsers that trust it go on trusting), the server certificate is new.
    let server_pem = std::fs::read_to_string(data_dir.join("tls/server.crt")).unwrap();
    let output = run_cert();
    assert!(String::from_utf8_lossy(&output.stdout).contains("Reused the local CA"));
    assert_eq!(std::fs::read_to_string(&ca).unwrap(), ca_pem);
    assert_ne!(
        std::fs::read_to_string(data_dir.join("tls/server.crt")).unwrap(),
        server_pem
    );

    let served = Served::start_full(&["--tls"], PASSWORD, &[], Some(&data_dir)).await;
    let config = trusting(&ca);
    assert_eq!(
        https_get(served.port, "localhost", "/", config.clone())
            .await
            .unwrap()
            .0,
        200
    );
    assert!(
        wss_echo(served.port, "localhost", None, config)
            .await
            .is_ok()
    );
    // The server certificate alone is not a root: the chain really goes through the CA.
    let leaf_only = trusting(&data_dir.join("tls/server.crt"));
    assert!(
        https_get(served.port, "localhost", "/", leaf_only)
            .await
            .is_err()
    );
    drop(served);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn given_cert_and_key_files_are_used() {
    // Made by `wfs cert` in one place, given by path to a server with another data directory.
    let source = std::env::temp_dir().join(format!("wfs-given-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&source);
    let made = wfs::tls::make_local_ca(&source).expect("certificates made");
    let key = source.join("tls/server.key");
    let served = Served::start(
        &[
            "--tls",
            "--cert",
            made.server_cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        PASSWORD,
    )
    .await;
    let config = trusting(&made.ca_cert);
    assert_eq!(
        https_get(served.port, "localhost", "/", config)
            .await
            .unwrap()
            .0,
        200
    );
    assert!(
        !served.data_dir.join("tls").exists(),
        "nothing generated when files are given"
    );
    drop(served);
    let _ = std::fs::remove_dir_all(&source);
}

#[tokio::test]
async fn the_echo_page_runs_over_https_and_wss_in_chromium() {
    let served = Served::start(&["--tls"], PASSWORD).await;
    // Chromium is told to trust exactly this server key (its SPKI hash), not any certificate.
    let key_pem = std::fs::read_to_string(served.data_dir.join("tls/server.key")).unwrap();
    let spki = rcgen_spki_sha256(&key_pem);
    let base = format!("https://localhost:{}", served.port);
    scenario(
        "echo.mjs",
        &[&base, "echo-tls"],
        &[("WFS_TRUST_SPKI", &spki)],
    )
    .await;
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of a PEM private key: Chromium's
/// `--ignore-certificate-errors-spki-list` format.
fn rcgen_spki_sha256(key_pem: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let key = rcgen::KeyPair::from_pem(key_pem).expect("a private key");
    let digest = sha2::Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key));
    base64::engine::general_purpose::STANDARD.encode(digest)
}

#[tokio::test]
async fn wfs_alert_publishes_over_https_trusting_only_the_data_directorys_certificate() {
    let served = Served::start(&["--tls"], PASSWORD).await;
    let cairo = wfs::store::city_uuid("Cairo").to_string();
    let server = format!("https://localhost:{}", served.port);
    let data_dir = served.data_dir.display().to_string();
    let alert = |extra: Vec<String>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wfs"));
        command
            .args([
                "alert",
                "--city-uuid",
                &cairo,
                "--message",
                "over https",
                "--server",
                &server,
            ])
            .args(["--data-dir", &data_dir])
            .args(extra)
            .env_remove("WFS_DATABASE_URL")
            .env_remove("WFS_CA_FILE")
            .kill_on_drop(true);
        command
    };
    let output = within("wfs alert", alert(Vec::new()).output())
        .await
        .expect("wfs runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("Alert 'over https' sent to '{cairo}' channel.\n")
    );

    // A root that did not sign the server's certificate: refused, and said so.
    let stranger =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let stranger_pem = served.data_dir.join("stranger.crt");
    std::fs::write(&stranger_pem, stranger.cert.pem()).unwrap();
    let extra = vec!["--ca-file".to_owned(), stranger_pem.display().to_string()];
    let output = within("wfs alert", alert(extra).output())
        .await
        .expect("wfs runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TLS handshake failed"), "{stderr}");
}
