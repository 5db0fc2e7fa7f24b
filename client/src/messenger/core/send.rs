//! Sending: finding the recipients' devices, starting Olm sessions with
//! them, and encrypting pairwise (Olm) or once for a group (Megolm).

use std::collections::{BTreeSet, VecDeque};

use parley_wire::api::{
    self, ClaimRequest, ClaimedKey, DeviceInfo, OutgoingEnvelope, SendRequest, SendResponse,
};

use super::{Core, HttpRequest, Operation, Response, Step, parse};
use crate::call::signal::CallSignal;
use crate::group_sessions::{self, KeyShare};
use crate::messenger::MessengerError;
use crate::payload::Payload;

/// Looks up the devices of some users and remembers their identity keys
/// (trusted on first use; a changed key is refused).
struct Directory {
    handles: VecDeque<String>,
    asked: Option<String>,
    found: Vec<DeviceInfo>,
}

impl Directory {
    /// The devices of `handles` (and of this user, when `include_own`),
    /// this device excluded.
    fn new(core: &Core, handles: &[&str], include_own: bool) -> Self {
        let mut unique = BTreeSet::new();
        let own = include_own.then_some(core.state.handle.as_str());
        let handles = handles
            .iter()
            .copied()
            .chain(own)
            .filter(|h| unique.insert(h.to_string()))
            .map(str::to_string)
            .collect();
        Self {
            handles,
            asked: None,
            found: Vec::new(),
        }
    }

    fn poll(&mut self) -> Option<HttpRequest> {
        let handle = self.handles.pop_front()?;
        let request = HttpRequest::get(format!("/v1/users/{handle}/devices"), "device list");
        self.asked = Some(handle);
        Some(request)
    }

    fn handle_response(
        &mut self,
        core: &mut Core,
        response: Response,
    ) -> Result<(), MessengerError> {
        let handle = self.asked.take().expect("an answer with no request out");
        let devices: Vec<DeviceInfo> = parse(response, "device list")?;
        if devices.is_empty() && handle != core.state.handle {
            return Err(MessengerError::NoDevices(handle));
        }
        for device in devices {
            if device.device_id != core.state.device_id {
                core.olm.remember(&device)?;
                self.found.push(device);
            }
        }
        Ok(())
    }
}

/// Makes sure there is an Olm session with each of some devices, claiming
/// a one-time key for each that lacks one.
struct Sessions {
    devices: Vec<String>,
    claimed: bool,
}

impl Sessions {
    fn new(devices: Vec<String>) -> Self {
        Self {
            devices,
            claimed: false,
        }
    }

    /// The claim to make, once; `None` when every session exists.
    fn poll(&mut self, core: &Core) -> Option<HttpRequest> {
        if self.claimed {
            return None;
        }
        self.claimed = true;
        let missing: Vec<String> = self
            .devices
            .iter()
            .filter(|d| !core.olm.has_session(d))
            .cloned()
            .collect();
        if missing.is_empty() {
            return None;
        }
        let request = ClaimRequest {
            device_ids: missing,
        };
        Some(HttpRequest::post("/v1/keys/claim", &request, "key claim"))
    }

    fn handle_response(
        &mut self,
        core: &mut Core,
        response: Response,
    ) -> Result<(), MessengerError> {
        let claimed: Vec<ClaimedKey> = parse(response, "key claim")?;
        for key in &claimed {
            core.olm.start_session(key)?;
        }
        Ok(())
    }
}

/// Whom a [`Send`] goes to.
#[derive(Debug, Clone)]
pub enum Recipients {
    /// Every device of these users and this user's other devices.
    Users(Vec<String>),
    /// One device of a user (a call signal's answer goes to the device
    /// that rang).
    Device {
        /// Its user.
        handle: String,
        /// The device.
        device_id: String,
    },
}

/// Encrypts a payload pairwise for its recipients' devices and, unless
/// asked only to prepare, stores the envelopes on the server.
pub struct Send {
    payload: Payload,
    recipients: Recipients,
    submit: bool,
    stage: SendStage,
}

enum SendStage {
    Start,
    Directory(Directory),
    Sessions(Sessions),
    AwaitClaim(Sessions),
    /// Saved the moved ratchets: submit next.
    Submit(Vec<OutgoingEnvelope>),
    AwaitSubmit(Vec<OutgoingEnvelope>),
    Finished(Vec<OutgoingEnvelope>),
    Taken,
}

impl Send {
    /// Sends `payload` to `recipients`.
    pub fn new(payload: Payload, recipients: Recipients) -> Self {
        Self {
            payload,
            recipients,
            submit: true,
            stage: SendStage::Start,
        }
    }

    /// Encrypts without submitting: the output is the envelopes, which the
    /// caller may submit (and resubmit) itself.
    pub fn prepare_only(mut self) -> Self {
        self.submit = false;
        self
    }

    /// A text message from this user to `to`.
    pub fn text(to: &str, text: &str, now_ms: i64) -> (String, Self) {
        let id = uuid::Uuid::new_v4().to_string();
        let payload = Payload::Text {
            id: id.clone(),
            sent_at: now_ms,
            to: to.to_string(),
            group: None,
            text: text.to_string(),
        };
        (
            id,
            Self::new(payload, Recipients::Users(vec![to.to_string()])),
        )
    }

    /// A call signal to one device of `handle`.
    pub fn call_signal(handle: &str, device_id: &str, signal: CallSignal) -> Self {
        let payload = Payload::Call {
            id: uuid::Uuid::new_v4().to_string(),
            signal,
        };
        let recipients = Recipients::Device {
            handle: handle.to_string(),
            device_id: device_id.to_string(),
        };
        Self::new(payload, recipients)
    }

    /// The devices to encrypt for, once the directory has answered.
    fn targets(&self, core: &Core, found: Vec<DeviceInfo>) -> Result<Vec<String>, MessengerError> {
        match &self.recipients {
            Recipients::Users(_) => Ok(found.into_iter().map(|d| d.device_id).collect()),
            Recipients::Device { handle, device_id } => {
                if core.olm.known(device_id).is_none() {
                    return Err(MessengerError::Protocol(format!(
                        "device {device_id} is not one of {handle}'s"
                    )));
                }
                Ok(vec![device_id.clone()])
            }
        }
    }
}

impl Operation for Send {
    type Output = Vec<OutgoingEnvelope>;

    fn poll(&mut self, core: &mut Core) -> Result<Step<Self::Output>, MessengerError> {
        loop {
            match std::mem::replace(&mut self.stage, SendStage::Taken) {
                SendStage::Start => {
                    self.stage = match &self.recipients {
                        Recipients::Users(handles) => {
                            let handles: Vec<&str> = handles.iter().map(String::as_str).collect();
                            SendStage::Directory(Directory::new(core, &handles, true))
                        }
                        // A device already known needs no lookup.
                        Recipients::Device { device_id, .. }
                            if core.olm.known(device_id).is_some() =>
                        {
                            SendStage::Sessions(Sessions::new(vec![device_id.clone()]))
                        }
                        Recipients::Device { handle, .. } => {
                            SendStage::Directory(Directory::new(core, &[handle], false))
                        }
                    };
                }
                SendStage::Directory(mut directory) => {
                    if let Some(request) = directory.poll() {
                        self.stage = SendStage::Directory(directory);
                        return Ok(Step::Http(request));
                    }
                    let targets = self.targets(core, directory.found)?;
                    self.stage = SendStage::Sessions(Sessions::new(targets));
                }
                SendStage::Sessions(mut sessions) => {
                    if let Some(request) = sessions.poll(core) {
                        self.stage = SendStage::AwaitClaim(sessions);
                        return Ok(Step::Http(request));
                    }
                    let envelopes = core.encrypt_pairwise(&sessions.devices, &self.payload)?;
                    // The ratchets moved: persist before anything leaves
                    // the device.
                    self.stage = if self.submit {
                        SendStage::Submit(envelopes)
                    } else {
                        SendStage::Finished(envelopes)
                    };
                    return Ok(Step::Persist);
                }
                SendStage::Submit(envelopes) => {
                    let request = HttpRequest::post(
                        "/v1/messages",
                        &SendRequest {
                            envelopes: envelopes.clone(),
                        },
                        "send",
                    );
                    self.stage = SendStage::AwaitSubmit(envelopes);
                    return Ok(Step::Http(request));
                }
                SendStage::Finished(envelopes) => return Ok(Step::Done(envelopes)),
                SendStage::AwaitClaim(_) | SendStage::AwaitSubmit(_) | SendStage::Taken => {
                    unreachable!("polled before the answer was handled")
                }
            }
        }
    }

    fn handle_response(
        &mut self,
        core: &mut Core,
        response: Response,
    ) -> Result<(), MessengerError> {
        match &mut self.stage {
            SendStage::Directory(directory) => directory.handle_response(core, response),
            SendStage::AwaitClaim(_) => {
                let SendStage::AwaitClaim(mut sessions) =
                    std::mem::replace(&mut self.stage, SendStage::Taken)
                else {
                    unreachable!()
                };
                sessions.handle_response(core, response)?;
                self.stage = SendStage::Sessions(sessions);
                Ok(())
            }
            SendStage::AwaitSubmit(_) => {
                let _: SendResponse = parse(response, "send")?;
                let SendStage::AwaitSubmit(envelopes) =
                    std::mem::replace(&mut self.stage, SendStage::Taken)
                else {
                    unreachable!()
                };
                self.stage = SendStage::Finished(envelopes);
                Ok(())
            }
            _ => unreachable!("an answer with no request out"),
        }
    }
}

/// The devices a call to a user rings: all of them except this one (for
/// this user's own handle: its other devices). Their identity keys are
/// remembered on the way.
pub struct CallDevices {
    directory: Directory,
}

impl CallDevices {
    /// The devices of `handle`.
    pub fn new(core: &Core, handle: &str) -> Self {
        Self {
            directory: Directory::new(core, &[handle], false),
        }
    }
}

impl Operation for CallDevices {
    type Output = Vec<String>;

    fn poll(&mut self, _: &mut Core) -> Result<Step<Vec<String>>, MessengerError> {
        if let Some(request) = self.directory.poll() {
            return Ok(Step::Http(request));
        }
        let found = std::mem::take(&mut self.directory.found);
        Ok(Step::Done(found.into_iter().map(|d| d.device_id).collect()))
    }

    fn handle_response(
        &mut self,
        core: &mut Core,
        response: Response,
    ) -> Result<(), MessengerError> {
        self.directory.handle_response(core, response)
    }
}

/// Sends a text to a group: Megolm-encrypted once for every member
/// device (and this user's other devices), with the session key shared
/// over Olm with the devices that lack it, after replacing the session if
/// a device has left. Key shares and the message go in one request, which
/// the server stores in order, so each device gets its key first.
pub struct GroupSend {
    group_id: String,
    id: String,
    text: String,
    now_ms: i64,
    stage: GroupStage,
}

enum GroupStage {
    Start,
    AwaitGroup,
    Directory(Directory),
    Sessions {
        sessions: Sessions,
        devices: BTreeSet<String>,
        key: KeyShare,
    },
    AwaitClaim {
        sessions: Sessions,
        devices: BTreeSet<String>,
        key: KeyShare,
    },
    Submit {
        envelopes: Vec<OutgoingEnvelope>,
        needs_key: Vec<String>,
    },
    AwaitSubmit {
        needs_key: Vec<String>,
    },
    Shared,
    Finished,
}

impl GroupSend {
    /// `text` to `group_id`; the output is the message id.
    pub fn new(group_id: &str, text: &str, now_ms: i64) -> Self {
        Self {
            group_id: group_id.to_string(),
            id: uuid::Uuid::new_v4().to_string(),
            text: text.to_string(),
            now_ms,
            stage: GroupStage::Start,
        }
    }

    /// The key shares for `needs_key` and the message for `devices`.
    fn envelopes(
        &self,
        core: &mut Core,
        devices: &BTreeSet<String>,
        needs_key: &[String],
        key: KeyShare,
    ) -> Result<Vec<OutgoingEnvelope>, MessengerError> {
        let key_payload = Payload::GroupKey {
            group_id: self.group_id.clone(),
            session_id: key.session_id,
            session_key: key.session_key,
        };
        let mut envelopes = core.encrypt_pairwise(needs_key, &key_payload)?;
        let payload = Payload::Text {
            id: self.id.clone(),
            sent_at: self.now_ms,
            to: self.group_id.clone(),
            group: Some(self.group_id.clone()),
            text: self.text.clone(),
        };
        let plaintext = serde_json::to_vec(&payload).expect("payloads always serialize");
        let ciphertext = core
            .groups
            .encrypt(&self.group_id, &plaintext)
            .expect("prepare made the outbound session");
        let ciphertext = group_sessions::encode(&ciphertext);
        for device in devices {
            envelopes.push(OutgoingEnvelope {
                id: uuid::Uuid::new_v4().to_string(),
                to_device: device.clone(),
                kind: api::kind::MEGOLM,
                ciphertext: ciphertext.clone(),
                group_id: Some(self.group_id.clone()),
            });
        }
        Ok(envelopes)
    }
}

impl Operation for GroupSend {
    type Output = String;

    fn poll(&mut self, core: &mut Core) -> Result<Step<String>, MessengerError> {
        loop {
            match std::mem::replace(&mut self.stage, GroupStage::Finished) {
                GroupStage::Start => {
                    self.stage = GroupStage::AwaitGroup;
                    let path = format!("/v1/groups/{}", self.group_id);
                    return Ok(Step::Http(HttpRequest::get(path, "group")));
                }
                GroupStage::Directory(mut directory) => {
                    if let Some(request) = directory.poll() {
                        self.stage = GroupStage::Directory(directory);
                        return Ok(Step::Http(request));
                    }
                    let devices: BTreeSet<String> =
                        directory.found.into_iter().map(|d| d.device_id).collect();
                    let (key, needs_key) = core.groups.prepare(&self.group_id, &devices);
                    self.stage = GroupStage::Sessions {
                        sessions: Sessions::new(needs_key),
                        devices,
                        key,
                    };
                }
                GroupStage::Sessions {
                    mut sessions,
                    devices,
                    key,
                } => {
                    if let Some(request) = sessions.poll(core) {
                        self.stage = GroupStage::AwaitClaim {
                            sessions,
                            devices,
                            key,
                        };
                        return Ok(Step::Http(request));
                    }
                    let envelopes = self.envelopes(core, &devices, &sessions.devices, key)?;
                    self.stage = GroupStage::Submit {
                        envelopes,
                        needs_key: sessions.devices,
                    };
                    return Ok(Step::Persist);
                }
                GroupStage::Submit {
                    envelopes,
                    needs_key,
                } => {
                    self.stage = GroupStage::AwaitSubmit { needs_key };
                    let request =
                        HttpRequest::post("/v1/messages", &SendRequest { envelopes }, "send");
                    return Ok(Step::Http(request));
                }
                GroupStage::Shared => {
                    self.stage = GroupStage::Finished;
                    return Ok(Step::Persist);
                }
                GroupStage::Finished => return Ok(Step::Done(self.id.clone())),
                GroupStage::AwaitGroup
                | GroupStage::AwaitClaim { .. }
                | GroupStage::AwaitSubmit { .. } => {
                    unreachable!("polled before the answer was handled")
                }
            }
        }
    }

    fn handle_response(
        &mut self,
        core: &mut Core,
        response: Response,
    ) -> Result<(), MessengerError> {
        match std::mem::replace(&mut self.stage, GroupStage::Finished) {
            GroupStage::AwaitGroup => {
                let group: api::GroupInfo = parse(response, "group")?;
                let members: Vec<&str> = group.members.iter().map(String::as_str).collect();
                self.stage = GroupStage::Directory(Directory::new(core, &members, true));
            }
            GroupStage::Directory(mut directory) => {
                directory.handle_response(core, response)?;
                self.stage = GroupStage::Directory(directory);
            }
            GroupStage::AwaitClaim {
                mut sessions,
                devices,
                key,
            } => {
                sessions.handle_response(core, response)?;
                self.stage = GroupStage::Sessions {
                    sessions,
                    devices,
                    key,
                };
            }
            GroupStage::AwaitSubmit { needs_key } => {
                let _: SendResponse = parse(response, "send")?;
                core.groups.mark_shared(&self.group_id, &needs_key);
                self.stage = GroupStage::Shared;
            }
            _ => unreachable!("an answer with no request out"),
        }
        Ok(())
    }
}
