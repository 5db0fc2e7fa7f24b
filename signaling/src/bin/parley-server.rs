//! `parley-server`: the signaling server.
//!
//! ```text
//! parley-server --listen 127.0.0.1:8443 --db sqlite://parley.db --data-dir ./data
//! parley-server --tls-cert cert.pem --tls-key key.pem   # HTTPS and WSS
//! ```

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use parley_signaling::server::{DEFAULT_RELAY_PORT, DEFAULT_SFU_PORT, Server, SfuSetup, Udp};
use parley_signaling::{ServerConfig, tls};

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
    /// Envelopes per second one device may submit, sustained (HTTP and
    /// websocket together; a message is one envelope per recipient device).
    #[arg(long, default_value_t = ServerConfig::default().envelope_rate_per_second)]
    envelope_rate: f64,
    /// Envelopes one device may submit at once (at least 1000, one full
    /// send).
    #[arg(long, default_value_t = ServerConfig::default().envelope_burst)]
    envelope_burst: f64,
    /// Requests per second one source address may make to the routes that
    /// need no account (register, sign-in, link, demo and SFU joins).
    #[arg(long, env = "PARLEY_ADDRESS_RATE", default_value_t = ServerConfig::default().address_rate_per_second)]
    address_rate: f64,
    /// Such requests one address may make at once.
    #[arg(long, env = "PARLEY_ADDRESS_BURST", default_value_t = ServerConfig::default().address_burst)]
    address_burst: f64,
    /// Milliseconds the envelope writer holds a transaction open for more
    /// senders after the first (group commit; 0: only what is already
    /// waiting).
    #[arg(long, default_value_t = ServerConfig::default().commit_window.as_millis() as u64)]
    commit_window_ms: u64,
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
    /// Participants one group-call room holds; one more is refused.
    #[arg(long, default_value_t = parley_sfu::room::MAX_PARTICIPANTS, conflicts_with = "no_sfu")]
    sfu_max_participants: usize,
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
    // Load the pair before binding so a bad file fails fast and clearly.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::load_server_config(cert, key)?),
        _ => None,
    };
    let relay = match (args.no_udp, args.udp) {
        (true, _) => Udp::Off,
        (false, None) if args.public_udp.is_none() => Udp::Default,
        (false, bind) => Udp::At {
            bind: bind.unwrap_or_else(|| SocketAddr::new(args.listen.ip(), DEFAULT_RELAY_PORT)),
            public: args.public_udp,
        },
    };
    let sfu_ip = args.sfu_udp.map_or(args.listen.ip(), |a| a.ip());
    let sfu_udp = match (args.no_sfu, args.sfu_udp) {
        (true, _) => Udp::Off,
        (false, _) if sfu_ip.is_unspecified() && args.public_sfu_udp.is_none() => {
            // ICE needs a concrete address in the SFU's answer.
            tracing::warn!(%sfu_ip, "no SFU: it would listen on an unspecified address; give --public-sfu-udp");
            Udp::Off
        }
        (false, None) if args.public_sfu_udp.is_none() => Udp::Default,
        (false, bind) => Udp::At {
            bind: bind.unwrap_or_else(|| SocketAddr::new(args.listen.ip(), DEFAULT_SFU_PORT)),
            public: args.public_sfu_udp,
        },
    };
    let server = Server::builder()
        .listen(args.listen)
        .data_dir(&args.data_dir)
        .database(args.db)
        .config(ServerConfig {
            max_queue: args.max_queue,
            metrics_token: args.metrics_token,
            envelope_rate_per_second: args.envelope_rate,
            envelope_burst: args.envelope_burst.max(1000.0),
            address_rate_per_second: args.address_rate,
            address_burst: args.address_burst,
            commit_window: std::time::Duration::from_millis(args.commit_window_ms),
            ..ServerConfig::default()
        })
        .relay(relay)
        .sfu(SfuSetup {
            udp: sfu_udp,
            token_secret: args.sfu_token_secret,
            demo_rooms: args.demo,
            max_participants: args.sfu_max_participants,
        })
        .tls(tls)
        .start()
        .await?;
    // Scripts and tests read these lines to find the ports: the address
    // first, then the relay's. One write, and its error ignored: a reader
    // that stops after the first line must not kill the server.
    let mut lines = format!("parley-server listening on {}\n", server.url());
    if let Some(relay) = server.relay_addr() {
        lines += &format!("parley-server relay and STUN on udp://{relay}\n");
    }
    if let Some(sfu) = server.sfu_addr() {
        lines += &format!("parley-server SFU on udp://{sfu}\n");
    }
    if let Some(demo) = server.demo_url() {
        lines += &format!("parley-server demo page at {demo}\n");
    }
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(lines.as_bytes())
            .and_then(|()| stdout.flush());
    }
    server
        .serve_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
