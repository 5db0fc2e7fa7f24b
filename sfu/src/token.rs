//! Join tokens: what lets one device into one room of the SFU.
//!
//! The signaling server knows who is in which group; the SFU knows nothing
//! about users. The server signs a short-lived token naming the room, the
//! user and the device, and the SFU checks it on join, so the two share a
//! secret and nothing else (no database lookup on the SFU, as with
//! LiveKit's access tokens).
//!
//! The format is JWT's HS256 shape without the header:
//! `base64url(claims JSON) "." base64url(HMAC-SHA256(key, first part))`.
//! One algorithm and nothing to negotiate, so the `alg` confusion bugs JWT
//! libraries had to fix cannot happen here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Who may join which room, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClaims {
    /// The room (the signaling server's group call id).
    pub room: String,
    /// The user's handle.
    pub user: String,
    /// The device id within that user.
    pub device: String,
    /// Unix time, seconds, after which the token is refused.
    pub expires_at: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not two base64url parts, or the claims are not the expected JSON.
    #[error("malformed join token")]
    Malformed,
    /// Not signed with this SFU's key (forged, edited, or another server's).
    #[error("join token has a bad signature")]
    BadSignature,
    /// Its time is up.
    #[error("join token expired")]
    Expired,
}

/// The secret the signaling server signs with and the SFU verifies with.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from configured secret bytes (32 bytes).
    pub fn new(secret: [u8; 32]) -> Self {
        Self(secret)
    }

    /// A key from a configured secret string (SHA-256 of it): what
    /// `parley-server --sfu-token-secret` and `parley loadtest
    /// --token-secret` share.
    pub fn from_secret_str(secret: &str) -> Self {
        use sha2::Digest;
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// A fresh random key: for an SFU embedded in the signaling process,
    /// where nothing else needs to know it.
    pub fn generate() -> Self {
        Self(rand::random())
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    /// Signs `claims` into a token.
    pub fn sign(&self, claims: &JoinClaims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{signature}")
    }

    /// Checks `token`'s signature (in constant time) and expiry against
    /// `unix_now` (seconds), and returns its claims.
    pub fn verify(&self, token: &str, unix_now: u64) -> Result<JoinClaims, TokenError> {
        let (body, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Malformed)?;
        let claims: JoinClaims =
            serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if unix_now >= claims.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> JoinClaims {
        JoinClaims {
            room: "r1".into(),
            user: "alice".into(),
            device: "d1".into(),
            expires_at: 1_000,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let key = TokenKey::generate();
        let token = key.sign(&claims());
        assert_eq!(key.verify(&token, 999), Ok(claims()));
        assert_eq!(key.verify(&token, 1_000), Err(TokenError::Expired));
    }

    #[test]
    fn another_key_or_an_edit_is_refused() {
        let key = TokenKey::generate();
        let token = key.sign(&claims());
        assert_eq!(
            TokenKey::generate().verify(&token, 0),
            Err(TokenError::BadSignature)
        );
        // Same signature over a body naming another room.
        let forged_body = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&JoinClaims {
                room: "r2".into(),
                ..claims()
            })
            .unwrap(),
        );
        let signature = token.split_once('.').unwrap().1;
        assert_eq!(
            key.verify(&format!("{forged_body}.{signature}"), 0),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let key = TokenKey::generate();
        for bad in ["", ".", "abc", "a.b", "!!.??", "é.ü"] {
            assert!(key.verify(bad, 0).is_err(), "{bad:?}");
        }
        // A correctly signed body that is not claims JSON.
        let body = URL_SAFE_NO_PAD.encode(b"[1,2]");
        let mut mac = key.mac();
        mac.update(body.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(
            key.verify(&format!("{body}.{sig}"), 0),
            Err(TokenError::Malformed)
        );
    }
}
