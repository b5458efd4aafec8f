//! A real server for one test: bound to 127.0.0.1:0, stopped when the handle is dropped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestServer {
    pub base_url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(wfs::serve(
            listener,
            Arc::new(wfs::App::default()),
            Arc::new(wfs_runtime::Config::default()),
            async move {
                let _ = stopped.await;
            },
        ));
        TestServer {
            base_url: format!("ws://{address}"),
            stop: Some(stop),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Awaits `future` for at most [`WAIT`], failing the test with `what` on a timeout.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}
