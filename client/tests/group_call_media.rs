//! A group call of real client sessions through the real SFU on loopback:
//! speech and the numbered test pattern, Opus and H.264, each sender's
//! frames SFrame-encrypted under its own sender key. Keys go where the
//! sessions say (`SendKey`), handed over directly here as the E2E
//! envelopes will carry them.
//!
//! Alice and bob talk; carol joins (alice and bob ratchet, carol gets the
//! new keys and decodes both, bob and alice follow each other's ratchet
//! without a message); carol leaves (alice and bob replace their keys and
//! keep decoding each other).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use parley_client::call::group_session::{GroupEvent, GroupKeys, GroupSession};
use parley_media::audio::AudioSource;
use parley_media::jitter_buffer::PlayoutKind;
use parley_media::speech::SpeechSource;
use parley_media::test_pattern::{TestPatternSource, read_frame_number};
use parley_media::video::FrameRate;
use parley_sfu::{JoinClaims, Participant, SfuConfig, TokenKey};

const ROOM: &str = "group-1";
const FPS: u32 = 30;

struct Member {
    name: String,
    session: GroupSession,
    socket: UdpSocket,
    local: SocketAddr,
    pattern: TestPatternSource,
    first_picture: u64,
    speech: SpeechSource,
    started: Option<Instant>,
    audio_sent: u64,
    video_sent: u64,
    /// Picture numbers decoded, by sender's user.
    pictures: HashMap<String, Vec<u16>>,
    /// Audio frames played from packets (not concealment), by sender.
    heard: HashMap<String, u64>,
    /// Keys to deliver.
    outbox: Vec<(Participant, parley_client::call::group_e2ee::SenderKey)>,
    left: Vec<String>,
}

impl Member {
    fn join(sfu: &Sfu, name: &str, first_picture: u64) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let local = socket.local_addr().unwrap();
        let (mut session, offer) =
            GroupSession::offer(Instant::now(), local, ROOM, true, GroupKeys::SenderKeys).unwrap();
        let token = sfu.key.sign(&JoinClaims {
            room: ROOM.into(),
            user: name.into(),
            device: format!("{name}-laptop"),
            expires_at: u64::MAX,
        });
        let answer = sfu
            .runtime
            .block_on(sfu.handle.join(ROOM, &token, &offer))
            .unwrap()
            .unwrap();
        session.accept_answer(Instant::now(), &answer).unwrap();
        Self {
            name: name.into(),
            session,
            socket,
            local,
            pattern: TestPatternSource::new(320, 240, FrameRate::fps(FPS)).unwrap(),
            first_picture,
            speech: SpeechSource::new(true).unwrap(),
            started: None,
            audio_sent: 0,
            video_sent: 0,
            pictures: HashMap::new(),
            heard: HashMap::new(),
            outbox: Vec::new(),
            left: Vec::new(),
        }
    }

    fn step(&mut self, now: Instant) {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = self.socket.recv_from(&mut buf) {
            self.session
                .handle_receive(now, from, self.local, &buf[..n])
                .unwrap();
        }
        if now >= self.session.poll_timeout() {
            self.session.handle_timeout(now).unwrap();
        }
        if self.session.is_connected() {
            let started = *self.started.get_or_insert(now);
            while Duration::from_millis(20 * self.audio_sent) <= now - started {
                let frame = self.speech.next_frame().unwrap().unwrap();
                self.session.send_audio(now, &frame).unwrap();
                self.audio_sent += 1;
                for (who, playout) in self.session.poll_audio(now) {
                    if playout.kind == PlayoutKind::Played {
                        *self.heard.entry(who.user).or_default() += 1;
                    }
                }
            }
            while Duration::from_secs(self.video_sent) / FPS <= now - started {
                let pts = Duration::from_secs(self.video_sent) / FPS;
                let picture = self.pattern.frame(self.first_picture + self.video_sent);
                self.session.send_video(now, &picture, pts).unwrap();
                self.video_sent += 1;
            }
        }
        while let Some((to, datagram)) = self.session.poll_transmit() {
            let _ = self.socket.send_to(&datagram, to);
        }
        while let Some((who, picture)) = self.session.poll_picture() {
            let n = read_frame_number(&picture).expect("a numbered picture");
            self.pictures.entry(who.user).or_default().push(n);
        }
        while let Some(event) = self.session.poll_event() {
            match event {
                GroupEvent::SendKey { to, key } => self.outbox.push((to, key)),
                GroupEvent::Left(who, _) => self.left.push(who.user),
                _ => {}
            }
        }
    }

    fn pictures_from(&self, user: &str) -> usize {
        self.pictures.get(user).map_or(0, Vec::len)
    }
}

struct Sfu {
    runtime: tokio::runtime::Runtime,
    handle: parley_sfu::SfuHandle,
    key: TokenKey,
}

fn start_sfu() -> Sfu {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let key = TokenKey::generate();
    let handle = runtime.block_on(async {
        let (socket, public) = parley_sfu::server::bind("127.0.0.1:0".parse().unwrap(), None)
            .await
            .unwrap();
        parley_sfu::server::start(socket, SfuConfig::new(public, key.clone()))
    });
    Sfu {
        runtime,
        handle,
        key,
    }
}

/// Steps everyone and delivers the keys they send, until `done`.
fn run(members: &mut [&mut Member], limit: Duration, done: impl Fn(&[&mut Member]) -> bool) {
    let deadline = Instant::now() + limit;
    while !done(members) {
        if Instant::now() > deadline {
            let state: Vec<String> = members
                .iter()
                .map(|m| {
                    format!(
                        "{}: pictures {:?} heard {:?} stats {:?}",
                        m.name,
                        m.pictures
                            .iter()
                            .map(|(u, p)| (u, p.len()))
                            .collect::<Vec<_>>(),
                        m.heard,
                        m.session.remote_stats()
                    )
                })
                .collect();
            panic!("not done within {limit:?}:\n{}", state.join("\n"));
        }
        let now = Instant::now();
        for member in members.iter_mut() {
            member.step(now);
        }
        let mut mail = Vec::new();
        for member in members.iter_mut() {
            let Some(me) = member.session.me().cloned() else {
                continue;
            };
            for (to, key) in member.outbox.drain(..) {
                mail.push((me.clone(), to, key));
            }
        }
        for (from, to, key) in mail {
            // Envelopes go to a device, whether or not its session has
            // heard from the SFU yet.
            if let Some(member) = members.iter_mut().find(|m| m.name == to.user) {
                member
                    .session
                    .add_key(now, &from.user, &from.device, key)
                    .unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn members_decode_each_other_across_a_join_and_a_leave() {
    let sfu = start_sfu();
    let mut alice = Member::join(&sfu, "alice", 0);
    let mut bob = Member::join(&sfu, "bob", 10_000);
    run(&mut [&mut alice, &mut bob], Duration::from_secs(20), |m| {
        m[0].pictures_from("bob") >= 20 && m[1].pictures_from("alice") >= 20
    });
    let epoch_before = alice.session.sender_key().epoch;

    let mut carol = Member::join(&sfu, "carol", 20_000);
    let (a0, b0) = (alice.pictures_from("bob"), bob.pictures_from("alice"));
    run(
        &mut [&mut alice, &mut bob, &mut carol],
        Duration::from_secs(20),
        |m| {
            m[2].pictures_from("alice") >= 20
                && m[2].pictures_from("bob") >= 20
                && m[0].pictures_from("carol") >= 20
                && m[1].pictures_from("carol") >= 20
                && m[0].pictures_from("bob") >= a0 + 20
                && m[1].pictures_from("alice") >= b0 + 20
        },
    );
    assert_eq!(
        alice.session.sender_key().epoch,
        epoch_before + 1,
        "alice ratcheted once for carol"
    );
    for member in [&alice, &bob, &carol] {
        for (who, stats) in member.session.remote_stats() {
            assert!(
                stats.audio_frames > 0,
                "{} got no audio from {}",
                member.name,
                who.user
            );
        }
        for other in ["alice", "bob", "carol"] {
            if other != member.name {
                assert!(
                    member.heard.get(other).copied().unwrap_or(0) > 10,
                    "{} played too little of {other}'s audio: {:?}",
                    member.name,
                    member.heard
                );
            }
        }
    }

    carol.session.leave(Instant::now()).unwrap();
    carol.step(Instant::now());
    drop(carol);
    let (a1, b1) = (alice.pictures_from("bob"), bob.pictures_from("alice"));
    run(&mut [&mut alice, &mut bob], Duration::from_secs(20), |m| {
        m[0].left.contains(&"carol".to_string())
            && m[1].left.contains(&"carol".to_string())
            && m[0].pictures_from("bob") >= a1 + 30
            && m[1].pictures_from("alice") >= b1 + 30
    });
    assert_eq!(
        alice.session.sender_key().epoch,
        epoch_before + 2,
        "alice replaced her key when carol left"
    );
    for (member, sender, first) in [(&alice, "bob", 10_000u16), (&bob, "alice", 0)] {
        let pictures = &member.pictures[sender];
        assert!(
            pictures.iter().all(|&n| n >= first && n < first + 10_000),
            "{} decoded pictures that are not {sender}'s",
            member.name
        );
        assert!(pictures.windows(2).all(|w| w[0] < w[1]));
    }
}
