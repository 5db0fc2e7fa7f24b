//! Attachments round-trip end to end with their hash checked: a file
//! arrives byte-exact, an image is re-encoded under the size cap, a WAV
//! becomes a playable Opus voice note, a tampered blob is refused, and the
//! server holds only ciphertext.

use parley_client::MessengerError;
use parley_client::attachment::{AttachmentError, MAX_IMAGE_BYTES};
use parley_media::ogg_opus_file::ogg_opus_packets;
use parley_media::opus_codec::OpusDecoder;
use parley_testkit::{TestServer, inbox};

#[tokio::test(flavor = "multi_thread")]
async fn a_file_round_trips_and_a_tampered_blob_is_refused() {
    let server = TestServer::start().await;
    let mut alice = server.register("alice").await;
    let mut bob = server.register("bob").await;
    let b = bob.handle().to_string();

    let original: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = server.dir.path().join("notes.bin");
    std::fs::write(&path, &original).unwrap();
    alice.send_attachment(&b, &path).await.unwrap();

    let got = inbox(&mut bob).await;
    let reference = got[0].attachment.clone().expect("an attachment");
    assert_eq!(
        (reference.name.as_str(), reference.size),
        ("notes.bin", 300_000)
    );
    assert_eq!(bob.fetch_attachment(&reference).await.unwrap(), original);

    // The blob on the server is ciphertext.
    let blob_path = server
        .state
        .config()
        .blob_dir
        .join(reference.url.rsplit('/').next().unwrap());
    let mut blob = std::fs::read(&blob_path).unwrap();
    assert!(
        !blob.windows(64).any(|w| w == &original[1000..1064]),
        "plaintext on the server"
    );

    // Flip one byte: the hash check refuses it before decryption.
    blob[100] ^= 1;
    std::fs::write(&blob_path, &blob).unwrap();
    let err = bob.fetch_attachment(&reference).await.unwrap_err();
    assert!(
        matches!(
            err,
            MessengerError::Attachment(AttachmentError::HashMismatch)
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn images_are_recompressed_and_wav_becomes_an_opus_voice_note() {
    let server = TestServer::start().await;
    let mut alice = server.register("alice").await;
    let mut bob = server.register("bob").await;
    let b = bob.handle().to_string();

    // A noisy 3000x2000 PNG: several megabytes as PNG.
    let png = server.dir.path().join("photo.png");
    let picture = image::RgbImage::from_fn(3000, 2000, |x, y| {
        let n = x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503);
        image::Rgb([(n >> 3) as u8, (x / 12) as u8, (y / 8) as u8])
    });
    picture.save(&png).unwrap();
    assert!(std::fs::metadata(&png).unwrap().len() > 4 * MAX_IMAGE_BYTES as u64);
    alice.send_attachment(&b, &png).await.unwrap();

    // Three seconds of speech as a WAV.
    let wav = server.dir.path().join("hello.wav");
    let speech = common_speech(3.0);
    parley_media::wav_file::write_wav(&wav, &speech).unwrap();
    alice.send_attachment(&b, &wav).await.unwrap();

    let got = inbox(&mut bob).await;
    assert_eq!(got.len(), 2);
    let photo = got[0].attachment.clone().unwrap();
    assert_eq!(
        (photo.name.as_str(), photo.mime.as_str()),
        ("photo.jpg", "image/jpeg")
    );
    let jpeg = bob.fetch_attachment(&photo).await.unwrap();
    assert!(jpeg.len() <= MAX_IMAGE_BYTES);
    let decoded = image::load_from_memory(&jpeg).unwrap();
    assert_eq!(
        (decoded.width(), decoded.height()),
        (2048, 1365),
        "scaled to fit 2048"
    );

    let note = got[1].attachment.clone().unwrap();
    assert_eq!(
        (note.name.as_str(), note.mime.as_str()),
        ("hello.opus", "audio/ogg; codecs=opus")
    );
    let ogg = bob.fetch_attachment(&note).await.unwrap();
    assert!(
        ogg.len() < speech.len() * 2 / 10,
        "{} bytes of Opus for {} of PCM",
        ogg.len(),
        speech.len() * 2
    );
    let packets = ogg_opus_packets(&ogg).unwrap();
    assert_eq!(packets.len(), 150, "3 s of 20 ms packets");
    let mut decoder = OpusDecoder::new().unwrap();
    let pcm: Vec<i16> = packets
        .iter()
        .flat_map(|p| decoder.decode(p).unwrap().samples().to_vec())
        .collect();
    let score = parley_media::quality::pesq_wb(&speech, &pcm).unwrap();
    assert!(score > 3.0, "voice note PESQ-WB {score:.2}");
}

fn common_speech(seconds: f64) -> Vec<i16> {
    let clip = parley_media::speech::speech_clip().unwrap();
    clip.into_iter()
        .take((seconds * 48_000.0) as usize)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_over_the_cap_and_unknown_ids_are_refused() {
    let server = TestServer::with_config(parley_signaling::ServerConfig {
        max_attachment_bytes: 100_000,
        ..Default::default()
    })
    .await;
    let mut alice = server.register("alice").await;
    let token = alice.token().await.unwrap();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v1/attachments", server.url))
        .bearer_auth(&token)
        .body(vec![0u8; 200_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let leftovers = std::fs::read_dir(&server.state.config().blob_dir)
        .unwrap()
        .count();
    assert_eq!(leftovers, 0, "a refused upload leaves nothing behind");
    for id in [
        "../server.db",
        "not-a-uuid",
        &uuid::Uuid::new_v4().to_string(),
    ] {
        let r = http
            .get(format!("{}/v1/attachments/{id}", server.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{id}");
    }
    // Uploads need a token.
    let r = http
        .post(format!("{}/v1/attachments", server.url))
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
