//! The server's UDP side for 1:1 calls: a STUN binding responder (so a
//! client behind NAT learns its server-reflexive address) and a two-party
//! media forwarder for calls whose ends cannot reach each other directly.
//!
//! The forwarder is deliberately small (the SFU is where relaying grows):
//! each end registers its media socket for a call with a ticket the HTTP
//! API signed for it ([`RelayCore::ticket`]: HMAC over call key, device
//! and expiry, so no database lookup on the UDP path); once both ends of a
//! call key are registered, every datagram from one is sent to the other
//! unchanged. Media is SRTP with SFrame inside, so the relay forwards bytes
//! it cannot read. Each end adds the relay's address as a remote ICE
//! candidate of its own: ICE's checks go through the relay like any other
//! path and a direct pair, when one works, wins on priority.
//!
//! The datagram formats (registration, STUN binding) are wire types:
//! [`parley_wire::relay`].
//!
//! [`RelayCore`] is sans-IO and takes `now`; [`serve`] is the socket loop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use parley_wire::relay::{CALL_KEY_LEN, MAGIC, Registration, TICKET_LEN, answer_binding};
use sha2::Sha256;

/// An end that sends nothing for this long is forgotten (ICE consent
/// checks keep a live call well inside it).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a ticket is valid for.
pub const TICKET_TTL: Duration = Duration::from_secs(3600);

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The datagram is too short or not a registration.
    #[error("malformed registration")]
    Malformed,
    /// The ticket was not signed by this server for this call and device.
    #[error("bad ticket")]
    BadTicket,
    /// The ticket's time is up.
    #[error("expired ticket")]
    Expired,
    /// Two other devices already hold this call.
    #[error("call already has two ends")]
    Full,
}

/// What to do with a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Send this reply back to where the datagram came from.
    Reply(Vec<u8>),
    /// Send the datagram, unchanged, to the other end of its call.
    Forward(SocketAddr, &'a [u8]),
    /// Ignore it.
    Drop,
}

/// Counters for `/metrics` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// STUN binding requests answered.
    pub stun_answered: u64,
    /// Registrations accepted.
    pub registered: u64,
    /// Registrations refused.
    pub refused: u64,
    /// Datagrams forwarded between call ends.
    pub forwarded: u64,
    /// Datagrams from unknown senders, or with no other end yet.
    pub dropped: u64,
}

#[derive(Debug, Clone)]
struct End {
    device: String,
    addr: SocketAddr,
    last_seen: Instant,
}

/// The relay's state: registered call ends.
#[derive(Debug)]
pub struct RelayCore {
    key: [u8; 32],
    calls: HashMap<[u8; CALL_KEY_LEN], Vec<End>>,
    by_addr: HashMap<SocketAddr, [u8; CALL_KEY_LEN]>,
    stats: RelayStats,
}

impl RelayCore {
    /// A relay signing tickets with `key`.
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key,
            calls: HashMap::new(),
            by_addr: HashMap::new(),
            stats: RelayStats::default(),
        }
    }

    /// The ticket that lets `device` register for `call_key` until
    /// `expires_at` (unix milliseconds).
    pub fn ticket(
        &self,
        call_key: &[u8; CALL_KEY_LEN],
        device: &str,
        expires_at: i64,
    ) -> [u8; TICKET_LEN] {
        self.mac(call_key, device, expires_at)
            .finalize()
            .into_bytes()
            .into()
    }

    fn mac(&self, call_key: &[u8; CALL_KEY_LEN], device: &str, expires_at: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(call_key);
        mac.update(&expires_at.to_be_bytes());
        mac.update(device.as_bytes());
        mac
    }

    /// Counters so far.
    pub fn stats(&self) -> RelayStats {
        self.stats
    }

    /// Handles one datagram from `from`; `unix_ms` is the wall clock for
    /// ticket expiry.
    pub fn handle<'a>(
        &mut self,
        now: Instant,
        unix_ms: i64,
        from: SocketAddr,
        data: &'a [u8],
    ) -> Action<'a> {
        if data.starts_with(MAGIC) {
            return match self.register(now, unix_ms, from, data) {
                Ok(()) => {
                    self.stats.registered += 1;
                    Action::Reply(parley_wire::relay::registered_ack())
                }
                Err(e) => {
                    tracing::debug!(%from, error = %e, "relay registration refused");
                    self.stats.refused += 1;
                    Action::Drop
                }
            };
        }
        // A binding request without USERNAME is a client asking for its
        // reflexive address; ICE connectivity checks (with USERNAME) are
        // for the other end and are forwarded like media.
        if let Some(reply) = answer_binding(data, from) {
            self.stats.stun_answered += 1;
            return Action::Reply(reply);
        }
        match self.partner(now, from) {
            Some(to) => {
                self.stats.forwarded += 1;
                Action::Forward(to, data)
            }
            None => {
                self.stats.dropped += 1;
                Action::Drop
            }
        }
    }

    /// Forgets ends idle for longer than [`IDLE_TIMEOUT`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let by_addr = &mut self.by_addr;
        self.calls.retain(|_, ends| {
            ends.retain(|end| {
                let live = now.saturating_duration_since(end.last_seen) < IDLE_TIMEOUT;
                if !live {
                    by_addr.remove(&end.addr);
                }
                live
            });
            !ends.is_empty()
        });
    }

    /// Registered ends, for tests and metrics.
    pub fn ends(&self) -> usize {
        self.by_addr.len()
    }

    fn register(
        &mut self,
        now: Instant,
        unix_ms: i64,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), RelayError> {
        let Registration {
            call_key,
            expires_at,
            ticket,
            device,
        } = Registration::parse(data).ok_or(RelayError::Malformed)?;
        // Constant-time comparison.
        self.mac(&call_key, device, expires_at)
            .verify_slice(ticket)
            .map_err(|_| RelayError::BadTicket)?;
        if expires_at < unix_ms {
            return Err(RelayError::Expired);
        }
        // One address per end: a re-registration moves it.
        if let Some(old) = self.by_addr.remove(&from)
            && let Some(ends) = self.calls.get_mut(&old)
        {
            ends.retain(|e| e.addr != from);
        }
        let ends = self.calls.entry(call_key).or_default();
        if let Some(end) = ends.iter_mut().find(|e| e.device == device) {
            self.by_addr.remove(&end.addr);
            end.addr = from;
            end.last_seen = now;
        } else if ends.len() >= 2 {
            return Err(RelayError::Full);
        } else {
            ends.push(End {
                device: device.to_string(),
                addr: from,
                last_seen: now,
            });
        }
        self.by_addr.insert(from, call_key);
        Ok(())
    }

    fn partner(&mut self, now: Instant, from: SocketAddr) -> Option<SocketAddr> {
        let key = self.by_addr.get(&from)?;
        let ends = self.calls.get_mut(key)?;
        let mut to = None;
        for end in ends.iter_mut() {
            if end.addr == from {
                end.last_seen = now;
            } else {
                to = Some(end.addr);
            }
        }
        to
    }
}

/// The relay shared between the UDP loop and the HTTP API (which signs
/// tickets with its key).
#[derive(Clone)]
pub struct Relay {
    core: Arc<Mutex<RelayCore>>,
    /// The UDP address the relay is bound to.
    pub local_addr: SocketAddr,
    /// The address clients should use, when it differs from the server's
    /// host name (behind NAT, say).
    pub public_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("local_addr", &self.local_addr)
            .field("public_addr", &self.public_addr)
            .finish()
    }
}

impl Relay {
    /// Signs a ticket (see [`RelayCore::ticket`]).
    pub fn ticket(
        &self,
        call_key: &[u8; CALL_KEY_LEN],
        device: &str,
        expires_at: i64,
    ) -> [u8; TICKET_LEN] {
        self.core
            .lock()
            .expect("relay lock")
            .ticket(call_key, device, expires_at)
    }

    /// Counters so far.
    pub fn stats(&self) -> RelayStats {
        self.core.lock().expect("relay lock").stats()
    }
}

/// Binds the relay's socket and starts its loop; the key is random, so
/// tickets do not outlive the process.
pub async fn start(addr: SocketAddr, public_addr: Option<SocketAddr>) -> std::io::Result<Relay> {
    let socket = tokio::net::UdpSocket::bind(addr).await?;
    let local_addr = socket.local_addr()?;
    let key: [u8; 32] = rand::random();
    let relay = Relay {
        core: Arc::new(Mutex::new(RelayCore::new(key))),
        local_addr,
        public_addr,
    };
    tokio::spawn(serve(socket, relay.core.clone()));
    Ok(relay)
}

/// The socket loop: one datagram at a time through the core.
#[allow(clippy::disallowed_methods)] // The relay's IO shell: it stamps datagrams for `RelayCore`.
async fn serve(socket: tokio::net::UdpSocket, core: Arc<Mutex<RelayCore>>) {
    let mut buf = vec![0u8; 2048];
    let mut sweep = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (n, from) = match received {
                    Ok(r) => r,
                    // An ICMP error for an earlier send: not this one's business.
                    Err(e) => {
                        tracing::debug!(error = %e, "relay receive");
                        continue;
                    }
                };
                let unix_ms = parley_wire::clock::now_ms();
                let reply = {
                    let mut core = core.lock().expect("relay lock");
                    match core.handle(Instant::now(), unix_ms, from, &buf[..n]) {
                        Action::Reply(bytes) => Some((from, bytes)),
                        Action::Forward(to, bytes) => Some((to, bytes.to_vec())),
                        Action::Drop => None,
                    }
                };
                if let Some((to, bytes)) = reply
                    && let Err(e) = socket.send_to(&bytes, to).await
                {
                    tracing::debug!(%to, error = %e, "relay send");
                }
            }
            _ = sweep.tick() => core.lock().expect("relay lock").handle_timeout(Instant::now()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests pick the origin of virtual time.
mod tests {
    use parley_wire::relay::{binding_request, binding_response, is_registered_ack};

    use super::*;

    fn registration(
        call_key: &[u8; CALL_KEY_LEN],
        expires_at: i64,
        ticket: &[u8; TICKET_LEN],
        device: &str,
    ) -> Vec<u8> {
        Registration {
            call_key: *call_key,
            expires_at,
            ticket,
            device,
        }
        .to_bytes()
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn register(
        core: &mut RelayCore,
        now: Instant,
        key: [u8; 16],
        device: &str,
        from: SocketAddr,
    ) -> bool {
        let expires = 10_000;
        let ticket = core.ticket(&key, device, expires);
        let datagram = registration(&key, expires, &ticket, device);
        matches!(core.handle(now, 0, from, &datagram), Action::Reply(ack) if is_registered_ack(&ack))
    }

    #[test]
    fn two_registered_ends_are_forwarded_to_each_other() {
        let now = Instant::now();
        let mut core = RelayCore::new([7; 32]);
        assert!(register(&mut core, now, [1; 16], "alice-phone", addr(1)));
        // Alone, nothing is forwarded.
        assert_eq!(core.handle(now, 0, addr(1), &[0x80, 1, 2]), Action::Drop);
        assert!(register(&mut core, now, [1; 16], "bob-phone", addr(2)));
        assert_eq!(
            core.handle(now, 0, addr(1), &[0x80, 1, 2]),
            Action::Forward(addr(2), &[0x80, 1, 2][..])
        );
        assert_eq!(
            core.handle(now, 0, addr(2), &[23, 9]),
            Action::Forward(addr(1), &[23, 9][..])
        );
        // Strangers get nothing.
        assert_eq!(core.handle(now, 0, addr(3), &[0x80, 1, 2]), Action::Drop);
        // A third device cannot join the call.
        assert!(!register(&mut core, now, [1; 16], "mallory", addr(3)));
        // Idle ends are forgotten.
        core.handle_timeout(now + IDLE_TIMEOUT + Duration::from_secs(1));
        assert_eq!(core.ends(), 0);
    }

    #[test]
    fn forged_expired_and_malformed_registrations_are_refused() {
        let now = Instant::now();
        let mut core = RelayCore::new([7; 32]);
        let key = [1; 16];
        let other = RelayCore::new([8; 32]);
        let forged = registration(&key, 10_000, &other.ticket(&key, "d", 10_000), "d");
        assert_eq!(core.handle(now, 0, addr(1), &forged), Action::Drop);
        let expired = registration(&key, 10, &core.ticket(&key, "d", 10), "d");
        assert_eq!(core.handle(now, 11, addr(1), &expired), Action::Drop);
        for bad in [&b"PRLY"[..], b"PRLY\x01short", b"PRLY\x09"] {
            assert_eq!(core.handle(now, 0, addr(1), bad), Action::Drop);
        }
        assert_eq!(core.stats().refused, 5);
        assert_eq!(core.ends(), 0);
    }

    #[test]
    fn binding_requests_get_the_reflexive_address() {
        let mut core = RelayCore::new([7; 32]);
        let request = binding_request([5; 12]);
        let Action::Reply(reply) = core.handle(Instant::now(), 0, addr(9), &request) else {
            panic!("no reply");
        };
        assert_eq!(binding_response(&reply, [5; 12]), Some(addr(9)));
        assert_eq!(binding_response(&reply, [6; 12]), None);
        assert_eq!(binding_response(&[0x80, 0, 0], [5; 12]), None);
        // Truncated STUN is dropped, not answered.
        assert_eq!(
            core.handle(Instant::now(), 0, addr(9), &request[..19]),
            Action::Drop
        );
    }
}
