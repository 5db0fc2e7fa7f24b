//! A benchmark's report directory: the rows as CSV, the markdown table, and
//! SVG plots of quality against loss with a line per protection (what the
//! README's Performance section shows).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::audio_loss::{LossKind, Protection, Row, table};
use crate::call_loss;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Plotting failed.
    #[error("plotting {path}: {reason}")]
    Plot {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Writes `audio-loss.csv`, `audio-loss.md` and one SVG plot per loss model
/// (`audio-loss-random.svg`, `audio-loss-gilbert.svg`) into `dir`; returns
/// the files written.
pub fn write_audio_loss_report(
    dir: &Path,
    rows: &[Row],
    protections: &[Protection],
) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    let write = |name: &str, text: String, written: &mut Vec<PathBuf>| {
        let path = write_file(dir, name, text)?;
        written.push(path);
        Ok::<_, ReportError>(())
    };
    write("audio-loss.csv", csv(rows), &mut written)?;
    write("audio-loss.md", table(rows, protections), &mut written)?;
    for (kind, label) in [(LossKind::Random, "random"), (LossKind::Gilbert, "gilbert")] {
        let path = dir.join(format!("audio-loss-{label}.svg"));
        if plot(&path, rows, protections, kind, label)? {
            written.push(path);
        }
    }
    Ok(written)
}

/// Writes `text` to `dir/name`, creating `dir`.
fn write_file(dir: &Path, name: &str, text: String) -> Result<PathBuf, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "loss_model,loss_pct,protection,pesq_wb,concealed_pct,fec_recovered_pct,measured_loss_pct,bitrate_kbps,runs\n",
    );
    for r in rows {
        let model = match r.loss_model {
            LossKind::Random => "random",
            LossKind::Gilbert => "gilbert",
        };
        out += &format!(
            "{model},{},{},{:.3},{:.2},{:.2},{:.2},{:.1},{}\n",
            r.loss_pct,
            protection_name(r.protection),
            r.pesq_wb,
            r.concealed_pct,
            r.fec_recovered_pct,
            r.measured_loss_pct,
            r.bitrate_kbps,
            r.runs
        );
    }
    out
}

fn protection_name(p: Protection) -> &'static str {
    match p {
        Protection::None => "none",
        Protection::Plc => "plc",
        Protection::Fec => "fec",
    }
}

/// PESQ-WB against loss for `kind`, a line per protection; `false` when
/// there are no rows of that kind.
fn plot(
    path: &Path,
    rows: &[Row],
    protections: &[Protection],
    kind: LossKind,
    label: &str,
) -> Result<bool, ReportError> {
    let of_kind: Vec<&Row> = rows.iter().filter(|r| r.loss_model == kind).collect();
    if of_kind.is_empty() {
        return Ok(false);
    }
    let series: Vec<Series> = protections
        .iter()
        .map(|protection| Series {
            label: protection_name(*protection).to_string(),
            points: of_kind
                .iter()
                .filter(|r| r.protection == *protection)
                .map(|r| (f64::from(r.loss_pct), r.pesq_wb))
                .collect(),
        })
        .collect();
    line_plot(
        path,
        &Chart {
            caption: format!("Speech quality under {label} loss (Opus 32 kbit/s, 40 ms one way)"),
            x_desc: format!("{label} loss, %"),
            y_desc: "PESQ-WB (MOS-LQO)".to_string(),
            y_range: (1.0, 4.7),
        },
        &series,
    )?;
    Ok(true)
}

/// One line of a plot.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
}

/// A plot's titles and value range.
struct Chart {
    caption: String,
    x_desc: String,
    y_desc: String,
    y_range: (f64, f64),
}

/// Draws `series` as lines with dots, x from 0 to the largest x, into an
/// SVG at `path`.
fn line_plot(path: &Path, chart_spec: &Chart, series: &[Series]) -> Result<(), ReportError> {
    let fail = |e: &dyn std::fmt::Display| ReportError::Plot {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let max_x = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1f64, f64::max);
    let root = SVGBackend::new(path, (760, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&chart_spec.caption, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..max_x, chart_spec.y_range.0..chart_spec.y_range.1)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc(&chart_spec.x_desc)
        .y_desc(&chart_spec.y_desc)
        .draw()
        .map_err(|e| fail(&e))?;
    let colours = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
    for (i, line) in series.iter().filter(|s| !s.points.is_empty()).enumerate() {
        let colour = colours[i % colours.len()];
        let mut points = line.points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(|e| fail(&e))?
            .label(line.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, colour.filled())),
            )
            .map_err(|e| fail(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

/// Writes `loss.csv`, `loss.md` (the audio and video tables) and SVG plots
/// into `dir`, for the path closest to 100 ms RTT without jitter in the
/// rows: PESQ-WB against random and against bursty loss
/// (`loss-audio-random.svg`, `loss-audio-bursts.svg`), frozen time and
/// burst recovery against random loss (`loss-video-frozen.svg`,
/// `loss-video-recovery.svg`), a line per protection. Returns the files
/// written.
pub fn write_call_loss_report(
    dir: &Path,
    rows: &[call_loss::Row],
    protections: &[call_loss::Protection],
) -> Result<Vec<PathBuf>, ReportError> {
    use call_loss::Media;
    let mut written = Vec::new();
    let write = |name: &str, text: String, written: &mut Vec<PathBuf>| {
        let path = write_file(dir, name, text)?;
        written.push(path);
        Ok::<_, ReportError>(())
    };
    write("loss.csv", call_loss_csv(rows), &mut written)?;
    let mut md = String::new();
    if rows.iter().any(|r| r.media == Media::Audio) {
        md += "### Audio\n\n";
        md += &call_loss::audio_table(rows, protections);
    }
    if rows.iter().any(|r| r.media == Media::Video) {
        md += "\n### Video\n\n";
        md += &call_loss::video_table(rows, protections);
    }
    write("loss.md", md, &mut written)?;

    let Some(path_rtt) = rows
        .iter()
        .map(|r| r.rtt_ms)
        .min_by_key(|ms| ms.abs_diff(100))
    else {
        return Ok(written);
    };
    let Some(path_jitter) = rows.iter().map(|r| r.jitter_ms).min() else {
        return Ok(written);
    };
    let on_path: Vec<&call_loss::Row> = rows
        .iter()
        .filter(|r| r.rtt_ms == path_rtt && r.jitter_ms == path_jitter)
        .collect();
    let path_note = format!("{path_rtt} ms RTT, {path_jitter} ms jitter");
    let lines = |media: Media,
                 keep: &dyn Fn(&call_loss::Row) -> bool,
                 value: &dyn Fn(&call_loss::Row) -> Option<f64>,
                 bursts: bool| {
        let mut series = Vec::new();
        for protection in protections.iter().filter(|p| p.applies_to(media)) {
            let mut by_burst: Vec<f64> = on_path
                .iter()
                .filter(|r| r.media == media && keep(r))
                .map(|r| r.mean_burst)
                .collect();
            by_burst.sort_by(f64::total_cmp);
            by_burst.dedup();
            for burst in by_burst {
                let points: Vec<(f64, f64)> = on_path
                    .iter()
                    .filter(|r| {
                        r.media == media
                            && r.protection == *protection
                            && r.mean_burst == burst
                            && keep(r)
                    })
                    .filter_map(|r| Some((f64::from(r.loss_pct), value(r)?)))
                    .collect();
                let label = if bursts {
                    format!("{}, burst {burst}", protection.name())
                } else {
                    protection.name().to_string()
                };
                series.push(Series { label, points });
            }
        }
        series
    };
    let random = |r: &call_loss::Row| r.loss_model == LossKind::Random;
    let plots = [
        (
            "loss-audio-random.svg",
            Chart {
                caption: format!("Call audio under random loss ({path_note})"),
                x_desc: "random loss, %".to_string(),
                y_desc: "PESQ-WB (MOS-LQO)".to_string(),
                y_range: (1.0, 4.7),
            },
            lines(Media::Audio, &random, &|r| r.pesq_wb, false),
        ),
        (
            "loss-audio-bursts.svg",
            Chart {
                caption: format!("Call audio under bursty loss ({path_note})"),
                x_desc: "Gilbert-Elliott loss, %".to_string(),
                y_desc: "PESQ-WB (MOS-LQO)".to_string(),
                y_range: (1.0, 4.7),
            },
            lines(
                Media::Audio,
                &|r| r.loss_model == LossKind::Gilbert,
                &|r| r.pesq_wb,
                true,
            ),
        ),
        (
            "loss-video-frozen.svg",
            Chart {
                caption: format!("Call video frozen time under random loss ({path_note})"),
                x_desc: "random loss, %".to_string(),
                y_desc: "frozen, % of time".to_string(),
                y_range: (0.0, 100.0),
            },
            lines(Media::Video, &random, &|r| r.frozen_pct, false),
        ),
        (
            "loss-video-recovery.svg",
            Chart {
                caption: format!("Call video: recovery after a loss burst, p95 ({path_note})"),
                x_desc: "random loss, %".to_string(),
                y_desc: "ms".to_string(),
                y_range: (
                    0.0,
                    on_path
                        .iter()
                        .filter_map(|r| r.recovery_ms_p95)
                        .fold(300.0, f64::max)
                        * 1.1,
                ),
            },
            lines(Media::Video, &random, &|r| r.recovery_ms_p95, false),
        ),
    ];
    for (name, chart, series) in plots {
        if series.iter().all(|s| s.points.is_empty()) {
            continue;
        }
        let path = dir.join(name);
        line_plot(&path, &chart, &series)?;
        written.push(path);
    }
    Ok(written)
}

fn call_loss_csv(rows: &[call_loss::Row]) -> String {
    let mut out = String::from(
        "media,loss_model,mean_burst,loss_pct,rtt_ms,jitter_ms,protection,measured_loss_pct,bitrate_kbps,pesq_wb,concealed_pct,fec_recovered_pct,fec_loss_hint_pct,psnr_db,decoded_pct,delay_ms_p50,frozen_pct,bursts,recovery_ms_p50,recovery_ms_p95,recovery_ms_max,recovered_in_time_pct,keyframe_requests,runs\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
    for r in rows {
        let media = match r.media {
            call_loss::Media::Audio => "audio",
            call_loss::Media::Video => "video",
        };
        let model = match r.loss_model {
            LossKind::Random => "random",
            LossKind::Gilbert => "gilbert",
        };
        out += &format!(
            "{media},{model},{},{},{},{},{},{:.3},{:.1},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.mean_burst,
            r.loss_pct,
            r.rtt_ms,
            r.jitter_ms,
            r.protection.name(),
            r.measured_loss_pct,
            r.bitrate_kbps,
            opt(r.pesq_wb),
            opt(r.concealed_pct),
            opt(r.fec_recovered_pct),
            opt(r.fec_loss_hint_pct),
            opt(r.psnr_db),
            opt(r.decoded_pct),
            opt(r.delay_ms_p50),
            opt(r.frozen_pct),
            r.bursts.map_or(String::new(), |b| b.to_string()),
            opt(r.recovery_ms_p50),
            opt(r.recovery_ms_p95),
            opt(r.recovery_ms_max),
            opt(r.recovered_in_time_pct),
            opt(r.keyframe_requests),
            r.runs
        );
    }
    out
}
