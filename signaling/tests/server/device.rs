//! A device spoken for in raw HTTP: a vodozemac account that registers,
//! signs challenges and sends envelopes of any bytes, through the wire
//! types alone. The server's own tests need no client SDK (which would
//! make a dependency cycle), and they can send what no SDK would.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use parley_signaling::ServerConfig;
use parley_signaling::server::{RunningServer, Server};
use parley_wire::api::{
    self, Challenge, ChallengeRequest, DeviceCreated, DeviceKeys, Envelope, ErrorBody,
    OutgoingEnvelope, RegisterRequest, SendRequest, SignedKey, Token, TokenRequest, UploadKeys,
};
use vodozemac::olm::Account;

/// A server on `127.0.0.1:0` over a fresh SQLite file (or the database in
/// `PARLEY_TEST_DATABASE_URL`), and the temp dir it lives in.
pub async fn start(config: ServerConfig) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::builder()
        .data_dir(dir.path())
        .database(std::env::var("PARLEY_TEST_DATABASE_URL").ok())
        .config(config)
        .start()
        .await
        .unwrap();
    (server, dir)
}

/// `base` plus a random suffix, so tests sharing a database never collide.
pub fn unique(base: &str) -> String {
    format!("{base}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// The status and the JSON error code of a refused request.
pub async fn refusal(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: ErrorBody = response.json().await.expect("errors are JSON");
    (status, body.error)
}

/// One registered device.
pub struct Device {
    /// The device id the server gave it.
    pub device_id: String,
    /// Its user's handle.
    pub handle: String,
    /// The server's URL.
    pub url: String,
    /// Its Olm account (identity and signing keys).
    pub account: Account,
    http: reqwest::Client,
}

impl Device {
    /// Registers a new user (a unique handle from `base`) with this device.
    pub async fn register(url: &str, base: &str) -> Self {
        let account = Account::new();
        let handle = unique(base);
        let http = reqwest::Client::new();
        let created: DeviceCreated = post(
            &http,
            &format!("{url}/v1/register"),
            &RegisterRequest {
                handle: handle.clone(),
                device: keys_of(&account, &handle),
            },
        )
        .await;
        Self {
            device_id: created.device_id,
            handle,
            url: url.to_string(),
            account,
            http,
        }
    }

    /// `url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// An HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A fresh sign-in challenge for this device.
    pub async fn challenge(&self) -> String {
        let request = ChallengeRequest {
            device_id: self.device_id.clone(),
        };
        let challenge: Challenge = post(&self.http, &self.at("/v1/auth/challenge"), &request).await;
        challenge.challenge
    }

    /// A fresh bearer token: a challenge signed with the device key.
    pub async fn token(&self) -> String {
        let challenge = self.challenge().await;
        let signature = self
            .account
            .sign(api::challenge_message(&self.device_id, &challenge))
            .to_base64();
        let request = TokenRequest {
            device_id: self.device_id.clone(),
            challenge,
            signature,
        };
        let token: Token = post(&self.http, &self.at("/v1/auth/token"), &request).await;
        token.token
    }

    /// Publishes `count` fresh one-time keys and a signed fallback key.
    pub async fn publish_keys(&mut self, token: &str, count: usize) {
        self.account.generate_one_time_keys(count);
        let one_time_keys = self
            .account
            .one_time_keys()
            .into_iter()
            .map(|(id, key)| (id.to_base64(), key.to_base64()))
            .collect();
        self.account.generate_fallback_key();
        let (id, key) = self
            .account
            .fallback_key()
            .into_iter()
            .next()
            .expect("a fallback key was just made");
        let (key_id, key) = (id.to_base64(), key.to_base64());
        let signature = self
            .account
            .sign(api::fallback_key_message(&self.device_id, &key_id, &key))
            .to_base64();
        self.account.mark_keys_as_published();
        let keys = UploadKeys {
            one_time_keys,
            fallback_key: Some(SignedKey {
                key_id,
                key,
                signature,
            }),
        };
        succeed(
            self.http
                .post(self.at("/v1/keys"))
                .bearer_auth(token)
                .json(&keys),
        )
        .await;
    }

    /// Sends one envelope of `bytes` to `to_device` with id `id`.
    pub async fn send(
        &self,
        token: &str,
        to_device: &str,
        id: &str,
        bytes: &[u8],
    ) -> reqwest::Response {
        self.http
            .post(self.at("/v1/messages"))
            .bearer_auth(token)
            .json(&SendRequest {
                envelopes: vec![OutgoingEnvelope {
                    id: id.to_string(),
                    to_device: to_device.to_string(),
                    kind: 1,
                    ciphertext: STANDARD.encode(bytes),
                    group_id: None,
                }],
            })
            .send()
            .await
            .unwrap()
    }

    /// Envelopes to `to_device` with these ids (each a few sealed bytes).
    pub fn envelopes(&self, to_device: &str, ids: &[String]) -> Vec<OutgoingEnvelope> {
        ids.iter()
            .map(|id| OutgoingEnvelope {
                id: id.clone(),
                to_device: to_device.to_string(),
                kind: 1,
                ciphertext: STANDARD.encode(b"sealed"),
                group_id: None,
            })
            .collect()
    }

    /// Sends envelopes with these ids to `to_device` in one request.
    pub async fn send_many(
        &self,
        token: &str,
        to_device: &str,
        ids: &[String],
    ) -> reqwest::Response {
        self.http
            .post(self.at("/v1/messages"))
            .bearer_auth(token)
            .json(&SendRequest {
                envelopes: self.envelopes(to_device, ids),
            })
            .send()
            .await
            .unwrap()
    }

    /// Everything queued for this device, oldest first.
    pub async fn queued(&self, token: &str) -> Vec<Envelope> {
        let request = self
            .http
            .get(self.at(&format!("/v1/devices/{}/messages", self.device_id)))
            .bearer_auth(token);
        succeed(request).await.json().await.unwrap()
    }

    /// Acknowledges (deletes) queued envelopes.
    pub async fn ack(&self, token: &str, ids: Vec<String>) {
        let request = self
            .http
            .post(self.at(&format!("/v1/devices/{}/messages/ack", self.device_id)))
            .bearer_auth(token)
            .json(&api::AckRequest { ids });
        succeed(request).await;
    }
}

/// POSTs `body` as JSON to `url`; the JSON answer, which must be a success.
async fn post<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    body: &impl serde::Serialize,
) -> T {
    succeed(http.post(url).json(body))
        .await
        .json()
        .await
        .unwrap()
}

/// Sends `request`; its response, which must be a success.
async fn succeed(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.unwrap().error_for_status().unwrap()
}

/// The keys `account` registers under `handle`, signed as the server
/// checks them.
pub fn keys_of(account: &Account, handle: &str) -> DeviceKeys {
    let identity_key = account.curve25519_key().to_base64();
    let signing_key = account.ed25519_key().to_base64();
    let message = api::registration_message(handle, &identity_key, &signing_key);
    DeviceKeys {
        signature: account.sign(message).to_base64(),
        identity_key,
        signing_key,
    }
}
