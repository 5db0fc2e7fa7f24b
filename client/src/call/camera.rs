//! Cameras through nokhwa (V4L2 on Linux) behind the media core's
//! [`VideoSource`].
//!
//! A nokhwa camera is driven from a thread of its own (it blocks on each
//! frame and cannot move between threads); decoded RGB pictures are
//! converted to I420 there and handed over through a two-slot channel. The
//! call's video tick takes the newest picture, or repeats the last one
//! when the camera is slower than the tick, so a camera never holds the
//! media loop up.

use std::sync::mpsc;
use std::time::Duration;

use nokhwa::Camera;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{ApiBackend, CameraIndex, RequestedFormat, RequestedFormatType};
use parley_media::h264::i420_from_rgb;
use parley_media::video::{FrameRate, I420Frame, VideoSource};

use super::devices::DeviceError;

/// How long the first picture may take (a camera warms up).
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// A camera.
pub struct CameraSource {
    pictures: mpsc::Receiver<Result<I420Frame, String>>,
    last: I420Frame,
    frame_rate: FrameRate,
    _stop: mpsc::Sender<()>,
}

/// Which camera `name` means: `default` (the first), an index, or part of
/// a camera's name as the system lists it.
fn index_of(name: &str) -> Result<CameraIndex, DeviceError> {
    if name == "default" {
        return Ok(CameraIndex::Index(0));
    }
    if let Ok(i) = name.parse::<u32>() {
        return Ok(CameraIndex::Index(i));
    }
    let cameras = nokhwa::query(ApiBackend::Auto)
        .map_err(|e| DeviceError::Unknown(format!("listing cameras: {e}")))?;
    cameras
        .iter()
        .find(|c| c.human_name().contains(name))
        .map(|c| c.index().clone())
        .ok_or_else(|| {
            let known: Vec<String> = cameras.iter().map(|c| c.human_name()).collect();
            DeviceError::Unknown(format!(
                "no camera named {name:?} (cameras here: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
}

/// Opens a camera at its highest frame rate and starts capturing.
pub fn open_camera(name: &str) -> Result<Box<dyn VideoSource + Send>, DeviceError> {
    let index = index_of(name)?;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<FrameRate, DeviceError>>();
    let (picture_tx, pictures) = mpsc::sync_channel(2);
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let label = name.to_string();
    std::thread::Builder::new()
        .name("camera".into())
        .spawn(move || {
            let format =
                RequestedFormat::new::<RgbFormat>(RequestedFormatType::AbsoluteHighestFrameRate);
            let mut camera = match Camera::new(index, format).and_then(|mut c| {
                c.open_stream()?;
                Ok(c)
            }) {
                Ok(camera) => camera,
                Err(e) => {
                    let _ =
                        ready_tx.send(Err(DeviceError::Unknown(format!("camera {label:?}: {e}"))));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(FrameRate::fps(camera.frame_rate().max(1))));
            // Until the source is dropped (its end of `stop` closes).
            while matches!(stop_rx.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                let picture = camera
                    .frame()
                    .and_then(|buffer| buffer.decode_image::<RgbFormat>())
                    .map_err(|e| e.to_string())
                    .and_then(|rgb| {
                        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
                        // I420 needs even sides: drop an odd last row/column.
                        let (w2, h2) = (w & !1, h & !1);
                        let mut packed = Vec::with_capacity(w2 * h2 * 3);
                        for row in rgb.as_raw().chunks(w * 3).take(h2) {
                            packed.extend_from_slice(&row[..w2 * 3]);
                        }
                        i420_from_rgb(&packed, w2, h2).map_err(|e| e.to_string())
                    });
                let failed = picture.is_err();
                match picture_tx.try_send(picture) {
                    Ok(()) | Err(mpsc::TrySendError::Full(_)) => {}
                    Err(mpsc::TrySendError::Disconnected(_)) => break,
                }
                if failed {
                    break;
                }
            }
            let _ = camera.stop_stream();
        })
        .map_err(|e| DeviceError::Unknown(format!("camera thread: {e}")))?;
    let frame_rate = ready_rx
        .recv()
        .unwrap_or_else(|_| Err(DeviceError::Unknown("the camera thread died".into())))?;
    let first = pictures
        .recv_timeout(FIRST_FRAME_TIMEOUT)
        .map_err(|_| DeviceError::Unknown(format!("camera {name:?} delivered no picture")))?
        .map_err(|e| DeviceError::Unknown(format!("camera {name:?}: {e}")))?;
    Ok(Box::new(CameraSource {
        pictures,
        last: first,
        frame_rate,
        _stop: stop_tx,
    }))
}

impl VideoSource for CameraSource {
    fn next_frame(&mut self) -> Result<Option<I420Frame>, parley_media::Error> {
        loop {
            match self.pictures.try_recv() {
                Ok(Ok(picture)) => self.last = picture,
                Ok(Err(e)) => return Err(parley_media::Error::Device(format!("camera: {e}"))),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(parley_media::Error::Device("camera stopped".into()));
                }
            }
        }
        Ok(Some(self.last.clone()))
    }

    fn frame_rate(&self) -> FrameRate {
        self.frame_rate
    }
}
