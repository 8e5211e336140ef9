//! What a login, a change or a re-authentication came to, and the counted try behind each.

use crate::directory::{BindRefusal, DirectoryUser, PasswordPolicy, PasswordRefusal};
use crate::session::{Roles, SessionUser};
use crate::throttle::Attempt;

/// Why a login did not succeed, in terms the user may be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong password, unknown user, or a name that cannot be an account: all read the same.
    InvalidCredentials,
    /// Too many failures; try again after this many minutes.
    Throttled { minutes: i64 },
    /// Read like `InvalidCredentials`, but this was the last try the limit allows: the next has to
    /// wait this many minutes (told now, so that nobody is surprised).
    LastAttempt { minutes: i64 },
    /// AD refused for a reason the user must know (locked, disabled, must change password...).
    Directory(BindRefusal),
}

/// What a password change came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    Changed(DirectoryUser),
    /// The current password or the account was refused (as for a login).
    Refused(Refusal),
    /// AD refused the new password.
    AdRefused(PasswordRefusal),
    /// The change was sent but AD did not answer: it may have been made.
    Unconfirmed(DirectoryUser),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    Success(SessionUser),
    Refused(Refusal),
}

/// What giving the password again (re-authentication in a session) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reauth {
    /// The password is right; the roles as AD has them now, and AD's `pwdLastSet` as read with
    /// the user (the session's own from here on).
    Confirmed { roles: Roles, password_set: Option<String> },
    /// Wrong password, or too many failures: the session goes on, nothing is unlocked.
    Refused(Refusal),
    /// The account is disabled, locked, expired or gone: the session must end.
    AccountUnusable,
}

/// A password try, counted against the address and the user before it is made (record, then
/// decide), and taken back if the password was right.
pub struct Counted {
    pub(super) ip: Attempt,
    /// Under the name as typed: what the visitor is told follows this one.
    pub(super) user: Attempt,
    /// Under the account, when the name is one.
    pub(super) account: Option<Attempt>,
    /// The user limit's window, for the message on the last try.
    pub(super) window_minutes: i64,
}

impl Counted {
    /// A wrong password (or an unknown name), as the user is told.
    pub(super) fn wrong(&self) -> Refusal {
        if self.user.last { Refusal::LastAttempt { minutes: self.window_minutes } } else { Refusal::InvalidCredentials }
    }

    pub(super) fn attempts(self) -> Vec<Attempt> {
        [Some(self.ip), Some(self.user), self.account].into_iter().flatten().collect()
    }
}

/// The keys a user's failures are counted under. The name as typed (its tag, one however the
/// name is written: `EXAMPLE\x`, `x`) decides what the visitor is told, the same whether the name
/// is an account or not: had an account's names (its account name, its UPN, its mail) shared one
/// count, three failures under one and a "too many" under another would tell that they are one
/// account. The account's own, when the name is one, guards AD (which counts the account's
/// failures whatever name they came under) and is never told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKeys {
    pub typed: String,
    pub account: Option<String>,
    /// The account's other names' keys (its account name, UPN and mail as typed names): a
    /// success under one forgets the failures under all.
    pub names: Vec<String>,
}

impl UserKeys {
    /// The keys this try counts under.
    pub fn all(&self) -> Vec<&str> {
        std::iter::once(self.typed.as_str()).chain(self.account.as_deref()).collect()
    }

    /// The keys a success clears.
    pub fn cleared(&self) -> Vec<&str> {
        let mut keys = self.all();
        keys.extend(self.names.iter().map(String::as_str).filter(|k| *k != self.typed));
        keys
    }
}

/// A user who proved the current password, with what was read about them on the way.
pub struct Proved {
    pub user: DirectoryUser,
    /// The keys the user's failures are counted under.
    pub keys: UserKeys,
    /// The password policy that applies to the user, if it could be read.
    pub policy: Option<PasswordPolicy>,
}

/// Whether a password may be tried for a typed name.
pub enum Admit {
    /// `policy`: the user's password policy as read for the lockout threshold (None when it could
    /// not be read), so that a change reads it once.
    Go {
        user: Box<DirectoryUser>,
        keys: UserKeys,
        counted: Counted,
        policy: Option<Box<PasswordPolicy>>,
    },
    Stop(LoginOutcome),
    /// The account's own count is full (failures under its other names): the password is not
    /// tried. `told`: what the visitor is told (a wrong password's answer: their own count said
    /// nothing of it); `wait`: seconds until it may be tried, for one known to be the user;
    /// `counted`: this try's counts, kept (as a wrong password's) unless the user is known.
    AccountFull {
        told: Refusal,
        wait: i64,
        counted: Counted,
    },
}
