//! IT administration: who is enrolled and with what, user pages, revocation, the audit trail and
//! reports. Read from the directory (paged, for tens of thousands of users) and the database.

mod chart;
mod counted;
pub mod status;

pub use chart::{ChartText, daily_chart_svg};
pub use counted::LeftOut;
use counted::{Counted, NotCounted};

use std::collections::HashMap;
use std::sync::Arc;

use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::{Clock, Timestamp};
use crate::directory::{Directory, DirectoryError, DirectoryUser};
use crate::enrolment::{Assessment, EnrolmentStatus, Service, ServiceKind, StarRule, assess};
use crate::i18n::Lang;
use crate::mail::{Notice, Outbox};
use crate::session::SessionUser;
use crate::storage::{AuditFilter, AuditRecord, EnrolmentRecord, Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

/// Resets and unlocks on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    /// Days since the epoch.
    pub day: i64,
    pub resets: i64,
    pub unlocks: i64,
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Users counted: enabled, not built-in, not excluded.
    pub users: usize,
    /// What was left out, and why.
    pub left_out: LeftOut,
    pub enrolled: usize,
    pub partly: usize,
    pub not_enrolled: usize,
    pub per_service: Vec<(ServiceKind, usize)>,
    pub days: Vec<DayCount>,
    pub failures: Vec<AuditRecord>,
    pub blocked: Vec<AuditRecord>,
    /// Whether resets enforce AD's password history (the DC supports the policy-hints control).
    pub history_on_reset: bool,
}

/// The shortest search text (a shorter one would match most of the directory).
pub const MIN_SEARCH: usize = 2;
/// The last page of the audit trail one may ask for (a larger number would overflow the offset).
pub const MAX_PAGE: i64 = 1_000_000;
/// How many users a search shows.
pub const SHOWN: usize = 50;

/// What a user search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The text is shorter than [`MIN_SEARCH`]: nothing was searched.
    TooShort,
    /// The text looks like a personal number: nothing was searched, and the text is not kept (a
    /// caller's personal number must not end up in the audit trail in clear).
    PersonalNumber,
    /// `more`: there were more than these; the text should be narrowed.
    Users { users: Vec<DirectoryUser>, more: bool },
}

/// One user, as the admin page shows them.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub user: DirectoryUser,
    pub groups: Vec<String>,
    pub pwd_last_set: Option<Timestamp>,
    pub enrolments: Vec<(Service, EnrolmentRecord)>,
    pub assessment: Assessment,
    pub audit: Vec<AuditRecord>,
}

pub struct AdminService {
    store: Arc<dyn Storage>,
    directory: Arc<dyn Directory>,
    clock: Arc<dyn Clock>,
    auditor: Auditor,
    outbox: Outbox,
    services: Vec<Service>,
    rule: StarRule,
    reminder_interval_days: u64,
    reminders_per_run: usize,
    counted: Counted,
}

/// AD's FILETIME (100 ns since 1601) as Unix seconds.
fn filetime_to_unix(v: i64) -> Option<Timestamp> {
    (v > 0).then(|| v / 10_000_000 - 11_644_473_600)
}

impl AdminService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Storage>,
        directory: Arc<dyn Directory>,
        clock: Arc<dyn Clock>,
        auditor: Auditor,
        outbox: Outbox,
        services: Vec<Service>,
        rule: StarRule,
        settings: &crate::config::AdminSettings,
        service_dn: &str,
    ) -> Self {
        Self {
            store,
            directory,
            clock,
            auditor,
            outbox,
            services,
            rule,
            reminder_interval_days: settings.reminder_interval_days,
            reminders_per_run: settings.reminders_per_run,
            counted: Counted::new(&settings.exclude_accounts, service_dn),
        }
    }

    /// Mails an enrolment reminder to users in scope who have not completed enrolment: at most one
    /// per user per interval, and at most `reminders_per_run` in one go. Returns how many.
    pub async fn send_reminders(&self, actor: &SessionUser, meta: &RequestMeta) -> Result<usize, AdminError> {
        let by_user = self.enrolments_by_user().await?;
        let now = self.clock.now();
        let last_before = now - self.reminder_interval_days as i64 * 86400;
        let mut sent = 0;
        for u in self.directory.all_users().await? {
            if sent >= self.reminders_per_run {
                break;
            }
            let kinds = by_user.get(&u.id).map(Vec::as_slice).unwrap_or_default();
            let (Some(mail), false) =
                (&u.mail, assess(&self.services, kinds, self.rule).status == EnrolmentStatus::Enrolled)
            else {
                continue;
            };
            // Claimed in one statement, in a record of its own: once per interval, whoever sends.
            if self.counted.check(&u, now).is_some() || !self.store.claim_reminder(&u.id, now, last_before).await? {
                continue;
            }
            self.outbox.notify(mail, u.name_to_show(), Notice::Reminder, meta).await?;
            sent += 1;
        }
        let event = AuditEvent::new(EventKind::Mail, Outcome::Success)
            .username(&actor.account_name)
            .detail(Detail::new("reminders_queued").arg("n", sent).arg("actor", &actor.account_name));
        self.auditor.record(meta, event).await?;
        Ok(sent)
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    async fn enrolments_by_user(&self) -> Result<HashMap<String, Vec<ServiceKind>>, StorageError> {
        let mut by_user: HashMap<String, Vec<ServiceKind>> = HashMap::new();
        for e in self.store.all_enrolments().await? {
            if let Ok(kind) = e.service.parse() {
                by_user.entry(e.user_id).or_default().push(kind);
            }
        }
        Ok(by_user)
    }

    /// Counts over every user in scope (a paged directory search), enrolments per service, the
    /// last 30 days of resets and unlocks, and recent failures and blocks.
    pub async fn dashboard(&self) -> Result<Dashboard, AdminError> {
        let (mut left_out, now) = (LeftOut::default(), self.clock.now());
        let mut ids = Vec::new();
        for u in self.directory.all_users().await? {
            match self.counted.check(&u, now) {
                None => ids.push(u.id),
                Some(NotCounted::Disabled) => left_out.disabled += 1,
                Some(NotCounted::BuiltIn) => left_out.built_in += 1,
                Some(NotCounted::Excluded) => left_out.excluded += 1,
            }
        }
        let by_user = self.enrolments_by_user().await?;
        let (mut enrolled, mut partly, mut not_enrolled) = (0, 0, 0);
        let mut per_service: HashMap<ServiceKind, usize> = HashMap::new();
        for id in &ids {
            let kinds = by_user.get(id).map(Vec::as_slice).unwrap_or_default();
            for k in kinds {
                *per_service.entry(*k).or_default() += 1;
            }
            match assess(&self.services, kinds, self.rule).status {
                EnrolmentStatus::Enrolled => enrolled += 1,
                EnrolmentStatus::PartlyEnrolled => partly += 1,
                EnrolmentStatus::NotEnrolled => not_enrolled += 1,
            }
        }
        let today = self.clock.now() / 86400;
        let since = (today - 29) * 86400;
        let counts = self.store.daily_counts(&["password-reset", "unlock"], since).await?;
        let days = (today - 29..=today)
            .map(|day| {
                let n = |e: &str| counts.iter().filter(|(d, ev, _)| *d == day && ev == e).map(|(_, _, c)| *c).sum();
                DayCount { day, resets: n("password-reset"), unlocks: n("unlock") }
            })
            .collect();
        let recent =
            |outcome: &str| AuditFilter { outcome: Some(outcome.into()), from: Some(since), ..AuditFilter::default() };
        let (failures, _) = self.store.audit_search(&recent("failure"), 0, 10).await?;
        let (blocked, _) = self.store.audit_search(&recent("blocked"), 0, 10).await?;
        let history_on_reset = self.directory.reset_enforces_history().await?;
        Ok(Dashboard {
            history_on_reset,
            users: ids.len(),
            left_out,
            enrolled,
            partly,
            not_enrolled,
            per_service: self
                .services
                .iter()
                .map(|s| (s.kind, per_service.get(&s.kind).copied().unwrap_or(0)))
                .collect(),
            days,
            failures,
            blocked,
        })
    }

    /// Users whose account name, display name or mail contains `text` (at least
    /// [`MIN_SEARCH`] characters): up to [`SHOWN`] of them, in the order of their account names.
    /// With more, which ones is the directory's choice (its size limit), and `more` says to narrow
    /// the text. Audited (by whom, what was searched, how many were shown): what a stolen
    /// service-desk session looked up can be listed afterwards. A personal number is not searched.
    pub async fn search(&self, text: &str, meta: &RequestMeta) -> Result<Found, AdminError> {
        if text.trim().chars().count() < MIN_SEARCH {
            return Ok(Found::TooShort);
        }
        if crate::identity::personnummer::looks_like_personal_number(text) {
            return Ok(Found::PersonalNumber);
        }
        let mut users = self.directory.search_users(text, SHOWN + 1).await?;
        let more = users.len() > SHOWN;
        users.truncate(SHOWN);
        // The count first: the plural form follows the first number (a query may be digits).
        let detail = Detail::new("user_search").arg("n", users.len()).arg("query", text.trim());
        self.auditor.record(meta, AuditEvent::new(EventKind::AdminView, Outcome::Success).detail(detail)).await?;
        Ok(Found::Users { users, more })
    }

    /// A user's page: their account, groups, enrolments and trail. The view is audited under the
    /// user's name but not their id, so that it is found by name (and by who looked) without
    /// filling the trail their own page shows.
    pub async fn user_page(&self, id: &str, meta: &RequestMeta) -> Result<Option<UserPage>, AdminError> {
        let Some(user) = self.directory.find_user_by_id(id).await? else { return Ok(None) };
        let groups = self.directory.groups_of(&user.dn).await?;
        let pwd_last_set = self
            .directory
            .attribute(&user.dn, "pwdLastSet")
            .await?
            .and_then(|v| v.parse().ok())
            .and_then(filetime_to_unix);
        let records = self.store.enrolments(id).await?;
        let kinds: Vec<ServiceKind> = records.iter().filter_map(|r| r.service.parse().ok()).collect();
        let enrolments = records
            .into_iter()
            .filter_map(|r| self.services.iter().find(|s| s.kind.id() == r.service).map(|s| (*s, r)))
            .collect();
        let filter = AuditFilter { user_id: Some(id.into()), ..AuditFilter::default() };
        let (audit, _) = self.store.audit_search(&filter, 0, 50).await?;
        let viewed = AuditEvent::new(EventKind::AdminView, Outcome::Success)
            .username(&user.account_name)
            .detail(Detail::new("user_page_viewed"));
        self.auditor.record(meta, viewed).await?;
        Ok(Some(UserPage {
            assessment: assess(&self.services, &kinds, self.rule),
            user,
            groups,
            pwd_last_set,
            enrolments,
            audit,
        }))
    }

    /// Revokes one service (or the whole enrolment) with a reason; the user is told by mail.
    /// False when nothing was enrolled to revoke (a second submit), or the user is gone.
    pub async fn revoke(
        &self,
        actor: &SessionUser,
        user_id: &str,
        service: Option<ServiceKind>,
        reason: &str,
        meta: &RequestMeta,
    ) -> Result<bool, AdminError> {
        let Some(user) = self.directory.find_user_by_id(user_id).await? else { return Ok(false) };
        // What proves the user changes: the enrolment goes and their portal sessions end in one
        // transaction (one of two parallel submits removes it; a login cannot slip between).
        let (removed, ended) = self.store.revoke_enrolment(user_id, service.map(|s| s.id()), None).await?;
        if removed == 0 {
            // Nothing was enrolled (a second submit of the same form): nothing to audit or tell.
            return Ok(false);
        }
        let what = match service {
            Some(s) => format!("service.{}.name", s.id()),
            None => "audit.all_services".to_string(),
        };
        let event =
            AuditEvent::new(EventKind::Revoke, Outcome::Success).username(&user.account_name).user_id(user_id).detail(
                Detail::new("revoked")
                    .arg("what_key", what)
                    .arg("actor", &actor.account_name)
                    .arg("removed", removed)
                    .arg("ended", ended)
                    .arg("reason", reason),
            );
        // The revocation is made: an entry or a mail that cannot be written is logged, not an
        // error page that would invite the admin to revoke again.
        let notice = Notice::Revoked(service.map(|s| s.id()).unwrap_or("all"));
        let (outbox, to, name, owned) =
            (self.outbox.clone(), user.mail.clone(), user.name_to_show().to_string(), meta.clone());
        let tell = async move {
            let Some(to) = to else { return };
            if let Err(e) = outbox.notify(&to, &name, notice, &owned).await {
                tracing::error!(reference = %owned.request_id, error = %e, "revocation made; its mail not queued");
            }
        };
        self.auditor.made_then(meta, event, tell).await;
        Ok(true)
    }

    pub async fn audit(
        &self,
        filter: &AuditFilter,
        page: i64,
        per_page: i64,
    ) -> Result<(Vec<AuditRecord>, i64), AdminError> {
        Ok(self.store.audit_search(filter, page.clamp(0, MAX_PAGE) * per_page, per_page).await?)
    }

    /// The filtered audit trail as CSV (at most 100,000 rows): event and outcome as their stable
    /// ids, for filters and machines; the detail in `lang`.
    pub async fn audit_csv(&self, filter: &AuditFilter, lang: Lang) -> Result<String, AdminError> {
        let (rows, _) = self.store.audit_search(filter, 0, 100_000).await?;
        let mut out = csv_record(&[
            "time",
            "event",
            "outcome",
            "username",
            "user_id",
            "source_ip",
            "user_agent",
            "request_id",
            "detail",
            "actor",
        ]);
        for r in rows {
            let detail = crate::audit::describe(&r, lang.catalogue());
            let fields = [
                // UTC in ISO 8601: for machines, whatever the portal's zone.
                crate::clock::format_rfc3339(r.at),
                r.event,
                r.outcome,
                r.username.unwrap_or_default(),
                r.user_id.unwrap_or_default(),
                r.source_ip.unwrap_or_default(),
                r.user_agent.unwrap_or_default(),
                r.request_id.unwrap_or_default(),
                detail,
                r.actor.unwrap_or_default(),
            ];
            out.push_str(&csv_record(&fields));
        }
        Ok(out)
    }

    /// Every user in scope who has not completed enrolment, as CSV in `lang`.
    pub async fn not_enrolled_csv(&self, lang: Lang) -> Result<String, AdminError> {
        let by_user = self.enrolments_by_user().await?;
        let i = lang.catalogue();
        let header = ["account", "name", "mail", "status", "stars"].map(|c| i.f(&format!("admin.csv_column.{c}"), &[]));
        let (mut out, now) = (csv_record(&header), self.clock.now());
        for u in self.directory.all_users().await? {
            if self.counted.check(&u, now).is_some() {
                continue;
            }
            let kinds = by_user.get(&u.id).map(Vec::as_slice).unwrap_or_default();
            let a = assess(&self.services, kinds, self.rule);
            if a.status == EnrolmentStatus::Enrolled {
                continue;
            }
            {
                let fields = [
                    u.account_name.clone(),
                    u.name_to_show().to_string(),
                    u.mail.clone().unwrap_or_default(),
                    i.t(&format!("admin.status_{}", a.status.id())).to_string(),
                    format!("{}/{}", a.collected, a.needed),
                ];
                out.push_str(&csv_record(&fields));
            }
        }
        Ok(out)
    }
}

/// One CSV record, CRLF-ended: each field defused against formula injection in spreadsheets
/// (ours), then quoted where needed (the csv crate's).
fn csv_record<S: AsRef<str>>(fields: &[S]) -> String {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    // Writing to memory cannot fail, and what is written is UTF-8 (the fields are).
    let _ = writer.write_record(fields.iter().map(|f| defused(f.as_ref())));
    writer.into_inner().ok().and_then(|bytes| String::from_utf8(bytes).ok()).unwrap_or_default()
}

/// A field defused against formula injection in spreadsheets.
fn defused(value: &str) -> String {
    // A spreadsheet reads a formula after leading blanks too, and TAB or CR start one on their own.
    // One that splits lines on ';' or TAB (Excel in a Swedish locale, an import's default) starts a
    // cell after each, whatever the quotes: each such cell is defused too.
    let formula = ['=', '+', '-', '@'];
    let mut defused = String::with_capacity(value.len() + 1);
    for (i, cell) in value.split_inclusive([';', '\t']).enumerate() {
        if (i == 0 && cell.starts_with(['\t', '\r'])) || cell.trim_start().starts_with(formula) {
            defused.push('\'');
        }
        defused.push_str(cell);
    }
    defused
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of one field, without its line end.
    fn csv_field(value: &str) -> String {
        csv_record(&[value]).strip_suffix("\r\n").expect("a record ends with CRLF").to_string()
    }

    #[test]
    fn records_are_quoted_and_end_with_crlf() {
        assert_eq!(csv_record(&["a", "b,c", ""]), "a,\"b,c\",\r\n");
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("\t=cmd()"), "'\t'=cmd()");
        // Split on ';' or TAB, whatever the quotes.
        assert_eq!(csv_field(r#"x;=HYPERLINK("h")"#), r#""x;'=HYPERLINK(""h"")""#);
        assert_eq!(csv_field("x; -1"), "x;' -1");
        assert_eq!(csv_field("x\t@SUM(A1)"), "x\t'@SUM(A1)");
        assert_eq!(csv_field("a;b"), "a;b");
        assert_eq!(csv_field("  @SUM(A1)"), "'  @SUM(A1)");
        assert_eq!(csv_field("\rx"), "\"'\rx\"");
        assert_eq!(csv_field("\tplain"), "'\tplain");
        assert_eq!(csv_field("a-b"), "a-b");
    }

    #[test]
    fn ad_filetimes_become_unix_time() {
        assert_eq!(filetime_to_unix(116_444_736_000_000_000), Some(0));
        assert_eq!(filetime_to_unix(0), None);
    }
}
