//! Ogg Opus (RFC 7845): the container voice notes travel in, the one every
//! player and browser opens. Writing takes Opus packets of 20 ms; reading
//! gives them back.

use std::io::{Cursor, Read, Write};

use ogg::{PacketReader, PacketWriteEndInfo, PacketWriter};

use crate::audio::{FRAME_SAMPLES, SAMPLE_RATE};

/// Samples the decoder drops at the start (RFC 7845 section 4.2): libopus's
/// encoder delay at 48 kHz.
pub const PRE_SKIP: u16 = 312;

/// Errors reading or writing Ogg Opus.
#[derive(Debug, thiserror::Error)]
pub enum OggOpusError {
    /// The Ogg layer failed (truncated, bad CRC, I/O).
    #[error("ogg: {0}")]
    Ogg(String),
    /// The stream is Ogg but not Opus as RFC 7845 lays it out.
    #[error("not an Ogg Opus stream: {0}")]
    NotOpus(&'static str),
}

/// Writes 20 ms Opus packets as an Ogg Opus stream into `out`.
pub fn write_ogg_opus<W: Write>(out: W, packets: &[Vec<u8>]) -> Result<(), OggOpusError> {
    let ogg = |e: std::io::Error| OggOpusError::Ogg(e.to_string());
    let mut writer = PacketWriter::new(out);
    let serial = 0x5041_524c; // "PARL"
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(1); // channels
    head.extend_from_slice(&PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family
    writer
        .write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)
        .map_err(ogg)?;
    let vendor = b"parley";
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    tags.extend_from_slice(vendor);
    tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments
    writer
        .write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)
        .map_err(ogg)?;
    for (i, packet) in packets.iter().enumerate() {
        let granule = u64::from(PRE_SKIP) + ((i + 1) * FRAME_SAMPLES) as u64;
        let end = if i + 1 == packets.len() {
            PacketWriteEndInfo::EndStream
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        writer
            .write_packet(packet.clone(), serial, end, granule)
            .map_err(ogg)?;
    }
    Ok(())
}

/// Reads the Opus packets of an Ogg Opus stream (checking its headers).
pub fn read_ogg_opus<R: Read + std::io::Seek>(input: R) -> Result<Vec<Vec<u8>>, OggOpusError> {
    let mut reader = PacketReader::new(input);
    let mut next = || {
        reader
            .read_packet()
            .map_err(|e| OggOpusError::Ogg(e.to_string()))
    };
    let head = next()?.ok_or(OggOpusError::NotOpus("empty stream"))?;
    if !head.data.starts_with(b"OpusHead") || head.data.len() < 19 {
        return Err(OggOpusError::NotOpus("first packet is not OpusHead"));
    }
    let tags = next()?.ok_or(OggOpusError::NotOpus("no OpusTags"))?;
    if !tags.data.starts_with(b"OpusTags") {
        return Err(OggOpusError::NotOpus("second packet is not OpusTags"));
    }
    let mut packets = Vec::new();
    while let Some(p) = next()? {
        packets.push(p.data);
    }
    Ok(packets)
}

/// Convenience: Ogg Opus bytes from packets.
pub fn ogg_opus_bytes(packets: &[Vec<u8>]) -> Result<Vec<u8>, OggOpusError> {
    let mut out = Vec::new();
    write_ogg_opus(&mut out, packets)?;
    Ok(out)
}

/// Convenience: packets from Ogg Opus bytes.
pub fn ogg_opus_packets(bytes: &[u8]) -> Result<Vec<Vec<u8>>, OggOpusError> {
    read_ogg_opus(Cursor::new(bytes))
}
