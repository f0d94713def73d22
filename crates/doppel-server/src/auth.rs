//! Bearer tokens and roles.
//!
//! A token reads `dpl_<id>_<secret>`: the id (8 hex digits) finds the record in
//! `<data dir>/tokens.json`, and the secret is checked against its argon2id hash. The secret
//! is never stored. Because argon2 is deliberately slow, a successful check is remembered in
//! memory under the SHA-256 of the whole token, so later requests cost one hash lookup.
//! `DOPPEL_ADMIN_TOKEN`, when set, is an extra admin token kept only in memory.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do. Each role includes the ones below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read models, twins, state, history and live events.
    Reader,
    /// Also write readings.
    Writer,
    /// Also change models and twins.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "reader" => Some(Role::Reader),
            "writer" => Some(Role::Writer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }
}

/// Errors of the token file.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid token file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("could not hash token: {0}")]
    Hash(String),
    #[error("could not get random bytes: {0}")]
    Random(String),
}

/// One stored token (without its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub role: Role,
    #[serde(default)]
    pub name: String,
    /// argon2id PHC string of the secret.
    pub hash: String,
    pub created: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<TokenRecord>,
}

fn token_path(dir: &Path) -> PathBuf {
    dir.join("tokens.json")
}

fn read_file(dir: &Path) -> Result<Option<TokenFile>, AuthError> {
    let path = token_path(dir);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AuthError::Corrupt {
                path,
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AuthError::Io { path, source }),
    }
}

fn write_file(dir: &Path, file: &TokenFile) -> Result<(), AuthError> {
    let path = token_path(dir);
    let io = |source| AuthError::Io {
        path: path.clone(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| AuthError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    crate::files::write_atomic(&path, &bytes).map_err(io)
}

fn random_hex(n: usize) -> Result<String, AuthError> {
    crate::files::random_hex(n).map_err(|e| AuthError::Random(e.to_string()))
}

fn hash_secret(secret: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| AuthError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Adds a token to the file in `dir` and returns its full text (shown once, never stored).
pub fn create_token(dir: &Path, role: Role, name: &str) -> Result<String, AuthError> {
    let mut file = read_file(dir)?.unwrap_or_default();
    let id = loop {
        let id = random_hex(4)?;
        if !file.tokens.iter().any(|t| t.id == id) {
            break id;
        }
    };
    let secret = random_hex(24)?;
    file.tokens.push(TokenRecord {
        id: id.clone(),
        role,
        name: name.to_string(),
        hash: hash_secret(&secret)?,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    write_file(dir, &file)?;
    Ok(format!("dpl_{id}_{secret}"))
}

/// Lists the stored tokens (ids, roles, names; never secrets).
pub fn list_tokens(dir: &Path) -> Result<Vec<TokenRecord>, AuthError> {
    Ok(read_file(dir)?.map(|f| f.tokens).unwrap_or_default())
}

/// Removes a token by id; returns whether it existed.
pub fn revoke_token(dir: &Path, id: &str) -> Result<bool, AuthError> {
    let mut file = read_file(dir)?.unwrap_or_default();
    let before = file.tokens.len();
    file.tokens.retain(|t| t.id != id);
    let removed = file.tokens.len() != before;
    if removed {
        write_file(dir, &file)?;
    }
    Ok(removed)
}

/// What happened at start-up about the admin token.
#[derive(Debug)]
pub enum Bootstrap {
    /// No token existed: this admin token was created and must be shown once.
    Generated(String),
    /// The admin token comes from `DOPPEL_ADMIN_TOKEN`.
    FromEnv,
    /// Tokens already exist in the data directory.
    Existing(usize),
}

/// Verifies tokens against the token file (re-read when it changes) and the optional
/// environment admin token.
#[derive(Debug)]
pub struct Authenticator {
    dir: PathBuf,
    env_admin: Option<[u8; 32]>,
    state: RwLock<AuthState>,
}

#[derive(Debug, Default)]
struct AuthState {
    records: HashMap<String, TokenRecord>,
    mtime: Option<SystemTime>,
    verified: HashMap<[u8; 32], Role>,
}

impl Authenticator {
    /// Loads the token file in `dir`; creates a first admin token when there is none and no
    /// `env_admin` token is given.
    pub fn open(
        dir: &Path,
        env_admin: Option<&str>,
    ) -> Result<(Authenticator, Bootstrap), AuthError> {
        let existing = list_tokens(dir)?;
        let bootstrap = if let Some(_t) = env_admin {
            Bootstrap::FromEnv
        } else if existing.is_empty() {
            Bootstrap::Generated(create_token(
                dir,
                Role::Admin,
                "admin (generated at first start)",
            )?)
        } else {
            Bootstrap::Existing(existing.len())
        };
        let auth = Authenticator {
            dir: dir.to_path_buf(),
            env_admin: env_admin.map(|t| Sha256::digest(t.as_bytes()).into()),
            state: RwLock::new(AuthState::default()),
        };
        auth.reload()?;
        Ok((auth, bootstrap))
    }

    fn reload(&self) -> Result<(), AuthError> {
        let path = token_path(&self.dir);
        let mtime = fs::metadata(&path).and_then(|m| m.modified()).ok();
        let records = list_tokens(&self.dir)?;
        let mut st = self.state.write();
        st.records = records.into_iter().map(|r| (r.id.clone(), r)).collect();
        st.mtime = mtime;
        // Revocations must take effect: forget every cached verification.
        st.verified.clear();
        Ok(())
    }

    fn reload_if_changed(&self) {
        let mtime = fs::metadata(token_path(&self.dir))
            .and_then(|m| m.modified())
            .ok();
        if mtime != self.state.read().mtime {
            if let Err(e) = self.reload() {
                tracing::warn!(error = %e, "token file unreadable; keeping the previous tokens");
            }
        }
    }

    /// The role of a token, or `None` when it is not valid.
    pub fn verify(&self, token: &str) -> Option<Role> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(env) = &self.env_admin {
            if bool::from(env.ct_eq(&digest)) {
                return Some(Role::Admin);
            }
        }
        self.reload_if_changed();
        if let Some(role) = self.state.read().verified.get(&digest) {
            return Some(*role);
        }
        let rest = token.strip_prefix("dpl_")?;
        let (id, secret) = rest.split_once('_')?;
        let record = self.state.read().records.get(id).cloned()?;
        let hash = PasswordHash::new(&record.hash).ok()?;
        Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .ok()?;
        self.state.write().verified.insert(digest, record.role);
        Some(record.role)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_admin_token_verifies_and_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, boot) = Authenticator::open(dir.path(), None).unwrap();
        let Bootstrap::Generated(admin) = boot else {
            panic!("no token generated")
        };
        assert_eq!(auth.verify(&admin), Some(Role::Admin));
        assert_eq!(auth.verify(&admin), Some(Role::Admin), "cached path");
        assert_eq!(auth.verify("dpl_00000000_nope"), None);
        assert_eq!(auth.verify(""), None);
        let forged = format!("{}x", admin);
        assert_eq!(auth.verify(&forged), None);
        let stored = fs::read_to_string(dir.path().join("tokens.json")).unwrap();
        assert!(
            !stored.contains(admin.rsplit('_').next().unwrap()),
            "secret stored in clear"
        );

        let reader = create_token(dir.path(), Role::Reader, "r").unwrap();
        assert_eq!(
            auth.verify(&reader),
            Some(Role::Reader),
            "new tokens are picked up"
        );
        let id = reader.split('_').nth(1).unwrap();
        assert!(revoke_token(dir.path(), id).unwrap());
        // mtime resolution can hide a change made within the same tick; force a reload.
        auth.reload().unwrap();
        assert_eq!(auth.verify(&reader), None, "revoked token still accepted");

        let (_a, boot) = Authenticator::open(dir.path(), None).unwrap();
        assert!(matches!(boot, Bootstrap::Existing(1)));
    }

    #[test]
    fn env_admin_token() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, boot) = Authenticator::open(dir.path(), Some("s3cret-admin")).unwrap();
        assert!(matches!(boot, Bootstrap::FromEnv));
        assert_eq!(auth.verify("s3cret-admin"), Some(Role::Admin));
        assert_eq!(auth.verify("s3cret-admiN"), None);
    }
}
