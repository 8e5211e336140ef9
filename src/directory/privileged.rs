//! Privileged accounts: members of the protected groups (nested membership counts) and accounts
//! AD protects itself (`adminCount=1`, set by AdminSDHolder on Domain Admins and the like).
//! They get no self-service reset with the ordinary star row, and the service desk does not lift
//! their cooling-off (an administrator does). Nor do closed accounts (disabled, expired or gone)
//! get a reset, with any number of stars.

use std::sync::Arc;

use super::{Directory, DirectoryError};
use crate::clock::Timestamp;

/// What a reset may do with an account, as far as who it is goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub privileged: bool,
    /// Disabled, past `accountExpires`, or gone from the directory: no one resets it here.
    pub closed: bool,
}

#[derive(Clone)]
pub struct Privileged {
    directory: Arc<dyn Directory>,
    groups: Vec<String>,
}

impl Privileged {
    pub fn new(directory: Arc<dyn Directory>, groups: Vec<String>) -> Self {
        Self { directory, groups }
    }

    /// Whether the account is privileged, and whether it is closed, at `now`. When the directory
    /// cannot tell, the account is treated as privileged: a reset waits rather than goes ahead
    /// unchecked.
    pub async fn standing(&self, user_id: &str, now: Timestamp) -> Standing {
        let user = match self.directory.find_user_by_id(user_id).await {
            Ok(Some(u)) => u,
            Ok(None) => return Standing { privileged: false, closed: true },
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether the account is privileged");
                return Standing { privileged: true, closed: false };
            }
        };
        let closed = user.closed_at(now);
        let privileged = self.is_privileged(&user.dn).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot tell whether the account is privileged");
            true
        });
        Standing { privileged, closed }
    }

    /// Whether the account with the id `user_id` is privileged; None when no account has it.
    pub async fn of(&self, user_id: &str) -> Result<Option<bool>, DirectoryError> {
        let Some(user) = self.directory.find_user_by_id(user_id).await? else { return Ok(None) };
        self.is_privileged(&user.dn).await.map(Some)
    }

    async fn is_privileged(&self, dn: &str) -> Result<bool, DirectoryError> {
        if self.directory.attribute(dn, "adminCount").await?.as_deref() == Some("1") {
            return Ok(true);
        }
        for group in &self.groups {
            if self.directory.is_member_of(dn, group).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
