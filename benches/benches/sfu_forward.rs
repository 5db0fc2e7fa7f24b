//! Criterion micro-bench of the SFU's forward path: one publisher's audio
//! packet in, one packet out per subscriber (1, 5 and 10 subscribers).
//!
//! Everything is in one process and in memory: the sans-IO [`Sfu`] core
//! and real str0m sessions for the publisher and subscribers, joined with
//! real SDP and DTLS, datagrams handed between them by the harness. Only
//! the SFU's work is timed (`handle_receive` of the publisher's SRTP
//! packet, the `handle_timeout` that follows it, and `poll_transmit` of
//! every forwarded one: SRTP decrypt, depacketize, per-subscriber
//! packetize and SRTP encrypt, every session's timers); the
//! publisher's encryption and the subscribers' decryption run untimed.
//!
//! `cargo bench -p parley-bench --bench sfu_forward`. Throughput is in
//! forwarded packets.
// Benchmarks time real work on the wall clock and pick the origin of virtual time.
#![allow(clippy::disallowed_methods)]
// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parley_sfu::{JoinClaims, Sfu, SfuConfig, TokenKey};
use parley_wire::sfu::{CHANNEL_LABEL, ControlMessage};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// An Opus packet's size at the call bitrate (48 kbit/s, 20 ms).
const OPUS_BYTES: usize = 120;

struct Member {
    addr: SocketAddr,
    rtc: Rtc,
    channel: Option<ChannelId>,
    connected: bool,
}

/// A room of one publisher (index 0) and `subscribers` subscribers.
struct Room {
    sfu: Sfu,
    sfu_addr: SocketAddr,
    members: Vec<Member>,
    audio_mid: Mid,
    now: Instant,
    sent: u64,
}

impl Room {
    fn new(subscribers: usize) -> Self {
        let now = Instant::now();
        let sfu_addr: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let key = TokenKey::generate();
        let mut sfu = Sfu::new(SfuConfig::new(sfu_addr, key.clone()));
        let mut members = Vec::new();
        let mut audio_mid = None;
        for i in 0..=subscribers {
            let addr: SocketAddr = format!("10.0.1.{}:6000", i + 1).parse().unwrap();
            let mut rtc = parley_rtc::build(parley_rtc::Role::GroupParticipant, now);
            rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
            let mut change = rtc.sdp_api();
            if i == 0 {
                audio_mid =
                    Some(change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
            }
            change.add_channel(CHANNEL_LABEL.to_string());
            let (offer, pending) = change.apply().unwrap();
            let token = key.sign(&JoinClaims {
                room: "bench".into(),
                user: format!("user{i}"),
                device: "d".into(),
                expires_at: u64::MAX,
            });
            let answer = sfu
                .join(now, 0, "bench", &token, &offer.to_sdp_string())
                .unwrap();
            rtc.sdp_api()
                .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
                .unwrap();
            members.push(Member {
                addr,
                rtc,
                channel: None,
                connected: false,
            });
        }
        let mut room = Self {
            sfu,
            sfu_addr,
            members,
            audio_mid: audio_mid.unwrap(),
            now,
            sent: 0,
        };
        // Connect everyone and let the SFU offer the publisher's track to
        // every subscriber; then check it flows.
        for _ in 0..5_000 {
            room.step(Duration::from_millis(5));
            if room
                .members
                .iter()
                .all(|m| m.connected && m.channel.is_some())
            {
                break;
            }
        }
        for _ in 0..200 {
            let (now, from, sfu_addr) = (room.now, room.members[0].addr, room.sfu_addr);
            for datagram in room.publish() {
                room.sfu.handle_receive(now, from, sfu_addr, &datagram);
            }
            room.step(Duration::ZERO);
            room.now += Duration::from_millis(20);
        }
        let forwarded = room.sfu.stats().frames_forwarded;
        assert!(
            forwarded >= 150 * subscribers as u64,
            "warm-up forwarded only {forwarded} frames to {subscribers} subscribers"
        );
        room
    }

    /// Advances time, drives every session and the SFU, delivers datagrams
    /// both ways, answers the SFU's offers.
    fn step(&mut self, by: Duration) {
        self.now += by;
        let now = self.now;
        for _ in 0..20 {
            let mut moved = false;
            for i in 0..self.members.len() {
                self.members[i]
                    .rtc
                    .handle_input(Input::Timeout(now))
                    .unwrap();
                for datagram in self.drain_member(i) {
                    moved = true;
                    let from = self.members[i].addr;
                    self.sfu.handle_receive(now, from, self.sfu_addr, &datagram);
                }
            }
            self.sfu.handle_timeout(now);
            while let Some(t) = self.sfu.poll_transmit() {
                moved = true;
                self.deliver(t.destination, &t.contents);
            }
            if !moved {
                break;
            }
        }
    }

    fn deliver(&mut self, to: SocketAddr, datagram: &[u8]) {
        let Some(member) = self.members.iter_mut().find(|m| m.addr == to) else {
            return;
        };
        let input = Input::Receive(
            self.now,
            Receive {
                proto: Protocol::Udp,
                source: self.sfu_addr,
                destination: to,
                contents: datagram.try_into().unwrap(),
            },
        );
        member.rtc.handle_input(input).unwrap();
    }

    fn drain_member(&mut self, i: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let member = &mut self.members[i];
            match member.rtc.poll_output().unwrap() {
                Output::Timeout(_) => return out,
                Output::Transmit(t) => out.push(t.contents.to_vec()),
                Output::Event(Event::Connected) => member.connected = true,
                Output::Event(Event::ChannelOpen(id, _)) => member.channel = Some(id),
                Output::Event(Event::ChannelData(data)) => {
                    if let Ok(ControlMessage::Offer { sdp }) = ControlMessage::from_json(&data.data)
                    {
                        let offer = SdpOffer::from_sdp_string(&sdp).unwrap();
                        let answer = member.rtc.sdp_api().accept_offer(offer).unwrap();
                        let reply = ControlMessage::Answer {
                            sdp: answer.to_sdp_string(),
                        };
                        let id = member.channel.unwrap();
                        member
                            .rtc
                            .channel(id)
                            .unwrap()
                            .write(false, reply.to_json().as_bytes())
                            .unwrap();
                    }
                }
                Output::Event(_) => {}
            }
        }
    }

    /// The publisher writes one Opus-sized frame (untimed).
    fn publish(&mut self) -> Vec<Vec<u8>> {
        let time = MediaTime::new(self.sent * 960, Frequency::FORTY_EIGHT_KHZ);
        self.sent += 1;
        let payload = vec![(self.sent % 251) as u8; OPUS_BYTES];
        let now = self.now;
        let writer = self.members[0].rtc.writer(self.audio_mid).unwrap();
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .map(|p| p.pt())
            .unwrap();
        writer.write(pt, now, time, payload).unwrap();
        self.members[0]
            .rtc
            .handle_input(Input::Timeout(now))
            .unwrap();
        self.drain_member(0)
    }
}

fn forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("sfu_forward_audio_packet");
    for subscribers in [1usize, 5, 10] {
        let mut room = Room::new(subscribers);
        let before = room.sfu.stats().frames_forwarded;
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(format!("to_{subscribers}_subscribers"), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    room.now += Duration::from_millis(20);
                    let datagrams = room.publish();
                    let (now, from, sfu_addr) = (room.now, room.members[0].addr, room.sfu_addr);
                    let mut out = Vec::new();
                    let start = Instant::now();
                    for datagram in &datagrams {
                        room.sfu.handle_receive(now, from, sfu_addr, datagram);
                    }
                    // str0m hands over received media on its timer too.
                    room.sfu.handle_timeout(now);
                    while let Some(t) = room.sfu.poll_transmit() {
                        out.push(t);
                    }
                    timed += start.elapsed();
                    // Subscribers take delivery untimed (their RTCP keeps
                    // the sessions as a real room's are).
                    for t in out {
                        room.deliver(t.destination, &t.contents);
                    }
                    if room.sent.is_multiple_of(50) {
                        room.step(Duration::ZERO);
                    }
                }
                timed
            });
        });
        // Every timed packet reached every subscriber.
        let forwarded = room.sfu.stats().frames_forwarded - before;
        assert!(
            forwarded >= room.sent.saturating_sub(201) * subscribers as u64,
            "{forwarded} forwarded to {subscribers} subscribers for {} sent",
            room.sent - 200
        );
    }
    // Baseline: what one str0m session pays to send that packet (write,
    // packetize, SRTP encrypt, poll) - the publisher's side of the same
    // hop. Forwarding to N costs about N of these plus the receive.
    let mut room = Room::new(1);
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline_str0m_send_one", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                room.now += Duration::from_millis(20);
                let start = Instant::now();
                let datagrams = room.publish();
                timed += start.elapsed();
                let (now, from, sfu_addr) = (room.now, room.members[0].addr, room.sfu_addr);
                for datagram in &datagrams {
                    room.sfu.handle_receive(now, from, sfu_addr, datagram);
                }
                room.sfu.handle_timeout(now);
                while let Some(t) = room.sfu.poll_transmit() {
                    room.deliver(t.destination, &t.contents);
                }
                if room.sent.is_multiple_of(50) {
                    room.step(Duration::ZERO);
                }
            }
            timed
        });
    });
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
