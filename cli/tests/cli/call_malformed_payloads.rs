//! Malformed call payloads reaching the real CLI get a clear error and
//! leave it running. A scripted peer (the SDK) sends `parley listen` an
//! offer with SDP that does not parse, one with a bad media secret, and a
//! hangup and an answer for calls that do not exist; it then takes a
//! real call. And it answers `parley call` twice: the duplicate answer is
//! reported and ignored.

use std::time::{Duration, Instant};

use crate::common::{parley, spawn, start_server};
use parley_client::call::e2ee::MasterSecret;
use parley_client::call::media_session::MediaSession;
use parley_client::call::signal::{CallSignal, HangupReason};
use parley_client::vault::KeySource;
use parley_client::{Event, Messenger};

const MEDIA: [&str; 4] = ["--audio-in", "speech", "--audio-out", "null"];

#[tokio::test(flavor = "multi_thread")]
async fn listen_reports_bad_offers_and_unknown_calls_and_keeps_answering() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&tmp.path().join("server"), &tmp.path().join("server.log"));
    let tag = std::process::id();
    let (mallory, alice, bob) = (
        format!("mallory-{tag}"),
        format!("alice-{tag}"),
        format!("bob-{tag}"),
    );
    let bob_dir = tmp.path().join("bob");
    let alice_dir = tmp.path().join("alice");
    parley(&server.url, &bob_dir, &["register", &bob]);
    parley(&server.url, &alice_dir, &["register", &alice]);
    let mut scripted = Messenger::register(
        &server.url,
        &tmp.path().join("mallory"),
        KeySource::KeyFile,
        &mallory,
    )
    .await
    .unwrap();

    let mut listen = vec!["listen", "--answer"];
    listen.extend(MEDIA);
    let mut callee = spawn("bob", &server.url, &bob_dir, &listen);
    callee.wait_for("listening for calls", Duration::from_secs(20));
    let device = scripted.call_devices(&bob).await.unwrap()[0].clone();
    let secret = CallSignal::encode_secret(&MasterSecret::random());

    let bad_sdp = CallSignal::Offer {
        call_id: "bad-sdp".into(),
        video: false,
        sdp: "v=0 this is not SDP".into(),
        media_secret: secret.clone(),
    };
    scripted
        .send_call_signal(&bob, &device, bad_sdp)
        .await
        .unwrap();
    let line = callee.wait_for("ended: media failed", Duration::from_secs(20));
    assert!(line.contains("cannot be answered"), "{line}");

    let bad_secret = CallSignal::Offer {
        call_id: "bad-secret".into(),
        video: false,
        sdp: "v=0".into(),
        media_secret: "AAAA".into(),
    };
    scripted
        .send_call_signal(&bob, &device, bad_secret)
        .await
        .unwrap();
    callee.wait_for("bad media secret", Duration::from_secs(20));

    for signal in [
        CallSignal::Hangup {
            call_id: "no-such-call".into(),
            reason: HangupReason::Normal,
        },
        CallSignal::Answer {
            call_id: "no-such-call-either".into(),
            sdp: "v=0".into(),
        },
    ] {
        let id = signal.call_id().to_string();
        scripted
            .send_call_signal(&bob, &device, signal)
            .await
            .unwrap();
        callee.wait_for(&format!("unknown call {id}"), Duration::from_secs(20));
    }

    // Still answering: a real call from alice connects.
    let mut call = vec!["call", bob.as_str(), "--duration", "1"];
    call.extend(MEDIA);
    let caller = spawn("alice", &server.url, &alice_dir, &call);
    let (status, out) = tokio::task::spawn_blocking(move || {
        let mut caller = caller;
        caller.wait(Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert!(status.success(), "{out}");
    callee.wait_for(&format!("connected to {alice}"), Duration::from_secs(10));
    callee.interrupt();
    let (status, out) = callee.wait(Duration::from_secs(20));
    assert!(status.success(), "bob must stop cleanly: {out}");
    assert!(!out.contains("panicked"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn call_reports_a_duplicate_answer_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&tmp.path().join("server"), &tmp.path().join("server.log"));
    let tag = std::process::id();
    let (alice, bob) = (format!("alice-{tag}"), format!("bob-{tag}"));
    let alice_dir = tmp.path().join("alice");
    parley(&server.url, &alice_dir, &["register", &alice]);
    let mut scripted = Messenger::register(
        &server.url,
        &tmp.path().join("bob"),
        KeySource::KeyFile,
        &bob,
    )
    .await
    .unwrap();
    let mut conn = scripted.connect().await.unwrap();

    let mut call = vec!["call", bob.as_str(), "--duration", "1"];
    call.extend(MEDIA);
    let mut caller = spawn("alice", &server.url, &alice_dir, &call);

    // The scripted callee answers the offer, twice, and runs no media.
    let deadline = Instant::now() + Duration::from_secs(20);
    let offer = loop {
        assert!(Instant::now() < deadline, "no offer arrived");
        let frame = tokio::time::timeout(Duration::from_secs(20), conn.next_frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let events = scripted.process_frame(&mut conn, frame).await.unwrap();
        if let Some(call) = events.into_iter().find_map(|e| match e {
            Event::Call(c) if matches!(c.signal, CallSignal::Offer { .. }) => Some(c),
            _ => None,
        }) {
            break call;
        }
    };
    let CallSignal::Offer {
        call_id,
        sdp,
        media_secret,
        ..
    } = offer.signal
    else {
        unreachable!()
    };
    let secret = CallSignal::decode_secret(&media_secret).unwrap();
    let (_session, answer) = MediaSession::answer(
        Instant::now(),
        "127.0.0.1:9".parse().unwrap(),
        &sdp,
        &secret,
        &call_id,
    )
    .unwrap();
    for _ in 0..2 {
        let signal = CallSignal::Answer {
            call_id: call_id.clone(),
            sdp: answer.clone(),
        };
        scripted
            .send_call_signal(&offer.from, &offer.from_device, signal)
            .await
            .unwrap();
    }
    let line = tokio::task::block_in_place(|| {
        caller.wait_for("duplicate answer", Duration::from_secs(20))
    });
    assert!(line.contains("ignored"), "{line}");
    // No media ever comes from the scripted callee: the call fails on its
    // connect timeout, cleanly, and says so.
    let (status, out) = tokio::task::spawn_blocking(move || {
        let mut caller = caller;
        caller.wait(Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert!(!status.success(), "{out}");
    assert!(out.contains("media did not connect"), "{out}");
    conn.close().await;
}
