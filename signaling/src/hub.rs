//! Hands committed envelopes to the connected sessions of their devices,
//! so a session that is caught up sends new envelopes from memory instead
//! of querying the store for each one.
//!
//! The store stays the source of truth. The envelope writer publishes
//! each committed envelope here, in commit order, with its queue
//! position (`seq`). A session subscribes before it reads its backlog
//! from the store, so every envelope is in the backlog, in the channel,
//! or both (it skips what it has already sent by position). The channel
//! per device is small: a session that falls behind is told it lagged and
//! reads the store again, so a slow reader costs queries, never memory,
//! and never loses an envelope.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use parley_wire::api::Envelope;
use tokio::sync::broadcast;

/// Committed envelopes a session may fall behind by before it reads the
/// store instead (a broadcast channel keeps this many slots per connected
/// device, allocated up front: 16 are ~1 KiB).
const CHANNEL: usize = 16;

/// A committed envelope and its position in its device's queue.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Queue position (the store's `seq`): increases with commit order.
    pub seq: i64,
    /// The envelope as the device receives it.
    pub envelope: Envelope,
}

/// Per-device channels of committed envelopes.
#[derive(Default)]
pub struct Hub {
    devices: Mutex<HashMap<String, broadcast::Sender<Arc<Committed>>>>,
}

impl Hub {
    /// Envelopes committed for `device` from now on.
    pub fn subscribe(&self, device: &str) -> broadcast::Receiver<Arc<Committed>> {
        let mut devices = self.devices.lock().expect("hub lock is never poisoned");
        devices
            .entry(device.to_string())
            .or_insert_with(|| broadcast::channel(CHANNEL).0)
            .subscribe()
    }

    /// Hands a committed envelope to every session of `device`. Called by
    /// the single writer, in commit order.
    pub fn publish(&self, device: &str, committed: Committed) {
        let mut devices = self.devices.lock().expect("hub lock is never poisoned");
        if let Some(tx) = devices.get(device) {
            if tx.receiver_count() == 0 {
                devices.remove(device);
            } else {
                let _ = tx.send(Arc::new(committed));
            }
        }
    }

    /// Devices with at least one open session.
    pub fn connected(&self) -> usize {
        let devices = self.devices.lock().expect("hub lock is never poisoned");
        devices
            .values()
            .filter(|tx| tx.receiver_count() > 0)
            .count()
    }
}
