//! Durable storage over sqlx: SQLite (a file, WAL) by default, PostgreSQL
//! when given a `postgres://` URL. One set of queries serves both through
//! sqlx's `Any` driver: they use `$n` placeholders, which both accept, and
//! only types both map (TEXT, BIGINT, BLOB/BYTEA). Schemas live in
//! `migrations/{sqlite,postgres}` and differ only in the autoincrement and
//! blob types.
//!
//! Every method that takes `now` is given the time by its caller (unix
//! milliseconds), so expiry is testable without sleeping.

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

use parley_wire::api::{ClaimedKey, DeviceInfo, Envelope, GroupInfo, SignedKey};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Errors opening the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite:` nor `postgres://`.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// Connecting or migrating failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The server's database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// A user's id and handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id.
    pub id: String,
    /// Handle.
    pub handle: String,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let options = AnyPoolOptions::new().max_connections(match backend {
            // SQLite has one writer; more connections only contend.
            Backend::Sqlite => 4,
            Backend::Postgres => 16,
        });
        let pool = match backend {
            Backend::Sqlite => {
                let url = if url.contains('?') {
                    url.to_string()
                } else {
                    format!("{url}?mode=rwc")
                };
                options
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; FULL
                            // sync makes an acknowledged message survive a
                            // power cut, not only a crash.
                            for pragma in [
                                "PRAGMA journal_mode = WAL",
                                "PRAGMA synchronous = FULL",
                                "PRAGMA busy_timeout = 5000",
                                "PRAGMA foreign_keys = ON",
                            ] {
                                sqlx::query(pragma).execute(&mut *conn).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?
            }
            Backend::Postgres => options.connect(url).await?,
        };
        migrator(backend).run(&pool).await?;
        Ok(Self { pool, backend })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Creates a user with its first device. Fails with a unique-violation
    /// when the handle or the signing key is taken.
    pub async fn create_user(
        &self,
        user: &User,
        device: &DeviceInfo,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO users (id, handle, created_at) VALUES ($1, $2, $3)")
            .bind(&user.id)
            .bind(&user.handle)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        insert_device(&mut tx, &user.id, device, now).await?;
        tx.commit().await
    }

    /// Adds a device to an existing user, consuming a link code (given as
    /// its hash). Returns `false` when the code is unknown, expired, or
    /// belongs to another user.
    pub async fn link_device(
        &self,
        user_id: &str,
        code_hash: &str,
        device: &DeviceInfo,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let consumed = sqlx::query(
            "DELETE FROM link_codes WHERE code_hash = $1 AND user_id = $2 AND expires_at > $3",
        )
        .bind(code_hash)
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if consumed != 1 {
            return Ok(false);
        }
        insert_device(&mut tx, user_id, device, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stores a link code (by hash) for a user.
    pub async fn create_link_code(
        &self,
        user_id: &str,
        code_hash: &str,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO link_codes (code_hash, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(code_hash)
            .bind(user_id)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A user by handle.
    pub async fn user_by_handle(&self, handle: &str) -> Result<Option<User>, sqlx::Error> {
        let row = sqlx::query("SELECT id, handle FROM users WHERE handle = $1")
            .bind(handle)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| User {
            id: r.get(0),
            handle: r.get(1),
        }))
    }

    /// A device and its owner's id.
    pub async fn device(
        &self,
        device_id: &str,
    ) -> Result<Option<(String, DeviceInfo)>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT d.user_id, d.id, u.handle, d.identity_key, d.signing_key \
             FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = $1",
        )
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.get(0), device_from_row(&r, 1))))
    }

    /// Every device of a user, oldest first.
    pub async fn devices_of(&self, handle: &str) -> Result<Vec<DeviceInfo>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT d.id, u.handle, d.identity_key, d.signing_key \
             FROM devices d JOIN users u ON u.id = d.user_id \
             WHERE u.handle = $1 ORDER BY d.created_at, d.id",
        )
        .bind(handle)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| device_from_row(r, 0)).collect())
    }

    /// Stores a sign-in challenge.
    pub async fn create_challenge(
        &self,
        device_id: &str,
        challenge: &str,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO challenges (challenge, device_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(challenge)
        .bind(device_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Consumes a challenge; `true` if it existed for this device and had
    /// not expired. Either way it cannot be used again.
    pub async fn take_challenge(
        &self,
        device_id: &str,
        challenge: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let taken = sqlx::query(
            "DELETE FROM challenges WHERE challenge = $1 AND device_id = $2 AND expires_at > $3",
        )
        .bind(challenge)
        .bind(device_id)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM challenges WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(taken == 1)
    }

    /// Stores a token by its hash.
    pub async fn create_token(
        &self,
        device_id: &str,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO tokens (token_hash, device_id, expires_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(device_id)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The device a live token belongs to.
    pub async fn token_device(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let row =
            sqlx::query("SELECT device_id FROM tokens WHERE token_hash = $1 AND expires_at > $2")
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Publishes one-time keys (ignoring ids already stored) and replaces
    /// the fallback key.
    pub async fn upload_keys(
        &self,
        device_id: &str,
        one_time_keys: &[(String, String)],
        fallback: Option<&SignedKey>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for (key_id, key) in one_time_keys {
            sqlx::query(
                "INSERT INTO one_time_keys (device_id, key_id, public_key) VALUES ($1, $2, $3) \
                 ON CONFLICT (device_id, key_id) DO NOTHING",
            )
            .bind(device_id)
            .bind(key_id)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(f) = fallback {
            sqlx::query(
                "INSERT INTO fallback_keys (device_id, key_id, public_key, signature) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (device_id) DO UPDATE \
                 SET key_id = excluded.key_id, public_key = excluded.public_key, \
                 signature = excluded.signature",
            )
            .bind(device_id)
            .bind(&f.key_id)
            .bind(&f.key)
            .bind(&f.signature)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Unclaimed one-time keys of a device.
    pub async fn one_time_key_count(&self, device_id: &str) -> Result<i64, sqlx::Error> {
        let row = sqlx::query("SELECT COUNT(*) FROM one_time_keys WHERE device_id = $1")
            .bind(device_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }

    /// Hands out one key to start a session with `device`: a one-time key,
    /// deleted as it is handed out so it goes to one claimer only, or the
    /// fallback key when none is left. `None` if the device has neither.
    pub async fn claim_key(&self, device: &DeviceInfo) -> Result<Option<ClaimedKey>, sqlx::Error> {
        // DELETE ... RETURNING gives the row to exactly one of any racing
        // claimers; a loser gets no row and tries the next key.
        for _ in 0..8 {
            let row = sqlx::query(
                "DELETE FROM one_time_keys WHERE device_id = $1 AND key_id = \
                 (SELECT key_id FROM one_time_keys WHERE device_id = $1 ORDER BY key_id LIMIT 1) \
                 RETURNING key_id, public_key",
            )
            .bind(&device.device_id)
            .fetch_optional(&self.pool)
            .await?;
            match row {
                Some(r) => {
                    return Ok(Some(ClaimedKey {
                        device: device.clone(),
                        key_id: r.get(0),
                        key: r.get(1),
                        fallback_signature: None,
                    }));
                }
                None if self.one_time_key_count(&device.device_id).await? == 0 => break,
                None => continue,
            }
        }
        let row = sqlx::query(
            "SELECT key_id, public_key, signature FROM fallback_keys WHERE device_id = $1",
        )
        .bind(&device.device_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| ClaimedKey {
            device: device.clone(),
            key_id: r.get(0),
            key: r.get(1),
            fallback_signature: Some(r.get(2)),
        }))
    }

    /// Undelivered envelopes queued for a device.
    pub async fn queue_len(&self, device_id: &str) -> Result<i64, sqlx::Error> {
        let row = sqlx::query("SELECT COUNT(*) FROM envelopes WHERE to_device = $1")
            .bind(device_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }

    /// Up to `limit` envelopes for a device stored after position `after`,
    /// in order, each with its position.
    pub async fn envelopes_after(
        &self,
        device_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Envelope)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT e.seq, e.id, e.from_device, u.handle, e.kind, e.ciphertext, e.created_at, e.group_id \
             FROM envelopes e JOIN devices d ON d.id = e.from_device JOIN users u ON u.id = d.user_id \
             WHERE e.to_device = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3",
        )
        .bind(device_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        use base64::Engine;
        Ok(rows
            .iter()
            .map(|r| {
                let ciphertext: Vec<u8> = r.get(5);
                (
                    r.get(0),
                    Envelope {
                        id: r.get(1),
                        from_device: r.get(2),
                        from_handle: r.get(3),
                        kind: r.get(4),
                        ciphertext: base64::engine::general_purpose::STANDARD.encode(ciphertext),
                        server_ts: r.get(6),
                        group_id: r.get(7),
                    },
                )
            })
            .collect())
    }

    /// Makes `writes` in one transaction (see [`crate::group_commit`]):
    /// per write, what it did.
    pub async fn commit_writes(
        &self,
        writes: &[&crate::group_commit::Write],
    ) -> Result<Vec<crate::group_commit::Outcome>, sqlx::Error> {
        use crate::group_commit::{Outcome, Write};
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(writes.len());
        for write in writes {
            let mut count = 0;
            let mut seqs = Vec::new();
            match write {
                Write::Store {
                    from_device,
                    envelopes,
                    now_ms,
                    ..
                } => {
                    for (envelope, ciphertext) in envelopes {
                        // A resent envelope (same id) is not stored again,
                        // and returns no row.
                        let row = sqlx::query(
                            "INSERT INTO envelopes (id, to_device, from_device, kind, ciphertext, created_at, group_id) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (to_device, id) DO NOTHING \
                             RETURNING seq",
                        )
                        .bind(&envelope.id)
                        .bind(&envelope.to_device)
                        .bind(from_device)
                        .bind(envelope.kind)
                        .bind(ciphertext)
                        .bind(now_ms)
                        .bind(envelope.group_id.as_deref())
                        .fetch_optional(&mut *tx)
                        .await?;
                        let seq: Option<i64> = row.map(|r| r.get(0));
                        count += u64::from(seq.is_some());
                        seqs.push(seq);
                    }
                }
                Write::Ack { device_id, ids } => {
                    for id in ids {
                        count +=
                            sqlx::query("DELETE FROM envelopes WHERE to_device = $1 AND id = $2")
                                .bind(device_id)
                                .bind(id)
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                    }
                }
            }
            outcomes.push(Outcome { count, seqs });
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

impl Store {
    /// Creates a group with its creator as owner and first member.
    pub async fn create_group(
        &self,
        group_id: &str,
        name: &str,
        owner_user: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO groups (id, name, owner_user, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(group_id)
        .bind(name)
        .bind(owner_user)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO group_members (group_id, user_id, added_at) VALUES ($1, $2, $3)")
            .bind(group_id)
            .bind(owner_user)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// A group with its owner and members' handles.
    pub async fn group(&self, group_id: &str) -> Result<Option<GroupInfo>, sqlx::Error> {
        let Some(row) = sqlx::query(
            "SELECT g.id, g.name, u.handle FROM groups g JOIN users u ON u.id = g.owner_user WHERE g.id = $1",
        )
        .bind(group_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let members = sqlx::query(
            "SELECT u.handle FROM group_members m JOIN users u ON u.id = m.user_id \
             WHERE m.group_id = $1 ORDER BY u.handle",
        )
        .bind(group_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(GroupInfo {
            group_id: row.get(0),
            name: row.get(1),
            owner: row.get(2),
            members: members.iter().map(|r| r.get(0)).collect(),
        }))
    }

    /// Groups a user belongs to, by id.
    pub async fn groups_of(&self, user_id: &str) -> Result<Vec<String>, sqlx::Error> {
        let rows =
            sqlx::query("SELECT group_id FROM group_members WHERE user_id = $1 ORDER BY group_id")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Whether a user is in a group.
    pub async fn is_member(&self, group_id: &str, user_id: &str) -> Result<bool, sqlx::Error> {
        let row =
            sqlx::query("SELECT COUNT(*) FROM group_members WHERE group_id = $1 AND user_id = $2")
                .bind(group_id)
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(row.get::<i64, _>(0) > 0)
    }

    /// Adds a member (a no-op if already in).
    pub async fn add_member(
        &self,
        group_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO group_members (group_id, user_id, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT (group_id, user_id) DO NOTHING",
        )
        .bind(group_id)
        .bind(user_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a member; `false` if they were not one. An owner who
    /// leaves (or is removed) hands the group to the longest-standing
    /// member left, so it can still be managed; coming back later is
    /// coming back as a member.
    pub async fn remove_member(&self, group_id: &str, user_id: &str) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "UPDATE groups SET owner_user = ( \
                 SELECT m.user_id FROM group_members m WHERE m.group_id = $1 \
                 ORDER BY m.added_at, m.user_id LIMIT 1) \
             WHERE id = $1 AND owner_user = $2 \
             AND EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = $1)",
        )
        .bind(group_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n == 1)
    }
}

impl Store {
    /// Records an uploaded blob.
    pub async fn create_attachment(
        &self,
        id: &str,
        owner_device: &str,
        size: i64,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO attachments (id, owner_device, size, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(owner_device)
        .bind(size)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A blob's size, if it exists.
    pub async fn attachment_size(&self, id: &str) -> Result<Option<i64>, sqlx::Error> {
        let row = sqlx::query("SELECT size FROM attachments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}

async fn insert_device(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
    device: &DeviceInfo,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO devices (id, user_id, identity_key, signing_key, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&device.device_id)
    .bind(user_id)
    .bind(&device.identity_key)
    .bind(&device.signing_key)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn device_from_row(r: &sqlx::any::AnyRow, first: usize) -> DeviceInfo {
    DeviceInfo {
        device_id: r.get(first),
        handle: r.get(first + 1),
        identity_key: r.get(first + 2),
        signing_key: r.get(first + 3),
    }
}

/// Whether an error is a unique-constraint violation (a taken handle).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// The schema migrations of `backend`, compiled in. Built by hand rather
/// than with `sqlx::migrate!`: that macro's crate builds sqlx's whole
/// driver stack (SQLite's C library included) a second time for the
/// compiler, a minute of every clean build. The version, description and
/// file contents are what the macro would read from the file names
/// (`0001_init.sql` is version 1, "init"), so the checksums recorded in
/// databases it migrated still match.
fn migrator(backend: Backend) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};

    let files: [(i64, &str, &'static str); 3] = match backend {
        Backend::Sqlite => [
            (
                1,
                "init",
                include_str!("../migrations/sqlite/0001_init.sql"),
            ),
            (
                2,
                "groups",
                include_str!("../migrations/sqlite/0002_groups.sql"),
            ),
            (
                3,
                "attachments",
                include_str!("../migrations/sqlite/0003_attachments.sql"),
            ),
        ],
        Backend::Postgres => [
            (
                1,
                "init",
                include_str!("../migrations/postgres/0001_init.sql"),
            ),
            (
                2,
                "groups",
                include_str!("../migrations/postgres/0002_groups.sql"),
            ),
            (
                3,
                "attachments",
                include_str!("../migrations/postgres/0003_attachments.sql"),
            ),
        ],
    };
    Migrator::with_migrations(
        files
            .into_iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compiled-in migrations are exactly the files in `migrations/`,
    /// with the versions, descriptions and checksums sqlx gives them (a
    /// new file not added to [`migrator`] fails here).
    #[tokio::test]
    async fn compiled_in_migrations_match_the_directory() {
        for (backend, dir) in [
            (Backend::Sqlite, "migrations/sqlite"),
            (Backend::Postgres, "migrations/postgres"),
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            let from_files = sqlx::migrate::Migrator::new(path).await.unwrap();
            let compiled = migrator(backend);
            let summary = |m: &sqlx::migrate::Migrator| -> Vec<(i64, String, Vec<u8>)> {
                m.iter()
                    .map(|m| (m.version, m.description.to_string(), m.checksum.to_vec()))
                    .collect()
            };
            assert_eq!(summary(&compiled), summary(&from_files), "{dir}");
        }
    }
}
