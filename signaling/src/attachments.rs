//! Attachment blobs. A client encrypts a file with a fresh key, uploads
//! the ciphertext here, and sends the URL, key and SHA-256 inside an E2E
//! message; the server holds bytes it cannot open. Uploads stream to a
//! temp file (never whole in memory), are refused past the size cap, and
//! appear under their id only once complete and synced.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::AppState;
use crate::auth::AuthDevice;
use crate::error::ApiError;
use parley_wire::api::{AttachmentCreated, ErrorBody};
use parley_wire::clock::now_ms;

/// `POST /v1/attachments`: the body is the ciphertext.
#[utoipa::path(post, path = "/v1/attachments", tag = "attachments", security(("bearer" = [])), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The encrypted blob"), responses((status = 200, body = AttachmentCreated), (status = 413, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    auth: AuthDevice,
    body: Body,
) -> Result<Json<AttachmentCreated>, ApiError> {
    let config = state.config();
    let io = |e: std::io::Error| {
        tracing::error!(error = %e, "blob storage");
        ApiError::Internal
    };
    tokio::fs::create_dir_all(&config.blob_dir)
        .await
        .map_err(io)?;
    let id = uuid::Uuid::new_v4().to_string();
    let part = config.blob_dir.join(format!("{id}.part"));
    let mut file = tokio::fs::File::create(&part).await.map_err(io)?;
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    let result: Result<(), ApiError> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| ApiError::BadRequest("upload interrupted".into()))?;
            size += chunk.len() as u64;
            if size > config.max_attachment_bytes {
                return Err(ApiError::PayloadTooLarge);
            }
            file.write_all(&chunk).await.map_err(io)?;
        }
        if size == 0 {
            return Err(ApiError::BadRequest("empty attachment".into()));
        }
        file.sync_all().await.map_err(io)
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    tokio::fs::rename(&part, config.blob_dir.join(&id))
        .await
        .map_err(io)?;
    state
        .store()
        .create_attachment(&id, &auth.device_id, size as i64, now_ms())
        .await?;
    state.metrics().attachment_bytes.inc_by(size);
    let size = size as i64;
    Ok(Json(AttachmentCreated {
        url: format!("/v1/attachments/{id}"),
        id,
        size,
    }))
}

/// `GET /v1/attachments/{id}`: streams the ciphertext back.
#[utoipa::path(get, path = "/v1/attachments/{id}", tag = "attachments", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, description = "The encrypted blob", content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    _auth: AuthDevice,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // Only ids this server made: a UUID can name no other file.
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::NotFound("no such attachment".into()))?
        .to_string();
    let size = state
        .store()
        .attachment_size(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such attachment".into()))?;
    let file = tokio::fs::File::open(state.config().blob_dir.join(&id))
        .await
        .map_err(|_| ApiError::NotFound("attachment data is gone".into()))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response())
}
