//! The device's standing with the server: signing in, and keeping its
//! one-time keys stocked.

use parley_wire::api::{self, ChallengeRequest, KeyCount, Token, TokenRequest, UploadKeys};

use super::{
    Core, HttpRequest, ONE_TIME_KEY_LOW, ONE_TIME_KEY_TARGET, Operation, Response, Step, parse,
};
use crate::messenger::MessengerError;

/// Signs in: a challenge, signed with the device's Ed25519 key, for a
/// token. The token is saved, so a restart does not sign in again.
pub struct SignIn {
    challenge: Option<String>,
    token: Option<String>,
    saved: bool,
}

impl SignIn {
    /// A fresh sign-in.
    pub fn new() -> Self {
        Self {
            challenge: None,
            token: None,
            saved: false,
        }
    }
}

impl Default for SignIn {
    fn default() -> Self {
        Self::new()
    }
}

impl Operation for SignIn {
    type Output = String;

    fn poll(&mut self, core: &mut Core) -> Result<Step<String>, MessengerError> {
        let device_id = core.state.device_id.clone();
        if let Some(token) = &self.token {
            if !self.saved {
                self.saved = true;
                return Ok(Step::Persist);
            }
            return Ok(Step::Done(token.clone()));
        }
        let Some(challenge) = self.challenge.clone() else {
            let request = ChallengeRequest { device_id };
            return Ok(Step::Http(
                HttpRequest::post("/v1/auth/challenge", &request, "sign-in challenge").anonymous(),
            ));
        };
        let signature = core
            .olm
            .sign(&api::challenge_message(&device_id, &challenge));
        let request = TokenRequest {
            device_id,
            challenge,
            signature,
        };
        Ok(Step::Http(
            HttpRequest::post("/v1/auth/token", &request, "sign-in").anonymous(),
        ))
    }

    fn handle_response(
        &mut self,
        core: &mut Core,
        response: Response,
    ) -> Result<(), MessengerError> {
        if self.challenge.is_none() {
            let challenge: api::Challenge = parse(response, "sign-in challenge")?;
            self.challenge = Some(challenge.challenge);
        } else {
            let token: Token = parse(response, "sign-in")?;
            self.token = Some(token.token.clone());
            core.state.token = Some(token);
        }
        Ok(())
    }
}

/// Keeps the server stocked with one-time keys (topped up to
/// [`ONE_TIME_KEY_TARGET`] when fewer than [`ONE_TIME_KEY_LOW`] remain) and
/// publishes a new fallback key.
pub struct PublishKeys {
    stage: PublishStage,
}

enum PublishStage {
    Count,
    AwaitCount,
    /// New private halves to save before their public halves go out.
    Save(UploadKeys),
    Upload(UploadKeys),
    AwaitUpload(UploadKeys),
    Published,
    Finished,
}

impl PublishKeys {
    /// Counts the keys the server holds and tops up.
    pub fn new() -> Self {
        Self {
            stage: PublishStage::Count,
        }
    }
}

impl Default for PublishKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl Operation for PublishKeys {
    type Output = ();

    fn poll(&mut self, _: &mut Core) -> Result<Step<()>, MessengerError> {
        match std::mem::replace(&mut self.stage, PublishStage::Finished) {
            PublishStage::Count => {
                self.stage = PublishStage::AwaitCount;
                Ok(Step::Http(HttpRequest::get("/v1/keys/count", "key count")))
            }
            PublishStage::Save(upload) => {
                self.stage = PublishStage::Upload(upload);
                Ok(Step::Persist)
            }
            PublishStage::Upload(upload) => {
                let request = HttpRequest::post("/v1/keys", &upload, "key upload");
                self.stage = PublishStage::AwaitUpload(upload);
                Ok(Step::Http(request))
            }
            PublishStage::Published => Ok(Step::Persist),
            PublishStage::Finished => Ok(Step::Done(())),
            PublishStage::AwaitCount | PublishStage::AwaitUpload(_) => {
                unreachable!("polled before the answer was handled")
            }
        }
    }

    fn handle_response(
        &mut self,
        core: &mut Core,
        response: Response,
    ) -> Result<(), MessengerError> {
        match std::mem::replace(&mut self.stage, PublishStage::Finished) {
            PublishStage::AwaitCount => {
                let count: KeyCount = parse(response, "key count")?;
                let device_id = core.state.device_id.clone();
                let fallback_key = core.olm.fallback_key(&device_id);
                let wanted = if count.one_time_keys < ONE_TIME_KEY_LOW {
                    (ONE_TIME_KEY_TARGET - count.one_time_keys) as usize
                } else {
                    0
                };
                let one_time_keys = core.olm.one_time_keys(wanted);
                if !one_time_keys.is_empty() || fallback_key.is_some() {
                    // The private halves must be on disk before anyone
                    // can claim the public ones.
                    self.stage = PublishStage::Save(UploadKeys {
                        one_time_keys,
                        fallback_key,
                    });
                    return Ok(());
                }
            }
            PublishStage::AwaitUpload(upload) => {
                let _: KeyCount = parse(response, "key upload")?;
                core.olm.mark_published(upload.fallback_key.as_ref());
                self.stage = PublishStage::Published;
            }
            _ => unreachable!("an answer with no request out"),
        }
        Ok(())
    }
}
