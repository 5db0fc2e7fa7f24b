//! `parley-bench`: Parley's benchmarks from the command line.
//!
//! ```text
//! parley-bench loss [--media audio,video] [--rtt 20,100,300] [--jitter 0,30] [--seed 1] [--json FILE] [--report DIR]
//! parley-bench audio-loss [--runs 3] [--seed 1] [--json FILE] [--report DIR]
//! parley-bench signaling [--devices 1000] [--messages 20000] [--db URL] [--json FILE]
//! ```
// Benchmarks time real work on the wall clock and pick the origin of virtual time.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use parley_bench::audio_loss::{AudioLossBench, Protection, standard_conditions, table, targets};
use parley_bench::call_loss::{self, CallLossBench, Media};

#[derive(Parser)]
#[command(name = "parley-bench", version, about = "Parley benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A whole 1:1 call (Opus or H.264, SFrame, str0m on both ends, the
    /// jitter buffer) over a simulated network in virtual time: random loss
    /// 0-40 % and Gilbert-Elliott bursts (mean 2 and 4 packets) at each RTT
    /// and jitter, under each protection. Audio scored with PESQ-WB, video
    /// with PSNR, frozen time and recovery after loss bursts.
    Loss {
        /// Media to run.
        #[arg(long, value_delimiter = ',', default_value = "audio,video")]
        media: Vec<Media>,
        /// Protections to compare (each runs on the media it applies to).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "none,plc,fec,adaptive-fec,red,adaptive,nack"
        )]
        protections: Vec<call_loss::Protection>,
        /// Round-trip times, ms.
        #[arg(long, value_delimiter = ',', default_value = "20,100,300")]
        rtt: Vec<u32>,
        /// One-way jitter, ms.
        #[arg(long, value_delimiter = ',', default_value = "0,30")]
        jitter: Vec<u32>,
        /// Only these loss rates, percent (default: the whole sweep).
        #[arg(long, value_delimiter = ',')]
        loss: Option<Vec<u8>>,
        /// Seeds averaged per row.
        #[arg(long, default_value_t = 1)]
        runs: u32,
        /// Base random seed (results repeat exactly for the same seed).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Media sent before scoring, seconds (lets bandwidth estimation
        /// and loss reports settle).
        #[arg(long, default_value_t = 3.0)]
        warmup: f64,
        /// Video scored per run, seconds (audio scores the speech clip).
        #[arg(long, default_value_t = 10.0)]
        video_duration: f64,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// Also write the rows as a JSON array to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a report here: CSV, the markdown tables, SVG plots.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Speech through Opus, RTP, a lossy link and the jitter buffer,
    /// scored with PESQ-WB, for random and bursty loss under no
    /// protection, PLC, and FEC + PLC.
    AudioLoss {
        /// Seeds averaged per condition.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Base random seed (results repeat exactly for the same seed).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Protections to compare.
        #[arg(long, value_delimiter = ',', default_value = "none,plc,fec")]
        protections: Vec<Protection>,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// Also write the rows as a JSON array to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a report here: CSV, the markdown table, and SVG plots of
        /// PESQ-WB against loss (a line per protection).
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Many devices on one parley-server process: messages/s, delivery
    /// latency p50/p99, and server memory per idle websocket.
    Signaling {
        /// Devices to register and connect.
        #[arg(long, default_value_t = 1000)]
        devices: usize,
        /// Messages to deliver in all.
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        /// Database URL for the server (default: SQLite in a temp dir).
        #[arg(long)]
        db: Option<String>,
        /// The parley-server binary (default: next to this one).
        #[arg(long)]
        server: Option<PathBuf>,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Loss {
            media,
            protections,
            rtt,
            jitter,
            loss,
            runs,
            seed,
            warmup,
            video_duration,
            threads,
            json,
            report,
        } => {
            let mut conditions = call_loss::standard_conditions(&rtt, &jitter);
            if let Some(loss) = loss {
                conditions.retain(|c| loss.contains(&c.loss_pct));
            }
            let bench = CallLossBench {
                conditions,
                media,
                protections,
                runs: runs.max(1),
                seed,
                warmup: std::time::Duration::from_secs_f64(warmup.max(0.0)),
                video_duration: std::time::Duration::from_secs_f64(video_duration.max(1.0)),
                threads: threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            };
            call_loss_bench(&bench, json, report)
        }
        Command::AudioLoss {
            runs,
            seed,
            protections,
            threads,
            json,
            report,
        } => audio_loss(runs, seed, protections, threads, json, report),
        Command::Signaling {
            devices,
            messages,
            db,
            server,
            json,
        } => signaling(devices, messages, db, server, json),
    }
}

fn call_loss_bench(
    bench: &CallLossBench,
    json: Option<PathBuf>,
    report: Option<PathBuf>,
) -> anyhow::Result<()> {
    let speech = parley_media::speech::speech_clip().context("loading the speech clip")?;
    let jobs = bench.jobs();
    anyhow::ensure!(
        !jobs.is_empty(),
        "nothing to run: no protection applies to the media chosen"
    );
    eprintln!(
        "loss: {} runs (conditions x media x protections) of {} seed(s) from {}",
        jobs.len(),
        bench.runs,
        bench.seed
    );
    let bar = indicatif::ProgressBar::new(jobs.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} eta {eta} {msg}",
        )?
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let rows = bench.run(&speech, &|row| {
        let score = match (row.pesq_wb, row.frozen_pct) {
            (Some(pesq), _) => format!("PESQ-WB {pesq:.2}"),
            (None, Some(frozen)) => format!("frozen {frozen:.1} %"),
            _ => String::new(),
        };
        bar.set_message(format!(
            "{:?} {}, RTT {} ms, jitter {} ms, {}: {score}",
            row.media,
            call_loss::loss_label(row),
            row.rtt_ms,
            row.jitter_ms,
            row.protection.name()
        ));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    if bench.media.contains(&Media::Audio) {
        println!(
            "\nAudio: PESQ-WB of the speech played at the callee against the clip (Opus 48 kbit/s; the 0 % rows show the codec's own cost)\n"
        );
        print!("{}", call_loss::audio_table(&rows, &bench.protections));
    }
    if bench.media.contains(&Media::Video) {
        println!(
            "\nVideo: 640x480 test pattern at 30 fps, H.264; PSNR of the decoded pictures, frozen time, recovery after loss bursts\n"
        );
        print!("{}", call_loss::video_table(&rows, &bench.protections));
    }
    println!();
    for (what, value, met) in call_loss::targets(&rows) {
        let value = value.map_or("n/a".to_string(), |v| format!("{v:.2}"));
        println!(
            "target: {what}: {value} {}",
            if met { "(met)" } else { "(MISSED)" }
        );
    }
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(dir) = report {
        for path in parley_bench::report::write_call_loss_report(&dir, &rows, &bench.protections)? {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

fn signaling(
    devices: usize,
    messages: usize,
    db: Option<String>,
    server: Option<PathBuf>,
    json: Option<PathBuf>,
) -> anyhow::Result<()> {
    let server = match server {
        Some(s) => s,
        None => std::env::current_exe()?.with_file_name("parley-server"),
    };
    anyhow::ensure!(
        server.exists(),
        "{} not found: build it with `cargo build --release -p parley-signaling` or pass --server",
        server.display()
    );
    // Each device holds a socket; make room for them.
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(parley_bench::signaling_load::run(
        &server,
        db.as_deref(),
        devices,
        messages,
    ))?;
    println!(
        "| database | devices | messages | msg/s | p50 ms | p99 ms | max ms | server RSS idle MiB | connected MiB | KiB per idle connection |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        report.database,
        report.devices,
        report.messages,
        report.messages_per_sec,
        report.latency_ms_p50,
        report.latency_ms_p99,
        report.latency_ms_max,
        report.server_rss_mib_before,
        report.server_rss_mib_connected,
        report.rss_kib_per_idle_connection
    );
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn audio_loss(
    runs: u32,
    seed: u64,
    protections: Vec<Protection>,
    threads: Option<usize>,
    json: Option<PathBuf>,
    report: Option<PathBuf>,
) -> anyhow::Result<()> {
    let speech = parley_media::speech::speech_clip().context("loading the speech clip")?;
    let bench = AudioLossBench {
        conditions: standard_conditions(),
        protections: protections.clone(),
        runs: runs.max(1),
        seed,
        threads: threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    let total = bench.conditions.len() * bench.protections.len();
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    eprintln!(
        "audio-loss: {total} conditions x {} runs of {:.1} s speech, seed {seed}",
        bench.runs,
        speech.len() as f64 / 48_000.0
    );
    let rows = bench.run(&speech, &|row| {
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        eprint!(
            "\r  [{n:>2}/{total}] {:?} {:>2} % {:?}: PESQ-WB {:.2}      ",
            row.loss_model, row.loss_pct, row.protection, row.pesq_wb
        );
        let _ = std::io::stderr().flush();
    })?;
    eprintln!(
        "\r  done in {:.1} s{:30}",
        started.elapsed().as_secs_f64(),
        ""
    );
    println!(
        "\nPESQ-WB (vs the lossless decode) and concealed frames; Opus 32 kbit/s, 40 ms one-way delay, mean of {} seeds from {seed}\n",
        bench.runs
    );
    print!("{}", table(&rows, &protections));
    println!();
    for (what, value, met) in targets(&rows) {
        let value = value.map_or("n/a".to_string(), |v| format!("{v:.2}"));
        println!(
            "target: {what}: {value} {}",
            if met { "(met)" } else { "(MISSED)" }
        );
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&rows)?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(dir) = report {
        for path in parley_bench::report::write_audio_loss_report(&dir, &rows, &protections)? {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}
