//! A call's live statistics: what the CLI shows once a second (as a log
//! line, a terminal panel, or a JSON line for machines).
//!
//! Rates are computed here from the session's running counters, so the
//! media session itself keeps only totals.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::media_session::{MediaSession, SessionStats};

/// How often a snapshot is taken.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// One second of a call, as shown to the user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveStats {
    /// Seconds since media connected.
    pub elapsed_s: f64,
    /// Round-trip time from RTCP, ms.
    pub rtt_ms: Option<f64>,
    /// Loss on what we receive, percent (RTCP receiver report).
    pub loss_in_pct: Option<f64>,
    /// Loss the peer reports on what we send, percent.
    pub loss_out_pct: Option<f64>,
    /// Interarrival jitter of incoming audio, ms.
    pub jitter_ms: f64,
    /// What we send, kbit/s (encrypted media payload, both kinds).
    pub send_kbps: f64,
    /// What we receive, kbit/s.
    pub recv_kbps: f64,
    /// The send bitrate the bandwidth estimator allows, kbit/s.
    pub bwe_kbps: Option<f64>,
    /// The audio jitter buffer's delay now, ms.
    pub jitter_buffer_ms: f64,
    /// Share of incoming audio frames concealed so far, percent.
    pub concealed_pct: f64,
    /// Audio frames rebuilt from in-band FEC so far.
    pub fec_recovered: u64,
    /// Pictures decoded in the last second.
    pub video_fps_in: f64,
    /// Frames that failed SFrame decryption so far.
    pub decrypt_failures: u64,
    /// The codecs in use.
    pub codecs: String,
    /// `direct` (peer to peer) or `relay` (through the server).
    pub path: String,
}

impl LiveStats {
    /// One line, for logs and non-terminal output.
    pub fn log_line(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| match v {
            Some(v) => format!("{v:.1}{unit}"),
            None => "-".to_string(),
        };
        let mut line = format!(
            "{:>5.0}s rtt {} loss in {} out {} jitter {:.1}ms send {:.0}kb/s recv {:.0}kb/s \
             jb {:.0}ms concealed {:.1}% fec {}",
            self.elapsed_s,
            opt(self.rtt_ms, "ms"),
            opt(self.loss_in_pct, "%"),
            opt(self.loss_out_pct, "%"),
            self.jitter_ms,
            self.send_kbps,
            self.recv_kbps,
            self.jitter_buffer_ms,
            self.concealed_pct,
            self.fec_recovered,
        );
        if let Some(bwe) = self.bwe_kbps {
            line += &format!(" bwe {bwe:.0}kb/s");
        }
        if self.codecs.contains("H.264") {
            line += &format!(" video {:.0}fps", self.video_fps_in);
        }
        if self.decrypt_failures > 0 {
            line += &format!(" DECRYPT FAILURES {}", self.decrypt_failures);
        }
        line + " " + &self.path + " " + &self.codecs
    }

    /// Label/value rows for the terminal panel.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} %"));
        vec![
            ("codecs", self.codecs.clone()),
            ("path", self.path.clone()),
            ("round trip", ms(self.rtt_ms)),
            (
                "loss in / out",
                format!("{} / {}", pct(self.loss_in_pct), pct(self.loss_out_pct)),
            ),
            ("jitter", format!("{:.1} ms", self.jitter_ms)),
            (
                "bitrate send / recv",
                format!("{:.0} / {:.0} kbit/s", self.send_kbps, self.recv_kbps),
            ),
            (
                "bandwidth estimate",
                self.bwe_kbps
                    .map_or("-".to_string(), |v| format!("{v:.0} kbit/s")),
            ),
            ("jitter buffer", format!("{:.0} ms", self.jitter_buffer_ms)),
            (
                "concealed",
                format!("{:.1} % ({} FEC)", self.concealed_pct, self.fec_recovered),
            ),
            ("video in", format!("{:.0} fps", self.video_fps_in)),
            ("decrypt failures", self.decrypt_failures.to_string()),
        ]
    }
}

/// Turns the session's running totals into per-second rates.
#[derive(Debug, Clone)]
pub struct Meter {
    started: Instant,
    last_at: Instant,
    last: SessionStats,
}

impl Meter {
    /// Starts measuring at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            started: now,
            last_at: now,
            last: SessionStats::default(),
        }
    }

    /// When the next snapshot is due.
    pub fn next_report(&self) -> Instant {
        self.last_at + REPORT_INTERVAL
    }

    /// The snapshot at `now`.
    pub fn report(&mut self, now: Instant, session: &MediaSession) -> LiveStats {
        let stats = session.stats();
        let jitter = session.jitter_stats();
        let seconds = now
            .saturating_duration_since(self.last_at)
            .as_secs_f64()
            .max(1e-3);
        let kbps = |bytes: u64| bytes as f64 * 8.0 / 1000.0 / seconds;
        let sent = (stats.audio_bytes_sent + stats.video_bytes_sent)
            .saturating_sub(self.last.audio_bytes_sent + self.last.video_bytes_sent);
        let received = (stats.audio_bytes_received + stats.video_bytes_received)
            .saturating_sub(self.last.audio_bytes_received + self.last.video_bytes_received);
        let decoded = stats
            .video_frames_decoded
            .saturating_sub(self.last.video_frames_decoded);
        let live = LiveStats {
            elapsed_s: now.saturating_duration_since(self.started).as_secs_f64(),
            rtt_ms: stats.rtt.map(|d| d.as_secs_f64() * 1000.0),
            loss_in_pct: stats.ingress_loss.map(|f| f64::from(f) * 100.0),
            loss_out_pct: stats.egress_loss.map(|f| f64::from(f) * 100.0),
            jitter_ms: f64::from(stats.audio_jitter_ticks) / 48.0,
            send_kbps: kbps(sent),
            recv_kbps: kbps(received),
            bwe_kbps: stats.bwe_bps.map(|b| b as f64 / 1000.0),
            jitter_buffer_ms: jitter.current_delay.as_secs_f64() * 1000.0,
            concealed_pct: 100.0 * jitter.concealed as f64 / jitter.media_frames().max(1) as f64,
            fec_recovered: jitter.fec_recovered,
            video_fps_in: decoded as f64 / seconds,
            decrypt_failures: stats.decrypt_failures,
            codecs: if session.has_video() {
                "Opus 48 kHz + H.264".to_string()
            } else {
                "Opus 48 kHz".to_string()
            },
            path: "direct".to_string(),
        };
        self.last_at = now;
        self.last = stats;
        live
    }
}
