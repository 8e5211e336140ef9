//! Privileged accounts: members of the protected groups (nested membership counts) and accounts
//! AD protects itself (`adminCount=1`, set by AdminSDHolder on Domain Admins and the like).
//! They get no self-service reset with the ordinary star row.

use std::sync::Arc;

use crate::directory::Directory;

pub struct Privileged {
    directory: Arc<dyn Directory>,
    groups: Vec<String>,
}

impl Privileged {
    pub fn new(directory: Arc<dyn Directory>, groups: Vec<String>) -> Self {
        Self { directory, groups }
    }

    /// Whether the account is privileged. When the directory cannot tell, it is treated as
    /// privileged: a reset waits rather than goes ahead unchecked.
    pub async fn is_privileged(&self, user_id: &str) -> bool {
        let user = match self.directory.find_user_by_id(user_id).await {
            Ok(Some(u)) => u,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "reset: cannot tell whether the account is privileged");
                return true;
            }
        };
        match self.directory.attribute(&user.dn, "adminCount").await {
            Ok(Some(v)) if v == "1" => return true,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reset: cannot read adminCount");
                return true;
            }
        }
        for group in &self.groups {
            match self.directory.is_member_of(&user.dn, group).await {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, group, "reset: cannot read a protected group's members");
                    return true;
                }
            }
        }
        false
    }
}
