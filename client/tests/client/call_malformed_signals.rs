//! Malformed call input gets a clear error and leaves the session usable:
//! a bad SDP offer or answer, a duplicate answer, garbage datagrams on the
//! media socket, a bad candidate line, a bad media secret.

use std::time::Instant;

use parley_client::call::e2ee::MasterSecret;
use parley_client::call::media_session::{MediaSession, SessionError};
use parley_client::call::signal::CallSignal;

fn addr(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn bad_sdp_duplicate_answers_garbage_and_bad_secrets_are_clear_errors() {
    let now = Instant::now();
    let secret = MasterSecret::random();

    let err = MediaSession::answer(now, addr(5000), "v=0 this is not sdp", &secret, "c")
        .err()
        .expect("garbage offer");
    assert!(matches!(err, SessionError::Sdp(_)), "{err}");

    let (mut caller, offer) = MediaSession::offer(now, addr(5001), true, &secret, "c").unwrap();
    let err = caller.accept_answer(now, "nonsense").unwrap_err();
    assert!(matches!(err, SessionError::Sdp(_)), "{err}");

    let (_callee, answer) = MediaSession::answer(now, addr(5002), &offer, &secret, "c").unwrap();
    caller.accept_answer(now, &answer).unwrap();
    let err = caller.accept_answer(now, &answer).unwrap_err();
    assert!(matches!(err, SessionError::NoPendingOffer), "{err}");

    for garbage in [&[][..], &[0xff; 40][..], &[0x80, 0x60, 0, 1][..]] {
        // Either refused as not WebRTC or ignored by str0m; never a panic.
        let _ = caller.handle_receive(now, addr(6000), garbage);
    }
    let err = caller
        .add_remote_candidate(now, "candidate:garbage")
        .unwrap_err();
    assert!(matches!(err, SessionError::Sdp(_)), "{err}");
    // Still a working session: it has timers and packets to send.
    caller.handle_timeout(caller.poll_timeout()).unwrap();

    for bad in ["", "AAAA", "not base64!"] {
        assert!(CallSignal::decode_secret(bad).is_err());
    }
    let good = CallSignal::encode_secret(&secret);
    assert_eq!(CallSignal::decode_secret(&good).unwrap(), secret);
}
