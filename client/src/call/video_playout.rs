//! When to show each decoded picture: a small video jitter buffer, sans-IO.
//!
//! A picture that needed a resent packet is complete about a round trip
//! late, and every picture after it waits for it (they reference it).
//! Shown the moment they decode, those pictures stall the video for an RTT
//! plus the NACK delay on every loss: at 100 ms RTT and 5 % loss that is a
//! freeze (> 183 ms) every few seconds (`parley-bench loss` measured 26 %
//! of the time frozen). libwebrtc's receiver instead shows pictures at a
//! steady delay after capture, sized so that repairs land in time; this
//! does the same.
//!
//! Each picture's *excess delay* is how much later than the fastest
//! picture of the last [`WINDOW`] it arrived, relative to its capture time
//! (the RTP timestamp), so clock offsets and drift between the ends cancel.
//! Pictures are shown at capture time + fastest delay + the 95th
//! percentile of recent excess delays (at most [`MAX_DELAY`]): on a clean
//! path that adds nothing, with jitter it absorbs the jitter, and under
//! loss with resends it absorbs the resends. Pictures keep their order and
//! a late one is shown at once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parley_media::video::I420Frame;

/// How far back the fastest delay and the percentile look.
const WINDOW: Duration = Duration::from_secs(5);

/// The percentile of recent excess delays pictures are held for.
const PERCENTILE: f64 = 0.95;

/// Never hold pictures longer than this beyond the fastest path: past it a
/// call feels laggy, and a freeze is the lesser evil.
pub const MAX_DELAY: Duration = Duration::from_millis(400);

/// Decoded pictures waiting for their time.
#[derive(Debug, Default)]
pub struct VideoPlayout {
    /// Arrival time and RTP time (90 kHz) of the first picture: the origin
    /// of relative delays.
    origin: Option<(Instant, u64)>,
    /// (arrival, relative delay in microseconds) of recent pictures.
    delays: VecDeque<(Instant, i64)>,
    /// Pictures and when to show them, in decode order.
    queue: VecDeque<(Instant, I420Frame)>,
    /// When the last picture handed out was due.
    last_render: Option<Instant>,
    /// The hold now (beyond the fastest path).
    target: Duration,
}

impl VideoPlayout {
    /// A picture with RTP time `rtp_90khz` decoded at `now`.
    pub fn push(&mut self, now: Instant, rtp_90khz: u64, picture: I420Frame) {
        let (origin_at, origin_rtp) = *self.origin.get_or_insert((now, rtp_90khz));
        let media_us = (rtp_90khz as i64 - origin_rtp as i64) * 1000 / 90;
        let arrival_us = now.saturating_duration_since(origin_at).as_micros() as i64;
        let relative = arrival_us - media_us;
        self.delays.push_back((now, relative));
        while self
            .delays
            .front()
            .is_some_and(|&(at, _)| now.saturating_duration_since(at) > WINDOW)
        {
            self.delays.pop_front();
        }
        let fastest = self
            .delays
            .iter()
            .map(|&(_, d)| d)
            .min()
            .unwrap_or(relative);
        let mut excess: Vec<i64> = self.delays.iter().map(|&(_, d)| d - fastest).collect();
        excess.sort_unstable();
        let rank = ((excess.len() as f64 * PERCENTILE).ceil() as usize).clamp(1, excess.len());
        self.target = Duration::from_micros(excess[rank - 1].max(0) as u64).min(MAX_DELAY);
        // Capture time on the receiver's clock, over the fastest path.
        let due_us = media_us + fastest + self.target.as_micros() as i64;
        let due = if due_us >= 0 {
            origin_at + Duration::from_micros(due_us as u64)
        } else {
            origin_at
        };
        // Never before one decoded earlier; never later than the cap
        // after it arrived.
        let floor = self
            .queue
            .back()
            .map(|&(at, _)| at)
            .or(self.last_render)
            .unwrap_or(due);
        let render_at = due.max(floor).min(now + MAX_DELAY);
        self.queue.push_back((render_at, picture));
    }

    /// The next picture due at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<I420Frame> {
        if self.queue.front().is_some_and(|&(at, _)| at <= now) {
            let (at, picture) = self.queue.pop_front()?;
            self.last_render = Some(at);
            return Some(picture);
        }
        None
    }

    /// When the next picture is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|&(at, _)| at)
    }

    /// How long pictures are held beyond the fastest path now.
    pub fn target(&self) -> Duration {
        self.target
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests pick the origin of virtual time.
mod tests {
    use super::*;

    fn picture() -> I420Frame {
        I420Frame::black(16, 16).unwrap()
    }

    #[test]
    fn a_steady_stream_is_shown_as_it_arrives() {
        let start = Instant::now(); // clock-ok: origin of virtual time
        let mut playout = VideoPlayout::default();
        for i in 0..30u64 {
            let at = start + Duration::from_millis(33 * i);
            playout.push(at, 2970 * i, picture());
            assert!(playout.poll(at).is_some(), "picture {i} held");
        }
        assert_eq!(playout.target(), Duration::ZERO);
    }

    #[test]
    fn repaired_pictures_raise_the_hold_and_later_ones_wait_for_their_time() {
        let start = Instant::now(); // clock-ok: origin of virtual time
        let mut playout = VideoPlayout::default();
        // Every tenth picture arrives 150 ms late (a resend over a 100 ms
        // round trip), and the pictures after it decode only once it has.
        let mut arrivals: Vec<(u64, u64)> = Vec::new();
        for i in 0..90u64 {
            let late = if i % 10 == 0 { 150 } else { 0 };
            let previous = arrivals.last().map_or(0, |&(at, _)| at);
            arrivals.push(((33 * i + late).max(previous), i));
        }
        let mut shown = Vec::new();
        for ms in 0..4_000u64 {
            let now = start + Duration::from_millis(ms);
            for &(_, i) in arrivals.iter().filter(|&&(at, _)| at == ms) {
                playout.push(now, 2970 * i, picture());
            }
            while playout.poll(now).is_some() {
                shown.push(now);
            }
        }
        assert_eq!(shown.len(), 90);
        // Once a few repairs have been seen the hold covers them: the
        // pictures of the last second are shown a frame interval apart.
        assert!(playout.target() >= Duration::from_millis(140));
        assert!(playout.target() <= MAX_DELAY);
        let last_second = &shown[shown.len() - 30..];
        for pair in last_second.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap < Duration::from_millis(60), "gap {gap:?}");
        }
    }
}
