//! The audit trail for staff: `GET /admin/audit` (filters, pages) and its CSV export. A look
//! at someone's trail and every export are themselves in the trail.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::admin::{Guarded, audit_export, fail, guard, named, row, staff_did};
use super::{html, layout, see_other};
use crate::admin::MAX_PAGE;
use crate::audit::{Detail, EventKind, Outcome};
use crate::session::Roles;
use crate::storage::AuditFilter;
use crate::web::views::{AdminAuditView, AuditForm};
use crate::web::{Page, WebError};

#[derive(Deserialize, Serialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default, skip_serializing)]
    page: i64,
}

impl AuditQuery {
    /// The query without a personal number typed into any of its fields (the trail holds none,
    /// and a search for one would keep it in the trail in clear), and the filter it asks for, or
    /// the field that cannot be read: one a personal number was typed into, or a date field that
    /// is not a date.
    fn read(mut self, time: &crate::clock::LocalTime) -> (Self, Result<AuditFilter, &'static str>) {
        let mut typed = None;
        let fields = [
            ("user", &mut self.user),
            ("ip", &mut self.ip),
            ("event", &mut self.event),
            ("outcome", &mut self.outcome),
            ("from", &mut self.from),
            ("to", &mut self.to),
        ];
        for (field, value) in fields {
            if crate::identity::personnummer::looks_like_personal_number(value) {
                value.clear();
                typed.get_or_insert(field);
            }
        }
        let filter = match typed {
            Some(field) => Err(field),
            None => self.filter(time),
        };
        (self, filter)
    }

    /// The filter, with the days read in the portal's time zone (as the rows are shown); the
    /// name of a date field that is not a date.
    fn filter(&self, time: &crate::clock::LocalTime) -> Result<AuditFilter, &'static str> {
        let some = |s: &String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let day = |text: &str, field, read: &dyn Fn(&str) -> Option<i64>| match text.trim() {
            "" => Ok(None),
            t => read(t).map(Some).ok_or(field),
        };
        Ok(AuditFilter {
            user: some(&self.user),
            user_id: None,
            event: some(&self.event),
            outcome: some(&self.outcome),
            ip: some(&self.ip),
            from: day(&self.from, "from", &|t| time.day_start(t))?,
            to: day(&self.to, "to", &|t| time.day_end(t))?,
        })
    }
}

const PER_PAGE: i64 = 50;

pub async fn audit(page: Page, q: web::Query<AuditQuery>) -> Result<HttpResponse, WebError> {
    let session = match guard(&page, "/admin/audit", Roles::can_report) {
        Guarded::Yes(s) => s,
        Guarded::No(res) => return Ok(res),
    };
    // A personal number typed is neither searched for nor shown again (nor kept in the links).
    let (q, filter) = q.into_inner().read(&page.state.time);
    let (filter, bad_field) = match filter {
        Ok(filter) => (Some(filter), None),
        Err(field) => (None, Some(field)),
    };
    let (rows, total) = match &filter {
        Some(f) => page.state.admin.audit(f, q.page, PER_PAGE).await.map_err(|e| fail(&page, e))?,
        // Nothing shown rather than everything: the filter the user meant cannot be read.
        None => (Vec::new(), 0),
    };
    let query = serde_urlencoded::to_string(&q).unwrap_or_default();
    // A look at someone's trail (by name or address) is itself in the trail, as a user search
    // is: what a stolen reporting session looked at can be listed afterwards. (Paging on does
    // not count again.)
    let about_someone = !q.user.trim().is_empty() || !q.ip.trim().is_empty();
    if about_someone && q.page == 0 && filter.is_some() {
        staff_did(&page, session, EventKind::AdminView, Detail::new("audit_searched").arg("query", &query)).await?;
    }
    let view = AdminAuditView {
        l: layout(&page, "/admin/audit"),
        roles: session.user.roles,
        f: AuditForm {
            user: q.user.clone(),
            event: q.event.clone(),
            outcome: q.outcome.clone(),
            ip: q.ip.clone(),
            from: q.from.clone(),
            to: q.to.clone(),
        },
        query,
        bad_field: bad_field.unwrap_or_default(),
        error: bad_field.map(|field| {
            let date = matches!(field, "from" | "to");
            page.i18n().t(if date { "admin.bad_date" } else { "admin.search_personal_number" }).to_string()
        }),
        rows: rows.iter().map(row(&page)).collect(),
        total,
        page: q.page.clamp(0, MAX_PAGE),
        more: (q.page.clamp(0, MAX_PAGE) + 1) * PER_PAGE < total,
        events: EventKind::ALL.iter().map(|k| (k.id(), named(page.i18n(), "audit.event", k.id()))).collect(),
        outcomes: Outcome::ALL.iter().map(|o| (o.id(), named(page.i18n(), "audit.outcome", o.id()))).collect(),
    };
    html(&page, view)
}

pub async fn audit_csv(page: Page, q: web::Query<AuditQuery>) -> Result<HttpResponse, WebError> {
    let session = match guard(&page, "/admin/audit", Roles::can_report) {
        Guarded::Yes(s) => s,
        Guarded::No(res) => return Ok(res),
    };
    let (q, filter) = q.into_inner().read(&page.state.time);
    let query = serde_urlencoded::to_string(&q).unwrap_or_default();
    // A filter that cannot be read exports nothing (not the whole log) and is not audited: a
    // date, which the page then says; a personal number, which is not sent back.
    let Ok(filter) = filter else {
        return Ok(see_other(&format!("/admin/audit?{query}")).finish());
    };
    let body = page.state.admin.audit_csv(&filter, page.lang).await.map_err(|e| fail(&page, e))?;
    audit_export(&page, session, Detail::new("export_audit").arg("query", query)).await?;
    Ok(super::admin::csv("stjarna-audit.csv", body))
}
