//! The personal number AD holds for an account (`bankid.personal_number_attribute`), as the
//! lookup hash a BankID enrolment of it has: the service desk compares accounts by it (a staff
//! account carries it with nothing enrolled; see `enrolment::kinship`).

use std::sync::Arc;

use time::OffsetDateTime;

use crate::clock::Clock;
use crate::directory::{Directory, DirectoryError};
use crate::enrolment::PersonalNumbers;
use crate::identity::{DataKey, PersonalNumber};

pub struct DirectoryPersonalNumbers {
    directory: Arc<dyn Directory>,
    attribute: String,
    key: DataKey,
    clock: Arc<dyn Clock>,
}

impl DirectoryPersonalNumbers {
    pub fn new(directory: Arc<dyn Directory>, attribute: &str, key: DataKey, clock: Arc<dyn Clock>) -> Self {
        Self { directory, attribute: attribute.to_string(), key, clock }
    }
}

#[async_trait::async_trait]
impl PersonalNumbers for DirectoryPersonalNumbers {
    async fn hash_of(&self, user_id: &str) -> Result<Option<String>, DirectoryError> {
        let Some(user) = self.directory.find_user_by_id(user_id).await? else { return Ok(None) };
        let Some(value) = self.directory.attribute(&user.dn, &self.attribute).await? else { return Ok(None) };
        let today = OffsetDateTime::from_unix_timestamp(self.clock.now())
            .map(|t| t.date())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH.date());
        Ok(PersonalNumber::parse(&value, today).ok().map(|pn| self.key.lookup_hash(pn.digits())))
    }
}
