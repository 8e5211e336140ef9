//! Server-side sessions behind an opaque cookie.
//!
//! The cookie carries 256 random bits; the database keeps only their SHA-256, so a copy of the
//! database cannot be replayed as cookies. A session ends after the idle timeout or at the end of
//! its absolute lifetime, whichever comes first.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::clock::{Clock, Random, Timestamp};
use crate::enrolment::{ServiceKind, StepUp};
use crate::storage::{SessionRecord, Storage, StorageError};

/// The portal roles a user has, from AD groups (nested membership counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    /// Everything.
    pub admin: bool,
    /// Verify callers and view users.
    pub helpdesk: bool,
    /// Read-only reports.
    pub reporting: bool,
}

impl Roles {
    pub fn any(self) -> bool {
        self.admin || self.helpdesk || self.reporting
    }

    pub fn can_view_users(self) -> bool {
        self.admin || self.helpdesk
    }

    pub fn can_report(self) -> bool {
        self.admin || self.reporting
    }

    pub fn to_list(self) -> String {
        let mut parts = Vec::new();
        for (on, name) in [(self.admin, "admin"), (self.helpdesk, "helpdesk"), (self.reporting, "reporting")] {
            if on {
                parts.push(name);
            }
        }
        parts.join(",")
    }

    pub fn from_list(list: &str) -> Roles {
        let has = |r: &str| list.split(',').any(|p| p == r);
        Roles { admin: has("admin"), helpdesk: has("helpdesk"), reporting: has("reporting") }
    }
}

/// Who is logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub user_id: String,
    pub user_dn: String,
    pub account_name: String,
    pub display_name: String,
    pub is_admin: bool,
    pub roles: Roles,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: SessionUser,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// When the password was last given (at login, or again for admin pages).
    pub authenticated_at: Timestamp,
    /// What this session has proved, for changing enrolled services.
    pub step_up: StepUp,
}

/// The answer to "whose cookie is this?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Active(Session),
    /// It was a session, and it ran out: the user should be told so.
    Expired(SessionUser),
    None,
}

#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    idle_seconds: i64,
    absolute_seconds: i64,
}

/// Writing `last_seen_at` on every request would cost a write per page; once a minute is enough.
const TOUCH_INTERVAL: i64 = 60;

/// The stored form of a browser binding (the secret that ties a flow to the browser that started
/// it), kept apart per kind of flow.
pub fn binding_hash(kind: &str, binding: &str) -> String {
    hex::encode(Sha256::digest(format!("{kind}\0{binding}").as_bytes()))
}

/// Whether `stored` is this browser's binding, compared in constant time.
pub fn is_bound(stored: &str, kind: &str, binding: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), binding_hash(kind, binding).as_bytes()).into()
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Sessions {
    pub fn new(
        store: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        idle_minutes: u64,
        absolute_minutes: u64,
    ) -> Self {
        Self {
            store,
            clock,
            random,
            idle_seconds: idle_minutes as i64 * 60,
            absolute_seconds: absolute_minutes as i64 * 60,
        }
    }

    /// Starts a session and returns the cookie value. Any session the browser had is ended first
    /// (the id is rotated at login).
    pub async fn start(&self, user: SessionUser, previous_token: Option<&str>) -> Result<String, StorageError> {
        if let Some(old) = previous_token {
            self.store.delete_session(&hash(old)).await?;
        }
        let token = self.random.token();
        let now = self.clock.now();
        self.store
            .insert_session(&SessionRecord {
                id_hash: hash(&token),
                user_id: user.user_id,
                user_dn: user.user_dn,
                account_name: user.account_name,
                display_name: user.display_name,
                is_admin: user.is_admin,
                created_at: now,
                last_seen_at: now,
                roles: user.roles.to_list(),
                authenticated_at: now,
                proof_service: None,
                proof_at: None,
            })
            .await?;
        Ok(token)
    }

    /// Finds the session for a cookie value and marks it used.
    pub async fn lookup(&self, token: &str) -> Result<Lookup, StorageError> {
        let id_hash = hash(token);
        let Some(record) = self.store.session(&id_hash).await? else {
            return Ok(Lookup::None);
        };
        let now = self.clock.now();
        let user = SessionUser {
            user_id: record.user_id,
            user_dn: record.user_dn,
            account_name: record.account_name,
            display_name: record.display_name,
            is_admin: record.is_admin,
            roles: Roles::from_list(&record.roles),
        };
        let idle = now - record.last_seen_at >= self.idle_seconds;
        let too_old = now - record.created_at >= self.absolute_seconds;
        if idle || too_old {
            self.store.delete_session(&id_hash).await?;
            return Ok(Lookup::Expired(user));
        }
        if now - record.last_seen_at >= TOUCH_INTERVAL {
            self.store.touch_session(&id_hash, now).await?;
        }
        let verified = match (record.proof_service.as_deref().map(str::parse::<ServiceKind>), record.proof_at) {
            (Some(Ok(service)), Some(at)) => Some((service, at)),
            _ => None,
        };
        Ok(Lookup::Active(Session {
            user,
            created_at: record.created_at,
            last_seen_at: now,
            authenticated_at: record.authenticated_at,
            step_up: StepUp { password_at: record.authenticated_at, verified },
        }))
    }

    /// The user gave their password again; `roles` were read again with it.
    pub async fn reauthenticated(&self, token: &str, roles: Roles) -> Result<(), StorageError> {
        self.store.session_reauthenticated(&hash(token), self.clock.now(), &roles.to_list()).await
    }

    /// The user verified with an enrolled service in this session at `at` (a step-up, see [`StepUp`]).
    pub async fn verified(&self, token: &str, service: ServiceKind, at: Timestamp) -> Result<(), StorageError> {
        self.store.session_proof(&hash(token), service.id(), at).await
    }

    /// Ends every session of the user except the one behind `keep` (their credentials changed).
    pub async fn end_all_for(&self, user_id: &str, keep: Option<&str>) -> Result<u64, StorageError> {
        let keep = keep.map(hash);
        self.store.delete_user_sessions(user_id, keep.as_deref()).await
    }

    pub async fn end(&self, token: &str) -> Result<(), StorageError> {
        self.store.delete_session(&hash(token)).await
    }

    /// Deletes every expired session; run periodically.
    pub async fn purge_expired(&self) -> Result<u64, StorageError> {
        let now = self.clock.now();
        self.store.delete_expired_sessions(now - self.idle_seconds, now - self.absolute_seconds).await
    }
}
