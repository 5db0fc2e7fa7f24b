//! H.264 encoding and decoding over OpenH264 (Constrained Baseline, the
//! profile every browser decodes; RFC 6184 carries it over RTP).
//!
//! The encoder codes a keyframe first and then only when asked
//! ([`H264Encoder::request_keyframe`], what a receiver's PLI turns into):
//! periodic keyframes waste bitrate on a call where the receiver asks for
//! one when it needs it.
//!
//! Frame skipping (OpenH264's rate control dropping a picture to stay on
//! budget) is on only below [`FRAME_SKIP_BELOW_BPS`]. Above it OpenH264
//! holds the rate within ~15 % at every frame (with the [`MIN_QP`] floor),
//! while with skipping on it drops runs of pictures after every keyframe
//! and scene change, which a viewer sees as freezes: 600 kbit/s VGA test
//! pattern, 300 frames, one keyframe asked for mid-way: skipping on 427
//! kbit/s and 2 pictures dropped, off 462 kbit/s and none; 250 kbit/s: on
//! 107 dropped (runs of up to 6), off 285 kbit/s. Below the threshold the
//! overshoot grows (237 kbit/s for a 100 kbit/s target), so skipping comes
//! back: a lower frame rate is the lesser harm than flooding a thin link.
//! A skipped frame comes back as `None`; the sender sends nothing for that
//! tick, as WebRTC does.
//!
//! Output is Annex B (start-code delimited NAL units), as OpenH264 writes it
//! and as RTP packetizers (str0m's among them) expect.

use std::time::Duration;

use openh264::decoder::{Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate as H264FrameRate, FrameType, Profile, QpRange,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264::{OpenH264API, Timestamp};

use crate::video::{FrameError, I420Frame};

/// Lowest quantiser the rate controller may pick. Without a floor OpenH264
/// spends its budget on near-lossless pictures and then skips frames to pay
/// for them: at 300 kbit/s VGA it coded 197 of 300 test-pattern frames with
/// QP 0..51 and 255 with 18..51 (the same from 18 to 26), at the same rate.
/// QP 18 is visually lossless for camera content.
const MIN_QP: u8 = 18;

/// Targets under this let OpenH264 skip frames (see the module docs).
pub const FRAME_SKIP_BELOW_BPS: u32 = 300_000;

/// Below this OpenH264 cannot hold even a low frame rate at 640x480; a
/// bandwidth estimate under it sends fewer pictures rather than mush.
const MIN_BITRATE_BPS: u32 = 100_000;

/// Errors from the H.264 codec.
#[derive(Debug, thiserror::Error)]
pub enum H264Error {
    /// OpenH264 refused to start, to encode, or to decode.
    #[error("openh264 {op} failed: {source}")]
    Codec {
        /// What was being done.
        op: &'static str,
        /// OpenH264's error.
        source: openh264::Error,
    },
    /// OpenH264 refused a setting.
    #[error("openh264 refused option {option}: error {rc}")]
    SetOption {
        /// The option.
        option: i32,
        /// OpenH264's return code.
        rc: i32,
    },
    /// The frame's size differs from the encoder's.
    #[error("frame is {got_w}x{got_h}, encoder is configured for {want_w}x{want_h}")]
    SizeMismatch {
        /// Frame width.
        got_w: usize,
        /// Frame height.
        got_h: usize,
        /// Configured width.
        want_w: usize,
        /// Configured height.
        want_h: usize,
    },
    /// The decoder produced a picture with impossible dimensions.
    #[error("decoded picture is malformed: {0}")]
    BadPicture(#[from] FrameError),
}

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct H264Config {
    /// Picture width in pixels (even).
    pub width: usize,
    /// Picture height in pixels (even).
    pub height: usize,
    /// Target bitrate in bits per second.
    pub bitrate_bps: u32,
    /// Frame rate the rate controller budgets for.
    pub max_fps: f32,
}

impl H264Config {
    /// 640x480 at 30 fps and 800 kbit/s, a typical call setting.
    pub fn vga() -> Self {
        Self {
            width: 640,
            height: 480,
            bitrate_bps: 800_000,
            max_fps: 30.0,
        }
    }
}

/// One encoded picture.
#[derive(Debug, Clone)]
pub struct EncodedVideo {
    /// Annex B NAL units (with SPS and PPS in front of a keyframe).
    pub data: Vec<u8>,
    /// Whether this is an IDR picture a decoder can start from.
    pub keyframe: bool,
}

/// An H.264 encoder.
pub struct H264Encoder {
    inner: Encoder,
    config: H264Config,
    /// OpenH264 initialises itself on the first picture; a bitrate asked
    /// for before that waits here.
    pending_bitrate: Option<u32>,
    /// The bitrate OpenH264 runs at now.
    applied_bitrate: u32,
    /// Whether OpenH264 may skip frames now.
    skipping: bool,
    started: bool,
}

impl H264Encoder {
    /// Creates an encoder. The first frame encoded is a keyframe.
    pub fn new(config: H264Config) -> Result<Self, H264Error> {
        let cfg = EncoderConfig::new()
            .bitrate(BitRate::from_bps(config.bitrate_bps))
            .max_frame_rate(H264FrameRate::from_hz(config.max_fps))
            .rate_control_mode(RateControlMode::Bitrate)
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            // On at creation, whatever the bitrate: OpenH264 warns on
            // stderr when it initialises without skipping, before any
            // trace level applies. The first picture sets it right.
            .skip_frames(true)
            .qp(QpRange::new(MIN_QP, 51))
            // One thread: deterministic output, and a call's other work
            // (audio, crypto, networking) needs the other core.
            .num_threads(1);
        let inner =
            Encoder::with_api_config(OpenH264API::from_source(), cfg).map_err(|source| {
                H264Error::Codec {
                    op: "encoder create",
                    source,
                }
            })?;
        Ok(Self {
            inner,
            config,
            pending_bitrate: None,
            applied_bitrate: config.bitrate_bps,
            skipping: true,
            started: false,
        })
    }

    /// Retargets the rate controller (from a bandwidth estimate) without a
    /// new keyframe; takes effect from the next picture.
    pub fn set_bitrate(&mut self, bps: u32) {
        self.config.bitrate_bps = bps.max(MIN_BITRATE_BPS);
        self.pending_bitrate = Some(self.config.bitrate_bps);
    }

    fn apply_bitrate(&mut self, bps: u32, previous: u32) -> Result<(), H264Error> {
        let target = i32::try_from(bps).unwrap_or(i32::MAX / 2);
        // OpenH264 refuses a target above the layer's maximum, so the
        // maximum moves first on the way up and last on the way down.
        let max = (
            openh264_sys2::ENCODER_OPTION_MAX_BITRATE,
            openh264_sys2::SPATIAL_LAYER_0,
            target.saturating_add(target / 4),
        );
        let set = (
            openh264_sys2::ENCODER_OPTION_BITRATE,
            openh264_sys2::SPATIAL_LAYER_ALL,
            target,
        );
        let order = if bps > previous {
            [max, set]
        } else {
            [set, max]
        };
        for (option, layer, bitrate) in order {
            let mut info = openh264_sys2::SBitrateInfo {
                iLayer: layer,
                iBitrate: bitrate,
            };
            // SAFETY: the encoder is initialised (a picture went through
            // it), and both options read one SBitrateInfo through the
            // pointer during the call; `info` outlives it. Neither option
            // changes anything the wrapper relies on (sizes, formats).
            #[allow(unsafe_code)]
            let rc = unsafe {
                self.inner
                    .raw_api()
                    .set_option(option, std::ptr::addr_of_mut!(info).cast())
            };
            if rc != 0 {
                return Err(H264Error::SetOption { option, rc });
            }
        }
        Ok(())
    }

    /// Lets OpenH264 skip frames below [`FRAME_SKIP_BELOW_BPS`] only.
    fn apply_frame_skip(&mut self) -> Result<(), H264Error> {
        let mut skip = self.applied_bitrate < FRAME_SKIP_BELOW_BPS;
        if skip == self.skipping {
            return Ok(());
        }
        let option = openh264_sys2::ENCODER_OPTION_RC_FRAME_SKIP;
        // SAFETY: the encoder is initialised (a picture went through it);
        // the option reads one C `bool` through the pointer during the
        // call, and `skip` outlives it.
        #[allow(unsafe_code)]
        let rc = unsafe {
            self.inner
                .raw_api()
                .set_option(option, std::ptr::addr_of_mut!(skip).cast())
        };
        if rc != 0 {
            return Err(H264Error::SetOption { option, rc });
        }
        self.skipping = skip;
        Ok(())
    }

    /// The settings the encoder was created with.
    pub fn config(&self) -> H264Config {
        self.config
    }

    /// Makes the next encoded frame a keyframe (IDR).
    pub fn request_keyframe(&mut self) {
        self.inner.force_intra_frame();
    }

    /// Encodes one picture captured at media time `pts` (from the start of
    /// the stream); `None` when the rate controller skipped it to stay
    /// within the bitrate. The rate controller budgets by `pts`, so it must
    /// advance with real (or virtual) time: constant values make it skip
    /// most frames.
    pub fn encode(
        &mut self,
        frame: &I420Frame,
        pts: Duration,
    ) -> Result<Option<EncodedVideo>, H264Error> {
        if frame.width() != self.config.width || frame.height() != self.config.height {
            return Err(H264Error::SizeMismatch {
                got_w: frame.width(),
                got_h: frame.height(),
                want_w: self.config.width,
                want_h: self.config.height,
            });
        }
        if self.started
            && let Some(bps) = self.pending_bitrate.take()
        {
            self.apply_bitrate(bps, self.applied_bitrate)?;
            self.applied_bitrate = bps;
        }
        if self.started {
            self.apply_frame_skip()?;
        }
        self.started = true;
        let bitstream = self
            .inner
            .encode_at(
                &YuvView(frame),
                Timestamp::from_millis(pts.as_millis() as u64),
            )
            .map_err(|source| H264Error::Codec {
                op: "encode",
                source,
            })?;
        let frame_type = bitstream.frame_type();
        let data = bitstream.to_vec();
        if frame_type == FrameType::Skip || data.is_empty() {
            return Ok(None);
        }
        Ok(Some(EncodedVideo {
            data,
            keyframe: matches!(frame_type, FrameType::IDR | FrameType::I),
        }))
    }
}

/// Converts packed 8-bit RGB (a camera's decoded picture) to I420 with
/// OpenH264's converter (BT.601), for the encoder.
pub fn i420_from_rgb(rgb: &[u8], width: usize, height: usize) -> Result<I420Frame, FrameError> {
    if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(FrameError::OddDimensions { width, height });
    }
    if rgb.len() != width * height * 3 {
        return Err(FrameError::PlaneSize {
            plane: "RGB",
            got: rgb.len(),
            expected: width * height * 3,
        });
    }
    let yuv = openh264::formats::YUVBuffer::from_rgb_source(openh264::formats::RgbSliceU8::new(
        rgb,
        (width, height),
    ));
    let (y_stride, uv_stride, _) = yuv.strides();
    I420Frame::from_strided(
        width,
        height,
        (yuv.y(), yuv.u(), yuv.v()),
        (y_stride, uv_stride),
    )
}

/// An H.264 decoder.
pub struct H264Decoder {
    inner: Decoder,
}

impl H264Decoder {
    /// Creates a decoder.
    pub fn new() -> Result<Self, H264Error> {
        let inner = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(|source| H264Error::Codec {
                op: "decoder create",
                source,
            })?;
        Ok(Self { inner })
    }

    /// Decodes one access unit (Annex B). Returns `None` when the decoder
    /// needs more data before it has a picture, and an error when the data
    /// cannot be decoded (a P-frame whose reference was lost, say), which is
    /// the receiver's cue to request a keyframe.
    pub fn decode(&mut self, annex_b: &[u8]) -> Result<Option<I420Frame>, H264Error> {
        let decoded = self
            .inner
            .decode(annex_b)
            .map_err(|source| H264Error::Codec {
                op: "decode",
                source,
            })?;
        let Some(yuv) = decoded else {
            return Ok(None);
        };
        let (width, height) = yuv.dimensions();
        let (y_stride, uv_stride, _) = yuv.strides();
        let frame = I420Frame::from_strided(
            width,
            height,
            (yuv.y(), yuv.u(), yuv.v()),
            (y_stride, uv_stride),
        )?;
        Ok(Some(frame))
    }
}

/// Borrows an [`I420Frame`] as OpenH264's input type without copying.
struct YuvView<'a>(&'a I420Frame);

impl YUVSource for YuvView<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width(), self.0.height())
    }

    fn strides(&self) -> (usize, usize, usize) {
        let w = self.0.width();
        (w, w / 2, w / 2)
    }

    fn y(&self) -> &[u8] {
        self.0.y()
    }

    fn u(&self) -> &[u8] {
        self.0.u()
    }

    fn v(&self) -> &[u8] {
        self.0.v()
    }
}

/// The NAL units of an Annex B access unit, each without its start code
/// and without the zero bytes a following 4-byte start code leaves behind.
/// Anything before the first start code is skipped.
pub fn nal_units(annex_b: &[u8]) -> impl Iterator<Item = &[u8]> {
    // Every NAL unit follows a `00 00 01` (a four-byte start code is a zero
    // byte in front of one), and emulation prevention guarantees that
    // sequence never occurs inside a unit: one memmem pass finds them all.
    let mut starts = memchr::memmem::find_iter(annex_b, &[0, 0, 1])
        .map(|i| i + 3)
        .peekable();
    std::iter::from_fn(move || {
        loop {
            let start = starts.next()?;
            let end = starts.peek().map_or(annex_b.len(), |&next| next - 3);
            let unit = &annex_b[start..end];
            // Trailing zeros belong to the next start code (or are
            // trailing_zero_8bits), not to this unit.
            let len = unit.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            if len > 0 {
                return Some(&unit[..len]);
            }
        }
    })
}
