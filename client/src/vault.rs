//! The device's secrets on disk, encrypted at rest.
//!
//! Everything a device must not lose or leak (its Olm account, its
//! sessions, its token, which messages it has seen) is one JSON document,
//! sealed with XChaCha20-Poly1305 under a 32-byte key and written
//! atomically (temp file, fsync, rename) with mode 0600. The key comes
//! from one of:
//!
//! - a key file (`device.key` in the data dir, 32 random bytes, mode
//!   0600): the default, so a CLI run from a script never blocks on a
//!   prompt;
//! - a passphrase, stretched with Argon2id and a per-vault salt.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// File holding the sealed state.
pub const STATE_FILE: &str = "device.sealed";

/// File holding the key, in key-file mode.
pub const KEY_FILE: &str = "device.key";

/// Errors opening or saving the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The data dir has no device yet.
    #[error("no device in {0}; run `parley register <handle>` or `parley link` first")]
    NoDevice(PathBuf),
    /// The data dir already has a device.
    #[error("{0} already holds a device; use another --data-dir")]
    AlreadyExists(PathBuf),
    /// The sealed file is not one this version wrote.
    #[error("{path}: not a Parley vault ({reason})")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Decryption failed: wrong passphrase or key file, or tampering.
    #[error("cannot unlock {0}: wrong passphrase or key file, or the file was altered")]
    WrongKey(PathBuf),
    /// The vault is passphrase-sealed and no passphrase was given.
    #[error("{0} is sealed with a passphrase: set PARLEY_PASSPHRASE or run on a terminal")]
    NeedPassphrase(PathBuf),
}

/// Where the vault's key comes from.
#[derive(Clone)]
pub enum KeySource {
    /// `device.key` in the data dir (created with the vault).
    KeyFile,
    /// A passphrase, stretched with Argon2id.
    Passphrase(String),
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    version: u32,
    /// `key-file` or `argon2id`.
    kdf: String,
    salt: String,
    nonce: String,
    ciphertext: String,
}

/// An open vault: a data dir and the key that unlocks it.
pub struct Vault {
    dir: PathBuf,
    key: [u8; 32],
    kdf: &'static str,
    salt: [u8; 16],
}

impl Vault {
    /// Fails if `dir` already holds a device; call it before creating one
    /// on the server, so a taken data dir does not leave an orphan there.
    pub fn ensure_free(dir: &Path) -> Result<(), VaultError> {
        if dir.join(STATE_FILE).exists() {
            return Err(VaultError::AlreadyExists(dir.to_path_buf()));
        }
        Ok(())
    }

    /// Creates a vault in `dir` (which must not hold one yet).
    pub fn create(dir: &Path, source: KeySource) -> Result<Self, VaultError> {
        Self::ensure_free(dir)?;
        fs::create_dir_all(dir).map_err(|source| VaultError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let (key, kdf) = match source {
            KeySource::KeyFile => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                write_private(&dir.join(KEY_FILE), STANDARD.encode(key).as_bytes())?;
                (key, "key-file")
            }
            KeySource::Passphrase(p) => (stretch(&p, &salt), "argon2id"),
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
            kdf,
            salt,
        })
    }

    /// Opens the vault in `dir`. `passphrase` is asked for only when the
    /// vault was sealed with one.
    pub fn open(
        dir: &Path,
        passphrase: impl FnOnce() -> Option<String>,
    ) -> Result<(Self, Vec<u8>), VaultError> {
        let path = dir.join(STATE_FILE);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VaultError::NoDevice(dir.to_path_buf()));
            }
            Err(source) => return Err(VaultError::Io { path, source }),
        };
        let corrupt = |reason: &str| VaultError::Corrupt {
            path: path.clone(),
            reason: reason.to_string(),
        };
        let sealed: Sealed = serde_json::from_slice(&text).map_err(|e| corrupt(&e.to_string()))?;
        if sealed.version != 1 {
            return Err(corrupt("unknown version"));
        }
        let salt: [u8; 16] = decode_fixed(&sealed.salt).ok_or_else(|| corrupt("bad salt"))?;
        let nonce: [u8; 24] = decode_fixed(&sealed.nonce).ok_or_else(|| corrupt("bad nonce"))?;
        let ciphertext = STANDARD
            .decode(&sealed.ciphertext)
            .map_err(|_| corrupt("bad ciphertext"))?;
        let (key, kdf) = match sealed.kdf.as_str() {
            "key-file" => {
                let key_path = dir.join(KEY_FILE);
                let text = fs::read_to_string(&key_path).map_err(|source| VaultError::Io {
                    path: key_path.clone(),
                    source,
                })?;
                let key = decode_fixed(text.trim()).ok_or(VaultError::Corrupt {
                    path: key_path,
                    reason: "not a 32-byte base64 key".into(),
                })?;
                (key, "key-file")
            }
            "argon2id" => {
                let p = passphrase().ok_or_else(|| VaultError::NeedPassphrase(path.clone()))?;
                (stretch(&p, &salt), "argon2id")
            }
            _ => return Err(corrupt("unknown key derivation")),
        };
        let cipher = XChaCha20Poly1305::new(&key.into());
        let plaintext = cipher
            .decrypt(&XNonce::from(nonce), ciphertext.as_slice())
            .map_err(|_| VaultError::WrongKey(path.clone()))?;
        Ok((
            Self {
                dir: dir.to_path_buf(),
                key,
                kdf,
                salt,
            },
            plaintext,
        ))
    }

    /// Seals and writes `plaintext`, replacing the old state atomically.
    pub fn save(&self, plaintext: &[u8]) -> Result<(), VaultError> {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(&self.key.into());
        let ciphertext = cipher
            .encrypt(&XNonce::from(nonce), plaintext)
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory data");
        let sealed = Sealed {
            version: 1,
            kdf: self.kdf.to_string(),
            salt: STANDARD.encode(self.salt),
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(ciphertext),
        };
        let text = serde_json::to_vec(&sealed).expect("sealed state always serializes");
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        write_private(&tmp, &text)?;
        fs::rename(&tmp, &path).map_err(|source| VaultError::Io { path, source })
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes): about 50 ms.
fn stretch(passphrase: &str, salt: &[u8; 16]) -> [u8; 32] {
    let mut key = [0u8; 32];
    argon2::Argon2::default()
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .expect("32-byte output and 16-byte salt are valid Argon2 parameters");
    key
}

fn decode_fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    STANDARD.decode(text).ok()?.try_into().ok()
}

/// Writes a file readable only by its owner, flushed to disk.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let io = |source| VaultError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}
