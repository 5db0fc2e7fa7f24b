//! PESQ-WB and PSNR give the numbers they should: PESQ near its ceiling
//! for identical speech and lower as noise rises; PSNR from a known error.

use parley_media::quality::{PSNR_IDENTICAL_DB, QualityError, pesq_wb, psnr};
use parley_media::video::I420Frame;

#[test]
fn pesq_is_near_ceiling_for_identical_speech_and_falls_with_noise() {
    let speech = crate::common::speech_for(8.0);
    let identical = pesq_wb(&speech, &speech).unwrap();
    assert!(identical > 4.6, "identical {identical:.3}");

    // A constant delay is aligned away.
    let mut delayed = vec![0i16; 4800];
    delayed.extend_from_slice(&speech[..speech.len() - 4800]);
    let shifted = pesq_wb(&speech, &delayed).unwrap();
    assert!(shifted > 4.4, "100 ms delay {shifted:.3}");

    // Deterministic white-ish noise at two levels.
    let noisy = |amplitude: i32| -> Vec<i16> {
        let mut x = 12345u32;
        speech
            .iter()
            .map(|&s| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let n = ((x >> 16) as i32 % (2 * amplitude + 1)) - amplitude;
                (i32::from(s) + n).clamp(-32768, 32767) as i16
            })
            .collect()
    };
    let light = pesq_wb(&speech, &noisy(100)).unwrap();
    let heavy = pesq_wb(&speech, &noisy(3000)).unwrap();
    eprintln!(
        "PESQ-WB identical {identical:.3}, delayed {shifted:.3}, light noise {light:.3}, heavy {heavy:.3}"
    );
    assert!(
        identical > light && light > heavy + 1.0,
        "{identical} {light} {heavy}"
    );
    assert!(heavy < 2.0, "heavy noise {heavy:.3}");
}

#[test]
fn pesq_refuses_a_clip_too_short_to_score() {
    let short = vec![0i16; 4800];
    assert!(matches!(
        pesq_wb(&short, &short),
        Err(QualityError::Pesq(_))
    ));
}

#[test]
fn psnr_matches_a_known_error() {
    let a = I420Frame::black(64, 64).unwrap();
    assert_eq!(psnr(&a, &a).unwrap(), PSNR_IDENTICAL_DB);
    // Every sample off by 4: MSE 16, PSNR = 10 log10(255^2 / 16) = 36.09 dB.
    let (y, u, v) = (
        a.y().iter().map(|p| p + 4).collect(),
        a.u().iter().map(|p| p + 4).collect(),
        a.v().iter().map(|p| p + 4).collect(),
    );
    let b = I420Frame::from_planes(64, 64, y, u, v).unwrap();
    let db = psnr(&a, &b).unwrap();
    assert!((db - 36.09).abs() < 0.01, "{db}");
    let other = I420Frame::black(32, 32).unwrap();
    assert!(matches!(
        psnr(&a, &other),
        Err(QualityError::SizeMismatch(..))
    ));
}
