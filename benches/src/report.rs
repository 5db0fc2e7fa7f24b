//! A benchmark's report directory: the rows as CSV, the markdown table, and
//! SVG plots of quality against loss with a line per protection (what the
//! README's Performance section shows).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::audio_loss::{LossKind, Protection, Row, table};

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
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    let write = |name: &str, text: String, written: &mut Vec<PathBuf>| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| ReportError::Io {
            path: path.clone(),
            source,
        })?;
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
    let Some(max_loss) = of_kind.iter().map(|r| r.loss_pct).max() else {
        return Ok(false);
    };
    let fail = |e: &dyn std::fmt::Display| ReportError::Plot {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let root = SVGBackend::new(path, (760, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Speech quality under {label} loss (Opus 32 kbit/s, 40 ms one way)"),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..f64::from(max_loss.max(1)), 1f64..4.7f64)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc(format!("{label} loss, %"))
        .y_desc("PESQ-WB (MOS-LQO)")
        .draw()
        .map_err(|e| fail(&e))?;
    let colours = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
    for (i, protection) in protections.iter().enumerate() {
        let colour = colours[i % colours.len()];
        let mut points: Vec<(f64, f64)> = of_kind
            .iter()
            .filter(|r| r.protection == *protection)
            .map(|r| (f64::from(r.loss_pct), r.pesq_wb))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(|e| fail(&e))?
            .label(protection_name(*protection))
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
    Ok(true)
}
