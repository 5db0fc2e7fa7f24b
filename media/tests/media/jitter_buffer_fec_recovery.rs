//! A packet lost between two received ones is rebuilt from the next
//! packet's in-band FEC, and the rebuilt audio is closer to the original
//! than concealment would be.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use parley_media::jitter_buffer::{Concealment, JitterBuffer, JitterBufferConfig, PlayoutKind};
use parley_media::opus_codec::{OpusDecoder, packet_has_fec};
use parley_media::quality::snr_db;
use parley_media::rtp::AudioPacketizer;

/// Plays `payloads` through a jitter buffer, dropping the indices in
/// `lost`; returns (kind, pcm) per media frame played, indexed by frame
/// number (from the RTP timestamp).
fn play(
    payloads: &[Vec<u8>],
    lost: &[usize],
    fec: bool,
) -> BTreeMap<usize, (PlayoutKind, Vec<i16>)> {
    let mut jb = JitterBuffer::new(JitterBufferConfig {
        fec,
        concealment: Concealment::Plc,
        ..JitterBufferConfig::default()
    })
    .unwrap();
    let mut packetizer = AudioPacketizer::new(9, 111, 100, 0);
    let start = Instant::now();
    let tick = Duration::from_millis(20);
    let mut out = BTreeMap::new();
    for (i, payload) in payloads.iter().enumerate() {
        let packet = packetizer.packetize(payload.clone());
        if !lost.contains(&i) {
            jb.handle_packet(start + tick * i as u32, packet);
        }
        let p = jb.poll_frame(start + tick * i as u32 + Duration::from_millis(5));
        if let Some(ts) = p.rtp_timestamp {
            out.insert(ts as usize / 960, (p.kind, p.frame.samples().to_vec()));
        }
    }
    out
}

#[test]
fn lost_packet_between_two_received_is_fec_recovered() {
    let (speech, payloads) = crate::common::encoded_speech(4.0);
    let mut decoder = OpusDecoder::new().unwrap();
    let clean: Vec<Vec<i16>> = payloads
        .iter()
        .map(|p| decoder.decode(p).unwrap().samples().to_vec())
        .collect();

    // Lose a loud frame whose successor carries FEC.
    let mut k = crate::common::loud_frame(&speech, 50);
    while !packet_has_fec(&payloads[k + 1]) {
        k = crate::common::loud_frame(&speech, k + 1);
    }

    let with_fec = play(&payloads, &[k], true);
    let without = play(&payloads, &[k], false);
    let (kind, recovered) = &with_fec[&k];
    let (plc_kind, concealed) = &without[&k];
    assert_eq!(*kind, PlayoutKind::FecRecovered);
    assert_eq!(*plc_kind, PlayoutKind::Concealed);

    let fec_snr = snr_db(&clean[k], recovered);
    let plc_snr = snr_db(&clean[k], concealed);
    assert!(fec_snr > 5.0, "FEC frame SNR {fec_snr:.1} dB");
    assert!(
        fec_snr > plc_snr + 3.0,
        "FEC {fec_snr:.1} dB vs PLC {plc_snr:.1} dB"
    );
    // Every other frame played from its own packet.
    let played = with_fec
        .values()
        .filter(|(k, _)| *k == PlayoutKind::Played)
        .count();
    assert_eq!(played, with_fec.len() - 1);
}

#[test]
fn two_losses_in_a_row_conceal_the_first_and_recover_the_second() {
    let (speech, payloads) = crate::common::encoded_speech(4.0);
    let mut k = crate::common::loud_frame(&speech, 60);
    while !packet_has_fec(&payloads[k + 2]) {
        k = crate::common::loud_frame(&speech, k + 1);
    }
    let out = play(&payloads, &[k, k + 1], true);
    assert_eq!(out[&k].0, PlayoutKind::Concealed);
    assert_eq!(out[&(k + 1)].0, PlayoutKind::FecRecovered);
}
