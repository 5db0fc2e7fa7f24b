//! A deterministic network simulator in virtual time.
//!
//! One [`NetworkSimulator`] is one direction of a link. Packets go in with
//! [`handle_send`](NetworkSimulator::handle_send) and come out of
//! [`poll_receive`](NetworkSimulator::poll_receive) once the virtual clock
//! reaches their delivery time; [`poll_timeout`](NetworkSimulator::poll_timeout)
//! says when the next one is due. Everything random comes from one ChaCha8
//! generator seeded by the caller, so a run repeats exactly from its seed.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use parley_media::netsim::{LossModel, NetworkConfig, NetworkSimulator};
//!
//! let config = NetworkConfig {
//!     loss: LossModel::Bernoulli { loss: 0.05 },
//!     delay: Duration::from_millis(40),
//!     ..NetworkConfig::default()
//! };
//! let mut link = NetworkSimulator::new(config, 7);
//! let start = Instant::now(); // clock-ok: the caller picks the origin of virtual time
//! link.handle_send(start, vec![0u8; 100]);
//! // Drain until nothing is left, advancing virtual time to each timeout.
//! while let Some(at) = link.poll_timeout() {
//!     while let Some(packet) = link.poll_receive(at) {
//!         assert_eq!(packet.len(), 100);
//!     }
//! }
//! ```
//!
//! A packet passes, in order: loss (Bernoulli or Gilbert-Elliott),
//! duplication, the bandwidth limit (a FIFO serializer with a bounded
//! queue, tail drop), then propagation delay plus jitter, then reordering.
//! Jitter keeps packets in order, as a router queue does: a packet is never
//! delivered before one sent ahead of it, unless reordering picks it, in
//! which case it is held back by an extra [`NetworkConfig::reorder_delay`]
//! and others overtake it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How packets are lost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossModel {
    /// Nothing is lost.
    None,
    /// Each packet is lost independently with probability `loss` (0..=1).
    Bernoulli {
        /// Loss probability.
        loss: f64,
    },
    /// A two-state Markov chain (Gilbert-Elliott): in the good state packets
    /// are lost with probability `loss_good`, in the bad state with
    /// `loss_bad`; before each packet the chain moves good -> bad with
    /// probability `p_good_to_bad` and bad -> good with `p_bad_to_good`.
    /// This makes losses come in bursts, as on congested or wireless links.
    GilbertElliott {
        /// Per-packet probability of entering the bad state.
        p_good_to_bad: f64,
        /// Per-packet probability of leaving the bad state.
        p_bad_to_good: f64,
        /// Loss probability in the good state.
        loss_good: f64,
        /// Loss probability in the bad state.
        loss_bad: f64,
    },
}

impl LossModel {
    /// The Gilbert model (lose everything in the bad state, nothing in the
    /// good one) with the given long-run loss rate (0..1) and mean burst
    /// length in packets (>= 1). A burst ends with probability
    /// `1 / mean_burst` per packet, and the stationary share of the bad
    /// state is `p_gb / (p_gb + p_bg)`, which gives `p_gb`.
    pub fn gilbert(loss: f64, mean_burst: f64) -> Self {
        let loss = loss.clamp(0.0, 0.999);
        let p_bad_to_good = 1.0 / mean_burst.max(1.0);
        let p_good_to_bad = loss * p_bad_to_good / (1.0 - loss);
        Self::GilbertElliott {
            p_good_to_bad,
            p_bad_to_good,
            loss_good: 0.0,
            loss_bad: 1.0,
        }
    }
}

/// Link settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    /// How packets are lost.
    pub loss: LossModel,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Each packet's delay is `delay` plus a uniform draw from
    /// `0..=jitter` (order is kept; see the module docs).
    pub jitter: Duration,
    /// Probability (0..=1) that a packet is held back by `reorder_delay`
    /// and overtaken by later ones.
    pub reorder: f64,
    /// Extra delay of a reordered packet.
    pub reorder_delay: Duration,
    /// Probability (0..=1) that a packet is delivered twice.
    pub duplicate: f64,
    /// Link rate in bits per second; `None` is unlimited.
    pub bandwidth_bps: Option<u64>,
    /// Bytes that may wait for the link when it is busy; a packet that
    /// would overflow this is dropped (tail drop).
    pub queue_bytes: usize,
}

impl Default for NetworkConfig {
    /// A perfect link: no loss, no delay, unlimited rate.
    fn default() -> Self {
        Self {
            loss: LossModel::None,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(30),
            duplicate: 0.0,
            bandwidth_bps: None,
            queue_bytes: 64 * 1024,
        }
    }
}

/// What happened to the packets so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Packets handed to the link.
    pub sent: u64,
    /// Packets dropped by the loss model.
    pub lost: u64,
    /// Packets dropped because the bandwidth queue was full.
    pub queue_dropped: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Packets picked for reordering.
    pub reordered: u64,
    /// Packets handed out by `poll_receive`.
    pub delivered: u64,
}

#[derive(Debug)]
struct InFlight<P> {
    deliver_at: Instant,
    /// Ties on `deliver_at` go in send order.
    order: u64,
    packet: P,
}

impl<P> PartialEq for InFlight<P> {
    fn eq(&self, other: &Self) -> bool {
        (self.deliver_at, self.order) == (other.deliver_at, other.order)
    }
}
impl<P> Eq for InFlight<P> {}
impl<P> PartialOrd for InFlight<P> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<P> Ord for InFlight<P> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deliver_at, self.order).cmp(&(other.deliver_at, other.order))
    }
}

/// One direction of a simulated link, in virtual time. Generic over the
/// packet type so callers can carry addresses along with the bytes.
///
/// Sans-IO: `handle_send` takes packets in, `poll_receive` hands out those
/// due at `now`; drain it, then wait until `poll_timeout`.
pub struct NetworkSimulator<P = Vec<u8>> {
    config: NetworkConfig,
    rng: ChaCha8Rng,
    in_bad_state: bool,
    /// When the serializer finishes the packets already accepted.
    link_free_at: Option<Instant>,
    /// Latest delivery time of an in-order packet, which later in-order
    /// packets may not precede.
    last_in_order: Option<Instant>,
    in_flight: BinaryHeap<Reverse<InFlight<P>>>,
    next_order: u64,
    stats: NetworkStats,
}

impl<P: AsRef<[u8]> + Clone> NetworkSimulator<P> {
    /// A link with the given settings and random seed.
    pub fn new(config: NetworkConfig, seed: u64) -> Self {
        Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            in_bad_state: false,
            link_free_at: None,
            last_in_order: None,
            in_flight: BinaryHeap::new(),
            next_order: 0,
            stats: NetworkStats::default(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Changes the settings from now on (a jitter step, a bandwidth drop).
    /// Packets already in flight keep their delivery times.
    pub fn set_config(&mut self, config: NetworkConfig) {
        self.config = config;
    }

    /// Counters so far.
    pub fn stats(&self) -> NetworkStats {
        self.stats
    }

    /// Puts a packet on the link at `now`.
    pub fn handle_send(&mut self, now: Instant, packet: P) {
        self.stats.sent += 1;
        if self.draw_loss() {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.draw(self.config.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let Some(on_wire) = self.serialize(now, packet.as_ref().len()) else {
                self.stats.queue_dropped += 1;
                continue;
            };
            let jitter = self.draw_duration(self.config.jitter);
            let mut deliver_at = on_wire + self.config.delay + jitter;
            if self.draw(self.config.reorder) {
                self.stats.reordered += 1;
                deliver_at += self.config.reorder_delay;
            } else {
                if let Some(last) = self.last_in_order {
                    deliver_at = deliver_at.max(last);
                }
                self.last_in_order = Some(deliver_at);
            }
            self.in_flight.push(Reverse(InFlight {
                deliver_at,
                order: self.next_order,
                packet: packet.clone(),
            }));
            self.next_order += 1;
        }
    }

    /// The next packet due at or before `now`, if any.
    pub fn poll_receive(&mut self, now: Instant) -> Option<P> {
        let due = self.in_flight.peek()?.0.deliver_at <= now;
        if !due {
            return None;
        }
        self.stats.delivered += 1;
        self.in_flight.pop().map(|Reverse(f)| f.packet)
    }

    /// When the next packet is due; `None` when nothing is in flight.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight.peek().map(|f| f.0.deliver_at)
    }

    /// Packets in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// When a packet of `bytes` sent at `now` leaves the serializer, or
    /// `None` if the queue in front of it is full.
    fn serialize(&mut self, now: Instant, bytes: usize) -> Option<Instant> {
        let Some(bps) = self.config.bandwidth_bps.filter(|&b| b > 0) else {
            return Some(now);
        };
        let start = self.link_free_at.map_or(now, |t| t.max(now));
        // Bytes still waiting = the serializer's backlog at `now`.
        let backlog_bytes = (start - now).as_secs_f64() * bps as f64 / 8.0;
        if backlog_bytes + bytes as f64 > self.config.queue_bytes as f64 {
            return None;
        }
        let done = start + Duration::from_secs_f64(bytes as f64 * 8.0 / bps as f64);
        self.link_free_at = Some(done);
        Some(done)
    }

    fn draw_loss(&mut self) -> bool {
        match self.config.loss {
            LossModel::None => false,
            LossModel::Bernoulli { loss } => self.draw(loss),
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                let flip = if self.in_bad_state {
                    p_bad_to_good
                } else {
                    p_good_to_bad
                };
                if self.draw(flip) {
                    self.in_bad_state = !self.in_bad_state;
                }
                let p = if self.in_bad_state {
                    loss_bad
                } else {
                    loss_good
                };
                self.draw(p)
            }
        }
    }

    /// True with probability `p`. Draws nothing when `p` is 0 or 1, so that
    /// turning a feature off does not shift the random stream of the others.
    fn draw(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            self.rng.random::<f64>() < p
        }
    }

    fn draw_duration(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.rng.random_range(0..=max.as_nanos() as u64))
    }
}
