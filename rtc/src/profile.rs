//! The one str0m session profile: every `Rtc` in Parley is built here, so
//! a 1:1 call, a group participant, the SFU's side of a participant and
//! the load generator cannot drift apart in the settings they share, and
//! differ only where their [`Role`] says why.
//!
//! Shared by every role:
//! - Parley's DTLS timing ([`crate::dtls`]: first flight resend at 100 ms);
//! - Opus and H.264 only (Constrained Baseline, what browsers decode);
//! - no audio reordering in str0m (`set_reordering_size_audio(0)`): the
//!   receiver's jitter buffer reorders, recovers from FEC and conceals, and
//!   str0m holding audio back after a gap only adds delay (300 ms per loss
//!   at its default of 15 packets);
//! - video resends by [`crate::rtx`] once a video send stream exists
//!   ([`on_video_send_stream`]);
//! - polling through [`crate::poll::poll_output`].

use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::media::{Mid, Rid};
use str0m::{Rtc, RtcConfig};

/// Which side of which conversation a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// One end of a 1:1 call. Audio carries RFC 2198 redundancy when the
    /// call turns it on; `video` adds TWCC bandwidth estimation, which
    /// drives the video encoder's bitrate (an audio-only call has nothing
    /// to adapt).
    Call {
        /// Whether the call sends video.
        video: bool,
    },
    /// A participant of a group call, talking to the SFU.
    GroupParticipant,
    /// The SFU's session with one participant: a TWCC estimate per
    /// subscriber picks its simulcast layers.
    Sfu,
    /// `parley loadtest`'s synthetic participant: a group participant
    /// exactly (so the load measured is the real client's), that also
    /// reports stats every [`LOAD_STATS_INTERVAL`] for the tool to read.
    LoadGenerator,
}

/// Where a call's bandwidth estimate starts, and what it may probe up to:
/// VGA H.264 looks good from about 600 kbit/s and gains little past
/// 1.5 Mbit/s.
pub const CALL_BWE_INITIAL: Bitrate = Bitrate::kbps(600);
/// See [`CALL_BWE_INITIAL`].
pub const CALL_BWE_DESIRED: Bitrate = Bitrate::kbps(1_500);

/// Where the SFU's estimate of a subscriber starts...
pub const SFU_BWE_INITIAL: Bitrate = Bitrate::kbps(1_000);
/// ...and what str0m probes toward (three high simulcast layers' worth).
pub const SFU_BWE_DESIRED: Bitrate = Bitrate::kbps(2_500);

/// RFC 2198 redundancy distances for a call's audio: each packet also
/// carries the frames one and two packets back, so a lost frame is
/// rebuilt whole unless three packets in a row are lost. Calls switch RED
/// on and off with the loss the peer reports.
pub const RED_DISTANCES: [u32; 2] = [1, 2];

/// How often a call reports what it received of the other's audio (RTCP
/// receiver reports), and so how fast FEC follows loss. str0m's default is
/// RFC 3550's 5 s: `parley-bench loss` found audio-only calls still sized
/// for 10 % after 8 s at 20 % loss. A report a second is ~100 bytes/s.
pub const AUDIO_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// How often a call's session emits stats (the per-second stats panel).
pub const CALL_STATS_INTERVAL: Duration = Duration::from_secs(1);

/// How often the load generator's sessions emit stats.
pub const LOAD_STATS_INTERVAL: Duration = Duration::from_millis(500);

/// The session configuration for `role`, before `build`.
pub fn config(role: Role) -> RtcConfig {
    let base = Rtc::builder()
        .set_crypto_provider(crate::dtls::crypto_provider())
        .clear_codecs()
        .enable_h264(true)
        .set_reordering_size_audio(0);
    match role {
        Role::Call { video } => {
            let call = base
                .enable_opus(true, true)
                .set_red_distances(&RED_DISTANCES)
                .set_stats_interval(Some(CALL_STATS_INTERVAL))
                .set_rtcp_report_interval_audio(AUDIO_REPORT_INTERVAL);
            if video {
                call.enable_bwe(Some(CALL_BWE_INITIAL))
            } else {
                call
            }
        }
        Role::GroupParticipant => base.enable_opus(true, false),
        Role::Sfu => base
            .enable_opus(true, false)
            .enable_bwe(Some(SFU_BWE_INITIAL)),
        Role::LoadGenerator => {
            config(Role::GroupParticipant).set_stats_interval(Some(LOAD_STATS_INTERVAL))
        }
    }
}

/// A session for `role`, started at `now`.
pub fn build(role: Role, now: Instant) -> Rtc {
    let mut rtc = config(role).build(now);
    // No padding floor of our own: media fills the estimate.
    match role {
        Role::Call { video: true } => {
            rtc.bwe().set_bitrate(Bitrate::kbps(0), CALL_BWE_DESIRED);
        }
        Role::Sfu => {
            rtc.bwe().set_bitrate(Bitrate::kbps(0), SFU_BWE_DESIRED);
        }
        Role::Call { video: false } | Role::GroupParticipant | Role::LoadGenerator => {}
    }
    rtc
}

/// Call once a video send stream (`mid`, and `rid` for a simulcast layer)
/// is negotiated and before media flows on it: Parley's resend cache and
/// cap ([`crate::rtx::relax_resend_cap`]). `false` when there is no such
/// stream yet.
pub fn on_video_send_stream(rtc: &mut Rtc, mid: Mid, rid: Option<Rid>) -> bool {
    crate::rtx::relax_resend_cap(rtc, mid, rid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_generator_is_a_group_participant_with_stats() {
        let participant = format!("{:?}", config(Role::GroupParticipant));
        let generator = format!("{:?}", config(Role::LoadGenerator));
        assert_ne!(participant, generator);
        let with_stats = format!(
            "{:?}",
            config(Role::GroupParticipant).set_stats_interval(Some(LOAD_STATS_INTERVAL))
        );
        assert_eq!(generator, with_stats);
    }

    #[test]
    fn only_video_calls_and_the_sfu_estimate_bandwidth() {
        assert!(
            config(Role::Call { video: true })
                .bwe_initial_bitrate()
                .is_some()
        );
        assert!(config(Role::Sfu).bwe_initial_bitrate().is_some());
        assert!(
            config(Role::Call { video: false })
                .bwe_initial_bitrate()
                .is_none()
        );
        assert!(
            config(Role::GroupParticipant)
                .bwe_initial_bitrate()
                .is_none()
        );
    }
}
