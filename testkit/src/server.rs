//! A real signaling server in the test's process, on a loopback port,
//! started through [`parley_signaling::server::Server`]: the builder
//! `parley-server` itself uses.

use std::path::PathBuf;

use parley_client::vault::KeySource;
use parley_client::{Incoming, Messenger, ReceiveMode};
use parley_signaling::server::{RunningServer, Server, SfuSetup, Udp};
use parley_signaling::{AppState, ServerConfig};

/// A running server and the temp dir holding its database and the
/// clients' data dirs.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The server's state, for tests that look behind the API.
    pub state: AppState,
    /// The temp dir (database, blobs, client data dirs).
    pub dir: tempfile::TempDir,
    server: RunningServer,
}

impl TestServer {
    /// A server on `127.0.0.1:0` over a fresh SQLite file, or over the
    /// database in `PARLEY_TEST_DATABASE_URL` when set (CI's PostgreSQL).
    pub async fn start() -> Self {
        Self::with_config(ServerConfig::default()).await
    }

    /// [`start`](Self::start) with these settings.
    pub async fn with_config(config: ServerConfig) -> Self {
        Self::with(config, SfuSetup::off()).await
    }

    /// A server with an embedded SFU on loopback too.
    pub async fn with_sfu(config: ServerConfig) -> Self {
        Self::with(config, SfuSetup::on(Udp::Default)).await
    }

    async fn with(config: ServerConfig, sfu: SfuSetup) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::builder()
            .data_dir(dir.path())
            .database(std::env::var("PARLEY_TEST_DATABASE_URL").ok())
            .config(config)
            .sfu(sfu)
            .start()
            .await
            .unwrap();
        Self {
            url: server.url().to_string(),
            state: server.state().clone(),
            dir,
            server,
        }
    }

    /// The running server's handle (addresses, stop).
    pub fn server(&self) -> &RunningServer {
        &self.server
    }

    /// A data dir for a client.
    pub fn client_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Registers `handle` with a device in its own data dir. Handles get a
    /// random suffix so tests sharing a PostgreSQL database do not collide.
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
