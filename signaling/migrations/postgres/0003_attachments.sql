-- Attachment blobs: ciphertext on disk under the blob dir, named by id.
-- The key that opens one travels only inside an E2E message.
CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    owner_device TEXT NOT NULL REFERENCES devices(id),
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
