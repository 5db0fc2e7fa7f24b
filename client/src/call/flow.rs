//! The call state machine, sans-IO: who rang, who answered, when to give
//! up, what to tell the other devices. The shell feeds it received
//! signals, local decisions (answer, decline, hang up), media events and
//! the clock, and carries out the [`CallAction`]s it queues.
//!
//! The caller forks one offer per callee device (each with its own media
//! secret and its own str0m session, see `phone`); the first device to
//! answer wins and every other device is told the call was answered
//! elsewhere. No answer within the ring timeout is a missed call on both
//! sides.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::signal::{CallSignal, HangupReason};

/// How long a call rings before it counts as missed.
pub const RING_TIMEOUT: Duration = Duration::from_secs(45);

/// Which end of the call this device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Placed the call.
    Caller,
    /// Was called.
    Callee,
}

/// Where the call is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    /// Offers sent, no device has said it rings yet (caller), or ringing
    /// here, not yet answered (callee).
    Calling,
    /// At least one callee device is ringing.
    Ringing,
    /// Answered; ICE and DTLS are coming up.
    Connecting,
    /// Media flows.
    Active,
    /// Over.
    Ended(EndReason),
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// This side hung up.
    LocalHangup,
    /// The other side hung up.
    RemoteHangup,
    /// This side declined the incoming call.
    LocalDeclined,
    /// The callee declined.
    Declined,
    /// Every callee device is in another call.
    Busy,
    /// Nobody answered in time (for the callee: a missed call).
    NoAnswer,
    /// Another device of this user answered.
    AnsweredElsewhere,
    /// Media did not come up or broke (the reason says which).
    MediaFailed(String),
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LocalHangup => f.write_str("you hung up"),
            Self::RemoteHangup => f.write_str("the other side hung up"),
            Self::LocalDeclined => f.write_str("you declined"),
            Self::Declined => f.write_str("declined"),
            Self::Busy => f.write_str("busy"),
            Self::NoAnswer => f.write_str("no answer (missed call)"),
            Self::AnsweredElsewhere => f.write_str("answered on another device"),
            Self::MediaFailed(why) => write!(f, "media failed: {why}"),
        }
    }
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAction {
    /// Send `signal` to the peer's `device` (E2E, like any message).
    Send {
        /// The peer device.
        device: String,
        /// What to send.
        signal: CallSignal,
    },
    /// Caller: `device` answered with this SDP; start its media session.
    StartMedia {
        /// The device that answered.
        device: String,
        /// Its SDP answer.
        sdp: String,
    },
    /// Hand a trickled candidate to the running media session.
    RemoteCandidate(String),
    /// The call is over: stop media, report the reason.
    End(EndReason),
}

/// A call signal this call cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The signal is for another call.
    #[error("signal for unknown call {0}")]
    UnknownCall(String),
    /// The signal came from someone who is not in this call.
    #[error("signal from {0}, who is not in this call")]
    NotInCall(String),
    /// A second answer (from the same device) after the call was answered.
    #[error("duplicate answer for call {0}")]
    DuplicateAnswer(String),
    /// The signal makes no sense now (an answer to the callee, an offer
    /// for a call already set up, ...).
    #[error("unexpected {signal} while the call is {state}")]
    Unexpected {
        /// The signal's kind.
        signal: &'static str,
        /// The call's state.
        state: String,
    },
}

/// One call, from this device's point of view.
#[derive(Debug)]
pub struct CallFlow {
    call_id: String,
    side: Side,
    peer: String,
    /// Caller: every device offered to. Callee: the caller's device.
    devices: Vec<String>,
    refused: BTreeSet<String>,
    answered_by: Option<String>,
    state: CallState,
    ring_deadline: Instant,
    /// Candidates that arrived before the media session existed.
    early_candidates: Vec<(String, String)>,
    actions: VecDeque<CallAction>,
}

impl CallFlow {
    /// A call this device placed: offers went to `devices` of `peer`.
    pub fn outgoing(
        now: Instant,
        call_id: &str,
        peer: &str,
        devices: Vec<String>,
        ring_timeout: Duration,
    ) -> Self {
        Self::new(now, call_id, Side::Caller, peer, devices, ring_timeout)
    }

    /// A call offered to this device by `peer`'s `device`; it rings.
    pub fn incoming(
        now: Instant,
        call_id: &str,
        peer: &str,
        device: &str,
        ring_timeout: Duration,
    ) -> Self {
        let mut flow = Self::new(
            now,
            call_id,
            Side::Callee,
            peer,
            vec![device.to_string()],
            ring_timeout,
        );
        flow.state = CallState::Ringing;
        flow.send_to_caller(CallSignal::Ringing {
            call_id: call_id.to_string(),
        });
        flow
    }

    fn new(
        now: Instant,
        call_id: &str,
        side: Side,
        peer: &str,
        devices: Vec<String>,
        ring_timeout: Duration,
    ) -> Self {
        Self {
            call_id: call_id.to_string(),
            side,
            peer: peer.to_string(),
            devices,
            refused: BTreeSet::new(),
            answered_by: None,
            state: CallState::Calling,
            ring_deadline: now + ring_timeout,
            early_candidates: Vec::new(),
            actions: VecDeque::new(),
        }
    }

    /// The call's id.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The other party's handle.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Which end this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Where the call is.
    pub fn state(&self) -> &CallState {
        &self.state
    }

    /// Whether the call is over.
    pub fn is_ended(&self) -> bool {
        matches!(self.state, CallState::Ended(_))
    }

    /// The peer device media is (or will be) exchanged with.
    pub fn media_peer(&self) -> Option<&str> {
        match self.side {
            Side::Caller => self.answered_by.as_deref(),
            Side::Callee => self.devices.first().map(String::as_str),
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<CallAction> {
        self.actions.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        matches!(self.state, CallState::Calling | CallState::Ringing).then_some(self.ring_deadline)
    }

    /// Gives up ringing when the deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|t| now >= t) {
            if self.side == Side::Caller {
                self.send_to_all(HangupReason::NoAnswer, None);
            }
            self.end(EndReason::NoAnswer);
        }
    }

    /// A call signal arrived from `from`'s `device`.
    pub fn handle_signal(
        &mut self,
        from: &str,
        device: &str,
        signal: &CallSignal,
    ) -> Result<(), FlowError> {
        if signal.call_id() != self.call_id {
            return Err(FlowError::UnknownCall(signal.call_id().to_string()));
        }
        if from != self.peer || !self.devices.iter().any(|d| d == device) {
            return Err(FlowError::NotInCall(format!("{from}/{device}")));
        }
        if self.is_ended() {
            // Late signals for a finished call (a hangup crossing ours,
            // a candidate in flight) are harmless.
            return Ok(());
        }
        match (self.side, signal) {
            (Side::Caller, CallSignal::Ringing { .. }) => {
                if self.state == CallState::Calling {
                    self.state = CallState::Ringing;
                }
            }
            (Side::Caller, CallSignal::Answer { sdp, .. }) => match &self.answered_by {
                None => {
                    self.answered_by = Some(device.to_string());
                    self.state = CallState::Connecting;
                    for other in self.devices.clone() {
                        if other != device {
                            self.actions.push_back(CallAction::Send {
                                device: other,
                                signal: CallSignal::AnsweredElsewhere {
                                    call_id: self.call_id.clone(),
                                },
                            });
                        }
                    }
                    self.actions.push_back(CallAction::StartMedia {
                        device: device.to_string(),
                        sdp: sdp.clone(),
                    });
                    for (from_device, line) in std::mem::take(&mut self.early_candidates) {
                        if from_device == device {
                            self.actions.push_back(CallAction::RemoteCandidate(line));
                        }
                    }
                }
                Some(first) if first == device => {
                    return Err(FlowError::DuplicateAnswer(self.call_id.clone()));
                }
                // Two devices answered at once: the later one is told.
                Some(_) => self.actions.push_back(CallAction::Send {
                    device: device.to_string(),
                    signal: CallSignal::AnsweredElsewhere {
                        call_id: self.call_id.clone(),
                    },
                }),
            },
            (Side::Caller, CallSignal::Busy { .. }) => self.refuse(device, EndReason::Busy),
            (_, CallSignal::Candidate { candidate, .. }) => match self.media_peer() {
                Some(peer) if peer == device => {
                    if matches!(self.state, CallState::Connecting | CallState::Active) {
                        self.actions
                            .push_back(CallAction::RemoteCandidate(candidate.clone()));
                    } else {
                        self.early_candidates
                            .push((device.to_string(), candidate.clone()));
                    }
                }
                Some(_) => {}
                None => self
                    .early_candidates
                    .push((device.to_string(), candidate.clone())),
            },
            (_, CallSignal::Hangup { reason, .. }) => {
                let answered = matches!(self.state, CallState::Connecting | CallState::Active);
                match (self.side, reason) {
                    (Side::Caller, HangupReason::Declined) if !answered => {
                        self.refuse(device, EndReason::Declined)
                    }
                    (Side::Caller, _) if self.answered_by.as_deref() != Some(device) => {
                        self.refuse(device, EndReason::Declined)
                    }
                    (_, HangupReason::NoAnswer) if !answered => self.end(EndReason::NoAnswer),
                    (_, HangupReason::MediaFailed) => self.end(EndReason::MediaFailed(
                        "the other side's media failed".into(),
                    )),
                    _ => self.end(EndReason::RemoteHangup),
                }
            }
            (Side::Callee, CallSignal::AnsweredElsewhere { .. }) => {
                self.end(EndReason::AnsweredElsewhere)
            }
            (_, other) => {
                return Err(FlowError::Unexpected {
                    signal: kind(other),
                    state: format!("{:?}", self.state),
                });
            }
        }
        Ok(())
    }

    /// Callee: the user answered; `sdp` is the media session's answer.
    pub fn answer(&mut self, sdp: String) {
        if self.side != Side::Callee || self.state != CallState::Ringing {
            return;
        }
        self.state = CallState::Connecting;
        self.send_to_caller(CallSignal::Answer {
            call_id: self.call_id.clone(),
            sdp,
        });
    }

    /// Callee: the user declined.
    pub fn decline(&mut self) {
        if self.side != Side::Callee || self.state != CallState::Ringing {
            return;
        }
        self.send_to_caller(CallSignal::Hangup {
            call_id: self.call_id.clone(),
            reason: HangupReason::Declined,
        });
        self.end(EndReason::LocalDeclined);
    }

    /// A local ICE candidate to trickle to the peer.
    pub fn local_candidate(&mut self, candidate: String) {
        if self.is_ended() {
            return;
        }
        let signal = CallSignal::Candidate {
            call_id: self.call_id.clone(),
            candidate,
        };
        match self.side {
            Side::Callee => self.send_to_caller(signal),
            Side::Caller => match self.answered_by.clone() {
                Some(device) => self.actions.push_back(CallAction::Send { device, signal }),
                // Before the answer every offered device may be the one.
                None => {
                    for device in self.devices.clone() {
                        self.actions.push_back(CallAction::Send {
                            device,
                            signal: signal.clone(),
                        });
                    }
                }
            },
        }
    }

    /// Media is up.
    pub fn media_connected(&mut self) {
        if self.state == CallState::Connecting {
            self.state = CallState::Active;
        }
    }

    /// Media could not be set up or broke; the peer is told.
    pub fn media_failed(&mut self, why: String) {
        if self.is_ended() {
            return;
        }
        self.send_to_all(
            HangupReason::MediaFailed,
            self.media_peer().map(str::to_string),
        );
        self.end(EndReason::MediaFailed(why));
    }

    /// This side hangs up (or cancels a call still ringing).
    pub fn hangup(&mut self) {
        if self.is_ended() {
            return;
        }
        if self.side == Side::Callee && self.state == CallState::Ringing {
            self.decline();
            return;
        }
        self.send_to_all(HangupReason::Normal, self.media_peer().map(str::to_string));
        self.end(EndReason::LocalHangup);
    }

    /// Hangup to the answering device if there is one, else to every
    /// device offered to.
    fn send_to_all(&mut self, reason: HangupReason, only: Option<String>) {
        let devices = match only {
            Some(device) => vec![device],
            None => self.devices.clone(),
        };
        for device in devices {
            if self.refused.contains(&device) {
                continue;
            }
            self.actions.push_back(CallAction::Send {
                device,
                signal: CallSignal::Hangup {
                    call_id: self.call_id.clone(),
                    reason,
                },
            });
        }
    }

    fn send_to_caller(&mut self, signal: CallSignal) {
        if let Some(device) = self.devices.first().cloned() {
            self.actions.push_back(CallAction::Send { device, signal });
        }
    }

    /// Caller: one device said busy or declined; when all have, the call
    /// ends with that reason. A decline ends it at once, as a user
    /// pressing "decline" on any of their devices means no.
    fn refuse(&mut self, device: &str, reason: EndReason) {
        if self.answered_by.is_some() {
            return;
        }
        self.refused.insert(device.to_string());
        let all = self.devices.iter().all(|d| self.refused.contains(d));
        if all || reason == EndReason::Declined {
            let rest: Vec<String> = self
                .devices
                .iter()
                .filter(|d| !self.refused.contains(*d))
                .cloned()
                .collect();
            for device in rest {
                self.actions.push_back(CallAction::Send {
                    device,
                    signal: CallSignal::Hangup {
                        call_id: self.call_id.clone(),
                        reason: HangupReason::Declined,
                    },
                });
            }
            self.end(reason);
        }
    }

    fn end(&mut self, reason: EndReason) {
        if self.is_ended() {
            return;
        }
        self.state = CallState::Ended(reason.clone());
        self.actions.push_back(CallAction::End(reason));
    }
}

fn kind(signal: &CallSignal) -> &'static str {
    match signal {
        CallSignal::Offer { .. } => "offer",
        CallSignal::Ringing { .. } => "ringing",
        CallSignal::Answer { .. } => "answer",
        CallSignal::Candidate { .. } => "candidate",
        CallSignal::Hangup { .. } => "hangup",
        CallSignal::Busy { .. } => "busy",
        CallSignal::AnsweredElsewhere { .. } => "answered elsewhere",
        CallSignal::SenderKey { .. } => "group sender key",
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests pick the origin of virtual time.
mod tests {
    use super::*;

    fn answer(id: &str) -> CallSignal {
        CallSignal::Answer {
            call_id: id.into(),
            sdp: "v=0".into(),
        }
    }

    fn drain(flow: &mut CallFlow) -> Vec<CallAction> {
        std::iter::from_fn(|| flow.poll_action()).collect()
    }

    #[test]
    fn first_answer_wins_and_other_devices_are_told() {
        let now = Instant::now();
        let mut flow = CallFlow::outgoing(
            now,
            "c",
            "bob",
            vec!["d1".into(), "d2".into()],
            RING_TIMEOUT,
        );
        flow.handle_signal(
            "bob",
            "d2",
            &CallSignal::Ringing {
                call_id: "c".into(),
            },
        )
        .unwrap();
        assert_eq!(flow.state(), &CallState::Ringing);
        flow.handle_signal("bob", "d2", &answer("c")).unwrap();
        let actions = drain(&mut flow);
        assert!(actions.contains(&CallAction::Send {
            device: "d1".into(),
            signal: CallSignal::AnsweredElsewhere {
                call_id: "c".into()
            }
        }));
        assert!(actions.contains(&CallAction::StartMedia {
            device: "d2".into(),
            sdp: "v=0".into()
        }));
        assert_eq!(
            flow.handle_signal("bob", "d2", &answer("c")),
            Err(FlowError::DuplicateAnswer("c".into()))
        );
        // A late answer from the other device is told it lost.
        flow.handle_signal("bob", "d1", &answer("c")).unwrap();
        assert_eq!(
            drain(&mut flow),
            vec![CallAction::Send {
                device: "d1".into(),
                signal: CallSignal::AnsweredElsewhere {
                    call_id: "c".into()
                }
            }]
        );
    }

    #[test]
    fn unanswered_call_is_missed_on_both_sides() {
        let now = Instant::now();
        let mut caller = CallFlow::outgoing(now, "c", "bob", vec!["d1".into()], RING_TIMEOUT);
        let mut callee = CallFlow::incoming(now, "c", "alice", "a1", RING_TIMEOUT);
        caller.handle_timeout(now + RING_TIMEOUT - Duration::from_millis(1));
        assert!(!caller.is_ended());
        caller.handle_timeout(now + RING_TIMEOUT);
        let actions = drain(&mut caller);
        let hangup = CallSignal::Hangup {
            call_id: "c".into(),
            reason: HangupReason::NoAnswer,
        };
        assert!(actions.contains(&CallAction::Send {
            device: "d1".into(),
            signal: hangup.clone()
        }));
        assert_eq!(caller.state(), &CallState::Ended(EndReason::NoAnswer));
        callee.handle_signal("alice", "a1", &hangup).unwrap();
        assert_eq!(callee.state(), &CallState::Ended(EndReason::NoAnswer));
    }

    #[test]
    fn busy_everywhere_ends_the_call() {
        let now = Instant::now();
        let mut flow = CallFlow::outgoing(
            now,
            "c",
            "bob",
            vec!["d1".into(), "d2".into()],
            RING_TIMEOUT,
        );
        flow.handle_signal(
            "bob",
            "d1",
            &CallSignal::Busy {
                call_id: "c".into(),
            },
        )
        .unwrap();
        assert!(!flow.is_ended());
        flow.handle_signal(
            "bob",
            "d2",
            &CallSignal::Busy {
                call_id: "c".into(),
            },
        )
        .unwrap();
        assert_eq!(flow.state(), &CallState::Ended(EndReason::Busy));
    }

    #[test]
    fn signals_from_strangers_and_other_calls_are_refused() {
        let now = Instant::now();
        let mut flow = CallFlow::outgoing(now, "c", "bob", vec!["d1".into()], RING_TIMEOUT);
        assert!(matches!(
            flow.handle_signal("bob", "d1", &answer("other")),
            Err(FlowError::UnknownCall(_))
        ));
        assert!(matches!(
            flow.handle_signal("mallory", "d1", &answer("c")),
            Err(FlowError::NotInCall(_))
        ));
        assert!(matches!(
            flow.handle_signal("bob", "d9", &answer("c")),
            Err(FlowError::NotInCall(_))
        ));
        assert_eq!(flow.state(), &CallState::Calling);
    }

    #[test]
    fn candidates_before_the_answer_wait_for_it() {
        let now = Instant::now();
        let mut flow = CallFlow::outgoing(now, "c", "bob", vec!["d1".into()], RING_TIMEOUT);
        let candidate = CallSignal::Candidate {
            call_id: "c".into(),
            candidate: "candidate:1 1 udp 1 10.0.0.2 5000 typ srflx".into(),
        };
        flow.handle_signal("bob", "d1", &candidate).unwrap();
        assert!(drain(&mut flow).is_empty());
        flow.handle_signal("bob", "d1", &answer("c")).unwrap();
        let actions = drain(&mut flow);
        assert!(matches!(
            actions.last(),
            Some(CallAction::RemoteCandidate(_))
        ));
    }

    #[test]
    fn callee_answer_then_remote_hangup() {
        let now = Instant::now();
        let mut flow = CallFlow::incoming(now, "c", "alice", "a1", RING_TIMEOUT);
        assert!(matches!(
            drain(&mut flow).as_slice(),
            [CallAction::Send {
                signal: CallSignal::Ringing { .. },
                ..
            }]
        ));
        flow.answer("v=0 answer".into());
        flow.media_connected();
        assert_eq!(flow.state(), &CallState::Active);
        assert_eq!(flow.poll_timeout(), None);
        flow.handle_signal(
            "alice",
            "a1",
            &CallSignal::Hangup {
                call_id: "c".into(),
                reason: HangupReason::Normal,
            },
        )
        .unwrap();
        assert_eq!(flow.state(), &CallState::Ended(EndReason::RemoteHangup));
    }
}
