//! The audio packet-loss benchmark: how speech sounds after random and
//! bursty loss, with no protection, with Opus PLC, and with in-band FEC
//! plus PLC.
//!
//! Each condition sends the built-in speech clip through
//! [`AudioSimulation`] (Opus 32 kbit/s -> RTP -> network simulator with
//! 40 ms delay and the condition's loss -> jitter buffer -> decode) and
//! scores what was played with PESQ-WB against the clean (lossless) decode
//! of the same packets, so the score measures what loss cost, not what the
//! codec cost. Every protection of a condition sees the same loss pattern
//! (same seed); a condition's score is the mean over `runs` seeds.

use std::time::{Duration, Instant};

use parley_media::audio_simulation::AudioSimulation;
use parley_media::jitter_buffer::{Concealment, JitterBufferConfig};
use parley_media::netsim::{LossModel, NetworkConfig};
use parley_media::opus_codec::OpusConfig;
use parley_media::quality::pesq_wb;
use serde::{Deserialize, Serialize};

/// Mean burst length of the Gilbert-Elliott conditions, in packets.
pub const GILBERT_MEAN_BURST: f64 = 3.0;

/// The packet-loss hint given to the encoder under `fec` is the
/// condition's loss rate (what a sender following measured loss converges
/// to), but at least this: at 0 % a FEC-protected sender still codes some
/// redundancy, and the table shows what that costs.
pub const MIN_FEC_LOSS_HINT_PCT: u8 = 5;

/// How a lost frame is dealt with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Protection {
    /// Silence for a lost frame.
    None,
    /// Opus packet loss concealment.
    Plc,
    /// In-band FEC from the next packet, then PLC.
    Fec,
}

/// Random or bursty loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// Independent (Bernoulli) loss.
    Random,
    /// Gilbert-Elliott loss with mean burst [`GILBERT_MEAN_BURST`].
    Gilbert,
}

/// One loss condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    /// Random or bursty.
    pub kind: LossKind,
    /// Long-run loss rate in percent.
    pub loss_pct: u8,
}

/// The standard sweep: random 0-40 %, bursty 10 and 20 %.
pub fn standard_conditions() -> Vec<Condition> {
    let random = [0, 5, 10, 20, 30, 40].map(|loss_pct| Condition {
        kind: LossKind::Random,
        loss_pct,
    });
    let gilbert = [10, 20].map(|loss_pct| Condition {
        kind: LossKind::Gilbert,
        loss_pct,
    });
    random.into_iter().chain(gilbert).collect()
}

/// One result row (the `--json` format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `random` or `gilbert`.
    pub loss_model: LossKind,
    /// Configured loss rate in percent.
    pub loss_pct: u8,
    /// `none`, `plc` or `fec`.
    pub protection: Protection,
    /// Mean PESQ-WB MOS-LQO over the runs.
    pub pesq_wb: f64,
    /// Frames concealed (PLC or silence), percent of media frames.
    pub concealed_pct: f64,
    /// Frames rebuilt from FEC, percent of media frames.
    pub fec_recovered_pct: f64,
    /// Packets the link actually lost, percent.
    pub measured_loss_pct: f64,
    /// Encoded audio bitrate, kbit/s.
    pub bitrate_kbps: f64,
    /// Seeds averaged.
    pub runs: u32,
}

/// Errors running the benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The media pipeline failed.
    #[error(transparent)]
    Media(#[from] parley_media::Error),
    /// The speech clip could not be loaded.
    #[error(transparent)]
    Speech(#[from] parley_media::wav_file::WavError),
}

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct AudioLossBench {
    /// Loss conditions.
    pub conditions: Vec<Condition>,
    /// Protections, each run on every condition.
    pub protections: Vec<Protection>,
    /// Seeds per condition.
    pub runs: u32,
    /// Base seed; run `r` of every condition uses `seed + r`.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
}

impl AudioLossBench {
    /// Runs every (condition, protection) pair on `speech` (48 kHz mono),
    /// calling `progress` after each. Rows come back in condition order,
    /// protections in the order given.
    pub fn run(
        &self,
        speech: &[i16],
        progress: &(dyn Fn(&Row) + Sync),
    ) -> Result<Vec<Row>, BenchError> {
        let jobs: Vec<(Condition, Protection)> = self
            .conditions
            .iter()
            .flat_map(|&c| self.protections.iter().map(move |&p| (c, p)))
            .collect();
        crate::run_parallel(&jobs, self.threads, |&(condition, protection)| {
            let row = self.run_one(speech, condition, protection)?;
            progress(&row);
            Ok(row)
        })
    }

    fn run_one(
        &self,
        speech: &[i16],
        condition: Condition,
        protection: Protection,
    ) -> Result<Row, BenchError> {
        let sim = simulation(condition, protection);
        let (mut pesq, mut concealed, mut recovered, mut lost, mut bitrate) =
            (0.0, 0.0, 0.0, 0.0, 0.0);
        for run in 0..self.runs {
            let sim = AudioSimulation {
                seed: self.seed + u64::from(run),
                ..sim.clone()
            };
            let report = sim.run(speech, Instant::now())?;
            pesq +=
                pesq_wb(&report.reference, &report.received).map_err(parley_media::Error::from)?;
            let jb = report.jitter_buffer;
            concealed += jb.concealed_pct();
            recovered += 100.0 * jb.fec_recovered as f64 / jb.media_frames().max(1) as f64;
            lost += 100.0 * report.network.lost as f64 / report.network.sent.max(1) as f64;
            bitrate += report.bitrate_bps / 1000.0;
        }
        let n = f64::from(self.runs.max(1));
        Ok(Row {
            loss_model: condition.kind,
            loss_pct: condition.loss_pct,
            protection,
            pesq_wb: pesq / n,
            concealed_pct: concealed / n,
            fec_recovered_pct: recovered / n,
            measured_loss_pct: lost / n,
            bitrate_kbps: bitrate / n,
            runs: self.runs,
        })
    }
}

/// The simulation for one (condition, protection).
pub fn simulation(condition: Condition, protection: Protection) -> AudioSimulation {
    let loss = f64::from(condition.loss_pct) / 100.0;
    let loss_model = match (condition.kind, condition.loss_pct) {
        (_, 0) => LossModel::None,
        (LossKind::Random, _) => LossModel::Bernoulli { loss },
        (LossKind::Gilbert, _) => LossModel::gilbert(loss, GILBERT_MEAN_BURST),
    };
    let fec = protection == Protection::Fec;
    AudioSimulation {
        opus: OpusConfig {
            inband_fec: fec,
            packet_loss_pct: if fec {
                condition.loss_pct.max(MIN_FEC_LOSS_HINT_PCT)
            } else {
                0
            },
            ..OpusConfig::default()
        },
        jitter_buffer: JitterBufferConfig {
            fec,
            concealment: match protection {
                Protection::None => Concealment::Silence,
                Protection::Plc | Protection::Fec => Concealment::Plc,
            },
            ..JitterBufferConfig::default()
        },
        network: NetworkConfig {
            loss: loss_model,
            delay: Duration::from_millis(40),
            ..NetworkConfig::default()
        },
        ..AudioSimulation::default()
    }
}

/// The rows as a table: one line per condition, a PESQ-WB and a concealed
/// column per protection.
pub fn table(rows: &[Row], protections: &[Protection]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = write!(out, "| loss model | loss % |");
    for p in protections {
        let _ = write!(out, " {} PESQ-WB | {} concealed % |", name(*p), name(*p));
    }
    let _ = write!(out, "\n|---|---:|");
    for _ in protections {
        let _ = write!(out, "---:|---:|");
    }
    out.push('\n');
    let mut seen = Vec::new();
    for row in rows {
        let key = (row.loss_model, row.loss_pct);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let model = match row.loss_model {
            LossKind::Random => "random".to_string(),
            LossKind::Gilbert => format!("gilbert (burst {GILBERT_MEAN_BURST})"),
        };
        let _ = write!(out, "| {model} | {} |", row.loss_pct);
        for p in protections {
            match rows
                .iter()
                .find(|r| (r.loss_model, r.loss_pct) == key && r.protection == *p)
            {
                Some(r) => {
                    let _ = write!(out, " {:.2} | {:.1} |", r.pesq_wb, r.concealed_pct);
                }
                None => out.push_str(" - | - |"),
            }
        }
        out.push('\n');
    }
    out
}

/// The targets, checked against the rows: (description, measured,
/// met).
pub fn targets(rows: &[Row]) -> Vec<(String, Option<f64>, bool)> {
    let find = |kind, loss, p| {
        rows.iter()
            .find(|r| r.loss_model == kind && r.loss_pct == loss && r.protection == p)
            .map(|r| r.pesq_wb)
    };
    let fec10 = find(LossKind::Random, 10, Protection::Fec);
    let gain20 = find(LossKind::Random, 20, Protection::Fec)
        .zip(find(LossKind::Random, 20, Protection::None))
        .map(|(f, n)| f - n);
    vec![
        (
            "fec PESQ-WB at 10 % random loss >= 3.0".into(),
            fec10,
            fec10.is_some_and(|v| v >= 3.0),
        ),
        (
            "fec minus none PESQ-WB at 20 % random loss >= 1.0".into(),
            gain20,
            gain20.is_some_and(|v| v >= 1.0),
        ),
    ]
}

fn name(p: Protection) -> &'static str {
    match p {
        Protection::None => "none",
        Protection::Plc => "plc",
        Protection::Fec => "fec",
    }
}
