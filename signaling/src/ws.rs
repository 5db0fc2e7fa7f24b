//! `/v1/ws`: a device's live connection. The server pushes every queued
//! envelope in order (then a `drained` marker), then each new one as it is
//! stored; the device acks what it has processed and may send envelopes on
//! the same socket. Delivery is at least once: anything not acked is sent
//! again on the next connection, and clients drop duplicates by id.
//!
//! The session is generic over `Sink`/`Stream` (axum's `testing-websockets`
//! example), so its logic does not depend on a real socket.

use axum::extract::State;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{Sink, SinkExt, Stream, StreamExt};

use crate::AppState;
use crate::auth::AuthDevice;
use crate::error::ApiError;
use crate::group_commit::Write;
use crate::routes::accept_envelopes;
use parley_wire::api::{ClientFrame, Envelope, ErrorBody, ServerFrame};
use tokio::sync::broadcast;

/// Largest frame a client may send: a send of a few envelopes.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Envelopes fetched from the store per round trip while draining.
const BATCH: i64 = 100;

/// `GET /v1/ws`.
#[utoipa::path(get, path = "/v1/ws", tag = "messages", security(("bearer" = [])), params(("access_token" = Option<String>, Query, description = "Token, for clients that cannot set headers")), responses((status = 101, description = "Websocket: JSON frames, see ClientFrame and ServerFrame in the docs"), (status = 401, body = ErrorBody)))]
pub async fn upgrade(
    State(state): State<AppState>,
    auth: AuthDevice,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            run_session(state, auth.device_id, auth.handle, sink, stream).await;
        })
}

/// Runs one device's session until the client goes away or the store
/// fails: the backlog from the store, then `Drained`, then each envelope
/// as it is committed, from the hub (no query per push). If the session
/// falls behind the hub's channel it reads the store again; the store is
/// the source of truth throughout.
pub async fn run_session<Si, St>(
    state: AppState,
    device_id: String,
    handle: String,
    mut sink: Si,
    mut stream: St,
) where
    Si: Sink<Message> + Unpin,
    St: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    // Subscribed before the backlog is read: an envelope committed in
    // between is in one or both, and `cursor` skips what was sent.
    let mut committed = state.hub().subscribe(&device_id);
    let mut cursor = 0i64;
    tracing::debug!(device = %device_id, "session open");
    let mut caught_up = deliver(&state, &device_id, &mut cursor, &mut sink).await;
    if caught_up.is_ok() && send(&mut sink, &ServerFrame::Drained).await.is_err() {
        caught_up = Err(SessionError::Gone);
    }
    if let Err(e) = caught_up {
        tracing::debug!(device = %device_id, error = %e, "session ends");
        return;
    }
    loop {
        tokio::select! {
            pushed = committed.recv() => {
                let result = match pushed {
                    Ok(c) if c.seq <= cursor => Ok(()),
                    Ok(c) => {
                        cursor = c.seq;
                        push(&state, &mut sink, &c.envelope).await
                    }
                    // Fell behind the channel: the store has everything.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        deliver(&state, &device_id, &mut cursor, &mut sink).await
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if let Err(e) = result {
                    tracing::debug!(device = %device_id, error = %e, "session ends");
                    break;
                }
            }
            message = stream.next() => {
                let reply = match message {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(Message::Text(text))) => {
                        handle_frame(&state, &device_id, &handle, text.as_str()).await
                    }
                    Some(Ok(Message::Binary(_))) => Some(error_frame(ApiError::BadRequest(
                        "binary frames are not part of the protocol; send JSON text frames".into(),
                    ))),
                    // axum answers pings itself.
                    Some(Ok(_)) => None,
                };
                if let Some(reply) = reply
                    && send(&mut sink, &reply).await.is_err()
                {
                    break;
                }
            }
        }
    }
    tracing::debug!(device = %device_id, "session closed");
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("store: {0}")]
    Store(#[from] sqlx::Error),
    #[error("client went away")]
    Gone,
}

/// Sends everything queued after `cursor`, from the store.
async fn deliver<Si: Sink<Message> + Unpin>(
    state: &AppState,
    device_id: &str,
    cursor: &mut i64,
    sink: &mut Si,
) -> Result<(), SessionError> {
    loop {
        let batch = state
            .store()
            .envelopes_after(device_id, *cursor, BATCH)
            .await?;
        let complete = (batch.len() as i64) < BATCH;
        for (seq, envelope) in batch {
            push(state, sink, &envelope).await?;
            *cursor = seq;
        }
        if complete {
            return Ok(());
        }
    }
}

async fn push<Si: Sink<Message> + Unpin>(
    state: &AppState,
    sink: &mut Si,
    envelope: &Envelope,
) -> Result<(), SessionError> {
    send_envelope(sink, envelope)
        .await
        .map_err(|()| SessionError::Gone)?;
    state.metrics().envelopes_pushed.inc();
    Ok(())
}

async fn handle_frame(
    state: &AppState,
    device_id: &str,
    handle: &str,
    text: &str,
) -> Option<ServerFrame> {
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            return Some(error_frame(ApiError::BadRequest(format!(
                "malformed frame: {e}"
            ))));
        }
    };
    match frame {
        ClientFrame::Send { envelopes } => Some(
            match accept_envelopes(state, device_id, handle, &envelopes).await {
                Ok(ids) => ServerFrame::Stored { ids },
                Err(e) => error_frame(e),
            },
        ),
        ClientFrame::Ack { ids } => {
            let write = Write::Ack {
                device_id: device_id.to_string(),
                ids,
            };
            match state.writer().write(write).await {
                Ok(deleted) => {
                    state.metrics().envelopes_acked.inc_by(deleted);
                    None
                }
                Err(e) => Some(error_frame(e.into())),
            }
        }
    }
}

fn error_frame(e: ApiError) -> ServerFrame {
    let ErrorBody { error, message } = e.body();
    ServerFrame::Error(ErrorBody { error, message })
}

async fn send<Si: Sink<Message> + Unpin>(sink: &mut Si, frame: &ServerFrame) -> Result<(), ()> {
    let text = serde_json::to_string(frame).expect("server frames always serialize");
    sink.send(Message::Text(text.into())).await.map_err(|_| ())
}

async fn send_envelope<Si: Sink<Message> + Unpin>(
    sink: &mut Si,
    envelope: &Envelope,
) -> Result<(), ()> {
    send(sink, &ServerFrame::Envelope(envelope.clone())).await
}
