//! webrtc-rs, an independent WebRTC implementation, as a participant: it
//! joins the room with its own SDP (audio and video by `addTrack`, so
//! `sendrecv` lines, and the control data channel), publishes real Opus and
//! H.264, answers the SFU's renegotiation offers over the data channel, and
//! receives a Parley client's tracks. Both encrypt with SFrame under demo
//! room keys (from the room passphrase, as the browser page does), and the
//! Parley client, a real `GroupSession` on the wall clock, decodes
//! webrtc-rs's pictures by number.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parley_client::call::group_e2ee::{SenderEncryptor, passphrase_key};
use parley_client::call::group_session::{GroupKeys, Publish};
use parley_media::audio::AudioSource;
use parley_media::h264::{H264Config, H264Encoder};
use parley_media::opus_codec::{OpusConfig, OpusEncoder};
use parley_media::test_pattern::TestPatternSource;
use parley_media::tone::ToneSource;
use parley_media::video::FrameRate;
use parley_sfu::{JoinClaims, SfuHandle};
use parley_testkit::group::{Member, device_of, run, start_sfu};
use parley_wire::sfu::{CHANNEL_LABEL, ControlMessage};
use rtc::interceptor::Registry;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MediaEngine,
};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use webrtc::data_channel::DataChannelEvent;
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};

const ROOM: &str = "interop";
const PASSPHRASE: &str = "correct horse";
/// webrtc-rs's identity in its join token (its keys follow from it).
const WEBRTC_USER: &str = "webrtc";
const WEBRTC_DEVICE: &str = "webrtc-rs";

/// RTP packets webrtc-rs received, by (stream id, kind).
type Received = Arc<Mutex<HashMap<(String, String), u64>>>;

struct Handler {
    gathered: tokio::sync::mpsc::Sender<()>,
    connected: tokio::sync::mpsc::Sender<()>,
    received: Received,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            let _ = self.connected.try_send(());
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let received = self.received.clone();
        tokio::spawn(async move {
            // The SFU names the publisher in the stream id.
            let key = (
                track.stream_id().await.to_string(),
                track.kind().await.to_string(),
            );
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(_) = event {
                    *received.lock().unwrap().entry(key.clone()).or_default() += 1;
                }
            }
        });
    }
}

fn codec(mime: &str, clock_rate: u32, channels: u16, fmtp: &str, pt: u8) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate,
            channels,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: pt,
    }
}

fn local_track(kind: RtpCodecKind, codec: &RTCRtpCodecParameters) -> Arc<TrackLocalStaticSample> {
    Arc::new(
        TrackLocalStaticSample::new(
            Instant::now(),
            MediaStreamTrack::new(
                "webrtc-rs".to_string(),
                format!("webrtc-rs-{kind}"),
                format!("webrtc-rs-{kind}"),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(rand::random::<u32>()),
                        ..Default::default()
                    },
                    codec: codec.rtp_codec.clone(),
                    ..Default::default()
                }],
            ),
        )
        .expect("a track for a registered codec"),
    )
}

/// Runs the webrtc-rs participant: joins, answers the SFU's offers,
/// publishes for `seconds`.
async fn webrtc_rs_participant(
    sfu: SfuHandle,
    token: String,
    received: Received,
    seconds: u64,
) -> webrtc::error::Result<()> {
    let opus = codec(MIME_TYPE_OPUS, 48_000, 2, "minptime=10;useinbandfec=1", 111);
    let h264 = codec(
        MIME_TYPE_H264,
        90_000,
        0,
        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        102,
    );
    let mut media_engine = MediaEngine::default();
    media_engine.register_codec(opus.clone(), RtpCodecKind::Audio)?;
    media_engine.register_codec(h264.clone(), RtpCodecKind::Video)?;
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
    let (gathered_tx, mut gathered) = tokio::sync::mpsc::channel(1);
    let (connected_tx, mut connected) = tokio::sync::mpsc::channel(1);
    let handler = Arc::new(Handler {
        gathered: gathered_tx,
        connected: connected_tx,
        received,
    });
    let pc: Arc<dyn PeerConnection> = Arc::new(
        PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_handler(handler)
            .with_runtime(webrtc::runtime::default_runtime().expect("tokio runtime"))
            .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
            .build()
            .await?,
    );
    let audio = local_track(RtpCodecKind::Audio, &opus);
    let video = local_track(RtpCodecKind::Video, &h264);
    let audio_sender = pc.add_track(audio.clone() as Arc<dyn TrackLocal>).await?;
    let video_sender = pc.add_track(video.clone() as Arc<dyn TrackLocal>).await?;
    let channel = pc.create_data_channel(CHANNEL_LABEL, None).await?;

    // The SFU's offers arrive on the data channel; answer them there.
    let (pc2, channel2) = (pc.clone(), channel.clone());
    tokio::spawn(async move {
        while let Some(event) = channel2.poll().await {
            let DataChannelEvent::OnMessage(message) = event else {
                continue;
            };
            let Ok(ControlMessage::Offer { sdp }) = ControlMessage::from_json(&message.data) else {
                continue;
            };
            let answer: webrtc::error::Result<String> = async {
                pc2.set_remote_description(RTCSessionDescription::offer(sdp)?)
                    .await?;
                let answer = pc2.create_answer(None).await?;
                pc2.set_local_description(answer).await?;
                Ok(pc2
                    .local_description()
                    .await
                    .map(|d| d.sdp)
                    .unwrap_or_default())
            }
            .await;
            match answer {
                Ok(sdp) => {
                    let reply = ControlMessage::Answer { sdp }.to_json();
                    let _ = channel2.send_text(reply.as_str()).await;
                }
                Err(e) => eprintln!("webrtc-rs could not answer the SFU: {e}"),
            }
        }
    });

    let offer = pc.create_offer(None).await?;
    pc.set_local_description(offer).await?;
    let _ = gathered.recv().await;
    let offer = pc.local_description().await.expect("local description").sdp;
    let answer = sfu
        .join(ROOM, &token, &offer)
        .await
        .expect("SFU running")
        .expect("the SFU accepts webrtc-rs's offer");
    pc.set_remote_description(RTCSessionDescription::answer(answer)?)
        .await?;
    let _ = connected.recv().await;

    let pt = |sender: &Arc<dyn webrtc::rtp_transceiver::RtpSender>| {
        let sender = sender.clone();
        async move {
            sender
                .get_parameters()
                .await
                .map(|p| p.rtp_parameters.codecs.first().map(|c| c.payload_type))
        }
    };
    let audio_pt = pt(&audio_sender).await?.expect("audio codec negotiated");
    let video_pt = pt(&video_sender).await?.expect("video codec negotiated");
    let audio_ssrc = audio.ssrcs().await[0];
    let video_ssrc = video.ssrcs().await[0];

    let key = passphrase_key(PASSPHRASE, ROOM, WEBRTC_USER, WEBRTC_DEVICE);
    let mut encryptor = SenderEncryptor::with_key(ROOM, key).unwrap();
    let mut opus_encoder = OpusEncoder::new(OpusConfig::default()).unwrap();
    let mut tone = ToneSource::new(330.0, 0.3);
    let mut h264_encoder = H264Encoder::new(H264Config {
        width: 320,
        height: 240,
        bitrate_bps: 300_000,
        max_fps: 30.0,
    })
    .unwrap();
    let pattern = TestPatternSource::new(320, 240, FrameRate::fps(30)).unwrap();
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let (mut audio_sent, mut video_sent) = (0u64, 0u64);
    while start.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        while Duration::from_millis(20 * audio_sent) <= start.elapsed() {
            let packet = opus_encoder
                .encode(&tone.next_frame().unwrap().unwrap())
                .unwrap();
            audio
                .sample_writer(audio_ssrc, audio_pt)
                .write_sample(&Sample {
                    data: Bytes::from(encryptor.encrypt_audio(&packet).unwrap()),
                    duration: Duration::from_millis(20),
                    ..Sample::new(Instant::now())
                })
                .await?;
            audio_sent += 1;
        }
        while Duration::from_secs(video_sent) / 30 <= start.elapsed() {
            let pts = Duration::from_secs(video_sent) / 30;
            let picture = pattern.frame(30_000 + video_sent);
            // This publisher does not read RTCP, so it cannot hear the
            // SFU's keyframe requests: a keyframe a second instead.
            if video_sent % 30 == 0 {
                h264_encoder.request_keyframe();
            }
            if let Some(encoded) = h264_encoder.encode(&picture, pts).unwrap() {
                video
                    .sample_writer(video_ssrc, video_pt)
                    .write_sample(&Sample {
                        data: Bytes::from(encryptor.encrypt_h264(&encoded.data).unwrap()),
                        duration: Duration::from_millis(33),
                        ..Sample::new(Instant::now())
                    })
                    .await?;
            }
            video_sent += 1;
        }
    }
    pc.close().await?;
    Ok(())
}

#[test]
fn webrtc_rs_publishes_and_subscribes_through_the_sfu() {
    let sfu = start_sfu();
    let keys = GroupKeys::Passphrase {
        passphrase: PASSPHRASE.into(),
        user: "alice".into(),
        device: device_of("alice"),
    };
    let mut alice = Member::join_room(&sfu, ROOM, "alice", 0, Publish::Video, (320, 240), keys);

    let received: Received = Arc::default();
    let token = sfu.key.sign(&JoinClaims {
        room: ROOM.into(),
        user: WEBRTC_USER.into(),
        device: WEBRTC_DEVICE.into(),
        expires_at: u64::MAX,
    });
    let task = sfu.runtime.spawn(webrtc_rs_participant(
        sfu.handle.clone(),
        token,
        received.clone(),
        30,
    ));
    run(&mut [&mut alice], Duration::from_secs(10), |m| {
        m[0].session.me().is_some()
    });
    let alice_id = alice.session.me().unwrap().id.to_string();
    let got = |kind: &str| {
        received
            .lock()
            .unwrap()
            .get(&(alice_id.clone(), kind.to_string()))
            .copied()
            .unwrap_or(0)
    };
    run(&mut [&mut alice], Duration::from_secs(25), |m| {
        m[0].pictures_from(WEBRTC_USER) >= 30
            && m[0].heard.get(WEBRTC_USER).copied().unwrap_or(0) >= 50
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while got("audio") < 50 || got("video") < 50 {
        assert!(
            Instant::now() < deadline,
            "webrtc-rs received too little of alice (id {alice_id}): {:?}",
            received.lock().unwrap()
        );
        alice.step(Instant::now());
        std::thread::sleep(Duration::from_millis(2));
    }
    let pictures = &alice.pictures[WEBRTC_USER];
    assert!(
        pictures.iter().all(|&n| n >= 30_000),
        "alice decoded pictures that are not webrtc-rs's: {pictures:?}"
    );
    assert!(pictures.windows(2).all(|w| w[0] < w[1]));
    let failures: u64 = alice
        .session
        .remote_stats()
        .iter()
        .map(|(_, s)| s.decrypt_failures)
        .sum();
    assert_eq!(failures, 0, "alice could not decrypt webrtc-rs's frames");
    eprintln!(
        "alice decoded {} pictures and played {} audio frames from webrtc-rs; webrtc-rs got {} audio and {} video RTP packets from alice",
        pictures.len(),
        alice.heard[WEBRTC_USER],
        got("audio"),
        got("video")
    );
    task.abort();
}
