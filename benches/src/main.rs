//! `parley-bench`: Parley's benchmarks from the command line.
//!
//! ```text
//! parley-bench audio-loss [--runs 3] [--seed 1] [--json FILE]
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use parley_bench::audio_loss::{AudioLossBench, Protection, standard_conditions, table, targets};

#[derive(Parser)]
#[command(name = "parley-bench", version, about = "Parley benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::AudioLoss {
            runs,
            seed,
            protections,
            threads,
            json,
        } => audio_loss(runs, seed, protections, threads, json),
    }
}

fn audio_loss(
    runs: u32,
    seed: u64,
    protections: Vec<Protection>,
    threads: Option<usize>,
    json: Option<PathBuf>,
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
    Ok(())
}
