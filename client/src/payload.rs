//! What travels inside the encryption. The server sees none of this.

use serde::{Deserialize, Serialize};

/// A plaintext payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// A text message. The same id goes to every recipient device and to
    /// the sender's other devices, so each shows it once.
    Text {
        /// Message id (client-generated).
        id: String,
        /// Sender's clock, unix milliseconds.
        sent_at: i64,
        /// The recipient's handle (so the sender's own devices know where
        /// a synced message went).
        to: String,
        /// The group, for group messages.
        group: Option<String>,
        /// The text.
        text: String,
    },
    /// A file: where its ciphertext is and the key that opens it.
    Attachment {
        /// Message id.
        id: String,
        /// Sender's clock, unix milliseconds.
        sent_at: i64,
        /// The recipient's handle.
        to: String,
        /// The group, for group messages.
        group: Option<String>,
        /// The pointer and key.
        attachment: crate::attachment::AttachmentRef,
    },
    /// A Megolm session key for a group, shared pairwise over Olm (never
    /// accepted inside a group message).
    GroupKey {
        /// The group.
        group_id: String,
        /// Megolm session id.
        session_id: String,
        /// Megolm session key, base64.
        session_key: String,
    },
    /// Call signaling (offer, answer, hangup, ...).
    Call {
        /// Signal id (client-generated), for duplicate detection.
        id: String,
        /// The signal.
        signal: crate::call::signal::CallSignal,
    },
    /// Delivery or read receipts.
    Receipt {
        /// Message ids.
        ids: Vec<String>,
        /// What happened to them.
        status: ReceiptStatus,
    },
}

/// A receipt's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// Arrived on a device.
    Delivered,
    /// Shown to the user.
    Read,
}

impl Payload {
    /// The id used to drop duplicates.
    pub fn dedupe_id(&self) -> String {
        match self {
            Self::Text { id, .. } | Self::Attachment { id, .. } | Self::Call { id, .. } => {
                id.clone()
            }
            Self::GroupKey { session_id, .. } => format!("group-key:{session_id}"),
            Self::Receipt { ids, status } => format!("receipt:{status:?}:{}", ids.join(",")),
        }
    }
}
