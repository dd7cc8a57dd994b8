//! Accounts and sessions: register, login, logout, profile, password change, account deletion.

use std::time::Instant;

use tracing::{info, warn};

use super::{Service, address, password, token};
use crate::error::{Error, Result};
use crate::store::keys::{self, DIGEST_LEN};
use crate::store::{SessionRecord, UserRecord};
use crate::time::Timestamp;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 100;

/// What registration needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
}

/// A user as the outside world may see it: never a hash, never a token.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: u64,
    pub email: String,
    pub display_name: String,
    pub created_at: Timestamp,
}

impl From<&UserRecord> for User {
    fn from(r: &UserRecord) -> Self {
        User {
            id: r.id,
            email: r.email.clone(),
            display_name: r.display_name.clone(),
            created_at: r.created_at,
        }
    }
}

/// A successful login: the token is shown here once and never again.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub token: String,
    pub expires_at: Timestamp,
    pub user: User,
}

/// An authenticated caller: who, and which session (so logout can end exactly that one).
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    digest: [u8; DIGEST_LEN],
}

fn check_email(raw: &str) -> Result<String> {
    let email = raw.trim();
    address::check(email).map_err(|why| {
        Error::invalid(
            "invalid_email",
            "email",
            format!("the email address is not valid: {why}"),
        )
    })?;
    Ok(email.to_owned())
}

fn check_display_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.chars().count() > MAX_DISPLAY_NAME {
        return Err(Error::invalid(
            "invalid_display_name",
            "display_name",
            "the display name must be at most 100 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_display_name",
            "display_name",
            "the display name must not contain control characters such as line breaks",
        ));
    }
    Ok(name.to_owned())
}

/// The limiter and lookup key for an address.
fn login_key(email: &str) -> String {
    String::from_utf8_lossy(&keys::email(email)).into_owned()
}

impl Service {
    /// Creates an account.
    ///
    /// # Errors
    /// `invalid_email`, `weak_password`, `invalid_display_name` ([`Error::Invalid`]);
    /// [`Error::EmailTaken`].
    pub async fn register(&self, new: NewUser) -> Result<User> {
        let email = check_email(&new.email)?;
        let display_name = check_display_name(new.display_name.as_deref().unwrap_or(""))?;
        password::check_rules(&new.password, &email, "password")?;
        // Cheap early answer; the transaction below is what really guarantees uniqueness.
        if self.inner.store.user_by_email(&email)?.is_some() {
            return Err(Error::EmailTaken);
        }
        let iterations = self.inner.settings.password_iterations;
        let pw = new.password;
        let password_hash = self.cpu(move || password::hash(&pw, iterations)).await??;
        let record = UserRecord {
            id: self.inner.store.generate_id()?,
            email,
            display_name,
            password_hash,
            created_at: Timestamp::now(),
        };
        let user = User::from(&record);
        self.offload(move |svc| svc.inner.store.insert_user(&record))
            .await?;
        info!(user = user.id, email = %user.email, "registered");
        Ok(user)
    }

    /// Verifies `password` for `email` with the failed-attempt limit applied. Unknown addresses
    /// cost a verification against a dummy hash, so they answer like a wrong password.
    async fn check_password(&self, email: &str, password: &str) -> Result<UserRecord> {
        let key = login_key(email);
        if let Err(retry_after) = self.inner.limiter.begin(&key, Instant::now()) {
            warn!(email = %email.trim(), "login refused: too many failed attempts");
            return Err(Error::TooManyAttempts { retry_after });
        }
        let user = self.inner.store.user_by_email(email)?;
        let phc = match &user {
            Some(u) => u.password_hash.clone(),
            None => self.dummy_hash().await?,
        };
        let pw = password.to_owned();
        let ok = self.cpu(move || password::verify(&pw, &phc)).await?;
        match user {
            Some(u) if ok => {
                self.inner.limiter.succeed(&key);
                Ok(u)
            }
            _ => Err(Error::InvalidCredentials),
        }
    }

    async fn dummy_hash(&self) -> Result<String> {
        let iterations = self.inner.settings.password_iterations;
        self.inner
            .dummy_hash
            .get_or_try_init(|| async {
                let mut random = [0u8; 16];
                rand::Rng::fill_bytes(&mut rand::rng(), &mut random);
                let secret = token::hex(&random);
                self.cpu(move || password::hash(&secret, iterations))
                    .await?
            })
            .await
            .cloned()
    }

    /// Checks an account's password without opening a session: the login of SMTP AUTH. It
    /// counts towards the failed-login limit like [`Service::login`], and a failure is logged
    /// the same way.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] for an unknown address or a wrong password alike;
    /// [`Error::TooManyAttempts`] after too many failures.
    pub async fn verify_password(&self, email: &str, password: &str) -> Result<User> {
        Ok(User::from(&self.verify_login(email, password).await?))
    }

    /// [`Service::check_password`], logging a wrong password.
    async fn verify_login(&self, email: &str, password: &str) -> Result<UserRecord> {
        let result = self.check_password(email, password).await;
        if let Err(Error::InvalidCredentials) = result {
            warn!(email = %email.trim(), "login failed");
        }
        result
    }

    /// Logs in and opens a session.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] for an unknown address or a wrong password alike;
    /// [`Error::TooManyAttempts`] after too many failures.
    pub async fn login(&self, email: &str, password: &str) -> Result<LoginOutcome> {
        let user = self.verify_login(email, password).await?;
        let (token, digest) = token::generate();
        let now = Timestamp::now();
        let expires_at = now.after(self.inner.settings.session_ttl);
        let session = SessionRecord {
            user_id: user.id,
            created_at: now,
            expires_at,
        };
        let stored = self
            .offload(move |svc| Ok(svc.inner.store.insert_session(&digest, &session)?))
            .await?;
        if !stored {
            // The account was deleted since its password was checked.
            return Err(Error::InvalidCredentials);
        }
        info!(user = user.id, email = %user.email, "logged in");
        Ok(LoginOutcome {
            token,
            expires_at,
            user: User::from(&user),
        })
    }

    /// Resolves a bearer token to its session.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] when the token is unknown, expired, or its user is gone.
    pub async fn authenticate(&self, token: &str) -> Result<Session> {
        let digest = token::digest(token);
        let Some(session) = self.inner.store.session(&digest)? else {
            return Err(Error::InvalidToken);
        };
        if session.expires_at <= Timestamp::now() {
            return Err(Error::InvalidToken);
        }
        let Some(user) = self.inner.store.user(session.user_id)? else {
            return Err(Error::InvalidToken);
        };
        Ok(Session {
            user: User::from(&user),
            digest,
        })
    }

    /// Whether a session is still good: not logged out, expired or revoked, its user still
    /// there. For requests that outlive their authentication (waits, event streams).
    pub async fn session_valid(&self, session: &Session) -> Result<bool> {
        let Some(s) = self.inner.store.session(&session.digest)? else {
            return Ok(false);
        };
        Ok(s.user_id == session.user.id && s.expires_at > Timestamp::now())
    }

    /// Ends this session; its token stops working at once.
    pub async fn logout(&self, session: &Session) -> Result<()> {
        let digest = session.digest;
        self.offload(move |svc| Ok(svc.inner.store.delete_session(&digest)?))
            .await?;
        info!(user = session.user.id, "logged out");
        Ok(())
    }

    /// Changes the display name.
    pub async fn update_profile(&self, session: &Session, display_name: &str) -> Result<User> {
        let display_name = check_display_name(display_name)?;
        let mut record = self
            .inner
            .store
            .user(session.user.id)?
            .ok_or(Error::InvalidToken)?;
        record.display_name = display_name;
        if !self.inner.store.update_user(&record)? {
            // The account was deleted meanwhile.
            return Err(Error::InvalidToken);
        }
        info!(user = record.id, "profile updated");
        Ok(User::from(&record))
    }

    /// Changes the password and revokes every other session of the user.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] when `current` is wrong; `weak_password` for `new`.
    pub async fn change_password(&self, session: &Session, current: &str, new: &str) -> Result<()> {
        password::check_rules(new, &session.user.email, "new_password")?;
        let mut record = self.check_password(&session.user.email, current).await?;
        let iterations = self.inner.settings.password_iterations;
        let pw = new.to_owned();
        record.password_hash = self.cpu(move || password::hash(&pw, iterations)).await??;
        if !self.inner.store.update_user(&record)? {
            return Err(Error::InvalidToken);
        }
        let (id, keep) = (record.id, session.digest);
        let revoked = self
            .offload(move |svc| Ok(svc.inner.store.delete_user_sessions(id, Some(&keep))?))
            .await?;
        info!(user = record.id, revoked, "password changed");
        Ok(())
    }

    /// Deletes the account with everything it owns.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] when `password` is wrong.
    pub async fn delete_account(&self, session: &Session, password: &str) -> Result<()> {
        let record = self.check_password(&session.user.email, password).await?;
        let id = record.id;
        let email = record.email.clone();
        let removed = self
            .offload(move |svc| {
                // Sessions and the user go first, so the account stops working before its
                // mail (possibly much of it) is removed.
                svc.inner.store.delete_user(id)?;
                svc.delete_mail_of(&email)
            })
            .await?;
        info!(user = id, email = %record.email, messages = removed.messages, "account deleted");
        Ok(())
    }
}
