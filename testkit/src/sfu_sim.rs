//! A group call in virtual time: the SFU's sans-IO core
//! ([`parley_sfu::Sfu`]) and real client [`GroupSession`]s, each member
//! behind its own simulated uplink and downlink
//! ([`parley_media::netsim`]: seeded loss, delay, jitter, bandwidth), all
//! driven by one clock that jumps to the next thing due. Each link is a
//! [`Path`]: RTP through one simulator, everything else (STUN, DTLS, RTCP,
//! SCTP) through another with its own randomness, so which media packets
//! a link loses depends on the seed and the media alone, not on how many
//! control packets str0m's (randomised) timers happened to send. (A
//! bandwidth limit therefore applies to each kind separately.)
//!
//! Nothing here sleeps or reads the clock after [`RoomSim::new`] picks an
//! origin: a 20-second call costs only the CPU its codecs and str0m use.
//! A run repeats exactly from its seed: the links draw from it, and so do
//! str0m's non-cryptographic randomness (fastrand, seeded for the thread)
//! and DTLS's resend jitter ([`parley_rtc::dtls::seed_this_thread_for_simulation`]).
//! One sim per thread at a time, then (tests each have their own). Members publish real
//! speech (or silence) and the numbered test pattern through Opus, H.264
//! and SFrame; sender keys go from member to member directly, as the E2E
//! envelopes would carry them.
//!
//! ```no_run
//! use std::time::Duration;
//! use parley_testkit::sfu_sim::{MemberOptions, RoomSim};
//!
//! let mut sim = RoomSim::new(7);
//! sim.join("alice", "room-1", MemberOptions::first_picture(0));
//! sim.join("bob", "room-1", MemberOptions::first_picture(10_000));
//! sim.run_until(Duration::from_secs(10), |sim| {
//!     sim.member("bob").pictures_from("alice") >= 30
//! });
//! ```
//!
//! Drain rule, as every sans-IO core here has it: after each input, every
//! output (datagrams, events, pictures) is taken before time moves on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use parley_client::call::group_session::{GroupEvent, GroupKeys, GroupSession, Publish};
use parley_media::audio::{AudioFrame, AudioSource};
use parley_media::jitter_buffer::PlayoutKind;
use parley_media::netsim::NetworkConfig;
use parley_media::speech::SpeechSource;
use parley_media::test_pattern::{TestPatternSource, read_frame_number};
use parley_media::video::FrameRate;
use parley_sfu::{JoinClaims, JoinError, Sfu, SfuConfig, SfuStats, TappedFrame, TokenKey};
use parley_wire::sfu::Participant;

use crate::call_sim::Path;

/// Members' camera rate.
pub const FPS: u32 = 30;
/// Stands in for the number of a picture too small to read it (a
/// simulcast low layer).
pub const UNREADABLE: u16 = u16::MAX;
/// The Unix time join tokens are checked against (virtual, like the rest).
const UNIX_EPOCH_SECS: u64 = 1_800_000_000;

/// How a member joins.
#[derive(Debug, Clone)]
pub struct MemberOptions {
    /// What it publishes.
    pub publish: Publish,
    /// Its camera's picture size.
    pub size: (usize, usize),
    /// The test pattern's first picture number: tells whose a picture is.
    pub first_picture: u64,
    /// Talks (the speech clip) or stays silent.
    pub speaking: bool,
    /// Its link to the SFU.
    pub uplink: NetworkConfig,
    /// The SFU's link to it.
    pub downlink: NetworkConfig,
}

impl MemberOptions {
    /// Audio and one 320x240 video stream from picture `first`, talking,
    /// over perfect links.
    pub fn first_picture(first: u64) -> Self {
        Self {
            publish: Publish::Video,
            size: (320, 240),
            first_picture: first,
            speaking: true,
            uplink: NetworkConfig::default(),
            downlink: NetworkConfig::default(),
        }
    }
}

/// One member: its group session, its links, its sources, and what it
/// decoded of each other member.
pub struct Member {
    /// The user's handle (the device is `<name>-phone`).
    pub name: String,
    /// The sans-IO group session under test.
    pub session: GroupSession,
    /// Sends the speech clip when true, silence when false.
    pub speaking: bool,
    /// Never stepped again: no datagram in or out, no timer (a phone that
    /// lost its network).
    pub vanished: bool,
    addr: SocketAddr,
    up: Path,
    down: Path,
    publish: Publish,
    pattern: TestPatternSource,
    first_picture: u64,
    speech: SpeechSource,
    connected_at: Option<Instant>,
    audio_sent: u64,
    video_sent: u64,
    /// Picture numbers decoded, by sender's user.
    pub pictures: BTreeMap<String, Vec<u16>>,
    /// Picture sizes decoded, by sender's user.
    pub sizes: BTreeMap<String, Vec<(usize, usize)>>,
    /// Audio frames played from packets (not concealment), by sender.
    pub heard: BTreeMap<String, u64>,
    /// Audio frames pulled from each sender's jitter buffer, by kind
    /// (played, FEC-recovered, concealed, expanded, buffering).
    pub playout: BTreeMap<String, BTreeMap<String, u64>>,
    /// Active speakers announced, in order.
    pub speakers: Vec<String>,
    /// Who left, and why, in order.
    pub left: Vec<(String, String)>,
    /// Its own simulcast layers (high, low) each time the SFU changed them
    /// (dynacast).
    pub layer_changes: Vec<(bool, bool)>,
    /// Frames that did not decrypt, by sender.
    pub decrypt_failures: BTreeMap<String, String>,
}

impl Member {
    /// Pictures decoded from `user`.
    pub fn pictures_from(&self, user: &str) -> usize {
        self.pictures.get(user).map_or(0, Vec::len)
    }

    /// Audio frames played from `user`'s packets.
    pub fn heard_from(&self, user: &str) -> u64 {
        self.heard.get(user).copied().unwrap_or(0)
    }

    /// Widths of the pictures decoded from `user`, in order.
    pub fn widths_from(&self, user: &str) -> Vec<usize> {
        self.sizes
            .get(user)
            .map_or_else(Vec::new, |s| s.iter().map(|&(w, _)| w).collect())
    }

    /// This member's address (what the SFU sees as its source).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the SFU's link to this member from now on.
    pub fn set_downlink(&mut self, config: NetworkConfig) {
        self.down.set_config(&config);
    }

    /// Replaces this member's link to the SFU from now on.
    pub fn set_uplink(&mut self, config: NetworkConfig) {
        self.up.set_config(&config);
    }
}

/// The SFU and its members on one virtual clock; see the module doc.
pub struct RoomSim {
    start: Instant,
    now: Instant,
    seed: u64,
    sfu: Sfu,
    sfu_addr: SocketAddr,
    key: TokenKey,
    members: Vec<Member>,
    tapped: Vec<TappedFrame>,
}

impl RoomSim {
    /// An SFU with default settings; `seed` drives every link.
    pub fn new(seed: u64) -> Self {
        Self::with_config(seed, |_| {})
    }

    /// An SFU whose settings `tune` adjusts (timeouts, the tap).
    pub fn with_config(seed: u64, tune: impl FnOnce(&mut SfuConfig)) -> Self {
        let sfu_addr: SocketAddr = "10.0.0.1:3479".parse().expect("an address");
        let key = TokenKey::generate();
        let mut config = SfuConfig::new(sfu_addr, key.clone());
        tune(&mut config);
        // str0m draws ids, SSRCs and pacer jitter from fastrand's generator
        // for this thread: seeded, they repeat too.
        fastrand::seed(seed);
        // And DTLS its resend jitter.
        parley_rtc::dtls::seed_this_thread_for_simulation(seed);
        // The one clock read: the origin of virtual time.
        let start = Instant::now();
        Self {
            start,
            now: start,
            seed,
            sfu: Sfu::new(config),
            sfu_addr,
            key,
            members: Vec::new(),
            tapped: Vec::new(),
        }
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The SFU core, for its participants and counters.
    pub fn sfu(&self) -> &Sfu {
        &self.sfu
    }

    /// The SFU's counters.
    pub fn stats(&self) -> SfuStats {
        self.sfu.stats()
    }

    /// Users in `room`, in join order.
    pub fn users_in(&self, room: &str) -> Vec<String> {
        self.sfu
            .participants(room)
            .into_iter()
            .map(|p| p.user)
            .collect()
    }

    /// A join token for `user` in `room` (valid for a minute of virtual
    /// time), signed with the SFU's key.
    pub fn token(&self, room: &str, user: &str) -> String {
        self.key.sign(&JoinClaims {
            room: room.into(),
            user: user.into(),
            device: format!("{user}-phone"),
            expires_at: self.unix_now() + 60,
        })
    }

    /// The key the SFU checks join tokens with, to sign odd ones.
    pub fn key(&self) -> &TokenKey {
        &self.key
    }

    /// Virtual Unix time in seconds.
    pub fn unix_now(&self) -> u64 {
        UNIX_EPOCH_SECS + self.elapsed().as_secs()
    }

    /// Offers `offer` to the SFU for `room` with `token`, as its join
    /// route would: the answer or why not.
    pub fn join_raw(&mut self, room: &str, token: &str, offer: &str) -> Result<String, JoinError> {
        let unix = self.unix_now();
        let answer = self.sfu.join(self.now, unix, room, token, offer);
        self.flush();
        answer
    }

    /// A new member `name` joins `room`; panics if the SFU refuses.
    pub fn join(&mut self, name: &str, room: &str, options: MemberOptions) -> &mut Member {
        let n = self.members.len() as u64;
        let addr: SocketAddr = format!("10.0.1.{}:5000", n + 1)
            .parse()
            .expect("an address");
        let (mut session, offer) =
            GroupSession::offer(self.now, addr, room, options.publish, GroupKeys::SenderKeys)
                .expect("a group session");
        let token = self.token(room, name);
        let answer = self
            .join_raw(room, &token, &offer)
            .unwrap_or_else(|e| panic!("{name} was refused: {e}"));
        session
            .accept_answer(self.now, &answer)
            .expect("the SFU's answer");
        let (width, height) = options.size;
        // Each link gets its own stream of randomness from the seed.
        let link_seed = |direction: u64| self.seed ^ (n << 8 | direction).wrapping_mul(0x9e37_79b9);
        self.members.push(Member {
            name: name.to_string(),
            session,
            speaking: options.speaking,
            vanished: false,
            addr,
            up: Path::new(&options.uplink, link_seed(1)),
            down: Path::new(&options.downlink, link_seed(2)),
            publish: options.publish,
            pattern: TestPatternSource::new(width, height, FrameRate::fps(FPS))
                .expect("a test pattern"),
            first_picture: options.first_picture,
            speech: SpeechSource::new(true).expect("the speech clip"),
            connected_at: None,
            audio_sent: 0,
            video_sent: 0,
            pictures: BTreeMap::new(),
            sizes: BTreeMap::new(),
            heard: BTreeMap::new(),
            playout: BTreeMap::new(),
            speakers: Vec::new(),
            left: Vec::new(),
            layer_changes: Vec::new(),
            decrypt_failures: BTreeMap::new(),
        });
        self.flush();
        self.members.last_mut().expect("just pushed")
    }

    /// The member called `name`.
    pub fn member(&self, name: &str) -> &Member {
        self.members
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// The member called `name`, to change.
    pub fn member_mut(&mut self, name: &str) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no member {name}"))
    }

    /// Every member.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// `name` says it leaves (the SFU removes it at once).
    pub fn leave(&mut self, name: &str) {
        let now = self.now;
        self.member_mut(name)
            .session
            .leave(now)
            .expect("leaving is always possible");
        self.flush();
    }

    /// `name` asks for at most layer `rid` of `publisher`'s video; `false`
    /// when it has no line for that video yet.
    pub fn cap_video_layer(&mut self, name: &str, publisher: &str, rid: Option<&str>) -> bool {
        let now = self.now;
        let member = self.member_mut(name);
        let Some(id) = member
            .session
            .participants()
            .into_iter()
            .find(|p| p.user == publisher)
            .map(|p| p.id)
        else {
            return false;
        };
        let sent = member
            .session
            .cap_video_layer(now, id, rid)
            .expect("a control message");
        self.flush();
        sent
    }

    /// Frames the SFU forwarded, copied by its tap (when
    /// [`SfuConfig::tap`] is on).
    pub fn tapped(&self) -> &[TappedFrame] {
        &self.tapped
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            let next = self.next_wakeup().min(end);
            self.advance(next);
        }
    }

    /// Runs until `done`, for at most `limit` of virtual time; panics
    /// with every member's state when the limit passes first. Returns the
    /// virtual time it took.
    pub fn run_until(&mut self, limit: Duration, done: impl Fn(&RoomSim) -> bool) -> Duration {
        let started = self.now;
        let deadline = started + limit;
        while !done(self) {
            assert!(
                self.now < deadline,
                "not done within {limit:?} of virtual time:\n{}",
                self.describe()
            );
            let next = self.next_wakeup().min(deadline);
            self.advance(next);
        }
        self.now - started
    }

    /// Each member's state in a line, for failure messages.
    pub fn describe(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let pictures: Vec<_> = m.pictures.iter().map(|(u, p)| (u, p.len())).collect();
                format!(
                    "{}: connected {} pictures {:?} heard {:?} speakers {:?} left {:?} failures {:?}",
                    m.name,
                    m.session.is_connected(),
                    pictures,
                    m.heard,
                    m.speakers,
                    m.left,
                    m.decrypt_failures
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The earliest moment anything is due.
    fn next_wakeup(&self) -> Instant {
        let mut next = self
            .sfu
            .poll_timeout()
            .unwrap_or(self.now + Duration::from_secs(1));
        for m in &self.members {
            // A vanished member's links still deliver what was in flight
            // (to nobody, on its side).
            for link in [&m.up, &m.down] {
                if let Some(at) = link.poll_timeout() {
                    next = next.min(at);
                }
            }
            if m.vanished {
                continue;
            }
            next = next.min(m.session.poll_timeout());
            if let Some(started) = m.connected_at {
                next = next.min(started + audio_time(m.audio_sent));
                if m.publish != Publish::Audio {
                    next = next.min(started + video_time(m.video_sent));
                }
            }
        }
        // Time never stands still: a timeout already due is served at the
        // next microsecond at the latest.
        next.max(self.now + Duration::from_micros(1))
            .min(self.now + Duration::from_secs(1))
    }

    /// Moves the clock to `to` and serves everything due then.
    fn advance(&mut self, to: Instant) {
        self.now = self.now.max(to);
        let now = self.now;
        for m in &mut self.members {
            while let Some(datagram) = m.up.poll_receive(now) {
                self.sfu
                    .handle_receive(now, m.addr, self.sfu_addr, &datagram);
            }
            while let Some(datagram) = m.down.poll_receive(now) {
                if !m.vanished {
                    m.session
                        .handle_receive(now, self.sfu_addr, m.addr, &datagram)
                        .expect("a datagram from the SFU");
                }
            }
        }
        if self.sfu.poll_timeout().is_some_and(|at| at <= now) {
            self.sfu.handle_timeout(now);
        }
        for m in self.members.iter_mut().filter(|m| !m.vanished) {
            if m.session.poll_timeout() <= now {
                m.session.handle_timeout(now).expect("str0m's timers");
            }
            step_media(m, now);
        }
        self.flush();
    }

    /// Moves every queued output where it goes, until nothing is left.
    fn flush(&mut self) {
        let now = self.now;
        loop {
            let mut moved = false;
            while let Some(transmit) = self.sfu.poll_transmit() {
                moved = true;
                if let Some(m) = self
                    .members
                    .iter_mut()
                    .find(|m| m.addr == transmit.destination)
                {
                    m.down.send(now, transmit.contents);
                }
            }
            while self.sfu.poll_event().is_some() {}
            while let Some(frame) = self.sfu.poll_tapped() {
                self.tapped.push(frame);
            }
            let mut mail: Vec<(
                Participant,
                Participant,
                parley_client::call::group_e2ee::SenderKey,
            )> = Vec::new();
            for m in self.members.iter_mut().filter(|m| !m.vanished) {
                while let Some((_, datagram)) = m.session.poll_transmit() {
                    moved = true;
                    m.up.send(now, datagram);
                }
                take_outputs(m, &mut mail);
            }
            for (from, to, key) in mail {
                moved = true;
                // Envelopes go to a device whether or not its session has
                // heard of the sender yet.
                if let Some(m) = self
                    .members
                    .iter_mut()
                    .find(|m| m.name == to.user && !m.vanished)
                {
                    m.session
                        .add_key(now, &from.user, &from.device, key)
                        .expect("a sender key");
                }
            }
            if !moved {
                return;
            }
        }
    }
}

/// When the `n`th 20 ms audio frame is due after connecting.
fn audio_time(n: u64) -> Duration {
    Duration::from_millis(20 * n)
}

/// When the `n`th picture is due after connecting.
fn video_time(n: u64) -> Duration {
    Duration::from_secs(n) / FPS
}

/// Sends what the member's microphone and camera have by `now`, and plays
/// its audio every 20 ms.
fn step_media(m: &mut Member, now: Instant) {
    if !m.session.is_connected() {
        return;
    }
    let started = *m.connected_at.get_or_insert(now);
    while started + audio_time(m.audio_sent) <= now {
        let speech = m.speech.next_frame().expect("the speech clip");
        let frame = match speech {
            Some(frame) if m.speaking => frame,
            _ => AudioFrame::silence(),
        };
        m.session.send_audio(now, &frame).expect("sending audio");
        m.audio_sent += 1;
        for (who, playout) in m.session.poll_audio(now) {
            *m.playout
                .entry(who.user.clone())
                .or_default()
                .entry(format!("{:?}", playout.kind))
                .or_default() += 1;
            if playout.kind == PlayoutKind::Played {
                *m.heard.entry(who.user).or_default() += 1;
            }
        }
    }
    if m.publish == Publish::Audio {
        return;
    }
    while started + video_time(m.video_sent) <= now {
        let pts = video_time(m.video_sent);
        let picture = m.pattern.frame(m.first_picture + m.video_sent);
        m.session
            .send_video(now, &picture, pts)
            .expect("sending video");
        m.video_sent += 1;
    }
}

/// Takes a member's events and pictures; sender keys go to `mail` as
/// (from, to, key).
fn take_outputs(
    m: &mut Member,
    mail: &mut Vec<(
        Participant,
        Participant,
        parley_client::call::group_e2ee::SenderKey,
    )>,
) {
    while let Some((who, picture)) = m.session.poll_picture() {
        let n = read_frame_number(&picture).unwrap_or(UNREADABLE);
        m.sizes
            .entry(who.user.clone())
            .or_default()
            .push((picture.width(), picture.height()));
        m.pictures.entry(who.user).or_default().push(n);
    }
    while let Some(event) = m.session.poll_event() {
        match event {
            GroupEvent::SendKey { to, key } => {
                if let Some(me) = m.session.me().cloned() {
                    mail.push((me, to, key));
                }
            }
            GroupEvent::Left(who, why) => m.left.push((who.user, why)),
            GroupEvent::ActiveSpeaker(who) => m.speakers.push(who.user),
            GroupEvent::DecryptFailed(who, why) => {
                m.decrypt_failures.insert(who.user, why);
            }
            GroupEvent::Connected | GroupEvent::Welcome(_) | GroupEvent::Joined(_) => {}
        }
    }
    if let Some(layers) = m.session.simulcast_layers()
        && m.layer_changes.last() != Some(&layers)
    {
        m.layer_changes.push(layers);
    }
}
