//! Group commit: envelopes and acks from every connection written in one
//! transaction per batch, so a burst of sends pays one fsync instead of
//! one each.
//!
//! Each HTTP send, websocket send or ack hands its writes to one writer
//! task and waits. The writer takes what is queued (the first request,
//! then whatever else arrives within [`GroupCommit`]'s window, up to a
//! batch size), commits it as one transaction and answers every waiter.
//! Durability is the store's as before: SQLite in WAL mode with
//! `synchronous=FULL`, PostgreSQL with `fsync` and `synchronous_commit`
//! on; a sender is answered only after the transaction holding its
//! envelopes committed. Under light load a batch is a single request and
//! costs what it did; under load the fsyncs are shared (the same idea as
//! PostgreSQL's `commit_delay` and InnoDB's group commit).
//!
//! Committed envelopes go to the [`Hub`] in commit order, from here (one
//! writer, so the order is the queue's), for sessions to push without
//! reading them back.
//!
//! One request's writes are all in one transaction, so a send is stored
//! whole or not at all. If a batch fails (a foreign key gone between the
//! checks and the write, say), each of its requests is retried alone, so
//! one bad request cannot fail the others.

use std::sync::Arc;
use std::time::Duration;

use parley_wire::api::{Envelope, OutgoingEnvelope};
use prometheus::IntCounter;
use tokio::sync::{mpsc, oneshot};

use crate::hub::{Committed, Hub};
use crate::store::Store;

/// Requests waiting for the writer at most; senders wait for room beyond
/// it (backpressure reaches the connections, not memory).
const QUEUE: usize = 4_096;

/// Writes from one request.
#[derive(Debug, Clone)]
pub enum Write {
    /// Store envelopes from a device: (envelope, decoded ciphertext).
    Store {
        /// The sending device.
        from_device: String,
        /// Its user's handle, as recipients see it.
        from_handle: String,
        /// The envelopes and their ciphertext bytes.
        envelopes: Vec<(OutgoingEnvelope, Vec<u8>)>,
        /// Unix milliseconds, the envelopes' stored time.
        now_ms: i64,
    },
    /// Delete delivered envelopes of a device.
    Ack {
        /// The device whose queue it is.
        device_id: String,
        /// Envelope ids.
        ids: Vec<String>,
    },
}

impl Write {
    /// Rows it writes, for the batch size.
    fn rows(&self) -> usize {
        match self {
            Write::Store { envelopes, .. } => envelopes.len(),
            Write::Ack { ids, .. } => ids.len(),
        }
        .max(1)
    }
}

/// What one write did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Rows stored or deleted.
    pub count: u64,
    /// For a store, per envelope: its queue position, or `None` when an
    /// envelope with its id was already queued (a resend).
    pub seqs: Vec<Option<i64>>,
}

/// Why a write did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(String),
    /// The writer is gone (the server is shutting down).
    #[error("the writer has stopped")]
    Stopped,
}

struct Request {
    write: Write,
    /// Rows affected (acks: envelopes deleted).
    done: oneshot::Sender<Result<u64, CommitError>>,
}

/// The handle connections write through; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Request>,
}

impl GroupCommit {
    /// Starts the writer over `store`: a batch closes `window` after its
    /// first request or at `max_rows` rows, whichever comes first. A zero
    /// window batches only what is already queued.
    /// Committed envelopes go to `hub`, in commit order; `batches` counts
    /// the transactions.
    pub fn start(
        store: Store,
        hub: Arc<Hub>,
        window: Duration,
        max_rows: usize,
        batches: IntCounter,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            store,
            hub,
            batches,
        };
        tokio::spawn(writer.run(rx, window, max_rows));
        Self { tx }
    }

    /// Commits `write` with whatever else is waiting; returns once it is
    /// durable.
    pub async fn write(&self, write: Write) -> Result<u64, CommitError> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Request { write, done })
            .await
            .map_err(|_| CommitError::Stopped)?;
        answer.await.map_err(|_| CommitError::Stopped)?
    }
}

/// The writer task's state.
struct Writer {
    store: Store,
    hub: Arc<Hub>,
    batches: IntCounter,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Request>, window: Duration, max_rows: usize) {
        while let Some(first) = rx.recv().await {
            let mut rows = first.write.rows();
            let mut batch = vec![first];
            let close = tokio::time::Instant::now() + window;
            while rows < max_rows {
                let next = match rx.try_recv() {
                    Ok(request) => request,
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) if window.is_zero() => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        match tokio::time::timeout_at(close, rx.recv()).await {
                            Ok(Some(request)) => request,
                            Ok(None) | Err(_) => break,
                        }
                    }
                };
                rows += next.write.rows();
                batch.push(next);
            }
            self.batches.inc();
            self.commit(batch).await;
        }
    }

    /// Commits a batch in one transaction; if that fails, each request
    /// alone.
    async fn commit(&self, batch: Vec<Request>) {
        let writes: Vec<&Write> = batch.iter().map(|r| &r.write).collect();
        match self.store.commit_writes(&writes).await {
            Ok(outcomes) => {
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    self.answer(request, Ok(outcome));
                }
            }
            Err(e) if batch.len() == 1 => {
                let request = batch.into_iter().next().expect("one request");
                self.answer(request, Err(e));
            }
            Err(e) => {
                tracing::debug!(error = %e, requests = batch.len(), "batch failed; writing each alone");
                for request in batch {
                    let result = self
                        .store
                        .commit_writes(&[&request.write])
                        .await
                        .map(|mut outcomes| outcomes.remove(0));
                    self.answer(request, result);
                }
            }
        }
    }

    /// Publishes what a committed request stored (here, so in commit
    /// order) and answers its sender.
    fn answer(&self, request: Request, result: Result<Outcome, sqlx::Error>) {
        let result = match result {
            Ok(outcome) => {
                if let Write::Store {
                    from_device,
                    from_handle,
                    envelopes,
                    now_ms,
                } = &request.write
                {
                    for ((envelope, _), seq) in envelopes.iter().zip(&outcome.seqs) {
                        let Some(seq) = *seq else { continue };
                        let committed = Committed {
                            seq,
                            envelope: Envelope {
                                id: envelope.id.clone(),
                                from_device: from_device.clone(),
                                from_handle: from_handle.clone(),
                                kind: envelope.kind,
                                ciphertext: envelope.ciphertext.clone(),
                                group_id: envelope.group_id.clone(),
                                server_ts: *now_ms,
                            },
                        };
                        self.hub.publish(&envelope.to_device, committed);
                    }
                }
                Ok(outcome.count)
            }
            Err(e) => {
                tracing::warn!(error = %e, "write failed");
                Err(CommitError::Database(e.to_string()))
            }
        };
        let _ = request.done.send(result);
    }
}

#[cfg(test)]
mod tests {
    use parley_wire::api::DeviceInfo;

    use super::*;
    use crate::store::User;

    fn envelope(id: &str, to_device: &str) -> (OutgoingEnvelope, Vec<u8>) {
        let envelope = OutgoingEnvelope {
            id: id.to_string(),
            to_device: to_device.to_string(),
            kind: 1,
            ciphertext: String::new(),
            group_id: None,
        };
        (envelope, vec![1, 2, 3])
    }

    /// Two requests in one batch, one of them impossible (its recipient
    /// does not exist): the batch's transaction fails, each is retried
    /// alone, and the good one is stored and answered as such.
    #[tokio::test]
    async fn a_failing_request_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("db.sqlite").display());
        let store = Store::open(&url).await.unwrap();
        let user = User {
            id: "u".into(),
            handle: "h".into(),
        };
        let device = DeviceInfo {
            device_id: "d".into(),
            handle: "h".into(),
            identity_key: String::new(),
            signing_key: String::new(),
        };
        store.create_user(&user, &device, 0).await.unwrap();
        let batches = IntCounter::new("batches", "batches").unwrap();
        // A long window, so both requests land in one batch.
        let writer = GroupCommit::start(
            store.clone(),
            Arc::new(Hub::default()),
            Duration::from_millis(500),
            100,
            batches.clone(),
        );
        let write = |e: (OutgoingEnvelope, Vec<u8>)| Write::Store {
            from_device: "d".into(),
            from_handle: "h".into(),
            envelopes: vec![e],
            now_ms: 0,
        };
        let (good, bad) = tokio::join!(
            writer.write(write(envelope("ok", "d"))),
            writer.write(write(envelope("bad", "no-such-device"))),
        );
        assert_eq!(good.unwrap(), 1);
        assert!(matches!(bad, Err(CommitError::Database(_))), "{bad:?}");
        assert_eq!(batches.get(), 1, "one batch");
        assert_eq!(store.queue_len("d").await.unwrap(), 1);
    }
}
