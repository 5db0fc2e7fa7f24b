//! Retransmission tuning for every Parley str0m session's video.
//!
//! str0m drops every queued retransmission while resent bytes exceed 15 %
//! of a send stream's last second. A call's video is often app-limited (a
//! still scene codes to a few hundred kbit/s, ~35 packets a second), so a
//! handful of losses in one second at 5 % random loss trips that cap; the
//! receiver's NACKs (five, 33 ms apart) then all go unanswered, it gives
//! the picture up after ~170 ms, and asks for a keyframe: a freeze of six
//! pictures in one 10 s call out of five or six at 5 % loss
//! (`tests/tests/call_between_namespaces.rs`). libwebrtc has no such ratio;
//! it limits retransmissions to the target bitrate. Parley allows up to
//! [`RTX_RATIO_CAP`]: runaway resending on a collapsing link is still cut
//! off, ordinary random loss is always repaired.

use std::time::Duration;

use str0m::Rtc;
use str0m::media::{Mid, Rid};

/// Share of a video stream's bytes over the last second that may be
/// retransmissions before str0m stops resending.
pub const RTX_RATIO_CAP: f32 = 0.5;

/// How many sent video packets are kept for resending: a second of a
/// 3 Mbit/s stream.
const RTX_CACHE_PACKETS: usize = 400;

/// How old a packet may be and still be resent. A NACK comes about one
/// round trip after the packet, then up to four more 33 ms apart, so a
/// second covers round trips up to ~800 ms; str0m's default of 3 s kept
/// three times the bytes per outgoing video stream, which at the SFU is
/// one per subscriber per video (`parley loadtest`: ~2 MiB per
/// participant receiving two videos).
const RTX_CACHE_AGE: Duration = Duration::from_secs(1);

/// Applies [`RTX_RATIO_CAP`] to the send stream of `mid` (and `rid`, for a
/// simulcast layer). Call once the line is negotiated and before media
/// flows on it (it empties the resend cache); `false` when there is no such
/// stream yet.
pub fn relax_resend_cap(rtc: &mut Rtc, mid: Mid, rid: Option<Rid>) -> bool {
    let mut api = rtc.direct_api();
    let Some(stream) = api.stream_tx_by_mid(mid, rid) else {
        tracing::debug!(%mid, ?rid, "no send stream to relax the resend cap on");
        return false;
    };
    tracing::debug!(%mid, ?rid, cap = RTX_RATIO_CAP, "resend cap relaxed");
    stream.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, Some(RTX_RATIO_CAP));
    true
}
