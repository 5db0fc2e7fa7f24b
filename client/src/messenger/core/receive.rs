//! Receiving: opening envelopes, dropping duplicates, acking, and the
//! receipts owed for what arrived.

use std::collections::{BTreeMap, VecDeque};

use parley_wire::api::{AckRequest, ClientFrame, DeviceInfo, Envelope, ServerFrame};

use super::send::{Recipients, Send};
use super::{Core, HttpRequest, Operation, Response, Step, parse};
use crate::messenger::{Event, MessengerError};
use crate::payload::{Payload, ReceiptStatus};

/// Decrypts one envelope, looking its sender up first if the device is
/// new. The output is `None` for duplicates and key shares.
pub struct Open {
    envelope: Envelope,
    looked_up: bool,
}

impl Open {
    /// Opens `envelope`.
    pub fn new(envelope: Envelope) -> Self {
        Self {
            envelope,
            looked_up: false,
        }
    }
}

impl Operation for Open {
    type Output = Option<Event>;

    fn poll(&mut self, core: &mut Core) -> Result<Step<Option<Event>>, MessengerError> {
        let dedupe = Core::envelope_dedupe_id(&self.envelope);
        if core.state.seen.contains(&dedupe) {
            return Ok(Step::Done(None));
        }
        let sender = match core.olm.known(&self.envelope.from_device) {
            Some(sender) => sender.clone(),
            None if !self.looked_up => {
                let path = format!("/v1/users/{}/devices", self.envelope.from_handle);
                return Ok(Step::Http(HttpRequest::get(path, "device list")));
            }
            None => unreachable!("handle_response remembered the sender or failed"),
        };
        let payload = core.decrypt_payload(&self.envelope)?;
        core.first_sighting_of(dedupe);
        Ok(Step::Done(core.take_payload(sender, payload)?))
    }

    fn handle_response(
        &mut self,
        core: &mut Core,
        response: Response,
    ) -> Result<(), MessengerError> {
        self.looked_up = true;
        let devices: Vec<DeviceInfo> = parse(response, "device list")?;
        let device = devices
            .into_iter()
            .find(|d| d.device_id == self.envelope.from_device)
            .ok_or_else(|| {
                MessengerError::Protocol(format!(
                    "device {} is not one of {}'s",
                    self.envelope.from_device, self.envelope.from_handle
                ))
            })?;
        core.olm.remember(&device)?;
        Ok(())
    }
}

/// Receipts to their senders: one per sender, which is itself never
/// answered with a receipt.
pub struct Receipts {
    sends: VecDeque<Send>,
}

impl Receipts {
    /// `status` for `messages` (sender handle, message id).
    pub fn new(messages: Vec<(String, String)>, status: ReceiptStatus) -> Self {
        let mut by_sender: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (from, id) in messages {
            by_sender.entry(from).or_default().push(id);
        }
        let sends = by_sender
            .into_iter()
            .map(|(from, ids)| {
                Send::new(
                    Payload::Receipt { ids, status },
                    Recipients::Users(vec![from]),
                )
            })
            .collect();
        Self { sends }
    }
}

impl Operation for Receipts {
    type Output = ();

    fn poll(&mut self, core: &mut Core) -> Result<Step<()>, MessengerError> {
        while let Some(send) = self.sends.front_mut() {
            match send.poll(core)? {
                Step::Done(_) => {
                    self.sends.pop_front();
                }
                step => return Ok(step.forward()),
            }
        }
        Ok(Step::Done(()))
    }

    fn handle_response(
        &mut self,
        core: &mut Core,
        response: Response,
    ) -> Result<(), MessengerError> {
        let send = self
            .sends
            .front_mut()
            .expect("an answer with no request out");
        send.handle_response(core, response)
    }
}

/// Handles one websocket frame: decrypts an envelope, saves, acks it, and
/// sends delivery receipts once the backlog is drained (and then as each
/// message arrives). An envelope that can never be decrypted is dropped
/// and reported as [`Event::Undecryptable`] rather than blocking the queue
/// for ever.
pub struct Receive {
    stage: ReceiveStage,
    events: Vec<Event>,
}

enum ReceiveStage {
    Open(Box<Open>),
    /// Persist before the ack: the ratchet moved and the id is in `seen`.
    Save(String),
    Ack(String),
    Receipts(Receipts),
    Finished,
}

impl Receive {
    /// Handles `frame`.
    pub fn new(core: &mut Core, frame: ServerFrame) -> Self {
        let stage = match frame {
            ServerFrame::Envelope(envelope) => ReceiveStage::Open(Box::new(Open::new(envelope))),
            ServerFrame::Drained => {
                core.inbox.drained = true;
                Self::receipts_due(core)
            }
            ServerFrame::Stored { .. } => ReceiveStage::Finished,
            ServerFrame::Error(e) => {
                tracing::warn!(error = %e.error, message = %e.message, "server error");
                ReceiveStage::Finished
            }
        };
        Self {
            stage,
            events: Vec::new(),
        }
    }

    fn receipts_due(core: &mut Core) -> ReceiveStage {
        if !core.inbox.drained || core.inbox.owed_receipts.is_empty() {
            return ReceiveStage::Finished;
        }
        let owed = std::mem::take(&mut core.inbox.owed_receipts);
        ReceiveStage::Receipts(Receipts::new(owed, ReceiptStatus::Delivered))
    }

    /// The envelope is opened (or failed to): record what it was, then
    /// save and ack.
    fn opened(
        &mut self,
        core: &mut Core,
        envelope: &Envelope,
        opened: Result<Option<Event>, MessengerError>,
    ) {
        match opened {
            Ok(Some(event)) => {
                if let Event::Message(m) = &event
                    && m.from != core.state.handle
                {
                    core.inbox
                        .owed_receipts
                        .push((m.from.clone(), m.id.clone()));
                }
                self.events.push(event);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(envelope = %envelope.id, error = %e, "dropping undecryptable envelope");
                self.events.push(Event::Undecryptable {
                    from: envelope.from_handle.clone(),
                    from_device: envelope.from_device.clone(),
                    reason: e.to_string(),
                });
            }
        }
        self.stage = ReceiveStage::Save(envelope.id.clone());
    }
}

impl Operation for Receive {
    type Output = Vec<Event>;

    fn poll(&mut self, core: &mut Core) -> Result<Step<Vec<Event>>, MessengerError> {
        match std::mem::replace(&mut self.stage, ReceiveStage::Finished) {
            ReceiveStage::Open(mut open) => match open.poll(core) {
                Ok(Step::Done(event)) => {
                    self.opened(core, &open.envelope, Ok(event));
                    self.poll(core)
                }
                Ok(step) => {
                    self.stage = ReceiveStage::Open(open);
                    Ok(step.forward())
                }
                Err(e) => {
                    self.opened(core, &open.envelope, Err(e));
                    self.poll(core)
                }
            },
            ReceiveStage::Save(id) => {
                self.stage = ReceiveStage::Ack(id);
                Ok(Step::Persist)
            }
            ReceiveStage::Ack(id) => {
                self.stage = Self::receipts_due(core);
                Ok(Step::Frame(ClientFrame::Ack { ids: vec![id] }))
            }
            ReceiveStage::Receipts(mut receipts) => match receipts.poll(core)? {
                Step::Done(()) => Ok(Step::Done(std::mem::take(&mut self.events))),
                step => {
                    self.stage = ReceiveStage::Receipts(receipts);
                    Ok(step.forward())
                }
            },
            ReceiveStage::Finished => Ok(Step::Done(std::mem::take(&mut self.events))),
        }
    }

    fn handle_response(
        &mut self,
        core: &mut Core,
        response: Response,
    ) -> Result<(), MessengerError> {
        match &mut self.stage {
            ReceiveStage::Open(open) => {
                if let Err(e) = open.handle_response(core, response) {
                    let open = std::mem::replace(&mut self.stage, ReceiveStage::Finished);
                    let ReceiveStage::Open(open) = open else {
                        unreachable!("matched above")
                    };
                    self.opened(core, &open.envelope, Err(e));
                }
                Ok(())
            }
            ReceiveStage::Receipts(receipts) => receipts.handle_response(core, response),
            _ => unreachable!("an answer with no request out"),
        }
    }
}

/// Acks envelopes over HTTP (for clients that poll instead of holding a
/// websocket).
pub fn ack_request(core: &Core, ids: Vec<String>) -> HttpRequest {
    let path = format!("/v1/devices/{}/messages/ack", core.state.device_id);
    HttpRequest::post(path, &AckRequest { ids }, "ack")
}
