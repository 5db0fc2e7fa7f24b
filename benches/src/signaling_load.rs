//! The signaling load benchmark: many devices connected to one
//! `parley-server` process, sending envelopes to each other over their
//! websockets. Measures messages per second, delivery latency (send to
//! receive, through the server's durable store) and the server's memory
//! per idle websocket, read from `/proc` so it counts the server alone.
//!
//! Envelopes carry random bytes, not Olm ciphertext: the server cannot
//! tell the difference, and the benchmark is of the server, not of the
//! clients' crypto. The first 8 bytes are the send time, which the
//! receiver subtracts from its receive time (one process, one clock).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use parley_wire::api::{
    self, Challenge, ChallengeRequest, ClientFrame, DeviceCreated, DeviceKeys, OutgoingEnvelope,
    RegisterRequest, ServerFrame, Token, TokenRequest,
};
use rand::Rng;
use serde::Serialize;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Results, as the `--json` file holds them.
#[derive(Debug, Clone, Serialize)]
pub struct SignalingReport {
    /// `sqlite` or `postgres`.
    pub database: String,
    /// Devices connected.
    pub devices: usize,
    /// Messages delivered.
    pub messages: usize,
    /// Delivered per second, over the whole sending phase.
    pub messages_per_sec: f64,
    /// Delivery latency percentiles, milliseconds.
    pub latency_ms_p50: f64,
    /// 99th percentile.
    pub latency_ms_p99: f64,
    /// Largest.
    pub latency_ms_max: f64,
    /// Server RSS with every device registered but none connected.
    pub server_rss_mib_before: f64,
    /// Server RSS with every device connected and idle.
    pub server_rss_mib_connected: f64,
    /// The difference per connection, KiB.
    pub rss_kib_per_idle_connection: f64,
}

/// A running `parley-server` process.
struct ServerProcess {
    child: Child,
    url: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(binary: &Path, data_dir: &Path, db: Option<&str>) -> anyhow::Result<ServerProcess> {
    use std::io::{BufRead, BufReader};
    let mut cmd = Command::new(binary);
    cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir);
    if let Some(db) = db {
        cmd.args(["--db", db]);
    }
    // Every simulated device registers and signs in from 127.0.0.1: lift
    // the per-address limit on those routes (an environment variable, so
    // a baseline binary from before the limit still starts).
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .env("PARLEY_ADDRESS_RATE", "1000000")
        .env("PARLEY_ADDRESS_BURST", "1000000")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting {}: {e}", binary.display()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("parley-server listening on ")
        .ok_or_else(|| anyhow::anyhow!("unexpected server output {line:?}"))?
        .to_string();
    Ok(ServerProcess { child, url })
}

fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))?;
    Ok(kib / 1024.0)
}

struct Device {
    id: String,
    token: String,
}

/// POSTs JSON and decodes the JSON answer, failing on an error status.
async fn post<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    body: &impl Serialize,
) -> anyhow::Result<T> {
    Ok(http
        .post(url)
        .json(body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

async fn register(http: &reqwest::Client, url: &str, handle: String) -> anyhow::Result<Device> {
    let account = vodozemac::olm::Account::new();
    let identity_key = account.curve25519_key().to_base64();
    let signing_key = account.ed25519_key().to_base64();
    let signature = account
        .sign(api::registration_message(
            &handle,
            &identity_key,
            &signing_key,
        ))
        .to_base64();
    let created: DeviceCreated = post(
        http,
        &format!("{url}/v1/register"),
        &RegisterRequest {
            handle,
            device: DeviceKeys {
                identity_key,
                signing_key,
                signature,
            },
        },
    )
    .await?;
    let challenge: Challenge = post(
        http,
        &format!("{url}/v1/auth/challenge"),
        &ChallengeRequest {
            device_id: created.device_id.clone(),
        },
    )
    .await?;
    let signature = account
        .sign(api::challenge_message(
            &created.device_id,
            &challenge.challenge,
        ))
        .to_base64();
    let token: Token = post(
        http,
        &format!("{url}/v1/auth/token"),
        &TokenRequest {
            device_id: created.device_id.clone(),
            challenge: challenge.challenge,
            signature,
        },
    )
    .await?;
    Ok(Device {
        id: created.device_id,
        token: token.token,
    })
}

/// Runs the benchmark against a fresh server process.
pub async fn run(
    server_binary: &Path,
    db: Option<&str>,
    devices: usize,
    messages: usize,
) -> anyhow::Result<SignalingReport> {
    let data = std::env::temp_dir().join(format!("parley-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let server = start_server(server_binary, &data, db)?;
    let pid = server.child.id();
    let http = reqwest::Client::new();
    let run_id: u32 = rand::rng().random();

    // Register, a few at a time.
    let mut registered = Vec::with_capacity(devices);
    for chunk in (0..devices).collect::<Vec<_>>().chunks(32) {
        let batch = futures_util::future::join_all(
            chunk
                .iter()
                .map(|i| register(&http, &server.url, format!("load{run_id:08x}-{i}"))),
        )
        .await;
        for d in batch {
            registered.push(d?);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_mib(pid)?;

    // Connect everyone and wait for each to be drained (idle).
    let ws_base = server.url.replacen("http://", "ws://", 1);
    let mut sockets = Vec::with_capacity(devices);
    for d in &registered {
        let mut request = format!("{ws_base}/v1/ws").into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {}", d.token).parse()?);
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str().contains("\"drained\"") => break,
                Some(Ok(_)) => continue,
                other => anyhow::bail!("websocket ended before draining: {other:?}"),
            }
        }
        sockets.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected = rss_mib(pid)?;

    // Every device sends its share to random others, one send in flight
    // each, and receives and acks what it is sent.
    let ids: Arc<Vec<String>> = Arc::new(registered.iter().map(|d| d.id.clone()).collect());
    let per_device = messages.div_ceil(devices);
    let total = per_device * devices;
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let delivered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let done_tx = Arc::new(done_tx);
    let epoch = Instant::now();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, ws) in sockets.into_iter().enumerate() {
        let (ids, latencies, delivered) = (ids.clone(), latencies.clone(), delivered.clone());
        let (done_tx, mut done_rx) = (done_tx.clone(), done_rx.clone());
        tasks.push(tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let mut sent = 0usize;
            let mut awaiting_store = false;
            let send_next = |sent: &mut usize| -> Option<String> {
                if *sent >= per_device {
                    return None;
                }
                let mut rng = rand::rng();
                let mut to = rng.random_range(0..ids.len());
                if to == index {
                    to = (to + 1) % ids.len();
                }
                let mut payload = vec![0u8; 160];
                rng.fill(&mut payload[8..]);
                let now = epoch.elapsed().as_nanos() as u64;
                payload[..8].copy_from_slice(&now.to_be_bytes());
                let frame = ClientFrame::Send {
                    envelopes: vec![OutgoingEnvelope {
                        id: format!("{index}-{sent}"),
                        to_device: ids[to].clone(),
                        kind: api::kind::OLM_MESSAGE,
                        ciphertext: STANDARD.encode(payload),
                        group_id: None,
                    }],
                };
                *sent += 1;
                Some(serde_json::to_string(&frame).expect("frames serialize"))
            };
            if let Some(f) = send_next(&mut sent) {
                sink.send(Message::Text(f.into())).await?;
                awaiting_store = true;
            }
            let mut local = Vec::new();
            while !*done_rx.borrow() || awaiting_store {
                let next = tokio::select! {
                    _ = done_rx.changed() => continue,
                    next = tokio::time::timeout(Duration::from_secs(30), stream.next()) => next,
                };
                let Ok(Some(Ok(Message::Text(text)))) = next else {
                    break;
                };
                match serde_json::from_str::<ServerFrame>(text.as_str())? {
                    ServerFrame::Envelope(e) => {
                        let bytes = STANDARD.decode(&e.ciphertext)?;
                        let at = u64::from_be_bytes(bytes[..8].try_into()?);
                        let now = epoch.elapsed().as_nanos() as u64;
                        local.push(now.saturating_sub(at) as f64 / 1e6);
                        if delivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 == total
                        {
                            let _ = done_tx.send(true);
                        }
                        let ack = ClientFrame::Ack { ids: vec![e.id] };
                        sink.send(Message::Text(serde_json::to_string(&ack)?.into()))
                            .await?;
                    }
                    ServerFrame::Stored { .. } => {
                        awaiting_store = false;
                        if let Some(f) = send_next(&mut sent) {
                            sink.send(Message::Text(f.into())).await?;
                            awaiting_store = true;
                        }
                    }
                    ServerFrame::Error(e) => {
                        anyhow::bail!("server refused a send: {} {}", e.error, e.message)
                    }
                    ServerFrame::Drained => {}
                }
            }
            latencies.lock().await.extend(local);
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = Arc::try_unwrap(latencies)
        .map_err(|_| anyhow::anyhow!("tasks finished"))?
        .into_inner();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok(SignalingReport {
        database: if db.is_some_and(|d| d.starts_with("postgres")) {
            "postgres"
        } else {
            "sqlite"
        }
        .into(),
        devices,
        messages: latencies.len(),
        messages_per_sec: latencies.len() as f64 / elapsed,
        latency_ms_p50: pct(0.50),
        latency_ms_p99: pct(0.99),
        latency_ms_max: pct(1.0),
        server_rss_mib_before: rss_before,
        server_rss_mib_connected: rss_connected,
        rss_kib_per_idle_connection: (rss_connected - rss_before) * 1024.0 / devices as f64,
    })
}
