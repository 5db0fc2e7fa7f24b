//! A moving test-pattern video source.
//!
//! Each frame has a scrolling diagonal luma gradient, vertical chroma bars,
//! a bouncing bright square, and the frame number written into the top-left
//! corner as 16 black-or-white blocks. The motion gives an encoder realistic
//! P-frames; the frame number survives lossy coding, so a receiver can tell
//! which frame it is looking at ([`read_frame_number`]) and count frozen or
//! skipped frames without any side channel.

use crate::video::{FrameRate, I420Frame, VideoSource};

/// Side of one frame-number block in pixels. Large against H.264's 16x16
/// macroblocks, so coding noise cannot flip a bit.
const BLOCK: usize = 16;

/// Bits of frame number drawn (wraps after 65 536 frames, 36 minutes at
/// 30 fps).
const BITS: usize = 16;

/// A synthetic moving picture.
#[derive(Debug, Clone)]
pub struct TestPatternSource {
    width: usize,
    height: usize,
    frame_rate: FrameRate,
    index: u64,
}

impl TestPatternSource {
    /// A pattern of the given size (even, and at least 256 pixels wide so
    /// the frame number fits) and rate.
    pub fn new(width: usize, height: usize, frame_rate: FrameRate) -> Result<Self, crate::Error> {
        I420Frame::black(width, height)?;
        if width < BLOCK * BITS || height < BLOCK * 2 {
            return Err(crate::Error::Invalid(format!(
                "test pattern needs at least {}x{} pixels, got {width}x{height}",
                BLOCK * BITS,
                BLOCK * 2
            )));
        }
        Ok(Self {
            width,
            height,
            frame_rate,
            index: 0,
        })
    }

    /// Draws frame `index` (the source is a pure function of it).
    pub fn frame(&self, index: u64) -> I420Frame {
        let (w, h) = (self.width, self.height);
        let mut frame = I420Frame::black(w, h).expect("dimensions checked in new");
        let t = index as usize;
        let (y, u, v) = frame.planes_mut();
        for row in 0..h {
            for col in 0..w {
                // Luma 32..=223 keeps clear of the black and white that the
                // frame number and the square use.
                y[row * w + col] = 32 + ((col + row + 3 * t) % 192) as u8;
            }
        }
        let (cw, ch) = (w / 2, h / 2);
        const BARS: [(u8, u8); 6] = [
            (90, 240),
            (54, 34),
            (240, 110),
            (16, 146),
            (202, 222),
            (166, 16),
        ];
        for row in 0..ch {
            for col in 0..cw {
                let (cu, cv) = BARS[col * BARS.len() / cw];
                u[row * cw + col] = cu;
                v[row * cw + col] = cv;
            }
        }
        // A bright square bouncing on a diagonal.
        let side = (h / 6).max(BLOCK);
        let span_x = w - side;
        let span_y = h - side - 2 * BLOCK;
        let bounce = |pos: usize, span: usize| {
            let p = pos % (2 * span.max(1));
            if p < span { p } else { 2 * span - p }
        };
        let x0 = bounce(7 * t, span_x);
        let y0 = 2 * BLOCK + bounce(5 * t, span_y);
        for row in y0..y0 + side {
            y[row * w + x0..row * w + x0 + side].fill(235);
        }
        // The frame number, most significant bit first, on a black strip.
        for row in 0..2 * BLOCK {
            y[row * w..row * w + BLOCK * BITS].fill(16);
        }
        for bit in 0..BITS {
            let on = (index >> (BITS - 1 - bit)) & 1 == 1;
            let level = if on { 235 } else { 16 };
            for row in BLOCK / 2..BLOCK / 2 + BLOCK {
                let start = row * w + bit * BLOCK;
                y[start..start + BLOCK].fill(level);
            }
        }
        frame
    }
}

impl VideoSource for TestPatternSource {
    fn next_frame(&mut self) -> Result<Option<I420Frame>, crate::Error> {
        let frame = self.frame(self.index);
        self.index += 1;
        Ok(Some(frame))
    }

    fn frame_rate(&self) -> FrameRate {
        self.frame_rate
    }
}

/// Reads the frame number a [`TestPatternSource`] drew into a picture
/// (modulo 2^16), sampling the middle of each block. Returns `None` for a
/// picture too small to hold one.
pub fn read_frame_number(frame: &I420Frame) -> Option<u16> {
    let w = frame.width();
    if w < BLOCK * BITS || frame.height() < 2 * BLOCK {
        return None;
    }
    let row = BLOCK; // middle of the block band
    let mut n = 0u16;
    for bit in 0..BITS {
        let luma = frame.y()[row * w + bit * BLOCK + BLOCK / 2];
        n = (n << 1) | u16::from(luma > 128);
    }
    Some(n)
}
