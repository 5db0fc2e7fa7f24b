//! One way to start a Parley server: `parley-server`'s `main`, `parley
//! demo` and the tests all go through [`ServerBuilder`], so what a test
//! runs is what an operator runs.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use parley_signaling::server::{Server, SfuSetup, Udp};
//!
//! let server = Server::builder()
//!     .data_dir("parley-data")
//!     .relay(Udp::Off)
//!     .sfu(SfuSetup::on(Udp::Default))
//!     .start()
//!     .await?;
//! println!("clients use {}", server.url());
//! server.stop().await?;
//! # Ok(()) }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::group_calls::GroupCalls;
use crate::store::{Store, StoreError};
use crate::{AppState, ServerConfig, app, relay, tls};

/// The relay's UDP port when the HTTP side listens on a fixed port.
pub const DEFAULT_RELAY_PORT: u16 = 3478;
/// The SFU's UDP port when the HTTP side listens on a fixed port.
pub const DEFAULT_SFU_PORT: u16 = 3479;

/// Where a UDP service (the relay, the SFU) listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Udp {
    /// Not at all.
    Off,
    /// On the HTTP listener's IP, at the service's default port (or a free
    /// port when the HTTP side asked for port 0).
    Default,
    /// At `bind`, announced to clients as `public` when that differs (a NAT
    /// in front of the server).
    At {
        /// The socket address to bind.
        bind: SocketAddr,
        /// The address clients must use, when not `bind`.
        public: Option<SocketAddr>,
    },
}

impl Udp {
    fn resolve(
        self,
        listen: SocketAddr,
        default_port: u16,
    ) -> Option<(SocketAddr, Option<SocketAddr>)> {
        match self {
            Udp::Off => None,
            Udp::Default => {
                let port = if listen.port() == 0 { 0 } else { default_port };
                Some((SocketAddr::new(listen.ip(), port), None))
            }
            Udp::At { bind, public } => Some((bind, public)),
        }
    }
}

/// The embedded SFU's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfuSetup {
    /// Where it listens.
    pub udp: Udp,
    /// Secret its join tokens are signed with (random when `None`); tools
    /// that join rooms directly, such as `parley loadtest`, need it.
    pub token_secret: Option<String>,
    /// Serve the browser demo at `/demo` and let anyone join demo rooms.
    pub demo_rooms: bool,
    /// Participants one room holds ([`parley_sfu::SfuConfig::max_participants`]).
    pub max_participants: usize,
}

impl SfuSetup {
    /// An SFU at `udp`, random token secret, no demo rooms.
    pub fn on(udp: Udp) -> Self {
        Self {
            udp,
            token_secret: None,
            demo_rooms: false,
            max_participants: parley_sfu::room::MAX_PARTICIPANTS,
        }
    }

    /// No SFU (no group calls).
    pub fn off() -> Self {
        Self::on(Udp::Off)
    }
}

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("creating the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The database did not open (or migrate).
    #[error("opening the database {url}: {source}")]
    Database {
        /// The URL given.
        url: String,
        /// What went wrong.
        source: StoreError,
    },
    /// A socket could not be bound.
    #[error("binding {what} on {addr}: {source}")]
    Bind {
        /// "HTTP", "the relay" or "the SFU".
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The SFU would listen on an unspecified address (0.0.0.0) with no
    /// public address to put in its ICE candidates.
    #[error("the SFU cannot announce {0}: give it a public address")]
    SfuAddressUnspecified(SocketAddr),
}

/// Starts servers; see the module doc.
#[derive(Debug)]
pub struct ServerBuilder {
    listen: SocketAddr,
    data_dir: PathBuf,
    database: Option<String>,
    config: ServerConfig,
    relay: Udp,
    sfu: SfuSetup,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// Entry point for [`ServerBuilder`].
pub struct Server;

impl Server {
    /// Defaults: HTTP on `127.0.0.1:0`, SQLite in `parley-data/`, no relay,
    /// no SFU, plain HTTP, [`ServerConfig::default`].
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            listen: (Ipv4Addr::LOCALHOST, 0).into(),
            data_dir: PathBuf::from("parley-data"),
            database: None,
            config: ServerConfig::default(),
            relay: Udp::Off,
            sfu: SfuSetup::off(),
            tls: None,
        }
    }
}

impl ServerBuilder {
    /// The HTTP (and websocket) listener's address; port 0 picks one.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Where the SQLite database (unless [`database`](Self::database) says
    /// otherwise) and attachment blobs live.
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = dir.as_ref().to_path_buf();
        self
    }

    /// A database URL (`sqlite://PATH` or `postgres://...`) instead of
    /// `DATA_DIR/parley.db`.
    pub fn database(mut self, url: Option<String>) -> Self {
        self.database = url;
        self
    }

    /// Limits and lifetimes (its `blob_dir`, `relay` and `sfu` are filled
    /// in by [`start`](Self::start)).
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The STUN responder and two-party call relay.
    pub fn relay(mut self, udp: Udp) -> Self {
        self.relay = udp;
        self
    }

    /// The embedded group-call SFU.
    pub fn sfu(mut self, sfu: SfuSetup) -> Self {
        self.sfu = sfu;
        self
    }

    /// Serve HTTPS and WSS with this configuration.
    pub fn tls(mut self, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        self.tls = tls;
        self
    }

    /// Opens the store, binds every socket, starts serving. Sockets are
    /// bound before this returns, so the addresses in the answer take
    /// connections at once.
    pub async fn start(self) -> Result<RunningServer, StartError> {
        let data_dir = self.data_dir;
        std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let url = self
            .database
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("parley.db").display()));
        let store = Store::open(&url)
            .await
            .map_err(|source| StartError::Database { url, source })?;

        let relay =
            match self.relay.resolve(self.listen, DEFAULT_RELAY_PORT) {
                None => None,
                Some((bind, public)) => Some(relay::start(bind, public).await.map_err(
                    |source| StartError::Bind {
                        what: "the relay",
                        addr: bind,
                        source,
                    },
                )?),
            };
        let sfu = match self.sfu.udp.resolve(self.listen, DEFAULT_SFU_PORT) {
            None => None,
            Some((bind, public)) => {
                if bind.ip().is_unspecified() && public.is_none() {
                    // ICE needs a concrete address in the SFU's answer.
                    return Err(StartError::SfuAddressUnspecified(bind));
                }
                let (socket, public) =
                    parley_sfu::server::bind(bind, public)
                        .await
                        .map_err(|source| StartError::Bind {
                            what: "the SFU",
                            addr: bind,
                            source,
                        })?;
                let key = match &self.sfu.token_secret {
                    Some(secret) => parley_sfu::TokenKey::from_secret_str(secret),
                    None => parley_sfu::TokenKey::generate(),
                };
                let config = parley_sfu::SfuConfig {
                    max_participants: self.sfu.max_participants,
                    ..parley_sfu::SfuConfig::new(public, key.clone())
                };
                let handle = parley_sfu::server::start(socket, config);
                Some(GroupCalls {
                    sfu: handle,
                    key,
                    demo_rooms: self.sfu.demo_rooms,
                })
            }
        };

        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|source| StartError::Bind {
                what: "HTTP",
                addr: self.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            what: "HTTP",
            addr: self.listen,
            source,
        })?;
        let config = ServerConfig {
            blob_dir: data_dir.join("blobs"),
            relay,
            sfu,
            ..self.config
        };
        let relay_addr = config.relay.as_ref().map(|r| r.local_addr);
        let sfu_addr = config.sfu.as_ref().map(|c| c.sfu.public_addr);
        let demo = config.sfu.as_ref().is_some_and(|c| c.demo_rooms);
        tracing::info!(%addr, tls = self.tls.is_some(), backend = ?store.backend(), "listening");
        let state = AppState::new(store, config);
        let router = app(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            if stopped.await.is_err() {
                // The handle was dropped without `stop`: serve on, for the
                // rest of the process (tests keep only the URL).
                std::future::pending::<()>().await;
            }
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let task = match self.tls {
            Some(tls) => tokio::spawn(tls::serve(listener, router, tls, shutdown)),
            None => tokio::spawn(async move {
                axum::serve(
                    listener,
                    // The source address, for the per-address limits.
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(shutdown)
                .await
            }),
        };
        Ok(RunningServer {
            url: format!("{scheme}://{addr}"),
            addr,
            relay_addr,
            sfu_addr,
            demo,
            state,
            stop: Some(stop),
            task,
        })
    }
}

/// A server that is taking connections. Dropping it leaves the server
/// running for the rest of the process (what tests want); [`stop`] ends
/// it gracefully.
///
/// [`stop`]: RunningServer::stop
pub struct RunningServer {
    url: String,
    addr: SocketAddr,
    relay_addr: Option<SocketAddr>,
    sfu_addr: Option<SocketAddr>,
    demo: bool,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// The URL clients use: `http://` or `https://` and the bound address.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The HTTP listener's bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The relay's bound UDP address, when it runs.
    pub fn relay_addr(&self) -> Option<SocketAddr> {
        self.relay_addr
    }

    /// The SFU's public UDP address, when it runs.
    pub fn sfu_addr(&self) -> Option<SocketAddr> {
        self.sfu_addr
    }

    /// The browser demo's address, when demo rooms are on.
    pub fn demo_url(&self) -> Option<String> {
        self.demo.then(|| format!("{}/demo", self.url))
    }

    /// The server's state (store, settings, counters), for tests that
    /// look behind the API.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops taking connections, lets open ones finish, and returns when
    /// the listener is closed.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    /// Serves until `signal` completes, then stops as [`stop`] does.
    ///
    /// [`stop`]: RunningServer::stop
    pub async fn serve_until(self, signal: impl Future<Output = ()>) -> std::io::Result<()> {
        signal.await;
        self.stop().await
    }
}
