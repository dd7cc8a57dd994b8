//! The embedded store: typed methods over sled trees. Nothing above this module sees sled;
//! nothing in it knows about HTTP or SMTP.
//!
//! Trees (keys in [`keys`], values in [`codec`]):
//! - `users`: user id -> [`UserRecord`]
//! - `users_by_email`: lower-cased address -> user id (the uniqueness index)
//! - `sessions`: SHA-256 of the token -> [`SessionRecord`] (tokens themselves are never stored)
//! - `sessions_by_user`: user id ++ digest -> () (revoke all sessions of a user)
//! - `sessions_by_expiry`: expires_at ++ digest -> () (the sweeper reads only what expired)
//! - the mail trees, described in [`mail`]; their `meta` tree also holds the user count
//!   ([`USERS_KEY`]), so counting users never scans `users`
//!
//! Message sources are not in sled but in segment files beside it ([`bodies`]).
//!
//! Writes that touch several trees run in one sled transaction. sled runs transactions one at
//! a time, and other writes wait for them, so a check and the write it guards are safe in one
//! transaction: a session is stored only while its user exists, and a user record is
//! updated only while it exists, so nothing of a deleted account comes back.

pub mod bodies;
pub mod codec;
pub mod keys;
pub mod mail;

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::error::Error;
use crate::time::Timestamp;
use keys::DIGEST_LEN;

/// How long [`Store::open`] waits for sled threads of a store dropped in this process to let go
/// of the database file.
const SLED_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Failures of the storage layer. Shown to operators (start-up, logs), never to API clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data dir.
    #[error(
        "the data dir {} is locked by another process; is `fakemail serve` already running on it? \
         Stop it, or pick another dir with --data-dir",
        .0.display()
    )]
    Locked(PathBuf),
    /// The data dir could not be created or opened.
    #[error("cannot use the data dir {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// sled found damaged files.
    #[error(
        "the data dir {} is damaged ({detail}); move it away or restore it from a backup",
        .path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    /// A segment file of message sources could not be written, synced or read.
    #[error("cannot use the message file {}: {source}", .path.display())]
    Body {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Any other sled failure.
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value could not be encoded or decoded.
    #[error("value encoding error: {0}")]
    Codec(String),
}

/// A user account as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: u64,
    /// The address as registered (trimmed; original case kept for display).
    pub email: String,
    pub display_name: String,
    /// PHC string, e.g. `$pbkdf2-sha256$i=600000,l=32$<salt>$<hash>`.
    pub password_hash: String,
    pub created_at: Timestamp,
}

/// A login session as stored, keyed by the SHA-256 digest of its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user_id: u64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A cheap-to-clone handle to the open store. Cloning shares the database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    users: sled::Tree,
    users_by_email: sled::Tree,
    sessions: sled::Tree,
    sessions_by_user: sled::Tree,
    sessions_by_expiry: sled::Tree,
    mail: mail::MailTrees,
    /// Message sources ([`bodies`]).
    bodies: Arc<bodies::Bodies>,
    /// Held for the life of the store: a second process on the same dir fails fast.
    _lock: Arc<File>,
    /// The data dir it lives in.
    dir: Arc<Path>,
    /// Held while the store is trimmed to the message cap (see [`Store::trim_guard`]).
    trim: Arc<Mutex<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn abort<T>(r: Result<T, StoreError>) -> Result<T, ConflictableTransactionError<StoreError>> {
    r.map_err(ConflictableTransactionError::Abort)
}

fn txn_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

/// The store's directory inside a data dir.
pub const DB_DIR: &str = "db";

/// The key of the user count in the `meta` tree: a big-endian u64, changed in the same
/// transaction as the `users` tree (sled's `Tree::len` scans the whole tree).
const USERS_KEY: &[u8] = b"users";

fn read_count(v: Option<sled::IVec>) -> u64 {
    v.and_then(|v| keys::id_at(&v, 0)).unwrap_or(0)
}

impl Store {
    /// Whether `dir` holds a store (one [`Store::open`] made), without opening or creating it.
    pub fn exists(dir: &Path) -> bool {
        dir.join(DB_DIR).is_dir()
    }

    /// Opens (creating if needed) the store in `dir`, with a page cache of at most `cache_bytes`.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process has the dir open, [`StoreError::Io`] when the
    /// dir cannot be created or read, [`StoreError::Corrupt`] when sled finds damaged files.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        Self::open_with_segments(dir, cache_bytes, bodies::SEGMENT_BYTES)
    }

    /// [`Store::open`] with message sources in segments of `segment_bytes` (tests use small
    /// ones to see segments close, empty and compact).
    #[doc(hidden)]
    pub fn open_with_segments(
        dir: &Path,
        cache_bytes: u64,
        segment_bytes: u64,
    ) -> Result<Store, StoreError> {
        let io = |source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("fakemail.lock"))
            .map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StoreError::Locked(dir.to_path_buf())),
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let config = sled::Config::new()
            .path(dir.join(DB_DIR))
            .cache_capacity(cache_bytes);
        // Our lock above means no other process has the dir, so sled refusing its own lock on
        // `db/db` can only be a store this process just dropped: sled finishes its writes on
        // background threads that hold the file a moment longer. Wait for them, within a bound.
        let deadline = Instant::now() + SLED_LOCK_WAIT;
        let db = loop {
            match config.open() {
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => break other,
            }
        }
        .map_err(|e| match e {
            sled::Error::Io(source) => StoreError::Io {
                path: dir.to_path_buf(),
                source,
            },
            sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => StoreError::Corrupt {
                path: dir.to_path_buf(),
                detail: e.to_string(),
            },
            other => StoreError::Sled(other),
        })?;
        let tree = |name: &str| db.open_tree(name);
        let mail = mail::MailTrees::open(&db)?;
        let bodies = bodies::Bodies::open(
            &dir.join(bodies::BODIES_DIR),
            segment_bytes,
            mail.last_segment()?,
        )?;
        let store = Store {
            users: tree("users")?,
            users_by_email: tree("users_by_email")?,
            sessions: tree("sessions")?,
            sessions_by_user: tree("sessions_by_user")?,
            sessions_by_expiry: tree("sessions_by_expiry")?,
            mail,
            bodies: Arc::new(bodies),
            db,
            _lock: Arc::new(lock),
            dir: Arc::from(dir),
            trim: Arc::default(),
        };
        store.count_users_once()?;
        store.count_custom_mailboxes_once()?;
        store.assign_uids_once()?;
        Ok(store)
    }

    /// A store written before the user count was kept has none: count the users once.
    fn count_users_once(&self) -> Result<(), StoreError> {
        if self.mail.meta.get(USERS_KEY)?.is_none() {
            // Our lock on the dir keeps every other writer out while this runs.
            let n = self.users.len() as u64;
            self.mail.meta.insert(USERS_KEY, &keys::id(n))?;
        }
        Ok(())
    }

    /// The data dir the store lives in (as given to [`Store::open`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new unique id (monotonic within this store).
    pub fn generate_id(&self) -> Result<u64, StoreError> {
        // sled ids start at 0; keep 0 free as "no id".
        Ok(self.db.generate_id()? + 1)
    }

    /// Serializes trims to the message cap within this process: two at once would each delete
    /// to make room, together more than needed. Hold it for the whole trim.
    pub fn trim_guard(&self) -> MutexGuard<'_, ()> {
        // The guard protects no data, so a panic while it was held leaves nothing broken.
        self.trim.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes everything to disk. Blocking: call it from a blocking context.
    pub fn flush(&self) -> Result<(), StoreError> {
        // Sources first: once sled's index is on disk, what it points to must be too.
        self.bodies.sync()?;
        self.db.flush()?;
        Ok(())
    }

    // ----- users -------------------------------------------------------------------------------

    /// Inserts a new user and its email index entry atomically.
    ///
    /// # Errors
    /// [`Error::EmailTaken`] when the address (case-insensitively) already has an account.
    pub fn insert_user(&self, user: &UserRecord) -> Result<(), Error> {
        let value = codec::encode(user)?;
        let email_key = keys::email(&user.email);
        let id_key = keys::user(user.id);
        let taken = (&self.users, &self.users_by_email, &self.mail.meta)
            .transaction(|(users, by_email, meta)| {
                if by_email.get(&email_key)?.is_some() {
                    return Ok(true);
                }
                by_email.insert(email_key.as_slice(), &id_key)?;
                if users.insert(&id_key, value.as_slice())?.is_none() {
                    let n = read_count(meta.get(USERS_KEY)?);
                    meta.insert(USERS_KEY, &keys::id(n + 1))?;
                }
                Ok(false)
            })
            .map_err(txn_error)?;
        if taken {
            Err(Error::EmailTaken)
        } else {
            Ok(())
        }
    }

    /// The user with this id, if any.
    pub fn user(&self, id: u64) -> Result<Option<UserRecord>, StoreError> {
        self.users
            .get(keys::user(id))?
            .map(|v| codec::decode(&v))
            .transpose()
    }

    /// The user registered with this address (case-insensitive), if any.
    pub fn user_by_email(&self, address: &str) -> Result<Option<UserRecord>, StoreError> {
        match self.users_by_email.get(keys::email(address))? {
            Some(id) => match keys::parse_user(&id) {
                Some(id) => self.user(id),
                None => Err(StoreError::Codec("bad user id in email index".into())),
            },
            None => Ok(None),
        }
    }

    /// Replaces a user's record, if it still exists: a user deleted meanwhile is not brought
    /// back. The email must not change (the index is not touched). Returns false when the
    /// user is gone.
    pub fn update_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let value = codec::encode(user)?;
        let old = self
            .users
            .fetch_and_update(keys::user(user.id), |old| old.map(|_| value.clone()))?;
        Ok(old.is_some())
    }

    /// Deletes a user, its email index entry and all of its sessions. Returns false when there
    /// was no such user.
    ///
    /// Race-free against logins: the user and the sessions read beforehand go in one
    /// transaction, and [`Store::insert_session`] checks in its own transaction that the user
    /// exists. So a session stored before that transaction is either among those read, or
    /// found by the sweep of the user's sessions that follows it; none can be stored after it.
    pub fn delete_user(&self, id: u64) -> Result<bool, StoreError> {
        let Some(user) = self.user(id)? else {
            return Ok(false);
        };
        let sessions = self.user_sessions(id)?;
        let email_key = keys::email(&user.email);
        let deleted = (
            &self.users,
            &self.users_by_email,
            &self.sessions,
            &self.sessions_by_user,
            &self.sessions_by_expiry,
            &self.mail.meta,
        )
            .transaction(|(users, by_email, sessions_t, by_user, by_expiry, meta)| {
                if users.remove(&keys::user(id))?.is_none() {
                    // Someone else deleted it meanwhile.
                    return Ok(false);
                }
                let n = read_count(meta.get(USERS_KEY)?);
                meta.insert(USERS_KEY, &keys::id(n.saturating_sub(1)))?;
                by_email.remove(email_key.as_slice())?;
                for (digest, expires_at) in &sessions {
                    sessions_t.remove(digest)?;
                    by_user.remove(&keys::user_session(id, digest)[..])?;
                    by_expiry.remove(&keys::session_expiry(*expires_at, digest)[..])?;
                }
                Ok(true)
            })
            .map_err(txn_error)?;
        if deleted {
            // Sessions stored between the read above and the transaction.
            self.delete_user_sessions(id, None)?;
        }
        Ok(deleted)
    }

    /// Number of registered users: one point read of the count kept with every insert and
    /// delete.
    pub fn user_count(&self) -> Result<u64, StoreError> {
        Ok(read_count(self.mail.meta.get(USERS_KEY)?))
    }

    // ----- sessions ----------------------------------------------------------------------------

    /// Stores a new session under the digest of its token, if its user exists: checked in
    /// the same transaction, so no session outlives a [`Store::delete_user`]. Returns false
    /// (and stores nothing) when the user is gone.
    pub fn insert_session(
        &self,
        digest: &[u8; DIGEST_LEN],
        session: &SessionRecord,
    ) -> Result<bool, StoreError> {
        let value = codec::encode(session)?;
        (
            &self.users,
            &self.sessions,
            &self.sessions_by_user,
            &self.sessions_by_expiry,
        )
            .transaction(|(users, sessions, by_user, by_expiry)| {
                if users.get(keys::user(session.user_id))?.is_none() {
                    return Ok(false);
                }
                sessions.insert(digest, value.as_slice())?;
                by_user.insert(&keys::user_session(session.user_id, digest)[..], &[])?;
                by_expiry.insert(&keys::session_expiry(session.expires_at, digest)[..], &[])?;
                Ok(true)
            })
            .map_err(txn_error)
    }

    /// The session with this token digest, if any (expired ones included: the caller decides).
    pub fn session(&self, digest: &[u8; DIGEST_LEN]) -> Result<Option<SessionRecord>, StoreError> {
        self.sessions
            .get(digest)?
            .map(|v| codec::decode(&v))
            .transpose()
    }

    /// Deletes one session and its index entries. Returns whether it existed.
    pub fn delete_session(&self, digest: &[u8; DIGEST_LEN]) -> Result<bool, StoreError> {
        (
            &self.sessions,
            &self.sessions_by_user,
            &self.sessions_by_expiry,
        )
            .transaction(|(sessions, by_user, by_expiry)| {
                let Some(old) = sessions.remove(digest)? else {
                    return Ok(false);
                };
                let old: SessionRecord = abort(codec::decode(&old))?;
                by_user.remove(&keys::user_session(old.user_id, digest)[..])?;
                by_expiry.remove(&keys::session_expiry(old.expires_at, digest)[..])?;
                Ok(true)
            })
            .map_err(txn_error)
    }

    /// Deletes every session of `user_id` except `keep`. Returns how many went.
    pub fn delete_user_sessions(
        &self,
        user_id: u64,
        keep: Option<&[u8; DIGEST_LEN]>,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for digest in self.user_session_digests(user_id)? {
            if Some(&digest) != keep && self.delete_session(&digest)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Deletes every session that expired at or before `now`, reading only those (a range over
    /// the expiry index). Returns how many went.
    pub fn purge_expired_sessions(&self, now: Timestamp) -> Result<usize, StoreError> {
        let end = keys::session_expiry_end(now);
        let mut removed = 0;
        for entry in self.sessions_by_expiry.range(..end.as_slice()) {
            let (key, _) = entry?;
            let Some(digest) = keys::digest_suffix(&key) else {
                // A malformed index entry: drop it so it cannot block the sweep.
                self.sessions_by_expiry.remove(&key)?;
                continue;
            };
            if self.delete_session(&digest)? {
                removed += 1;
            } else {
                self.sessions_by_expiry.remove(&key)?;
            }
        }
        Ok(removed)
    }

    /// Number of stored sessions (live or not yet swept).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    fn user_session_digests(&self, user_id: u64) -> Result<Vec<[u8; DIGEST_LEN]>, StoreError> {
        self.sessions_by_user
            .scan_prefix(keys::user(user_id))
            .keys()
            .map(|k| {
                let k = k?;
                keys::digest_suffix(&k).ok_or_else(|| StoreError::Codec("bad session key".into()))
            })
            .collect()
    }

    /// The sessions of a user that still exist, with their expiry (for the expiry index key).
    fn user_sessions(
        &self,
        user_id: u64,
    ) -> Result<Vec<([u8; DIGEST_LEN], Timestamp)>, StoreError> {
        let mut out = Vec::new();
        for digest in self.user_session_digests(user_id)? {
            if let Some(s) = self.session(&digest)? {
                out.push((digest, s.expires_at));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u64, email: &str) -> UserRecord {
        UserRecord {
            id,
            email: email.into(),
            display_name: String::new(),
            password_hash: String::new(),
            created_at: Timestamp(0),
        }
    }

    #[test]
    fn the_user_count_follows_inserts_and_deletes_and_is_made_for_old_stores() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.user_count().unwrap(), 0);
        store.insert_user(&user(1, "a@example.test")).unwrap();
        store.insert_user(&user(2, "b@example.test")).unwrap();
        assert!(store.insert_user(&user(3, "A@example.test")).is_err());
        assert_eq!(store.user_count().unwrap(), 2);
        assert!(store.delete_user(1).unwrap());
        assert!(!store.delete_user(1).unwrap());
        assert_eq!(store.user_count().unwrap(), 1);

        // A store from before the count: it is made from the users at open.
        store.insert_user(&user(4, "c@example.test")).unwrap();
        store.mail.meta.remove(USERS_KEY).unwrap();
        assert_eq!(store.user_count().unwrap(), 0);
        store.count_users_once().unwrap();
        assert_eq!(store.user_count().unwrap(), 2);

        // The count is stored: a reopened store has it without counting.
        drop(store);
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.user_count().unwrap(), 2);
    }
}
