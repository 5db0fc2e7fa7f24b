//! `parley-server`: the signaling server.
//!
//! ```text
//! parley-server --listen 127.0.0.1:8443 --db sqlite://parley.db --data-dir ./data
//! parley-server --tls-cert cert.pem --tls-key key.pem   # HTTPS and WSS
//! ```

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use parley_signaling::store::Store;
use parley_signaling::{AppState, ServerConfig, app, group_calls, relay, tls};

#[derive(Parser)]
#[command(name = "parley-server", version, about = "Parley signaling server")]
struct Args {
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, env = "PARLEY_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Database URL: sqlite://PATH (default: DATA_DIR/parley.db) or
    /// postgres://USER:PASS@HOST/DB.
    #[arg(long, env = "PARLEY_DB")]
    db: Option<String>,
    /// Directory for the SQLite database and (later) attachment blobs.
    #[arg(long, env = "PARLEY_DATA_DIR", default_value = "parley-data")]
    data_dir: PathBuf,
    /// Bearer token that unlocks /metrics (off without one).
    #[arg(long, env = "PARLEY_METRICS_TOKEN")]
    metrics_token: Option<String>,
    /// PEM certificate chain; with --tls-key the server speaks HTTPS/WSS.
    #[arg(long, env = "PARLEY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "PARLEY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Undelivered envelopes allowed per device.
    #[arg(long, default_value_t = ServerConfig::default().max_queue)]
    max_queue: i64,
    /// UDP address of the STUN responder and call relay (default: the
    /// --listen address's IP, port 3478; port 0 when --listen uses 0).
    #[arg(long, env = "PARLEY_UDP")]
    udp: Option<SocketAddr>,
    /// The relay's address as clients must reach it, when that is not
    /// the server's host name (a NAT in front of the server, say).
    #[arg(long, env = "PARLEY_PUBLIC_UDP")]
    public_udp: Option<SocketAddr>,
    /// Run no STUN responder or relay.
    #[arg(long, conflicts_with_all = ["udp", "public_udp"])]
    no_udp: bool,
    /// UDP address of the group-call SFU (default: the --listen address's
    /// IP, port 3479; port 0 when --listen uses 0).
    #[arg(long, env = "PARLEY_SFU_UDP")]
    sfu_udp: Option<SocketAddr>,
    /// The SFU's address as participants must reach it (required when
    /// it listens on an unspecified address such as 0.0.0.0).
    #[arg(long, env = "PARLEY_PUBLIC_SFU_UDP")]
    public_sfu_udp: Option<SocketAddr>,
    /// Run no SFU (no group calls).
    #[arg(long, conflicts_with_all = ["sfu_udp", "public_sfu_udp"])]
    no_sfu: bool,
    /// Secret the SFU's join tokens are signed with (a random one when
    /// omitted). Give it to tools that join rooms directly, such as
    /// `parley loadtest --token-secret`.
    #[arg(long, env = "PARLEY_SFU_TOKEN_SECRET", conflicts_with = "no_sfu")]
    sfu_token_secret: Option<String>,
    /// Serve the browser demo at /demo and let anyone join demo rooms
    /// (media keyed by a room passphrase). Anyone who reaches the server
    /// can then use its SFU: for trying Parley, not for production.
    #[arg(long, conflicts_with = "no_sfu")]
    demo: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs on stderr; stdout carries only the address line scripts read.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let db = args
        .db
        .unwrap_or_else(|| format!("sqlite://{}", args.data_dir.join("parley.db").display()));
    let store = Store::open(&db)
        .await
        .with_context(|| format!("opening {db}"))?;
    let relay = if args.no_udp {
        None
    } else {
        let udp = args.udp.unwrap_or_else(|| {
            let port = if args.listen.port() == 0 { 0 } else { 3478 };
            SocketAddr::new(args.listen.ip(), port)
        });
        let relay = relay::start(udp, args.public_udp)
            .await
            .with_context(|| format!("binding UDP {udp}"))?;
        Some(relay)
    };
    let sfu = if args.no_sfu {
        None
    } else {
        let udp = args.sfu_udp.unwrap_or_else(|| {
            let port = if args.listen.port() == 0 { 0 } else { 3479 };
            SocketAddr::new(args.listen.ip(), port)
        });
        if udp.ip().is_unspecified() && args.public_sfu_udp.is_none() {
            // ICE needs a concrete address in the SFU's answer.
            tracing::warn!(%udp, "no SFU: it would listen on an unspecified address; give --public-sfu-udp");
            None
        } else {
            let (socket, public) = parley_sfu::server::bind(udp, args.public_sfu_udp)
                .await
                .with_context(|| format!("binding SFU UDP {udp}"))?;
            let key = match &args.sfu_token_secret {
                Some(secret) => parley_sfu::TokenKey::from_secret_str(secret),
                None => parley_sfu::TokenKey::generate(),
            };
            let handle =
                parley_sfu::server::start(socket, parley_sfu::SfuConfig::new(public, key.clone()));
            Some(group_calls::GroupCalls {
                sfu: handle,
                key,
                demo_rooms: args.demo,
            })
        }
    };
    let config = ServerConfig {
        max_queue: args.max_queue,
        blob_dir: args.data_dir.join("blobs"),
        metrics_token: args.metrics_token,
        relay,
        sfu,
        ..ServerConfig::default()
    };
    // Load the pair before binding so a bad file fails fast and clearly.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::load_server_config(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Scripts and tests read these lines to find the ports: the address
    // first, then the relay's. One write, and its error ignored: a reader
    // that stops after the first line must not kill the server.
    let mut lines = format!("parley-server listening on {scheme}://{addr}\n");
    if let Some(relay) = &config.relay {
        lines += &format!(
            "parley-server relay and STUN on udp://{}\n",
            relay.local_addr
        );
    }
    if let Some(calls) = &config.sfu {
        lines += &format!("parley-server SFU on udp://{}\n", calls.sfu.public_addr);
        if calls.demo_rooms {
            lines += &format!("parley-server demo page at {scheme}://{addr}/demo\n");
        }
    }
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(lines.as_bytes())
            .and_then(|()| stdout.flush());
    }
    tracing::info!(%addr, scheme, backend = ?store.backend(), "listening");
    let app = app(AppState::new(store, config));
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match tls {
        Some(tls) => tls::serve(listener, app, tls, shutdown).await?,
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await?
        }
    }
    Ok(())
}
