//! Server-side sessions behind an opaque cookie.
//!
//! The cookie carries 256 random bits; the database keeps only their SHA-256, so a copy of the
//! database cannot be replayed as cookies. A session ends after the idle timeout or at the end of
//! its absolute lifetime, whichever comes first, and when the user's credentials change: at once
//! when the change is made here, and within [`CHECK_INTERVAL`] when it is made anywhere else (the
//! user's `pwdLastSet` in AD is compared with the one the session knew), or when the account is
//! disabled or removed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use sha2::{Digest, Sha256};

use crate::clock::{Clock, Random, Timestamp};
use crate::directory::{Directory, DirectoryError, filetime_seconds};
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

/// The AD groups that give the portal's roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleGroups {
    pub admin: Option<String>,
    pub helpdesk: Option<String>,
    pub reporting: Option<String>,
}

impl RoleGroups {
    /// The user's roles: membership of each configured group, nesting included (wherever in the
    /// domain the groups are, whatever the user search base).
    pub async fn read(&self, directory: &dyn Directory, user_dn: &str) -> Result<Roles, DirectoryError> {
        let member = async |g: &Option<String>| -> Result<bool, DirectoryError> {
            match g {
                Some(group) => directory.is_member_of(user_dn, group).await,
                None => Ok(false),
            }
        };
        Ok(Roles {
            admin: member(&self.admin).await?,
            helpdesk: member(&self.helpdesk).await?,
            reporting: member(&self.reporting).await?,
        })
    }
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

    /// Whether these roles lack one of `had`'s.
    pub fn lost_any_of(self, had: Roles) -> bool {
        (had.admin && !self.admin) || (had.helpdesk && !self.helpdesk) || (had.reporting && !self.reporting)
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
    /// AD's `pwdLastSet` for the user when they proved who they are (see [`Sessions::lookup`]).
    pub password_set: Option<String>,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: SessionUser,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// When the AD password was last given in this session (at login, or again for admin pages);
    /// None for a session started with another service (BankID) and not asked for it since.
    pub password_at: Option<Timestamp>,
    /// What this session has proved, for changing enrolled services.
    pub step_up: StepUp,
}

/// How the user proved who they were at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoggedInWith {
    /// The AD password.
    Password,
    /// An enrolled service (Mobile BankID): the password was not given.
    Service,
}

/// The stored `authenticated_at` of a session in which the password was never given.
const NEVER: Timestamp = 0;

/// The answer to "whose cookie is this?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Active(Session),
    /// It was a session, and it ran out: the user should be told so.
    Expired(SessionUser),
    /// It was a session, and the directory ended it: the password was set elsewhere, or the
    /// account was disabled or removed.
    Revoked(SessionUser),
    None,
}

#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    idle_seconds: i64,
    absolute_seconds: i64,
    /// Where a session's user is checked (None: never, as in unit tests of other services).
    directory: Option<Arc<dyn Directory>>,
    /// The groups of the portal's roles: a staff session's are checked with its user.
    role_groups: RoleGroups,
    /// No check asks the directory before this time (it failed to answer just before).
    retry_at: Arc<AtomicI64>,
}

/// Writing `last_seen_at` on every request would cost a write per page; once a minute is enough.
const TOUCH_INTERVAL: i64 = 60;

/// How often a session's user is checked in the directory (a password set elsewhere, a disabled
/// account): at most this long does a session outlive either.
pub const CHECK_INTERVAL: i64 = 60;
/// After a check the directory could not answer, when it is asked again (by any session).
const RETRY_AFTER: i64 = 15;
/// How long a session goes on without a check the directory answered.
pub const MAX_UNCHECKED: i64 = 600;
/// How much later than a change made here AD's `pwdLastSet` may say it was set (the portal's and
/// the DC's clocks differ a little). A change made elsewhere within this time after one made here
/// goes unnoticed.
pub(crate) const CHANGE_SKEW: i64 = 120;
/// A `pwdLastSet` older than this before a change made here is the value from before it: the DC
/// asked has not had the change yet (the most the clocks may differ under Kerberos, 5 minutes).
const STALE_BEFORE: i64 = 300;

/// Whether the log has said that `pwdLastSet` cannot be read (said once per process).
static PWD_UNREADABLE_TOLD: AtomicBool = AtomicBool::new(false);

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
            directory: None,
            role_groups: RoleGroups::default(),
            retry_at: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Sessions whose users are checked in `directory` every [`CHECK_INTERVAL`]: the account and
    /// its password, and for a member of staff, the groups of `role_groups` (a member removed from
    /// one loses the session within the interval, not at the next re-authentication).
    pub fn checked_in(mut self, directory: Arc<dyn Directory>, role_groups: RoleGroups) -> Self {
        self.directory = Some(directory);
        self.role_groups = role_groups;
        self
    }

    /// Starts a session and returns the cookie value. Any session the browser had is ended first
    /// (the id is rotated at login).
    pub async fn start(
        &self,
        user: SessionUser,
        previous_token: Option<&str>,
        by: LoggedInWith,
    ) -> Result<String, StorageError> {
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
                // A login with a service is no proof of the password: admin pages and a first
                // service ask for it (a relayed or stolen BankID gets no further than its own stars).
                authenticated_at: if by == LoggedInWith::Password { now } else { NEVER },
                proof_service: None,
                proof_at: None,
                pwd_last_set: user.password_set,
                pwd_checked_at: Some(now),
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
            password_set: record.pwd_last_set.clone(),
        };
        let idle = now - record.last_seen_at >= self.idle_seconds;
        let too_old = now - record.created_at >= self.absolute_seconds;
        if idle || too_old {
            self.store.delete_session(&id_hash).await?;
            return Ok(Lookup::Expired(user));
        }
        let known = (record.pwd_last_set.as_deref(), record.pwd_checked_at);
        if !self.still_valid(&id_hash, &user, known, now).await? {
            self.store.delete_session(&id_hash).await?;
            return Ok(Lookup::Revoked(user));
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
            password_at: (record.authenticated_at != NEVER).then_some(record.authenticated_at),
            step_up: StepUp { password_at: record.authenticated_at, verified },
        }))
    }

    /// Whether the session's user is as the session knew them: asks the directory once every
    /// [`CHECK_INTERVAL`]. A stored `pwdLastSet` of None (a change made in this session) adopts
    /// the one read, if AD set it no later than [`CHANGE_SKEW`] after that change; one from well
    /// before it ([`STALE_BEFORE`]) comes from a DC the change has not reached, and is asked
    /// again at the next request. A directory that cannot be asked (or tell) ends nothing for
    /// [`MAX_UNCHECKED`] (a failing one is asked again after [`RETRY_AFTER`], not on every
    /// request); after that, the session ends.
    async fn still_valid(
        &self,
        id_hash: &str,
        session_user: &SessionUser,
        (pwd_last_set, checked_at): (Option<&str>, Option<Timestamp>),
        now: Timestamp,
    ) -> Result<bool, StorageError> {
        let Some(directory) = &self.directory else { return Ok(true) };
        if checked_at.is_some_and(|at| now - at < CHECK_INTERVAL) {
            return Ok(true);
        }
        let unchecked_too_long = checked_at.is_some_and(|at| now - at >= MAX_UNCHECKED);
        if now < self.retry_at.load(Ordering::Relaxed) {
            return Ok(!unchecked_too_long);
        }
        let (id, dn) = (&session_user.user_id, Some(session_user.user_dn.as_str()));
        let user = match directory.find_user_by_id_where_written(id, dn).await {
            Ok(user) => user,
            Err(e) => {
                self.retry_at.store(now + RETRY_AFTER, Ordering::Relaxed);
                tracing::warn!(error = %e, "session check: the directory could not be asked; asked again shortly");
                return Ok(!unchecked_too_long);
            }
        };
        let Some(user) = user.filter(|u| !u.closed_at(now)) else { return Ok(false) };
        let read = user.password_set.as_deref();
        if read.is_none() && !PWD_UNREADABLE_TOLD.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "session check: the service account cannot read pwdLastSet, so a password set outside \
                 the portal does not end portal sessions (grant it read access to pwdLastSet)"
            );
        }
        // Whether AD's value is the session's own; None: the DC asked has not had the change made
        // here yet (adopting its value would end the session once the change arrives).
        let same = match pwd_last_set {
            Some(known) => Some(Some(known) == read),
            // Changed here at `checked_at`: AD's value must be from then, not later.
            None => match (read.map(filetime_seconds), checked_at) {
                // 0: set elsewhere since, to be changed at the next logon (a service desk's reset).
                (Some(None), _) => Some(false),
                (Some(Some(set_at)), Some(changed_at)) if set_at < changed_at - STALE_BEFORE => None,
                (Some(Some(set_at)), Some(changed_at)) => Some(set_at <= changed_at + CHANGE_SKEW),
                _ => Some(true),
            },
        };
        if same == Some(false) {
            return Ok(false);
        }
        // The roles are checked whatever the DC knows of the password.
        if session_user.roles.any() {
            match self.role_groups.read(directory.as_ref(), &user.dn).await {
                // Out of a group: the session ends (a new login carries the roles as they are).
                Ok(roles) if roles.lost_any_of(session_user.roles) => return Ok(false),
                Ok(_) => {}
                Err(e) => {
                    self.retry_at.store(now + RETRY_AFTER, Ordering::Relaxed);
                    tracing::warn!(error = %e, "session check: the roles could not be read; asked again shortly");
                    return Ok(!unchecked_too_long);
                }
            }
        }
        if same.is_none() {
            tracing::debug!("session check: the DC asked has not had the change made here yet");
            return Ok(!unchecked_too_long);
        }
        // A renewal made meanwhile (a change, a re-authentication) wins over this check.
        self.store.session_password_checked(id_hash, read, now, checked_at).await?;
        Ok(true)
    }

    /// The password was changed in this session: the next check takes AD's new `pwdLastSet` as
    /// the session's own (rather than ending it), if AD set it about now. The session goes on
    /// under a new cookie value (returned): a copy of the cookie taken before the change ends.
    pub async fn changed_here(&self, token: &str) -> Result<Option<String>, StorageError> {
        // Moved first: what follows is written for the new id only, never for a copy of the old.
        let Some(new) = self.moved(token).await? else { return Ok(None) };
        self.store.session_password_renewed(&hash(&new), None, self.clock.now()).await?;
        Ok(Some(new))
    }

    /// The user gave their password again; `roles` were read again with it, and `password_set`
    /// (AD's `pwdLastSet` then) is the session's own from here on. The session goes on under a
    /// new cookie value (returned), as after a login.
    pub async fn reauthenticated(
        &self,
        token: &str,
        roles: Roles,
        password_set: Option<&str>,
    ) -> Result<Option<String>, StorageError> {
        // Moved first: the fresh proof and roles are written for the new id only, never for a
        // copy of the old cookie (were the move to fail, nothing would be freshened).
        let Some(new) = self.moved(token).await? else { return Ok(None) };
        let (id_hash, now) = (hash(&new), self.clock.now());
        let freshened = async {
            self.store.session_reauthenticated(&id_hash, now, &roles.to_list()).await?;
            self.store.session_password_renewed(&id_hash, password_set, now).await
        };
        // The old cookie is dead and the new one would not be sent: the session ends (None: the
        // user logs in again), rather than living on with no cookie pointing at it.
        if let Err(e) = freshened.await {
            tracing::error!(error = %e, "re-authentication not recorded; the session ends");
            self.store.delete_session(&id_hash).await?;
            return Ok(None);
        }
        Ok(Some(new))
    }

    /// Moves the session to a new cookie value; None when it is gone.
    async fn moved(&self, token: &str) -> Result<Option<String>, StorageError> {
        let new = self.random.token();
        Ok(self.store.move_session(&hash(token), &hash(&new)).await?.then_some(new))
    }

    /// The user verified with an enrolled service in this session at `at` (a step-up, see [`StepUp`]).
    pub async fn verified(&self, token: &str, service: ServiceKind, at: Timestamp) -> Result<(), StorageError> {
        self.store.session_proof(&hash(token), service.id(), at).await
    }

    /// The id the store knows the session behind this cookie value by (for a change that ends
    /// the user's other sessions in its own transaction).
    pub fn stored_id(&self, token: &str) -> String {
        hash(token)
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
