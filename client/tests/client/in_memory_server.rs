//! The Parley server's messaging rules held in memory, for driving the
//! messaging core without a network: a device directory, one-time and
//! fallback keys (a claim takes a one-time key, else the fallback), per-
//! device queues in arrival order, and groups. It answers the core's
//! requests the way the real server does for a well-behaved client; the
//! real server's own behaviour is tested in `signaling/tests/server`.

use std::collections::BTreeMap;

use parley_client::messenger::core::{
    Core, HttpRequest, Method, Operation, Refusal, Response, Step,
};
use parley_client::olm_machine::OlmMachine;
use parley_wire::api::{
    self, ClaimRequest, ClaimedKey, ClientFrame, DeviceCreated, DeviceInfo, Envelope, GroupInfo,
    KeyCount, SendRequest, SendResponse, SignedKey, UploadKeys,
};
use serde_json::json;

/// What a driven operation did, in order, for tests of ordering (saves
/// before sends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Did {
    /// A request: method and path.
    Http(Method, String),
    /// A websocket frame.
    Frame(ClientFrame),
    /// Saved the core.
    Persist,
}

#[derive(Default)]
pub struct InMemoryServer {
    devices: BTreeMap<String, Vec<DeviceInfo>>,
    one_time_keys: BTreeMap<String, Vec<(String, String)>>,
    fallback_keys: BTreeMap<String, SignedKey>,
    queues: BTreeMap<String, Vec<Envelope>>,
    groups: BTreeMap<String, Vec<String>>,
    next_id: u64,
}

impl InMemoryServer {
    /// When every token it issues expires, unix milliseconds.
    pub const TOKEN_EXPIRES_AT: i64 = 3_600_000;

    /// Registers a device of `handle` and publishes its keys.
    pub fn register(&mut self, handle: &str) -> Core {
        let olm = OlmMachine::new();
        self.next_id += 1;
        let created = DeviceCreated {
            user_id: format!("user-{handle}"),
            device_id: format!("{handle}-device-{}", self.next_id),
        };
        let mut core = Core::new("http://in-memory", handle, created, olm);
        self.devices
            .entry(handle.to_string())
            .or_default()
            .push(core.device_info());
        let op = parley_client::messenger::core::PublishKeys::new();
        self.drive(&mut core, op);
        core
    }

    /// Makes a group of `members`.
    pub fn group(&mut self, group_id: &str, members: &[&str]) {
        let members = members.iter().map(|m| m.to_string()).collect();
        self.groups.insert(group_id.to_string(), members);
    }

    /// Removes a member from a group.
    pub fn leave(&mut self, group_id: &str, handle: &str) {
        if let Some(members) = self.groups.get_mut(group_id) {
            members.retain(|m| m != handle);
        }
    }

    /// The envelopes queued for a device, oldest first.
    pub fn queue(&self, device_id: &str) -> Vec<Envelope> {
        self.queues.get(device_id).cloned().unwrap_or_default()
    }

    /// Takes `n` of a device's one-time keys, as claims by others would.
    pub fn take_one_time_keys(&mut self, device_id: &str, n: usize) {
        let keys = self.one_time_keys.entry(device_id.to_string()).or_default();
        keys.truncate(keys.len().saturating_sub(n));
    }

    /// One-time keys the server holds for a device.
    pub fn one_time_keys(&self, device_id: &str) -> usize {
        self.one_time_keys.get(device_id).map_or(0, Vec::len)
    }

    /// Runs `op` for `core` to completion: its output and what it did.
    pub fn drive<O: Operation>(&mut self, core: &mut Core, mut op: O) -> (O::Output, Vec<Did>) {
        let mut did = Vec::new();
        for _ in 0..1_000 {
            match op.poll(core).expect("operation fails") {
                Step::Done(output) => return (output, did),
                Step::Persist => did.push(Did::Persist),
                Step::Frame(frame) => {
                    if let ClientFrame::Ack { ids } = &frame {
                        self.queues
                            .entry(core.device_id().to_string())
                            .or_default()
                            .retain(|e| !ids.contains(&e.id));
                    }
                    did.push(Did::Frame(frame));
                }
                Step::Http(request) => {
                    did.push(Did::Http(request.method, request.path.clone()));
                    let response = self.answer(core, &request);
                    op.handle_response(core, response)
                        .expect("operation takes its answer");
                }
            }
        }
        panic!("operation did not finish in 1,000 steps");
    }

    fn answer(&mut self, core: &Core, request: &HttpRequest) -> Response {
        let device = core.device_id().to_string();
        let body = request.body.clone().unwrap_or(json!(null));
        let path: Vec<&str> = request.path.trim_start_matches("/v1/").split('/').collect();
        let ok = |v: serde_json::Value| Ok(v);
        match (request.method, path.as_slice()) {
            (Method::Get, ["keys", "count"]) => ok(json!(KeyCount {
                one_time_keys: self.one_time_keys(&device) as i64
            })),
            (Method::Post, ["keys"]) => {
                let upload: UploadKeys = serde_json::from_value(body).unwrap();
                let keys = self.one_time_keys.entry(device.clone()).or_default();
                keys.extend(upload.one_time_keys);
                if let Some(fallback) = upload.fallback_key {
                    self.fallback_keys.insert(device.clone(), fallback);
                }
                ok(json!(KeyCount {
                    one_time_keys: self.one_time_keys(&device) as i64
                }))
            }
            (Method::Get, ["users", handle, "devices"]) => ok(json!(
                self.devices.get(*handle).cloned().unwrap_or_default()
            )),
            (Method::Post, ["keys", "claim"]) => {
                let claim: ClaimRequest = serde_json::from_value(body).unwrap();
                let mut claimed = Vec::new();
                for id in claim.device_ids {
                    let Some(info) = self.devices.values().flatten().find(|d| d.device_id == id)
                    else {
                        continue;
                    };
                    let info = info.clone();
                    let one_time = self.one_time_keys.get_mut(&id).and_then(Vec::pop);
                    let key = match (one_time, self.fallback_keys.get(&id)) {
                        (Some((key_id, key)), _) => (key_id, key, None),
                        (None, Some(f)) => {
                            (f.key_id.clone(), f.key.clone(), Some(f.signature.clone()))
                        }
                        (None, None) => continue,
                    };
                    claimed.push(ClaimedKey {
                        device: info,
                        key_id: key.0,
                        key: key.1,
                        fallback_signature: key.2,
                    });
                }
                ok(json!(claimed))
            }
            (Method::Post, ["messages"]) => {
                let send: SendRequest = serde_json::from_value(body).unwrap();
                let handle = core.handle().to_string();
                let mut stored = Vec::new();
                for e in send.envelopes {
                    stored.push(e.id.clone());
                    self.queues
                        .entry(e.to_device.clone())
                        .or_default()
                        .push(Envelope {
                            id: e.id,
                            from_device: device.clone(),
                            from_handle: handle.clone(),
                            kind: e.kind,
                            ciphertext: e.ciphertext,
                            group_id: e.group_id,
                            server_ts: 0,
                        });
                }
                ok(json!(SendResponse { stored }))
            }
            (Method::Get, ["groups", id]) => match self.groups.get(*id) {
                Some(members) => ok(json!(GroupInfo {
                    group_id: id.to_string(),
                    name: id.to_string(),
                    owner: members[0].clone(),
                    members: members.clone(),
                })),
                None => Err(refusal(request, 404, "not_found")),
            },
            (Method::Post, ["auth", "challenge"]) => ok(json!(api::Challenge {
                challenge: "in-memory".into()
            })),
            (Method::Post, ["auth", "token"]) => ok(json!(api::Token {
                token: format!("token-{device}"),
                expires_at: Self::TOKEN_EXPIRES_AT,
            })),
            _ => Err(refusal(request, 404, "no_route")),
        }
    }
}

fn refusal(request: &HttpRequest, status: u16, code: &str) -> Refusal {
    Refusal {
        what: request.what,
        status,
        code: code.to_string(),
        message: format!("{} {}", code, request.path),
    }
}
