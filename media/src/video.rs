//! Video frames (I420) and the traits every video source and sink implements.

/// Errors building a frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// I420 subsamples chroma by two in both directions.
    #[error("I420 dimensions must be even and non-zero, got {width}x{height}")]
    OddDimensions {
        /// Requested width.
        width: usize,
        /// Requested height.
        height: usize,
    },
    /// A plane had the wrong number of bytes for the dimensions.
    #[error("I420 {plane} plane has {got} bytes, expected {expected}")]
    PlaneSize {
        /// Which plane.
        plane: &'static str,
        /// Bytes given.
        got: usize,
        /// Bytes needed.
        expected: usize,
    },
}

/// One picture in I420 (planar YUV 4:2:0, 8 bit), planes packed without
/// padding: stride equals width.
#[derive(Clone, PartialEq, Eq)]
pub struct I420Frame {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

impl I420Frame {
    /// A black frame.
    pub fn black(width: usize, height: usize) -> Result<Self, FrameError> {
        check_dimensions(width, height)?;
        let chroma = (width / 2) * (height / 2);
        Ok(Self {
            width,
            height,
            y: vec![16; width * height],
            u: vec![128; chroma],
            v: vec![128; chroma],
        })
    }

    /// Builds a frame from its three planes.
    pub fn from_planes(
        width: usize,
        height: usize,
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
    ) -> Result<Self, FrameError> {
        check_dimensions(width, height)?;
        let chroma = (width / 2) * (height / 2);
        for (plane, got, expected) in [
            ("Y", y.len(), width * height),
            ("U", u.len(), chroma),
            ("V", v.len(), chroma),
        ] {
            if got != expected {
                return Err(FrameError::PlaneSize {
                    plane,
                    got,
                    expected,
                });
            }
        }
        Ok(Self {
            width,
            height,
            y,
            u,
            v,
        })
    }

    /// Builds a frame by copying planes that may be padded (stride > width),
    /// as decoders hand them out.
    pub fn from_strided(
        width: usize,
        height: usize,
        (y, u, v): (&[u8], &[u8], &[u8]),
        (y_stride, uv_stride): (usize, usize),
    ) -> Result<Self, FrameError> {
        check_dimensions(width, height)?;
        let copy = |src: &[u8], stride: usize, w: usize, h: usize, plane| {
            let needed = stride * (h - 1) + w;
            if stride < w || src.len() < needed {
                return Err(FrameError::PlaneSize {
                    plane,
                    got: src.len(),
                    expected: needed,
                });
            }
            let mut out = Vec::with_capacity(w * h);
            for row in 0..h {
                out.extend_from_slice(&src[row * stride..row * stride + w]);
            }
            Ok(out)
        };
        let (cw, ch) = (width / 2, height / 2);
        Ok(Self {
            width,
            height,
            y: copy(y, y_stride, width, height, "Y")?,
            u: copy(u, uv_stride, cw, ch, "U")?,
            v: copy(v, uv_stride, cw, ch, "V")?,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The luma plane, `width * height` bytes.
    pub fn y(&self) -> &[u8] {
        &self.y
    }

    /// The blue-difference chroma plane, `width/2 * height/2` bytes.
    pub fn u(&self) -> &[u8] {
        &self.u
    }

    /// The red-difference chroma plane, `width/2 * height/2` bytes.
    pub fn v(&self) -> &[u8] {
        &self.v
    }

    /// All three planes, mutably, for sources that draw into a frame.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        (&mut self.y, &mut self.u, &mut self.v)
    }

    /// The picture at half the width and height (each pixel the rounded
    /// mean of a 2x2 block): a simulcast sender's lower layer. `None` when
    /// the half size would not be a valid frame (odd or zero dimensions).
    pub fn downscale_half(&self) -> Option<Self> {
        let (w, h) = (self.width / 2, self.height / 2);
        check_dimensions(w, h).ok()?;
        let half = |plane: &[u8], src_w: usize, dst_w: usize, dst_h: usize| {
            let mut out = Vec::with_capacity(dst_w * dst_h);
            for row in 0..dst_h {
                let (a, b) = (&plane[2 * row * src_w..], &plane[(2 * row + 1) * src_w..]);
                for col in 0..dst_w {
                    let sum = u16::from(a[2 * col])
                        + u16::from(a[2 * col + 1])
                        + u16::from(b[2 * col])
                        + u16::from(b[2 * col + 1]);
                    out.push(((sum + 2) / 4) as u8);
                }
            }
            out
        };
        Some(Self {
            width: w,
            height: h,
            y: half(&self.y, self.width, w, h),
            u: half(&self.u, self.width / 2, w / 2, h / 2),
            v: half(&self.v, self.width / 2, w / 2, h / 2),
        })
    }

    /// The picture at `width` x `height`, each pixel the nearest source
    /// pixel: a recording keeps one size when the sender's simulcast layer
    /// (and with it the picture size) changes mid-stream.
    pub fn scaled(&self, width: usize, height: usize) -> Result<Self, FrameError> {
        check_dimensions(width, height)?;
        let plane = |src: &[u8], src_w: usize, src_h: usize, dst_w: usize, dst_h: usize| {
            let mut out = Vec::with_capacity(dst_w * dst_h);
            for row in 0..dst_h {
                let line = &src[row * src_h / dst_h * src_w..];
                out.extend((0..dst_w).map(|col| line[col * src_w / dst_w]));
            }
            out
        };
        let (w, h) = (self.width, self.height);
        Ok(Self {
            width,
            height,
            y: plane(&self.y, w, h, width, height),
            u: plane(&self.u, w / 2, h / 2, width / 2, height / 2),
            v: plane(&self.v, w / 2, h / 2, width / 2, height / 2),
        })
    }
}

impl std::fmt::Debug for I420Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "I420Frame({}x{})", self.width, self.height)
    }
}

fn check_dimensions(width: usize, height: usize) -> Result<(), FrameError> {
    if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(FrameError::OddDimensions { width, height });
    }
    Ok(())
}

/// A frame rate as a ratio (Y4M and RTP both think in ratios: 30000/1001).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    /// Frames ...
    pub num: u32,
    /// ... per this many seconds.
    pub den: u32,
}

impl FrameRate {
    /// Whole frames per second.
    pub const fn fps(fps: u32) -> Self {
        Self { num: fps, den: 1 }
    }

    /// Frames per second as a float.
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den.max(1))
    }
}

/// Something that produces video a frame at a time: a camera, a Y4M file, a
/// synthetic pattern.
pub trait VideoSource {
    /// The next picture, or `None` when the source has ended.
    fn next_frame(&mut self) -> Result<Option<I420Frame>, crate::Error>;

    /// The nominal frame rate.
    fn frame_rate(&self) -> FrameRate;
}

/// Something that consumes video a frame at a time: a window, a Y4M file, a
/// discarding sink.
pub trait VideoSink {
    /// Consumes one picture.
    fn write_frame(&mut self, frame: &I420Frame) -> Result<(), crate::Error>;
}
