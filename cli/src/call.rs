//! `parley call` and `parley listen`: the CLI face of
//! [`parley_client::call::phone`]. Live statistics go to a panel on a
//! terminal and to one log line a second elsewhere; `--stats-json` writes
//! the same as JSON lines, then the call's summary.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use parley_client::call::devices::{
    AudioOutput, VideoInput, open_audio_input, open_audio_output, open_video_input,
};
use parley_client::call::flow::RING_TIMEOUT;
use parley_client::call::group_call::{self, GroupCallEvent, JoinOptions};
use parley_client::call::phone::{self, AnswerPolicy, Decision, PhoneEvent, PhoneOptions};
use parley_client::messenger::DemoRoom;
use parley_client::{Connection, Endpoint, Messenger};

use super::panel::Panel;

/// Media and output options shared by `call` and `listen`.
#[derive(Args, Debug, Clone)]
pub struct MediaArgs {
    /// Hang up after this many seconds connected.
    #[arg(long)]
    duration: Option<f64>,
    /// Microphone: `default`, a device name, a `.wav` file, `tone`,
    /// `speech` or `null`.
    #[arg(long, default_value = "default")]
    audio_in: String,
    /// Speaker: `default`, a device name, a `.wav` file or `null`.
    #[arg(long, default_value = "default")]
    audio_out: String,
    /// Camera for video calls: `default`, a camera's index or name, a
    /// `.y4m` file, `pattern` or `null`.
    #[arg(long, default_value = "pattern")]
    video_in: String,
    /// Record what is received into this directory (audio.wav, video.y4m).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Write statistics as JSON lines here (one a second, then a summary).
    #[arg(long)]
    stats_json: Option<PathBuf>,
    /// Local IP address for media (default: the one routing to the server).
    #[arg(long)]
    bind: Option<std::net::IpAddr>,
    /// Seconds a call rings before it counts as missed.
    #[arg(long, default_value_t = RING_TIMEOUT.as_secs_f64())]
    ring_timeout: f64,
    /// Drop this percentage of outgoing media datagrams (simulates a bad
    /// network).
    #[arg(long, default_value_t = 0.0, hide = true)]
    send_loss: f64,
    /// Seed for --send-loss.
    #[arg(long, default_value_t = 1, hide = true)]
    seed: u64,
}

impl MediaArgs {
    fn options(&self, video: bool) -> anyhow::Result<PhoneOptions> {
        let seconds = |v: f64, what: &str| {
            anyhow::ensure!(
                v.is_finite() && v > 0.0 && v <= 24.0 * 3600.0,
                "{what} must be a positive number of seconds"
            );
            Ok(Duration::from_secs_f64(v))
        };
        anyhow::ensure!(
            (0.0..=100.0).contains(&self.send_loss),
            "--send-loss must be a percentage"
        );
        let options = PhoneOptions {
            video,
            duration: self
                .duration
                .map(|d| seconds(d, "--duration"))
                .transpose()?,
            ring_timeout: seconds(self.ring_timeout, "--ring-timeout")?,
            audio_in: self.audio_in.parse()?,
            audio_out: self.audio_out.parse()?,
            video_in: self.video_in.parse()?,
            record: self.record.clone(),
            bind: self.bind,
            send_loss: self.send_loss / 100.0,
            seed: self.seed,
        };
        check_devices(&options)?;
        Ok(options)
    }
}

/// Opens every device once before any signal goes out, so a missing
/// microphone is an error now, not a failed call later.
fn check_devices(options: &PhoneOptions) -> anyhow::Result<()> {
    let hint = "(--audio-in/--audio-out take speech, tone, null or a .wav file)";
    open_audio_input(&options.audio_in).with_context(|| format!("audio input {hint}"))?;
    if !matches!(options.audio_out, AudioOutput::Null | AudioOutput::File(_)) {
        open_audio_output(&options.audio_out).with_context(|| format!("audio output {hint}"))?;
    }
    if options.video && options.video_in != VideoInput::Null {
        open_video_input(&options.video_in).context("video input")?;
    }
    Ok(())
}

/// Shows events as they come: the panel on a terminal, log lines
/// elsewhere, JSON lines to `--stats-json`.
struct Output {
    panel: Option<Panel>,
    last: Option<parley_client::call::stats::LiveStats>,
    json: Option<std::fs::File>,
    peer: String,
}

impl Output {
    fn new(args: &MediaArgs, peer: &str) -> anyhow::Result<Self> {
        let json = match &args.stats_json {
            Some(path) => Some(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            ),
            None => None,
        };
        Ok(Self {
            panel: None,
            last: None,
            json,
            peer: peer.to_string(),
        })
    }

    fn say(&mut self, line: String) {
        match &mut self.panel {
            Some(panel) => panel.status(line),
            None => eprintln!("{line}"),
        }
    }

    fn json(&mut self, kind: &str, value: serde_json::Value) {
        if let Some(file) = &mut self.json {
            let mut object = serde_json::json!({ "type": kind });
            if let (Some(o), serde_json::Value::Object(v)) = (object.as_object_mut(), value) {
                o.extend(v);
            }
            if let Err(e) = writeln!(file, "{object}") {
                eprintln!("stats file: {e}");
            }
        }
    }

    fn handle(&mut self, event: PhoneEvent) {
        match event {
            PhoneEvent::Dialing { peer, devices } => {
                self.peer = peer.clone();
                self.say(format!("calling {peer} ({devices} device(s))..."));
            }
            PhoneEvent::Ringing => self.say(format!("{} is ringing", self.peer)),
            PhoneEvent::Incoming { from, video } => {
                self.peer = from.clone();
                self.say(format!(
                    "incoming {} call from {from}",
                    if video { "video" } else { "voice" }
                ));
            }
            PhoneEvent::Connected => {
                if std::io::stderr().is_terminal() {
                    self.panel = Panel::start(&self.peer).ok();
                }
                self.say(format!("connected to {} (Ctrl-C hangs up)", self.peer));
            }
            PhoneEvent::Stats(stats) => {
                self.json(
                    "stats",
                    serde_json::to_value(&stats).unwrap_or(serde_json::Value::Null),
                );
                match &mut self.panel {
                    Some(panel) => panel.draw(&stats),
                    None => eprintln!("{}", stats.log_line()),
                }
                self.last = Some(stats);
            }
            PhoneEvent::Message(msg) => self.say(format!("[{}] {}", msg.from, msg.text)),
            PhoneEvent::Warning(w) => self.say(format!("warning: {w}")),
            PhoneEvent::Ended(summary) => {
                if self.panel.take().is_none()
                    && let Some(stats) = self.last.take()
                {
                    let title = format!(" call with {} ", summary.peer);
                    eprintln!("{}", super::panel::as_text(&title, &stats, 64));
                }
                self.json(
                    "summary",
                    serde_json::to_value(&summary).unwrap_or(serde_json::Value::Null),
                );
                eprintln!(
                    "call with {} ended: {} ({:.0} s of media)",
                    summary.peer, summary.end_reason, summary.media_s
                );
            }
        }
    }
}

/// `parley call <handle>`.
pub async fn call(
    m: &mut Messenger,
    conn: &mut Connection,
    peer: &str,
    video: bool,
    args: &MediaArgs,
) -> anyhow::Result<()> {
    let options = args.options(video)?;
    let mut out = Output::new(args, peer)?;
    let summary = phone::place_call(m, conn, peer, &options, &mut |e| out.handle(e), ctrl_c())
        .await
        .with_context(|| format!("calling {peer}"))?;
    if !summary.connected {
        anyhow::bail!("the call did not connect: {}", summary.end_reason);
    }
    Ok(())
}

/// `parley listen`.
pub async fn listen(
    m: &mut Messenger,
    conn: &mut Connection,
    answer: bool,
    once: bool,
    args: &MediaArgs,
) -> anyhow::Result<()> {
    // The callee follows the offer: video is opened when it asks for it.
    let options = args.options(true)?;
    let mut out = Output::new(args, "")?;
    let policy = if answer {
        AnswerPolicy::Auto
    } else if std::io::stdin().is_terminal() {
        AnswerPolicy::Ask(ask_on_stdin())
    } else {
        AnswerPolicy::Never
    };
    eprintln!(
        "listening for calls as {}{}",
        m.handle(),
        if answer { " (answering)" } else { "" }
    );
    phone::listen(
        m,
        conn,
        &options,
        policy,
        once,
        &mut |e| {
            if let PhoneEvent::Incoming { .. } = &e
                && !answer
            {
                eprintln!("answer? type y and Enter to answer, n to decline");
            }
            out.handle(e)
        },
        ctrl_c(),
    )
    .await?;
    Ok(())
}

/// Answers from the terminal: `y` answers, `n` declines.
fn ask_on_stdin() -> tokio::sync::mpsc::UnboundedReceiver<Decision> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            let decision = match line.trim() {
                "y" | "Y" | "yes" | "" => Decision::Answer,
                _ => Decision::Decline,
            };
            if tx.send(decision).is_err() {
                break;
            }
        }
    });
    rx
}

async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// `parley join`: the group's call through the server's SFU.
pub async fn join(
    m: &mut Messenger,
    conn: &mut Connection,
    group_id: &str,
    group_name: &str,
    video: bool,
    args: &MediaArgs,
) -> anyhow::Result<()> {
    let options = join_options(video, args)?;
    let mut show = show_group_event(group_name);
    let call = group_call::join_group(m, conn, group_id, &options, &mut show, ctrl_c());
    report_group_call(call, group_name, args).await
}

/// `parley join --room`: a demo room keyed by a passphrase.
pub async fn join_demo(
    server: &Endpoint,
    room: &str,
    name: &str,
    passphrase: &str,
    video: bool,
    args: &MediaArgs,
) -> anyhow::Result<()> {
    let options = join_options(video, args)?;
    let demo = DemoRoom::new(server)?;
    let label = format!("demo room {room}");
    let mut show = show_group_event(&label);
    let call =
        group_call::join_demo_room(&demo, room, name, passphrase, &options, &mut show, ctrl_c());
    report_group_call(call, &label, args).await
}

fn show_group_event(label: &str) -> impl FnMut(GroupCallEvent) + Send + '_ {
    move |event| match event {
        GroupCallEvent::Connected(_) => eprintln!("in the call of {label} (Ctrl-C leaves)"),
        GroupCallEvent::Joined(who) => eprintln!("{who} is in the call"),
        GroupCallEvent::Left(who, why) => eprintln!("{who} left ({why})"),
        GroupCallEvent::Speaker(who) => eprintln!("{who} is speaking"),
        GroupCallEvent::Warning(w) => eprintln!("warning: {w}"),
    }
}

fn join_options(video: bool, args: &MediaArgs) -> anyhow::Result<JoinOptions> {
    let phone = args.options(video)?;
    let options = JoinOptions {
        duration: phone.duration,
        audio_in: phone.audio_in,
        audio_out: phone.audio_out,
        video_in: if video {
            phone.video_in
        } else {
            VideoInput::Null
        },
        record: phone.record,
        bind: phone.bind,
    };
    Ok(options)
}

/// Runs a joined group call to its end and prints how it went.
async fn report_group_call(
    call: impl std::future::Future<
        Output = Result<group_call::GroupCallSummary, group_call::GroupCallError>,
    >,
    group_name: &str,
    args: &MediaArgs,
) -> anyhow::Result<()> {
    let mut out = Output::new(args, group_name)?;
    let summary = call
        .await
        .with_context(|| format!("joining the call of {group_name}"))?;
    for peer in &summary.peers {
        eprintln!(
            "from {} ({}): {} audio frames, {} pictures, {} undecryptable",
            peer.user, peer.device, peer.audio_frames, peer.pictures, peer.decrypt_failures
        );
    }
    out.json(
        "summary",
        serde_json::to_value(&summary).unwrap_or(serde_json::Value::Null),
    );
    eprintln!(
        "left the call of {group_name} ({:.0} s of media)",
        summary.media_s
    );
    Ok(())
}
