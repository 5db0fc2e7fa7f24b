//! Attachments: compressed on the device, encrypted with a fresh key,
//! uploaded as ciphertext, and described (URL, key, SHA-256) inside an E2E
//! message, as Signal does. The server stores bytes it cannot open; the
//! recipient checks the hash before decrypting.
//!
//! Compression by kind:
//! - a WAV file becomes an Opus voice note (24 kbit/s, Ogg Opus);
//! - an image is re-encoded as JPEG, scaled to at most
//!   [`MAX_IMAGE_SIDE`] pixels and stepped down in quality until it fits
//!   [`MAX_IMAGE_BYTES`];
//! - anything else is sent as it is, up to [`MAX_FILE_BYTES`].

use std::io::Cursor;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use parley_media::audio::frames_of;
use parley_media::ogg_opus_file::ogg_opus_bytes;
use parley_media::opus_codec::{OpusConfig, OpusEncoder};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest side of a sent image, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 2048;

/// Size cap for a sent image.
pub const MAX_IMAGE_BYTES: usize = 1024 * 1024;

/// Size cap for any other file (the server's default blob cap, less room
/// for the nonce and tag).
pub const MAX_FILE_BYTES: usize = 25 * 1024 * 1024 - 64;

/// Opus bitrate of voice notes: speech-clear, about 180 kB a minute.
pub const VOICE_NOTE_BITRATE: u32 = 24_000;

/// Errors preparing, sealing or opening an attachment.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is larger than the cap for its kind.
    #[error("{0} is too large to send (limit {1} bytes)")]
    TooLarge(String, usize),
    /// An image could not be decoded or re-encoded.
    #[error("image {path}: {reason}")]
    Image {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A WAV file could not become a voice note.
    #[error("voice note from {path}: {reason}")]
    Audio {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The downloaded bytes do not match the hash in the message.
    #[error("attachment hash mismatch: the download was altered or truncated")]
    HashMismatch,
    /// The ciphertext does not decrypt with the message's key.
    #[error("attachment does not decrypt with its key")]
    Decrypt,
}

/// What an E2E message says about an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// Where to download the ciphertext (a path on the server).
    pub url: String,
    /// XChaCha20-Poly1305 key, base64.
    pub key: String,
    /// SHA-256 of the ciphertext, hex.
    pub sha256: String,
    /// MIME type of the plaintext.
    pub mime: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// File name to save as.
    pub name: String,
}

/// A file made ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The (compressed) bytes.
    pub bytes: Vec<u8>,
    /// Their MIME type.
    pub mime: String,
    /// File name to show.
    pub name: String,
}

/// Reads and compresses a file by kind (see the module docs).
pub fn prepare(path: &Path) -> Result<Prepared, AttachmentError> {
    let name = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy().into_owned());
    let display = path.display().to_string();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "wav" => voice_note(path, &display, &name),
        "png" | "jpg" | "jpeg" | "webp" | "gif" | "bmp" => image(path, &display, &name),
        _ => {
            let bytes = std::fs::read(path).map_err(|source| AttachmentError::Read {
                path: display.clone(),
                source,
            })?;
            if bytes.len() > MAX_FILE_BYTES {
                return Err(AttachmentError::TooLarge(display, MAX_FILE_BYTES));
            }
            Ok(Prepared {
                bytes,
                mime: "application/octet-stream".into(),
                name,
            })
        }
    }
}

fn voice_note(path: &Path, display: &str, name: &str) -> Result<Prepared, AttachmentError> {
    let audio = |reason: String| AttachmentError::Audio {
        path: display.to_string(),
        reason,
    };
    let pcm = parley_media::wav_file::read_wav(path).map_err(|e| audio(e.to_string()))?;
    let mut encoder = OpusEncoder::new(OpusConfig {
        bitrate_bps: VOICE_NOTE_BITRATE,
        inband_fec: false,
        packet_loss_pct: 0,
        dtx: false,
        complexity: 10,
    })
    .map_err(|e| audio(e.to_string()))?;
    let packets = frames_of(&pcm)
        .map(|f| encoder.encode(&f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| audio(e.to_string()))?;
    let bytes = ogg_opus_bytes(&packets).map_err(|e| audio(e.to_string()))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(AttachmentError::TooLarge(
            display.to_string(),
            MAX_FILE_BYTES,
        ));
    }
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    Ok(Prepared {
        bytes,
        mime: "audio/ogg; codecs=opus".into(),
        name: format!("{stem}.opus"),
    })
}

fn image(path: &Path, display: &str, name: &str) -> Result<Prepared, AttachmentError> {
    let fail = |reason: String| AttachmentError::Image {
        path: display.to_string(),
        reason,
    };
    let picture = image::ImageReader::open(path)
        .map_err(|source| AttachmentError::Read {
            path: display.to_string(),
            source,
        })?
        .with_guessed_format()
        .map_err(|e| fail(e.to_string()))?
        .decode()
        .map_err(|e| fail(e.to_string()))?;
    let picture = if picture.width().max(picture.height()) > MAX_IMAGE_SIDE {
        picture.resize(
            MAX_IMAGE_SIDE,
            MAX_IMAGE_SIDE,
            image::imageops::FilterType::Lanczos3,
        )
    } else {
        picture
    };
    let rgb = picture.to_rgb8();
    for quality in [85u8, 75, 65, 55, 45, 35] {
        let mut out = Cursor::new(Vec::new());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(&rgb)
            .map_err(|e| fail(e.to_string()))?;
        let bytes = out.into_inner();
        if bytes.len() <= MAX_IMAGE_BYTES {
            let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
            return Ok(Prepared {
                bytes,
                mime: "image/jpeg".into(),
                name: format!("{stem}.jpg"),
            });
        }
    }
    Err(AttachmentError::TooLarge(
        display.to_string(),
        MAX_IMAGE_BYTES,
    ))
}

/// Encrypts with a fresh key: (key, nonce || ciphertext, SHA-256 hex of
/// the latter).
pub fn seal(plaintext: &[u8]) -> ([u8; 32], Vec<u8>, String) {
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 24];
    rand::rng().fill_bytes(&mut key);
    rand::rng().fill_bytes(&mut nonce);
    let ciphertext = XChaCha20Poly1305::new(&key.into())
        .encrypt(&XNonce::from(nonce), plaintext)
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory data");
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&ciphertext);
    let sha = hex_sha256(&blob);
    (key, blob, sha)
}

/// Checks the hash, then decrypts.
pub fn open(reference: &AttachmentRef, blob: &[u8]) -> Result<Vec<u8>, AttachmentError> {
    if hex_sha256(blob) != reference.sha256 {
        return Err(AttachmentError::HashMismatch);
    }
    let key: [u8; 32] = STANDARD
        .decode(&reference.key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or(AttachmentError::Decrypt)?;
    if blob.len() < 24 {
        return Err(AttachmentError::Decrypt);
    }
    let (nonce, ciphertext) = blob.split_at(24);
    let nonce: [u8; 24] = nonce.try_into().expect("split at 24");
    XChaCha20Poly1305::new(&key.into())
        .decrypt(&XNonce::from(nonce), ciphertext)
        .map_err(|_| AttachmentError::Decrypt)
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
