//! Y4M (YUV4MPEG2) files as video sources and sinks.
//!
//! Y4M is a one-line text header (`YUV4MPEG2 W640 H480 F30:1 C420jpeg`)
//! followed by frames, each a `FRAME` line and the raw planes. Parley reads
//! and writes 8-bit 4:2:0 only, the layout of [`I420Frame`].
//!
//! This is parsed here rather than with the `y4m` crate because that crate
//! reports a frame cut short as a clean end of file (so a truncated file
//! would silently lose its tail) and multiplies unchecked header dimensions
//! (so `W99999999999` panics). A truncated or malformed file must give a
//! clear error.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::Path;

use crate::video::{FrameRate, I420Frame, VideoSink, VideoSource};

/// Longest header or `FRAME` line accepted; real ones are under 100 bytes.
const MAX_LINE: usize = 1024;

/// Largest picture accepted (8K UHD), which bounds the frame buffer.
const MAX_DIMENSION: usize = 8192;

/// Errors reading or writing Y4M.
#[derive(Debug, thiserror::Error)]
pub enum Y4mError {
    /// The file could not be opened, read or written.
    #[error("Y4M file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The header line is not valid Y4M.
    #[error("Y4M file {path}: bad header: {reason}")]
    BadHeader {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A valid Y4M layout that Parley does not take.
    #[error("Y4M file {path}: unsupported: {reason} (only 8-bit 4:2:0 with even dimensions)")]
    Unsupported {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A frame did not start with a `FRAME` line.
    #[error("Y4M file {path}: frame {index} does not start with a FRAME line")]
    BadFrame {
        /// The file.
        path: String,
        /// Zero-based frame number.
        index: u64,
    },
    /// The file ends in the middle of a frame.
    #[error("Y4M file {path}: truncated in frame {index} ({got} of {expected} bytes)")]
    Truncated {
        /// The file.
        path: String,
        /// Zero-based frame number.
        index: u64,
        /// Bytes present.
        got: usize,
        /// Bytes a frame needs.
        expected: usize,
    },
}

/// What a Y4M header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Y4mHeader {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Frame rate.
    pub frame_rate: FrameRate,
}

/// A [`VideoSource`] reading a Y4M file (or any reader of Y4M bytes).
pub struct Y4mSource<R = BufReader<File>> {
    reader: R,
    header: Y4mHeader,
    name: String,
    index: u64,
}

impl Y4mSource {
    /// Opens a Y4M file and reads its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Y4mError> {
        let name = path.as_ref().display().to_string();
        let file = File::open(path).map_err(|source| Y4mError::Io {
            path: name.clone(),
            source,
        })?;
        Self::from_reader(BufReader::new(file), &name)
    }
}

impl<R: BufRead> Y4mSource<R> {
    /// Reads the header from a reader of Y4M bytes. `name` labels errors.
    pub fn from_reader(mut reader: R, name: &str) -> Result<Self, Y4mError> {
        let line = read_line(&mut reader, name)?.ok_or_else(|| Y4mError::BadHeader {
            path: name.to_string(),
            reason: "file is empty".into(),
        })?;
        let header = parse_header(&line, name)?;
        Ok(Self {
            reader,
            header,
            name: name.to_string(),
            index: 0,
        })
    }

    /// The header.
    pub fn header(&self) -> Y4mHeader {
        self.header
    }

    /// Reads the next frame; `None` at a clean end of file.
    pub fn read_frame(&mut self) -> Result<Option<I420Frame>, Y4mError> {
        let Some(line) = read_line(&mut self.reader, &self.name)? else {
            return Ok(None);
        };
        // "FRAME" optionally followed by " params".
        if !(line == b"FRAME" || line.starts_with(b"FRAME ")) {
            return Err(Y4mError::BadFrame {
                path: self.name.clone(),
                index: self.index,
            });
        }
        let Y4mHeader { width, height, .. } = self.header;
        let chroma = (width / 2) * (height / 2);
        let expected = width * height + 2 * chroma;
        let mut data = vec![0u8; expected];
        let mut got = 0;
        while got < expected {
            match self.reader.read(&mut data[got..]) {
                Ok(0) => {
                    return Err(Y4mError::Truncated {
                        path: self.name.clone(),
                        index: self.index,
                        got,
                        expected,
                    });
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Y4mError::Io {
                        path: self.name.clone(),
                        source,
                    });
                }
            }
        }
        let v = data.split_off(width * height + chroma);
        let u = data.split_off(width * height);
        let frame = I420Frame::from_planes(width, height, data, u, v)
            .expect("plane sizes computed from the validated header");
        self.index += 1;
        Ok(Some(frame))
    }
}

impl<R: BufRead> VideoSource for Y4mSource<R> {
    fn next_frame(&mut self) -> Result<Option<I420Frame>, crate::Error> {
        Ok(self.read_frame()?)
    }

    fn frame_rate(&self) -> FrameRate {
        self.header.frame_rate
    }
}

/// Reads one `\n`-terminated line without the newline; `None` at end of
/// file. Refuses lines over [`MAX_LINE`] so a binary file cannot make it
/// read without bound.
fn read_line(reader: &mut impl BufRead, name: &str) -> Result<Option<Vec<u8>>, Y4mError> {
    let mut line = Vec::new();
    let n = reader
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(|source| Y4mError::Io {
            path: name.to_string(),
            source,
        })?;
    if n == 0 {
        return Ok(None);
    }
    if line.pop() != Some(b'\n') {
        return Err(Y4mError::BadHeader {
            path: name.to_string(),
            reason: format!("line longer than {MAX_LINE} bytes or not terminated"),
        });
    }
    Ok(Some(line))
}

fn parse_header(line: &[u8], name: &str) -> Result<Y4mHeader, Y4mError> {
    let bad = |reason: String| Y4mError::BadHeader {
        path: name.to_string(),
        reason,
    };
    let unsupported = |reason: String| Y4mError::Unsupported {
        path: name.to_string(),
        reason,
    };
    let text = std::str::from_utf8(line).map_err(|_| bad("header is not ASCII".into()))?;
    let mut fields = text.split(' ').filter(|f| !f.is_empty());
    if fields.next() != Some("YUV4MPEG2") {
        return Err(bad("does not start with YUV4MPEG2".into()));
    }
    let (mut width, mut height) = (None, None);
    let mut frame_rate = FrameRate::fps(25);
    for field in fields {
        let (tag, value) = field.split_at(1);
        match tag {
            "W" | "H" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| bad(format!("bad dimension {field:?}")))?;
                if n == 0 || n > MAX_DIMENSION {
                    return Err(unsupported(format!("dimension {n} (1..={MAX_DIMENSION})")));
                }
                if !n.is_multiple_of(2) {
                    return Err(unsupported(format!("odd dimension {n}")));
                }
                if tag == "W" {
                    width = Some(n);
                } else {
                    height = Some(n);
                }
            }
            "F" => {
                let (num, den) = value
                    .split_once(':')
                    .and_then(|(n, d)| Some((n.parse().ok()?, d.parse().ok()?)))
                    .filter(|&(n, d): &(u32, u32)| n > 0 && d > 0)
                    .ok_or_else(|| bad(format!("bad frame rate {field:?}")))?;
                frame_rate = FrameRate { num, den };
            }
            "C" if !matches!(value, "420" | "420jpeg" | "420paldv" | "420mpeg2") => {
                return Err(unsupported(format!("colorspace {value}")));
            }
            "I" if !matches!(value, "p" | "?") => {
                return Err(unsupported(format!("interlacing {value}")));
            }
            // Pixel aspect, comments and vendor extensions do not change
            // how the planes are laid out.
            _ => {}
        }
    }
    let width = width.ok_or_else(|| bad("no width (W)".into()))?;
    let height = height.ok_or_else(|| bad("no height (H)".into()))?;
    Ok(Y4mHeader {
        width,
        height,
        frame_rate,
    })
}

/// A [`VideoSink`] writing a Y4M file.
pub struct Y4mSink<W: Write = BufWriter<File>> {
    writer: W,
    header: Y4mHeader,
    name: String,
}

impl Y4mSink {
    /// Creates (or truncates) a Y4M file for frames of the given size.
    pub fn create(path: impl AsRef<Path>, header: Y4mHeader) -> Result<Self, Y4mError> {
        let name = path.as_ref().display().to_string();
        let file = File::create(path).map_err(|source| Y4mError::Io {
            path: name.clone(),
            source,
        })?;
        Self::from_writer(BufWriter::new(file), header, &name)
    }
}

impl<W: Write> Y4mSink<W> {
    /// Writes the header to any writer. `name` labels errors.
    pub fn from_writer(mut writer: W, header: Y4mHeader, name: &str) -> Result<Self, Y4mError> {
        let Y4mHeader {
            width,
            height,
            frame_rate,
        } = header;
        writeln!(
            writer,
            "YUV4MPEG2 W{width} H{height} F{}:{} Ip A1:1 C420jpeg",
            frame_rate.num, frame_rate.den
        )
        .map_err(|source| Y4mError::Io {
            path: name.to_string(),
            source,
        })?;
        Ok(Self {
            writer,
            header,
            name: name.to_string(),
        })
    }

    /// Appends one frame, which must have the header's size.
    pub fn write(&mut self, frame: &I420Frame) -> Result<(), Y4mError> {
        if (frame.width(), frame.height()) != (self.header.width, self.header.height) {
            return Err(Y4mError::Unsupported {
                path: self.name.clone(),
                reason: format!(
                    "frame is {}x{} in a {}x{} file",
                    frame.width(),
                    frame.height(),
                    self.header.width,
                    self.header.height
                ),
            });
        }
        let io = |source| Y4mError::Io {
            path: self.name.clone(),
            source,
        };
        self.writer.write_all(b"FRAME\n").map_err(io)?;
        self.writer.write_all(frame.y()).map_err(io)?;
        self.writer.write_all(frame.u()).map_err(io)?;
        self.writer.write_all(frame.v()).map_err(io)?;
        Ok(())
    }

    /// Flushes buffered frames to the file.
    pub fn flush(&mut self) -> Result<(), Y4mError> {
        self.writer.flush().map_err(|source| Y4mError::Io {
            path: self.name.clone(),
            source,
        })
    }

    /// Gives back the writer (for in-memory use).
    pub fn into_inner(self) -> W {
        self.writer
    }
}

impl<W: Write> VideoSink for Y4mSink<W> {
    fn write_frame(&mut self, frame: &I420Frame) -> Result<(), crate::Error> {
        Ok(self.write(frame)?)
    }
}
