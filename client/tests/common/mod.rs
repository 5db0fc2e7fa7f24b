//! A real server on a loopback port and real clients, for the messaging
//! tests.
#![allow(dead_code)]

pub mod cli;
pub mod group;

use std::path::PathBuf;

use parley_client::vault::KeySource;
use parley_client::{Incoming, Messenger, ReceiveMode};
use parley_signaling::store::Store;
use parley_signaling::{AppState, ServerConfig};

/// A running server and the temp dir holding its database and the
/// clients' data dirs.
pub struct TestServer {
    pub url: String,
    pub state: AppState,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// A server on `127.0.0.1:0` over a fresh SQLite file, or over the
    /// database in `PARLEY_TEST_DATABASE_URL` when set (CI's Postgres).
    pub async fn start() -> Self {
        Self::with_config(ServerConfig::default()).await
    }

    pub async fn with_config(config: ServerConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            blob_dir: dir.path().join("blobs"),
            ..config
        };
        let url = match std::env::var("PARLEY_TEST_DATABASE_URL") {
            Ok(url) => url,
            Err(_) => format!("sqlite://{}", dir.path().join("server.db").display()),
        };
        let store = Store::open(&url).await.unwrap();
        let state = AppState::new(store, config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = parley_signaling::app(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}"),
            state,
            dir,
        }
    }

    /// A data dir for a client.
    pub fn client_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Registers `handle` with a device in its own data dir. Handles get a
    /// random suffix so tests sharing a Postgres database do not collide.
    pub async fn register(&self, handle: &str) -> Messenger {
        let handle = unique(handle);
        Messenger::register(
            &self.url,
            &self.client_dir(&handle),
            KeySource::KeyFile,
            &handle,
        )
        .await
        .unwrap()
    }
}

/// `base` plus a random suffix.
pub fn unique(base: &str) -> String {
    format!("{base}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Everything queued for `m`, drained.
pub async fn inbox(m: &mut Messenger) -> Vec<Incoming> {
    let mut got = Vec::new();
    m.receive(ReceiveMode::Drain, |msg| got.push(msg))
        .await
        .unwrap();
    got
}
