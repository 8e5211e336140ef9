//! Privileged accounts: members of the protected groups (nested membership counts) and accounts
//! AD protects itself (`adminCount=1`, set by AdminSDHolder on Domain Admins and the like).
//! They get no self-service reset with the ordinary star row, and the service desk does not lift
//! their cooling-off (an administrator does). Nor do closed accounts (disabled, expired or gone)
//! get a reset, with any number of stars.

use std::sync::Arc;

use super::Directory;
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
        Standing { privileged: self.is_privileged(&user.dn).await, closed }
    }

    async fn is_privileged(&self, dn: &str) -> bool {
        match self.directory.attribute(dn, "adminCount").await {
            Ok(Some(v)) if v == "1" => return true,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "whether the account is privileged: adminCount not read");
                return true;
            }
        }
        for group in &self.groups {
            match self.directory.is_member_of(dn, group).await {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, group, "whether the account is privileged: a protected group's members not read");
                    return true;
                }
            }
        }
        false
    }
}
