//! Password-expiry reminders: before a user's password expires, a mail (and, with `expiry.sms`, a
//! text to the mobile number they enrolled) with a link to "Byt lösenord".
//!
//! Each round reads every user's expiry time from the directory (one paged search of
//! `msDS-UserPasswordExpiryTimeComputed`, which follows fine-grained policies) and reminds those
//! who crossed one of `expiry.days_before` since their last reminder. A round runs on one instance
//! at a time (a lease on the job in the database), and each reminder is claimed in the database
//! before it is sent, so it goes out once whatever runs it. Passwords that never expire, disabled
//! accounts and passwords that must change at the next logon are left out.

use std::sync::Arc;

use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::Timestamp;
use crate::directory::{Directory, DirectoryError, PasswordExpiry};
use crate::i18n::Lang;
use crate::identity::DataKey;
use crate::identity::sms::{PhoneNumber, SmsGateway, with_retries};
use crate::mail::{ExpiryNotice, Outbox};
use crate::storage::{Storage, StorageError};

const JOB: &str = "expiry-reminders";
/// A round that dies leaves the job to another instance after this long (one that ends gives it
/// back at once).
const LEASE_SECONDS: i64 = 15 * 60;

#[derive(Debug, thiserror::Error)]
pub enum ExpiryError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reminded {
    pub mails: usize,
    pub texts: usize,
}

/// Texts go through this gateway, to the number decrypted with this key.
pub struct Texts {
    pub gateway: Arc<dyn SmsGateway>,
    pub key: DataKey,
}

pub struct ExpiryReminders {
    pub directory: Arc<dyn Directory>,
    pub store: Arc<dyn Storage>,
    pub outbox: Outbox,
    pub auditor: Auditor,
    pub texts: Option<Texts>,
    /// Days before expiry, most first.
    pub days: Vec<i64>,
    pub portal: String,
    /// Where "Byt lösenord" is: the portal's public URL and `/change`.
    pub change_url: String,
    pub lang: Lang,
    /// Times in texts, in the portal's zone.
    pub time: crate::clock::LocalTime,
}

/// The reminder due for a password that expires at `expires_at`, at `now`: the fewest days
/// before expiry that have been crossed, and the others crossed with it (recorded, not sent).
pub fn due(days: &[i64], expires_at: Timestamp, now: Timestamp) -> Option<(i64, Vec<i64>)> {
    let left = expires_at - now;
    if left <= 0 {
        return None;
    }
    let mut crossed: Vec<i64> = days.iter().copied().filter(|d| left <= d * 86400).collect();
    crossed.sort_unstable();
    let first = *crossed.first()?;
    Some((first, crossed[1..].to_vec()))
}

impl ExpiryReminders {
    /// One round at `now`; None when another instance holds the job.
    pub async fn run_once(&self, now: Timestamp) -> Result<Option<Reminded>, ExpiryError> {
        let lease = now + LEASE_SECONDS;
        if !self.store.claim_job(JOB, now, lease).await? {
            return Ok(None);
        }
        let mut done = Reminded::default();
        for expiry in self.directory.password_expiries().await? {
            if expiry.user.closed_at(now) {
                continue;
            }
            let Some((days, also)) = due(&self.days, expiry.expires_at, now) else { continue };
            let user_id = &expiry.user.id;
            if !self.store.claim_expiry_reminder(user_id, expiry.expires_at, days, now).await? {
                continue;
            }
            // Reminders skipped over (the round did not run, or the policy shortened the age)
            // are not sent late.
            for d in also {
                self.store.claim_expiry_reminder(user_id, expiry.expires_at, d, now).await?;
            }
            self.remind(&expiry, days, &mut done).await?;
        }
        self.store.release_job(JOB, lease, now).await?;
        Ok(Some(done))
    }

    async fn remind(&self, expiry: &PasswordExpiry, days: i64, done: &mut Reminded) -> Result<(), ExpiryError> {
        let user = &expiry.user;
        let mut sent = Vec::new();
        if let Some(mail) = &user.mail {
            let notice = ExpiryNotice {
                to: mail,
                name: user.name_to_show(),
                account: &user.account_name,
                expires_at: expiry.expires_at,
                change_url: &self.change_url,
                lang: self.lang,
            };
            self.outbox.expiry_reminder(&notice).await?;
            done.mails += 1;
            sent.push("audit.expiry.mail");
        }
        let mut masked = None;
        if let Some(number) = self.text_number(&user.id).await? {
            masked = Some(number.masked());
            let texts = self.texts.as_ref().expect("a number only with texts on");
            let when = self.time.format(expiry.expires_at);
            // No link in a text: texts with links are what smishing looks like.
            let text = self.lang.catalogue().f("mail.expiry.sms", &[("portal", &self.portal), ("when", &when)]);
            match with_retries(texts.gateway.as_ref(), &number, &text).await {
                Ok(_) => {
                    done.texts += 1;
                    sent.push("audit.expiry.text");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "expiry reminder text not sent");
                    sent.push("audit.expiry.text_failed");
                }
            }
        }
        let (outcome, how) = match sent.is_empty() {
            true => (Outcome::Failure, "audit.expiry.nowhere".to_string()),
            false => (Outcome::Success, sent.join(",")),
        };
        let detail = Detail::new("expiry_reminder")
            .arg("days", days)
            .arg("expires", crate::clock::format_utc(expiry.expires_at))
            .arg("how_key", how)
            .arg("number", masked.unwrap_or_default());
        let event = AuditEvent::new(EventKind::ExpiryReminder, outcome).about(user).detail(detail);
        self.auditor.record(&RequestMeta::job("expiry reminders", JOB, self.lang), event).await?;
        Ok(())
    }

    /// The number the user enrolled, when texts are on.
    async fn text_number(&self, user_id: &str) -> Result<Option<PhoneNumber>, StorageError> {
        let Some(texts) = &self.texts else { return Ok(None) };
        let Some(enrolled) = self.store.sms_enrolment(user_id).await? else { return Ok(None) };
        Ok(PhoneNumber::from_stored(&texts.key, &enrolled.number_encrypted))
    }
}

#[cfg(test)]
mod tests {
    use super::due;

    const DAY: i64 = 86400;

    #[test]
    fn the_most_urgent_crossed_reminder_is_due_and_the_skipped_ones_with_it() {
        let days = [14, 7, 1];
        let expires = 100 * DAY;
        assert_eq!(due(&days, expires, expires - 20 * DAY), None, "too early");
        assert_eq!(due(&days, expires, expires - 14 * DAY), Some((14, vec![])));
        assert_eq!(due(&days, expires, expires - 10 * DAY), Some((14, vec![])));
        assert_eq!(
            due(&days, expires, expires - 3 * DAY),
            Some((7, vec![14])),
            "14 was missed: 7 goes, 14 is recorded"
        );
        assert_eq!(due(&days, expires, expires - DAY / 2), Some((1, vec![7, 14])));
        assert_eq!(due(&days, expires, expires), None, "expired already");
        assert_eq!(due(&days, expires, expires + DAY), None);
    }
}
