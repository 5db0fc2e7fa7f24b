//! Polling a str0m session without a timer round trip per paced packet.
//!
//! str0m's pacer asks for a timeout after every packet it releases, one
//! microsecond on ("to ensure time advances between packets"), and new
//! media asks for a timeout that is already due. An IO shell that answers
//! those through its timer (tokio's has millisecond ticks) holds each
//! packet of a frame for up to a tick: a 5-packet picture left the SFU over
//! ~5 ms, a 30-packet keyframe over ~30 ms. [`poll_output`] feeds those
//! back at once, as str0m's own examples do for due ones. Every other
//! timer (NACK, RTCP, BWE, ICE) still fires at its time: fed early, a NACK
//! timer in the loss benchmark turned 20 ms-RTT repairs from ~20 ms into
//! ~400 ms.

use std::time::{Duration, Instant};

use str0m::{Input, Output, PacerReason, Reason, Rtc, RtcError};

/// How far ahead of `now` a pacer's "advance time" request is still fed
/// back at once: a shell's timer could not wake for it any sooner (tokio's
/// ticks are 1 ms). str0m's clock then runs those microseconds ahead of
/// the caller's, which it tolerates (it never goes backwards).
pub const IMMEDIATE: Duration = Duration::from_millis(1);

/// Timeouts fed back in a row with nothing to show for them before
/// [`poll_output`] hands the timeout to the caller after all: a guard
/// against spinning should a session keep asking without progress.
const MAX_IDLE_TIMEOUTS: usize = 4;

/// The session's next output, feeding it first any timeout due by `now`
/// and the pacer's immediate ones (within [`IMMEDIATE`], at their own
/// time). Returns `Output::Timeout` for anything else, or after
/// [`MAX_IDLE_TIMEOUTS`] fed ones produced nothing.
pub fn poll_output(rtc: &mut Rtc, now: Instant) -> Result<Output, RtcError> {
    for _ in 0..MAX_IDLE_TIMEOUTS {
        match rtc.poll_output()? {
            Output::Timeout(at) if at <= now => rtc.handle_input(Input::Timeout(now))?,
            Output::Timeout(at)
                if at <= now + IMMEDIATE
                    && rtc.last_timeout_reason() == Reason::Pacer(PacerReason::Immediate) =>
            {
                rtc.handle_input(Input::Timeout(at))?;
            }
            output => return Ok(output),
        }
    }
    rtc.poll_output()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests pick the origin of virtual time.
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use str0m::change::SdpOffer;
    use str0m::format::Codec;
    use str0m::media::{Direction, MediaKind, MediaTime, Mid};
    use str0m::net::{Protocol, Receive};
    use str0m::{Candidate, Event};

    use super::*;

    struct End {
        rtc: Rtc,
        addr: SocketAddr,
    }

    fn end(now: Instant, addr: &str) -> End {
        let addr: SocketAddr = addr.parse().unwrap();
        // The SFU's settings (H.264 with a bandwidth estimate, so its pacer
        // runs: the case `poll_output` is for), without the probing toward
        // a desired bitrate that `profile::build` adds, which would pad the
        // link while the test counts a picture's packets.
        let mut rtc = crate::profile::config(crate::profile::Role::Sfu).build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        End { rtc, addr }
    }

    /// Runs both ends at `now` until neither has anything left, each
    /// one's datagrams delivered to the other at once: how many `a` sent,
    /// and the frames `b` received.
    fn exchange(a: &mut End, b: &mut End, now: Instant) -> (usize, Vec<Vec<u8>>) {
        let (mut sent, mut frames) = (0, Vec::new());
        loop {
            let from_a = drain(a, b, now, &mut frames);
            let from_b = drain(b, a, now, &mut frames);
            sent += from_a;
            if from_a + from_b == 0 {
                return (sent, frames);
            }
        }
    }

    /// Polls `from` until it waits for a later time, delivering its
    /// datagrams to `to`; how many it sent.
    fn drain(from: &mut End, to: &mut End, now: Instant, frames: &mut Vec<Vec<u8>>) -> usize {
        let mut sent = 0;
        loop {
            match poll_output(&mut from.rtc, now).unwrap() {
                Output::Timeout(at) => {
                    assert!(at > now, "a due timeout was handed out");
                    return sent;
                }
                Output::Transmit(t) => {
                    sent += 1;
                    let input = Input::Receive(
                        now,
                        Receive {
                            proto: Protocol::Udp,
                            source: from.addr,
                            destination: to.addr,
                            contents: (&t.contents[..]).try_into().unwrap(),
                        },
                    );
                    to.rtc.handle_input(input).unwrap();
                }
                Output::Event(Event::MediaData(data)) => frames.push(data.data.to_vec()),
                Output::Event(_) => {}
            }
        }
    }

    /// A sender whose pacer is on (BWE) releases a whole multi-packet
    /// picture at one `now`: no packet waits for the caller's timer.
    #[test]
    fn a_picture_leaves_in_one_poll() {
        let start = Instant::now(); // clock-ok: virtual time from here
        let (mut a, mut b) = (end(start, "10.0.0.1:1000"), end(start, "10.0.0.2:2000"));
        let mut change = a.rtc.sdp_api();
        let mid: Mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let offer = SdpOffer::from_sdp_string(&offer.to_sdp_string()).unwrap();
        let answer = b.rtc.sdp_api().accept_offer(offer).unwrap();
        a.rtc.sdp_api().accept_answer(pending, answer).unwrap();

        let mut now = start;
        while !(a.rtc.is_connected() && b.rtc.is_connected()) {
            assert!(now < start + Duration::from_secs(5), "no connection");
            exchange(&mut a, &mut b, now);
            now += Duration::from_millis(5);
        }
        // Let the handshake's packets and the first pacer round settle.
        for _ in 0..20 {
            exchange(&mut a, &mut b, now);
            now += Duration::from_millis(5);
        }

        // An IDR slice of 6000 bytes: five or six RTP packets.
        let mut picture = vec![0, 0, 0, 1, 0x65];
        picture.extend((0..6000u32).map(|i| (i % 251) as u8 | 1));
        let writer = a.rtc.writer(mid).unwrap();
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::H264)
            .map(|p| p.pt())
            .unwrap();
        writer
            .write(pt, now, MediaTime::from_90khz(90_000), picture.clone())
            .unwrap();

        let (sent, frames) = exchange(&mut a, &mut b, now);
        assert!(sent >= 5, "{sent} packets at one instant");
        assert_eq!(frames.len(), 1, "the whole picture arrived");
        assert!(frames[0].ends_with(&picture[5..]));
    }
}
