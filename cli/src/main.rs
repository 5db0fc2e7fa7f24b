//! `parley`: the Parley command-line client.
//!
//! ```text
//! parley [--server URL] [--data-dir DIR] register <handle>
//! parley link                         # on an existing device: print a link code
//! parley link --join <handle> <code>  # on the new device
//! parley send <handle|group> <text>
//! parley chat <handle|group>         # type lines to send; incoming shown live
//! parley attach <handle> <file>      # WAV -> Opus voice note, images -> JPEG
//! parley inbox [--json] [--follow] [--download DIR]
//! parley group create <name> | add <group> <handle> | remove <group> <handle> | list
//! parley call <handle> [--video] [--duration S] [media options]
//! parley listen [--answer] [--once] [media options]
//! parley demo call [--duration S] [--loss PCT] [--video] [--json FILE]
//! ```
//!
//! Secrets are sealed in the data dir with a key file by default, so the
//! CLI never waits on a prompt when run from a script. `--passphrase` at
//! registration seals them with a passphrase instead, read from
//! `PARLEY_PASSPHRASE` or, on a terminal, a prompt.

mod call;
mod panel;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use parley_cli::demo;
use parley_client::vault::KeySource;
use parley_client::{Endpoint, Event, Incoming, Messenger, Receipt, ReceiptStatus, ReceiveMode};

#[derive(Parser)]
#[command(
    name = "parley",
    version,
    about = "Parley: end-to-end encrypted messaging and calls"
)]
struct Cli {
    /// Server URL.
    #[arg(
        long,
        global = true,
        env = "PARLEY_SERVER",
        default_value = "http://127.0.0.1:8443"
    )]
    server: String,
    /// Extra CA certificate (PEM) to trust for an https:// server, e.g. a
    /// private deployment's own CA.
    #[arg(long, global = true, env = "PARLEY_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Where this device keeps its keys and state.
    #[arg(long, global = true, env = "PARLEY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register a new user with this as its first device.
    Register {
        /// The handle to take (3-32 of a-z 0-9 _ . -).
        handle: String,
        /// Seal this device's secrets with a passphrase instead of a key file.
        #[arg(long)]
        passphrase: bool,
    },
    /// Link devices: without --join, print a code on an existing device;
    /// with --join, use that code to add this new device to the user.
    Link {
        /// The user to join and the code from their existing device.
        #[arg(long, num_args = 2, value_names = ["HANDLE", "CODE"])]
        join: Option<Vec<String>>,
        /// Seal this device's secrets with a passphrase instead of a key file.
        #[arg(long)]
        passphrase: bool,
    },
    /// Send a text message to a user or a group.
    Send {
        /// Recipient: a user's handle, or a group's name or id.
        to: String,
        /// The message.
        text: String,
    },
    /// Send a file: a WAV becomes an Opus voice note, an image a JPEG under
    /// 1 MB; it is encrypted before it leaves the device.
    Attach {
        /// Recipient handle.
        to: String,
        /// The file.
        file: PathBuf,
    },
    /// Talk interactively: each line you type is sent; what arrives from
    /// the conversation is shown as it comes. Ctrl-D (end of input) quits.
    Chat {
        /// A user's handle, or a group's name or id.
        with: String,
    },
    /// Create groups and manage their members.
    Group {
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Print what has arrived, acknowledge it, and exit.
    Inbox {
        /// One JSON object per line: {"id","from","to","group","text","sent_at"}.
        #[arg(long)]
        json: bool,
        /// Keep receiving instead of exiting.
        #[arg(long, conflicts_with = "download")]
        follow: bool,
        /// Download, verify and decrypt attachments into this directory.
        #[arg(long)]
        download: Option<PathBuf>,
        /// Also print delivery and read receipts for messages you sent.
        #[arg(long)]
        receipts: bool,
    },
    /// Call a user (voice, or video with --video): every device of theirs
    /// rings, the first to answer talks. Ctrl-C hangs up.
    Call {
        /// Who to call.
        handle: String,
        /// Video as well as audio.
        #[arg(long)]
        video: bool,
        #[command(flatten)]
        media: call::MediaArgs,
    },
    /// Join a group's call (through the server's SFU; Ctrl-C leaves), or
    /// with --room a demo room, as the browser demo page does.
    Join {
        /// Group name or id.
        #[arg(required_unless_present = "room", conflicts_with = "room")]
        group: Option<String>,
        /// A demo room on a server run with --demo (no account needed;
        /// media keyed by --passphrase).
        #[arg(long, requires = "passphrase")]
        room: Option<String>,
        /// The demo room's passphrase (never sent to the server).
        #[arg(long, env = "PARLEY_ROOM_PASSPHRASE", requires = "room")]
        passphrase: Option<String>,
        /// The name the demo room shows.
        #[arg(long, default_value = "parley-cli", requires = "room")]
        name: String,
        /// Send video as well as audio.
        #[arg(long)]
        video: bool,
        #[command(flatten)]
        media: call::MediaArgs,
    },
    /// Wait for calls and take them (Ctrl-C hangs up and stops).
    Listen {
        /// Answer every call at once (else ask on a terminal, or let it
        /// ring out).
        #[arg(long)]
        answer: bool,
        /// Exit after the first call.
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        media: call::MediaArgs,
    },
    /// Load an SFU with synthetic publishers and subscribers (like
    /// LiveKit's lk load-test) and report forwarded packets/s, latency,
    /// loss and the SFU process's CPU and memory.
    Loadtest {
        /// The server fronting the SFU (its /v1/sfu/join), e.g.
        /// http://127.0.0.1:8443.
        #[arg(long)]
        sfu: String,
        /// The SFU's token secret (parley-server --sfu-token-secret).
        #[arg(long, env = "PARLEY_SFU_TOKEN_SECRET")]
        token_secret: String,
        /// Participants sending media.
        #[arg(long, default_value_t = 2)]
        publishers: usize,
        /// Participants only receiving.
        #[arg(long, default_value_t = 8)]
        subscribers: usize,
        /// Seconds measured (after everyone connected and 2 s of warm-up).
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Publish 640x480 H.264 as well as Opus.
        #[arg(long)]
        video: bool,
        /// Room to load.
        #[arg(long, default_value = "loadtest")]
        room: String,
        /// The SFU's process id (found from its UDP port when omitted).
        #[arg(long)]
        sfu_pid: Option<u32>,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Self-contained demos that need no devices and no running server.
    Demo {
        #[command(subcommand)]
        demo: DemoCommand,
    },
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Two headless clients call each other through an embedded server
    /// over loopback (synthetic speech and test-pattern video, E2E keyed,
    /// SFrame-encrypted), then print the quality each side received.
    Call {
        /// Seconds each side sends.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Random loss on every outgoing datagram, percent.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        /// Video as well as audio.
        #[arg(long)]
        video: bool,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Seed for the loss.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// An embedded server with its SFU and N headless participants in one
    /// demo room (synthetic speech and test pattern, SFrame through the
    /// SFU, keys from a passphrase), which a browser can join; then what
    /// each received.
    Group {
        /// Participants (2 to 8).
        #[arg(long, default_value_t = 3)]
        participants: usize,
        /// Seconds each stays in the call.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Audio only.
        #[arg(long)]
        no_video: bool,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum GroupAction {
    /// Create a group; prints its id.
    Create {
        /// Display name.
        name: String,
    },
    /// Add a user (any member may).
    Add {
        /// Group name or id.
        group: String,
        /// The user to add.
        handle: String,
    },
    /// Remove a user (the owner removes anyone; others only themselves).
    Remove {
        /// Group name or id.
        group: String,
        /// The user to remove.
        handle: String,
    },
    /// List your groups and their members.
    List,
}

fn default_data_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/parley")
}

fn passphrase() -> Option<String> {
    if let Ok(p) = std::env::var("PARLEY_PASSPHRASE") {
        return Some(p);
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("passphrase: ").ok();
    }
    None
}

fn key_source(use_passphrase: bool) -> anyhow::Result<KeySource> {
    if !use_passphrase {
        return Ok(KeySource::KeyFile);
    }
    match passphrase() {
        Some(p) if !p.is_empty() => Ok(KeySource::Passphrase(p)),
        _ => bail!("--passphrase needs PARLEY_PASSPHRASE or a terminal to ask on"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber_init();
    let cli = Cli::parse();
    let dir = cli.data_dir.clone().unwrap_or_else(default_data_dir);
    let server = match &cli.ca_cert {
        Some(ca) => Endpoint::new(cli.server.as_str()).with_ca_file(ca)?,
        None => Endpoint::new(cli.server.as_str()),
    };
    match cli.command {
        Command::Register { handle, passphrase } => {
            let m = Messenger::register(&server, &dir, key_source(passphrase)?, &handle)
                .await
                .context("registering")?;
            println!(
                "registered {} (device {}) in {}",
                m.handle(),
                m.device_id(),
                dir.display()
            );
        }
        Command::Link { join: None, .. } => {
            let mut m = open(&server, &dir).await?;
            let code = m.create_link_code().await.context("creating a link code")?;
            println!("On the new device, within 10 minutes, run:");
            println!("  parley link --join {} {}", m.handle(), code.code);
        }
        Command::Link {
            join: Some(args),
            passphrase,
        } => {
            let (handle, code) = (&args[0], &args[1]);
            let m = Messenger::link(&server, &dir, key_source(passphrase)?, handle, code)
                .await
                .context("linking this device")?;
            println!("linked device {} to {}", m.device_id(), m.handle());
        }
        Command::Send { to, text } => {
            let mut m = open(&server, &dir).await?;
            let id = match find_group(&mut m, &to).await? {
                Some(group) => m.send_group_text(&group, &text).await,
                None => m.send_text(&to, &text).await,
            }
            .context("sending")?;
            println!("sent {id}");
        }
        Command::Loadtest {
            sfu,
            token_secret,
            publishers,
            subscribers,
            duration,
            video,
            room,
            sfu_pid,
            json,
        } => {
            loadtest(
                parley_cli::loadtest::LoadTestOptions {
                    server: sfu,
                    token_secret,
                    room,
                    publishers,
                    subscribers,
                    duration: std::time::Duration::from_secs_f64(duration.max(0.0)),
                    video,
                    sfu_pid,
                },
                json,
            )
            .await?
        }
        Command::Demo {
            demo:
                DemoCommand::Group {
                    participants,
                    duration,
                    no_video,
                    json,
                },
        } => {
            if !(duration.is_finite() && duration > 0.0 && duration <= 3600.0) {
                bail!("--duration must be between 0 and 3600 seconds");
            }
            let options = parley_cli::group_demo::GroupDemoOptions {
                participants,
                duration: std::time::Duration::from_secs_f64(duration),
                video: !no_video,
            };
            let report = parley_cli::group_demo::run_group_demo(
                options,
                |invite| {
                    eprintln!(
                        "demo group: server (with SFU) at {}; {participants} participants in room {}, {duration} s",
                        invite.url, invite.room
                    );
                    eprintln!("join them from a browser: {}", invite.page());
                },
                |name, event| eprintln!("[{name}] {}", group_event_line(&event)),
            )
            .await
            .context("demo group")?;
            println!("| participant | from | pictures | audio frames |");
            println!("|---|---|---:|---:|");
            for p in &report.participants {
                for (peer, audio) in &p.audio_packets {
                    let pictures = p.frames_decoded.get(peer).copied().unwrap_or(0);
                    println!("| {} | {peer} | {pictures} | {audio} |", p.name);
                }
            }
            for p in &report.participants {
                println!("{}: worst PESQ-WB {:.2}", p.name, p.pesq_wb_min);
            }
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report)?;
                std::fs::write(&path, text + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Command::Chat { with } => {
            let mut m = open(&server, &dir).await?;
            chat(&mut m, &with).await?;
        }
        Command::Demo {
            demo:
                DemoCommand::Call {
                    duration,
                    loss,
                    video,
                    json,
                    seed,
                },
        } => {
            if !(0.0..=100.0).contains(&loss) {
                bail!("--loss must be a percentage between 0 and 100");
            }
            if !(duration.is_finite() && duration > 0.0 && duration <= 3600.0) {
                bail!("--duration must be between 0 and 3600 seconds");
            }
            let options = demo::DemoOptions {
                duration: std::time::Duration::from_secs_f64(duration),
                loss_pct: loss,
                video,
                seed,
            };
            eprintln!(
                "demo call: {duration} s, {loss} % loss each way, {} ...",
                if video { "audio + video" } else { "audio" }
            );
            let report = demo::run_demo(options).await.context("demo call")?;
            print_demo_report(&report);
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report)?;
                std::fs::write(&path, text + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if !report.connected {
                bail!("the call did not connect");
            }
        }
        Command::Call {
            handle,
            video,
            media,
        } => {
            let mut m = open(&server, &dir).await?;
            let mut conn = m.connect().await.context("connecting")?;
            let result = call::call(&mut m, &mut conn, &handle, video, &media).await;
            conn.close().await;
            result?;
        }
        Command::Join {
            group: None,
            room: Some(room),
            passphrase: Some(passphrase),
            name,
            video,
            media,
        } => {
            call::join_demo(&server, &room, &name, &passphrase, video, &media).await?;
        }
        Command::Join {
            group: Some(group),
            video,
            media,
            ..
        } => {
            let mut m = open(&server, &dir).await?;
            let id = require_group(&mut m, &group).await?;
            let mut conn = m.connect().await.context("connecting")?;
            let result = call::join(&mut m, &mut conn, &id, &group, video, &media).await;
            conn.close().await;
            result?;
        }
        Command::Join { .. } => {
            anyhow::bail!("parley join takes a group, or --room with --passphrase")
        }
        Command::Listen {
            answer,
            once,
            media,
        } => {
            let mut m = open(&server, &dir).await?;
            let mut conn = m.connect().await.context("connecting")?;
            let result = call::listen(&mut m, &mut conn, answer, once, &media).await;
            conn.close().await;
            result?;
        }
        Command::Group { action } => {
            let mut m = open(&server, &dir).await?;
            match action {
                GroupAction::Create { name } => {
                    let g = m.create_group(&name).await.context("creating the group")?;
                    println!("created group {} ({})", g.name, g.group_id);
                }
                GroupAction::Add { group, handle } => {
                    let id = require_group(&mut m, &group).await?;
                    let g = m.add_member(&id, &handle).await.context("adding")?;
                    println!("{}: {}", g.name, g.members.join(", "));
                }
                GroupAction::Remove { group, handle } => {
                    let id = require_group(&mut m, &group).await?;
                    let g = m.remove_member(&id, &handle).await.context("removing")?;
                    println!("{}: {}", g.name, g.members.join(", "));
                }
                GroupAction::List => {
                    for g in m.groups().await.context("listing groups")? {
                        println!("{} ({}): {}", g.name, g.group_id, g.members.join(", "));
                    }
                }
            }
        }
        Command::Attach { to, file } => {
            let mut m = open(&server, &dir).await?;
            let id = m
                .send_attachment(&to, &file)
                .await
                .context("sending the attachment")?;
            println!("sent {id}");
        }
        Command::Inbox {
            json,
            follow,
            download,
            receipts,
        } => {
            let mut m = open(&server, &dir).await?;
            let own = m.handle().to_string();
            let mode = if follow {
                ReceiveMode::Follow
            } else {
                ReceiveMode::Drain
            };
            let mut attachments = Vec::new();
            let mut shown: Vec<(String, String)> = Vec::new();
            m.receive_events(mode, |event| match event {
                Event::Message(msg) => {
                    print_message(&msg, &own, json);
                    if msg.from != own {
                        shown.push((msg.from.clone(), msg.id.clone()));
                    }
                    if let Some(a) = msg.attachment {
                        attachments.push(a);
                    }
                }
                Event::Receipt(r) if receipts => print_receipt(&r, json),
                Event::Receipt(_) => {}
                // Call signals are stale by the time an inbox is read;
                // `parley listen` is what answers calls.
                Event::Call(c) => {
                    tracing::info!(from = %c.from, call = %c.signal.call_id(), "call signal skipped")
                }
                Event::Undecryptable { from, reason, .. } => eprintln!(
                    "warning: a message from {from} does not decrypt and was dropped \
                     (altered on the way or corrupt): {reason}"
                ),
            })
            .await
            .context("receiving")?;
            // What was printed was read: tell the senders.
            let mut by_sender: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for (from, id) in shown {
                by_sender.entry(from).or_default().push(id);
            }
            for (from, ids) in by_sender {
                m.mark_read(&from, ids)
                    .await
                    .context("sending read receipts")?;
            }
            if let Some(dir) = download {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                for a in attachments {
                    let bytes = m
                        .fetch_attachment(&a)
                        .await
                        .with_context(|| format!("downloading {}", a.name))?;
                    // Only the file name: a sender cannot write outside DIR.
                    let name = std::path::Path::new(&a.name)
                        .file_name()
                        .map_or_else(|| "attachment".into(), |n| n.to_owned());
                    let path = dir.join(name);
                    std::fs::write(&path, bytes)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("saved {}", path.display());
                }
            }
        }
    }
    Ok(())
}

fn print_demo_report(report: &demo::DemoReport) {
    println!(
        "connected: {}   hangup delivered: {}",
        report.connected, report.hangup_delivered
    );
    println!(
        "| direction | PESQ-WB | concealed % | FEC frames | mouth-to-ear p50 / p95 ms | video PSNR dB (min) | frames sent / decoded | frozen % | decrypt failures |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for d in &report.directions {
        let (psnr, frames, frozen) = match &d.video {
            Some(v) => (
                format!("{:.1} ({:.1})", v.psnr_db, v.psnr_min_db),
                format!("{} / {}", v.frames_sent, v.frames_decoded),
                format!("{:.1}", v.frozen_pct),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {} -> {} | {:.2} | {:.1} | {} | {:.0} / {:.0} | {} | {} | {} | {} |",
            d.from.split('-').next().unwrap_or(&d.from),
            d.to.split('-').next().unwrap_or(&d.to),
            d.audio.pesq_wb,
            d.audio.concealed_pct,
            d.audio.fec_recovered,
            d.audio.mouth_to_ear_ms_p50,
            d.audio.mouth_to_ear_ms_p95,
            psnr,
            frames,
            frozen,
            d.decrypt_failures
        );
    }
}

/// `parley loadtest`: runs it and prints a table (and JSON).
async fn loadtest(
    options: parley_cli::loadtest::LoadTestOptions,
    json: Option<PathBuf>,
) -> anyhow::Result<()> {
    if options.publishers == 0 || options.duration.is_zero() {
        anyhow::bail!("a load test needs at least one publisher and a duration");
    }
    eprintln!(
        "loadtest: {} publishers, {} subscribers, {} for {:?} ...",
        options.publishers,
        options.subscribers,
        if options.video {
            "audio + video"
        } else {
            "audio"
        },
        options.duration
    );
    let r = parley_cli::loadtest::run_loadtest(options)
        .await
        .context("load test")?;
    let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1}"));
    println!(
        "| publishers | subscribers | forwarded pkt/s | kbit/s | loss % | latency p50 / p99 / p99.9 ms | SFU CPU % | SFU RSS MiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {:.0} | {:.0} | {:.2} | {:.2} / {:.2} / {:.2} | {} | {} |",
        r.publishers,
        r.subscribers,
        r.forwarded_pps,
        r.forwarded_kbps,
        r.loss_pct,
        r.latency_ms_p50,
        r.latency_ms_p99,
        r.latency_ms_p999,
        opt(r.sfu_cpu_pct),
        opt(r.sfu_rss_mib)
    );
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&r)?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn open(server: &Endpoint, dir: &std::path::Path) -> anyhow::Result<Messenger> {
    Messenger::open(dir, Some(server.clone()), passphrase)
        .await
        .with_context(|| format!("opening the device in {}", dir.display()))
}

/// The interactive conversation: stdin lines go out, the socket's events
/// come in, multiplexed on one task so the device state has one owner.
async fn chat(m: &mut Messenger, with: &str) -> anyhow::Result<()> {
    let group = find_group(m, with).await?;
    let own = m.handle().to_string();
    // Blocking stdin on its own thread; lines arrive over a channel.
    let (tx, mut lines) = tokio::sync::mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let mut conn = m.connect().await.context("connecting")?;
    if std::io::stdin().is_terminal() {
        eprintln!("chatting with {with}; type and press enter, Ctrl-D to quit");
    }
    let mut input_open = true;
    loop {
        // After the input ends, stay only until what was queued is shown.
        if !input_open && conn.drained() {
            break;
        }
        tokio::select! {
            line = lines.recv(), if input_open => match line {
                Some(text) if text.trim().is_empty() => {}
                Some(text) => {
                    match &group {
                        Some(g) => m.send_group_text(g, &text).await,
                        None => m.send_text(with, &text).await,
                    }
                    .context("sending")?;
                }
                None => input_open = false,
            },
            frame = conn.next_frame() => {
                let Some(frame) = frame else { break };
                let mut read = Vec::new();
                for event in m.process_frame(&mut conn, frame?).await? {
                    match event {
                        Event::Message(msg) if in_conversation(&msg, with, group.as_deref()) => {
                            print_message(&msg, &own, false);
                            if msg.from != own {
                                read.push((msg.from.clone(), msg.id.clone()));
                            }
                        }
                        // Acked like everything else, so it must be shown:
                        // marked, and not counted as read.
                        Event::Message(msg) => {
                            print!("(other chat) ");
                            print_message(&msg, &own, false);
                        }
                        Event::Receipt(r) if r.from == with => print_receipt(&r, false),
                        _ => {}
                    }
                }
                for (from, id) in read {
                    m.mark_read(&from, vec![id]).await.context("sending a read receipt")?;
                }
            }
        }
    }
    conn.close().await;
    m.publish_keys().await.context("publishing keys")?;
    Ok(())
}

/// Whether a message belongs to the chat with `with` (a user, or the group
/// `group`), including this user's own messages synced from other devices.
fn in_conversation(msg: &Incoming, with: &str, group: Option<&str>) -> bool {
    match group {
        Some(g) => msg.group.as_deref() == Some(g),
        None => msg.group.is_none() && (msg.from == with || msg.to == with),
    }
}

/// The id of the caller's group named or identified by `name`, if any.
async fn find_group(m: &mut Messenger, name: &str) -> anyhow::Result<Option<String>> {
    let groups = m.groups().await.context("listing groups")?;
    if let Some(g) = groups.iter().find(|g| g.group_id == name) {
        return Ok(Some(g.group_id.clone()));
    }
    let named: Vec<_> = groups.iter().filter(|g| g.name == name).collect();
    match named.as_slice() {
        [] => Ok(None),
        [g] => Ok(Some(g.group_id.clone())),
        _ => bail!("several of your groups are called {name:?}; use the group id"),
    }
}

async fn require_group(m: &mut Messenger, name: &str) -> anyhow::Result<String> {
    find_group(m, name)
        .await?
        .with_context(|| format!("you are in no group called {name:?}"))
}

fn print_receipt(r: &Receipt, json: bool) {
    let status = match r.status {
        ReceiptStatus::Delivered => "delivered",
        ReceiptStatus::Read => "read",
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "receipt": status, "from": r.from, "ids": r.ids })
        );
    } else {
        println!("[{} {status} {} message(s)]", r.from, r.ids.len());
    }
}

fn print_message(msg: &Incoming, own: &str, json: bool) {
    if json {
        let mut line = serde_json::json!({
            "id": msg.id,
            "from": msg.from,
            "to": msg.to,
            "group": msg.group,
            "text": msg.text,
            "sent_at": msg.sent_at,
        });
        if let Some(a) = &msg.attachment {
            line["attachment"] =
                serde_json::json!({ "name": a.name, "mime": a.mime, "size": a.size });
        }
        println!("{line}");
    } else if let Some(a) = &msg.attachment {
        println!(
            "[{}] sent {} ({}, {} bytes)",
            msg.from, a.name, a.mime, a.size
        );
    } else if let Some(group) = &msg.group {
        println!("[{} in {group}] {}", msg.from, msg.text);
    } else if msg.from == own {
        println!("[you -> {}] {}", msg.to, msg.text);
    } else {
        println!("[{}] {}", msg.from, msg.text);
    }
}

/// Logs go to stderr (so `--json` output stays clean), warnings and up
/// unless `RUST_LOG` says otherwise.
fn tracing_subscriber_init() {
    use tracing_subscriber::EnvFilter;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .try_init();
}

fn group_event_line(event: &parley_client::call::group_call::GroupCallEvent) -> String {
    use parley_client::call::group_call::GroupCallEvent as E;
    match event {
        E::Connected(_) => "connected to the SFU".into(),
        E::Joined(who) => format!("{who} is in the call"),
        E::Left(who, why) => format!("{who} left ({why})"),
        E::Speaker(who) => format!("{who} is speaking"),
        E::Warning(w) => format!("warning: {w}"),
    }
}
