//! Wakes a connected device's websocket session when an envelope for it is
//! stored. The database stays the source of truth: a wake-up only says
//! "look again", so a missed or merged wake-up loses nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// Per-device wake-up channels.
#[derive(Default)]
pub struct Hub {
    devices: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Hub {
    /// A receiver that changes whenever something is stored for `device`.
    pub fn subscribe(&self, device: &str) -> watch::Receiver<u64> {
        let mut devices = self.devices.lock().expect("hub lock is never poisoned");
        devices
            .entry(device.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Wakes every session of `device`.
    pub fn notify(&self, device: &str) {
        let mut devices = self.devices.lock().expect("hub lock is never poisoned");
        if let Some(tx) = devices.get(device) {
            if tx.receiver_count() == 0 {
                devices.remove(device);
            } else {
                tx.send_modify(|n| *n = n.wrapping_add(1));
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
