-- Parley signaling schema (PostgreSQL). Keep in step with ../sqlite.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    handle TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    identity_key TEXT NOT NULL,
    signing_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX devices_user ON devices (user_id);

CREATE TABLE one_time_keys (
    device_id TEXT NOT NULL REFERENCES devices(id),
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    PRIMARY KEY (device_id, key_id)
);

CREATE TABLE fallback_keys (
    device_id TEXT PRIMARY KEY REFERENCES devices(id),
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL
);

CREATE TABLE challenges (
    challenge TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id),
    expires_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id),
    expires_at BIGINT NOT NULL
);

CREATE TABLE link_codes (
    code_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    expires_at BIGINT NOT NULL
);

CREATE TABLE envelopes (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL,
    to_device TEXT NOT NULL REFERENCES devices(id),
    from_device TEXT NOT NULL REFERENCES devices(id),
    kind BIGINT NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (to_device, id)
);
CREATE INDEX envelopes_queue ON envelopes (to_device, seq);
