//! Group-call members on the wall clock: real client sessions on real
//! loopback sockets through the SFU's tokio shell, sending speech and the
//! numbered test pattern; sender keys are handed over directly, as the E2E
//! envelopes would carry them. For peers that only run in real time (an
//! independent WebRTC stack); everything else uses [`crate::sfu_sim`], in
//! virtual time.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use parley_client::call::group_session::{GroupEvent, GroupKeys, GroupSession, Publish};
use parley_media::audio::AudioSource;
use parley_media::jitter_buffer::PlayoutKind;
use parley_media::speech::SpeechSource;
use parley_media::test_pattern::{TestPatternSource, read_frame_number};
use parley_media::video::FrameRate;
use parley_sfu::{JoinClaims, SfuConfig, TokenKey};
use parley_wire::sfu::Participant;

/// The room every member joins.
pub const ROOM: &str = "group-1";
/// Members' camera rate.
pub const FPS: u32 = 30;
/// Stands in for the picture number of a picture too small to read it
/// (a simulcast low layer).
pub const UNREADABLE: u16 = u16::MAX;

/// One participant: its group session, its socket, its sources, and
/// what it decoded of each other member.
pub struct Member {
    /// The user's handle.
    pub name: String,
    /// The sans-IO group session under test.
    pub session: GroupSession,
    socket: UdpSocket,
    local: SocketAddr,
    pattern: TestPatternSource,
    first_picture: u64,
    speech: SpeechSource,
    started: Option<Instant>,
    audio_sent: u64,
    video_sent: u64,
    /// Picture sizes decoded, by sender's user.
    pub sizes: HashMap<String, Vec<(usize, usize)>>,
    /// Picture numbers decoded, by sender's user.
    pub pictures: HashMap<String, Vec<u16>>,
    /// Audio frames played from packets (not concealment), by sender.
    pub heard: HashMap<String, u64>,
    /// Keys to deliver.
    pub outbox: Vec<(Participant, parley_client::call::group_e2ee::SenderKey)>,
    /// Users this member saw leave.
    pub left: Vec<String>,
}

impl Member {
    /// Joins with a 320x240 pattern as one stream.
    pub fn join(sfu: &Sfu, name: &str, first_picture: u64) -> Self {
        Self::join_with(sfu, name, first_picture, Publish::Video, (320, 240))
    }

    /// Joins publishing `publish` with the pattern at `size`.
    pub fn join_with(
        sfu: &Sfu,
        name: &str,
        first_picture: u64,
        publish: Publish,
        size: (usize, usize),
    ) -> Self {
        Self::join_room(
            sfu,
            ROOM,
            name,
            first_picture,
            publish,
            size,
            GroupKeys::SenderKeys,
        )
    }

    /// Joins `room` with sender keys from `keys` (a demo room's passphrase
    /// lets a participant that is not a Parley client share keys with it).
    pub fn join_room(
        sfu: &Sfu,
        room: &str,
        name: &str,
        first_picture: u64,
        publish: Publish,
        (width, height): (usize, usize),
        keys: GroupKeys,
    ) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let local = socket.local_addr().unwrap();
        let (mut session, offer) =
            GroupSession::offer(Instant::now(), local, room, publish, keys).unwrap();
        let token = sfu.key.sign(&JoinClaims {
            room: room.into(),
            user: name.into(),
            device: device_of(name),
            expires_at: u64::MAX,
        });
        let answer = sfu
            .runtime
            .block_on(sfu.handle.join(room, &token, &offer))
            .unwrap()
            .unwrap();
        session.accept_answer(Instant::now(), &answer).unwrap();
        Self {
            name: name.into(),
            session,
            socket,
            local,
            pattern: TestPatternSource::new(width, height, FrameRate::fps(FPS)).unwrap(),
            first_picture,
            speech: SpeechSource::new(true).unwrap(),
            started: None,
            audio_sent: 0,
            video_sent: 0,
            sizes: HashMap::new(),
            pictures: HashMap::new(),
            heard: HashMap::new(),
            outbox: Vec::new(),
            left: Vec::new(),
        }
    }

    /// Receives what arrived, sends what is due, handles timeouts.
    pub fn step(&mut self, now: Instant) {
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
            let n = read_frame_number(&picture).unwrap_or(UNREADABLE);
            self.sizes
                .entry(who.user.clone())
                .or_default()
                .push((picture.width(), picture.height()));
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

    /// Pictures decoded from `user`.
    pub fn pictures_from(&self, user: &str) -> usize {
        self.pictures.get(user).map_or(0, Vec::len)
    }
}

/// The device id a member `name` joins with.
pub fn device_of(name: &str) -> String {
    format!("{name}-laptop")
}

/// An SFU on a loopback port, on its own runtime.
pub struct Sfu {
    /// The runtime its socket task runs on.
    pub runtime: tokio::runtime::Runtime,
    /// The running SFU.
    pub handle: parley_sfu::SfuHandle,
    /// Its token key, to sign joins.
    pub key: TokenKey,
}

/// Starts an [`Sfu`] on `127.0.0.1:0`.
pub fn start_sfu() -> Sfu {
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
pub fn run(members: &mut [&mut Member], limit: Duration, done: impl Fn(&[&mut Member]) -> bool) {
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
