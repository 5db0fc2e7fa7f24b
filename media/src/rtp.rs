//! The little of RTP (RFC 3550) the media core needs: an owned packet
//! parsed and written with `rtp-types`, extended sequence numbers and
//! timestamps, and an audio packetizer (RFC 7587: one Opus packet per RTP
//! packet, timestamp in 48 kHz samples).
//!
//! Transport-level RTP (SRTP, RTCP, header extensions, H.264
//! packetization) belongs to str0m; this module exists so the media core
//! and its simulator can speak real RTP bytes on their own.

use rtp_types::{RtpPacket as ParsedRtp, RtpPacketBuilder};

use crate::audio::FRAME_SAMPLES;

/// Errors parsing or writing RTP.
#[derive(Debug, thiserror::Error)]
pub enum RtpError {
    /// The bytes are not a valid RTP packet.
    #[error("malformed RTP packet: {0}")]
    Parse(#[from] rtp_types::RtpParseError),
    /// The packet could not be written.
    #[error("cannot write RTP packet: {0}")]
    Write(#[from] rtp_types::RtpWriteError),
}

/// An RTP packet with its payload, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// Payload type (RFC 3551; dynamic 96..=127 for Opus and H.264).
    pub payload_type: u8,
    /// Sequence number as on the wire.
    pub sequence_number: u16,
    /// Media timestamp as on the wire (48 kHz for Opus).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Marker bit.
    pub marker: bool,
    /// The payload (an Opus packet, say).
    pub payload: Vec<u8>,
}

impl RtpPacket {
    /// Parses and copies out a packet. Header extensions and CSRCs are
    /// accepted and skipped.
    pub fn parse(bytes: &[u8]) -> Result<Self, RtpError> {
        let p = ParsedRtp::parse(bytes)?;
        Ok(Self {
            payload_type: p.payload_type(),
            sequence_number: p.sequence_number(),
            timestamp: p.timestamp(),
            ssrc: p.ssrc(),
            marker: p.marker_bit(),
            payload: p.payload().to_vec(),
        })
    }

    /// Writes the packet as RTP bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, RtpError> {
        let bytes = RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(self.payload_type)
            .sequence_number(self.sequence_number)
            .timestamp(self.timestamp)
            .ssrc(self.ssrc)
            .marker_bit(self.marker)
            .payload(self.payload.as_slice())
            .write_vec()?;
        Ok(bytes)
    }
}

/// An extended (never wrapping) RTP sequence number: the 16-bit wire value
/// plus a count of wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqNo(pub u64);

/// Extends wrapping counters (16-bit sequence numbers, 32-bit timestamps)
/// to 64 bits by picking, for each new value, the 64-bit value nearest to
/// the highest seen so far. Correct while reordering stays under half the
/// counter's range (32 768 packets, or 12 hours of 48 kHz timestamps).
#[derive(Debug, Clone, Copy)]
pub struct Unwrapper {
    bits: u32,
    highest: Option<u64>,
}

impl Unwrapper {
    /// For a counter of `bits` bits (16 or 32).
    pub const fn new(bits: u32) -> Self {
        Self {
            bits,
            highest: None,
        }
    }

    /// Extends `value`, remembering the highest extended value seen.
    pub fn unwrap(&mut self, value: u64) -> u64 {
        let extended = self.peek(value);
        self.highest = Some(self.highest.map_or(extended, |h| h.max(extended)));
        extended
    }

    /// Extends `value` without remembering it.
    pub fn peek(&self, value: u64) -> u64 {
        let modulus = 1u64 << self.bits;
        let value = value & (modulus - 1);
        let Some(highest) = self.highest else {
            // Start one cycle up so that a packet from just before the
            // first one does not go below zero.
            return modulus + value;
        };
        let base = highest & !(modulus - 1);
        // Candidates in this cycle, the one before and the one after; pick
        // the nearest to the highest seen.
        [base.wrapping_sub(modulus), base, base + modulus]
            .into_iter()
            .map(|b| b.wrapping_add(value))
            .filter(|&c| c >= modulus)
            .min_by_key(|&c| c.abs_diff(highest))
            .unwrap_or(base + value)
    }
}

/// Turns Opus packets (one 20 ms frame each) into RTP packets with
/// consecutive sequence numbers and timestamps.
#[derive(Debug, Clone)]
pub struct AudioPacketizer {
    ssrc: u32,
    payload_type: u8,
    next_sequence: u16,
    next_timestamp: u32,
}

impl AudioPacketizer {
    /// Starts a stream. Real senders pick random initial values (RFC 3550
    /// section 5.1); tests pick values near a wrap to exercise unwrapping.
    pub fn new(ssrc: u32, payload_type: u8, first_sequence: u16, first_timestamp: u32) -> Self {
        Self {
            ssrc,
            payload_type,
            next_sequence: first_sequence,
            next_timestamp: first_timestamp,
        }
    }

    /// Wraps the next frame's payload.
    pub fn packetize(&mut self, payload: Vec<u8>) -> RtpPacket {
        let packet = RtpPacket {
            payload_type: self.payload_type,
            sequence_number: self.next_sequence,
            timestamp: self.next_timestamp,
            ssrc: self.ssrc,
            marker: false,
            payload,
        };
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.next_timestamp = self.next_timestamp.wrapping_add(FRAME_SAMPLES as u32);
        packet
    }

    /// Skips a frame without sending it (DTX silence): the timestamp moves
    /// on, the sequence number does not.
    pub fn skip_frame(&mut self) {
        self.next_timestamp = self.next_timestamp.wrapping_add(FRAME_SAMPLES as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrap_crosses_sequence_wrap_in_both_directions() {
        let mut u = Unwrapper::new(16);
        let a = u.unwrap(65_534);
        let b = u.unwrap(65_535);
        let c = u.unwrap(1); // 0 lost, wrapped
        let late = u.unwrap(0); // the lost one arrives late, after the wrap
        let before = u.unwrap(65_533); // reordered from before the first
        assert_eq!(b, a + 1);
        assert_eq!(c, a + 3);
        assert_eq!(late, a + 2);
        assert_eq!(before, a - 1);
    }

    #[test]
    fn rtp_round_trips_and_rejects_garbage() {
        let p = AudioPacketizer::new(0x1234_5678, 111, 7, 960).packetize(vec![1, 2, 3]);
        let bytes = p.to_bytes().unwrap();
        assert_eq!(RtpPacket::parse(&bytes).unwrap(), p);
        assert!(RtpPacket::parse(&bytes[..5]).is_err());
        assert!(
            RtpPacket::parse(&[0x00; 20]).is_err(),
            "version 0 is not RTP"
        );
    }
}
