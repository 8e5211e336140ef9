//! `/admin`: the dashboard, users, revocation and reports, by role (the audit trail: `audit`).

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{html, layout, see_other};
use crate::admin::{AdminError, ChartText, Found, MIN_SEARCH, SHOWN, daily_chart_svg};
use crate::audit::{AuditEvent, Detail, EventKind, Outcome};
use crate::enrolment::ServiceKind;
use crate::i18n::Catalogue;
use crate::session::{Roles, Session};
use crate::storage::AuditRecord;
use crate::web::csrf::{CsrfField, CsrfForm};
use crate::web::views::{AdminDashboardView, AdminStatusView, AdminUserView, AdminUsersView, Row};
use crate::web::{Notice, Page, WebError};

/// Whether the request may go on.
pub enum Guarded<'a> {
    Yes(&'a Session),
    No(HttpResponse),
}

pub fn guard<'a>(page: &'a Page, path: &str, allowed: fn(Roles) -> bool) -> Guarded<'a> {
    match check(page, path, allowed) {
        Ok(s) => Guarded::Yes(s),
        Err(res) => Guarded::No(res),
    }
}

/// The session, if it has a role `allowed` accepts and gave its password recently enough.
fn check<'a>(page: &'a Page, path: &str, allowed: fn(Roles) -> bool) -> Result<&'a Session, HttpResponse> {
    let Some(session) = page.session() else { return Err(super::log_in_again(page)) };
    if !allowed(session.user.roles) {
        let error = WebError::forbidden(page.lang, &page.meta.request_id).framed(page.frame());
        return Err(actix_web::ResponseError::error_response(&error));
    }
    // The page as it was asked for, its search or filters included (an export's: the page it is
    // on), without a personal number typed into one (it is neither searched for nor kept).
    let query = super::without_personal_numbers(&page.query);
    let asked = if query.is_empty() { path.to_string() } else { format!("{path}?{query}") };
    if page.get && page.from_elsewhere {
        let error = WebError::from_elsewhere(page.lang, asked).framed(page.frame());
        return Err(actix_web::ResponseError::error_response(&error));
    }
    let max = page.state.settings.admin.reauth_minutes as i64 * 60;
    if session.password_at.is_none_or(|at| page.state.clock.now() - at > max) {
        let back = asked;
        let query = serde_urlencoded::to_string([("back", back)]).unwrap_or_default();
        return Err(see_other(&format!("/admin/reauth?{query}")).finish());
    }
    Ok(session)
}

pub(super) fn fail(page: &Page, e: AdminError) -> WebError {
    match e {
        AdminError::Storage(e) => page.fail(e),
        AdminError::Directory(e) => page.fail(e),
    }
}

/// An audit entry as a table row: its time in the portal's zone, its words in the page's language.
pub(super) fn row<'a>(page: &'a Page) -> impl Fn(&AuditRecord) -> Row + 'a {
    move |r| audit_row(&page.state.time, page.i18n(), r)
}

fn audit_row(time: &crate::clock::LocalTime, i: &Catalogue, r: &AuditRecord) -> Row {
    (
        time.format(r.at),
        named(i, "audit.event", &r.event),
        named(i, "audit.outcome", &r.outcome),
        r.username.clone().unwrap_or_default(),
        r.source_ip.clone().unwrap_or_default(),
        crate::audit::describe(r, i),
    )
}

/// An id's name under `section`, or the id itself for one the catalogues do not know.
pub(super) fn named(i: &Catalogue, section: &str, id: &str) -> String {
    let key = format!("{section}.{id}");
    match i.t(&key) {
        text if text == key => id.to_string(),
        text => text.to_string(),
    }
}

macro_rules! guarded {
    ($page:expr, $path:expr, $allowed:expr) => {
        match check(&$page, $path, $allowed) {
            Ok(s) => s,
            Err(res) => return Ok(res),
        }
    };
}

#[derive(Deserialize)]
pub struct DashboardQuery {
    reminders: Option<usize>,
}

pub async fn dashboard(page: Page, q: web::Query<DashboardQuery>) -> Result<HttpResponse, WebError> {
    let session = guarded!(page, "/admin", Roles::can_report);
    let d = page.state.admin.dashboard().await.map_err(|e| fail(&page, e))?;
    let i = page.i18n();
    let view = AdminDashboardView {
        l: layout(&page, "/admin"),
        roles: session.user.roles,
        per_service: d.per_service.iter().map(|(k, n)| (k.id(), format!("service.{}.name", k.id()), *n)).collect(),
        chart: daily_chart_svg(
            &d.days,
            &ChartText {
                title: i.t("admin.chart_title"),
                resets: i.t("admin.chart_resets"),
                unlocks: i.t("admin.chart_unlocks"),
            },
        ),
        counted: i.f(
            "admin.counted",
            &[
                ("disabled", &d.left_out.disabled.to_string()),
                ("built_in", &d.left_out.built_in.to_string()),
                ("excluded", &d.left_out.excluded.to_string()),
            ],
        ),
        failures: d.failures.iter().map(row(&page)).collect(),
        blocked: d.blocked.iter().map(row(&page)).collect(),
        reminders: q.reminders.map(|n| i.f("admin.reminders_sent", &[("n", &n.to_string())])),
        can_remind: session.user.roles.admin,
        d: &d,
    };
    html(&page, view)
}

#[derive(Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
}

pub async fn users(page: Page, q: web::Query<Search>) -> Result<HttpResponse, WebError> {
    let session = guarded!(page, "/admin/users", Roles::can_view_users);
    let i = page.i18n();
    let found = page.state.admin.search(&q.q, &page.meta).await.map_err(|e| fail(&page, e))?;
    // A personal number is not shown back either.
    let personal_number = found == Found::PersonalNumber;
    let typed = if personal_number { "" } else { q.q.as_str() };
    let (found, hint) = match found {
        Found::TooShort if q.q.trim().is_empty() => (Vec::new(), None),
        Found::TooShort => (Vec::new(), Some(i.f("admin.search_too_short", &[("n", &MIN_SEARCH.to_string())]))),
        Found::PersonalNumber => (Vec::new(), Some(i.t("admin.search_personal_number").to_string())),
        Found::Users { users, more: true } => (users, Some(i.f("admin.search_more", &[("n", &SHOWN.to_string())]))),
        Found::Users { users, more: false } => (users, None),
    };
    let users = found
        .into_iter()
        .map(|u| {
            (u.id.clone(), u.name_to_show().to_string(), u.account_name.clone(), u.mail.clone().unwrap_or_default())
        })
        .collect();
    let mut l = layout(&page, "/admin/users");
    if personal_number {
        // Nor in the language form's way back.
        l.path = "/admin/users".into();
    }
    let view = AdminUsersView {
        l,
        roles: session.user.roles,
        q: typed,
        searched: !typed.trim().is_empty() && hint.is_none(),
        hint,
        users,
    };
    html(&page, view)
}

async fn user_view(
    page: &Page,
    session: &Session,
    id: &str,
    message: Option<(String, bool)>,
) -> Result<HttpResponse, WebError> {
    let Some(u) = page.state.admin.user_page(id, &page.meta).await.map_err(|e| fail(page, e))? else {
        return Err(page.not_found());
    };
    let masked_mobile = u
        .user
        .mobile
        .as_deref()
        .map(|m| crate::identity::sms::PhoneNumber::parse(m, "SE").map(|n| n.masked()).unwrap_or_else(|_| "***".into()))
        .unwrap_or_default();
    let view = AdminUserView {
        l: layout(page, "/admin/users"),
        roles: session.user.roles,
        id,
        name: u.user.name_to_show().to_string(),
        account: u.user.account_name.clone(),
        mail: u.user.mail.clone().unwrap_or_default(),
        mobile: masked_mobile,
        locked_key: if u.user.locked { "admin.yes" } else { "admin.no" },
        pwd_last_set: u.pwd_last_set.map(|t| page.state.time.format(t)).unwrap_or_default(),
        groups: u
            .groups
            .iter()
            .filter_map(|g| g.split(',').next())
            .map(|cn| cn.trim_start_matches("CN="))
            .collect::<Vec<_>>()
            .join(", "),
        status_key: format!("admin.status_{}", u.assessment.status.id()),
        collected: u.assessment.collected,
        needed: u.assessment.needed,
        enrolments: u
            .enrolments
            .iter()
            .map(|(s, r)| {
                (
                    s.kind.id(),
                    format!("service.{}.name", s.kind.id()),
                    s.stars,
                    page.state.time.format(r.enrolled_at),
                    r.last_used_at.map(|t| page.state.time.format(t)).unwrap_or_else(|| "–".into()),
                )
            })
            .collect(),
        can_revoke: session.user.roles.admin,
        audit: u.audit.iter().map(row(page)).collect(),
        message,
    };
    html(page, view)
}

pub async fn user(page: Page, id: web::Path<String>) -> Result<HttpResponse, WebError> {
    let session = guarded!(page, &format!("/admin/users/{id}"), Roles::can_view_users);
    // The outcome of a revocation, after its redirect (sealed: a link cannot say "revoked").
    let message = page.notice().map(|n| (n.text(&page), n.tone() == crate::web::Tone::Error));
    user_view(&page, session, &id, message).await
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    reason: String,
}

impl CsrfField for RevokeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn revoke(page: Page, id: web::Path<String>, form: CsrfForm<RevokeForm>) -> Result<HttpResponse, WebError> {
    let session = guarded!(page, &format!("/admin/users/{id}"), |r: Roles| r.admin);
    let form = form.0;
    let reason = form.reason.trim();
    // Post/redirect/get: the outcome is shown by the user's page, so a reload never revokes again.
    let to = format!("/admin/users/{}", urlencoding_path(&id));
    let back = |notice: Notice| page.redirect_with(&to, &notice);
    if reason.is_empty() {
        return Ok(back(Notice::error("admin.reason_needed")));
    }
    let service = match form.service.as_str() {
        "all" => None,
        s => match s.parse::<ServiceKind>() {
            Ok(k) => Some(k),
            Err(_) => return Err(WebError::bad_form(page.lang, &page.meta.request_id).framed(page.frame())),
        },
    };
    let admin = &page.state.admin;
    let revoked = admin.revoke(&session.user, &id, service, reason, &page.meta).await.map_err(|e| fail(&page, e))?;
    Ok(back(if revoked { Notice::success("admin.revoked") } else { Notice::info("admin.nothing_to_revoke") }))
}

pub(super) fn csv(name: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{name}\"")))
        .body(body)
}

/// Exports leave the portal with personal data: each one is audited.
pub(super) async fn audit_export(page: &Page, session: &Session, what: Detail) -> Result<(), WebError> {
    staff_did(page, session, EventKind::AdminExport, what).await
}

/// What a member of staff looked at or took, in the trail under their name.
pub(super) async fn staff_did(page: &Page, session: &Session, kind: EventKind, what: Detail) -> Result<(), WebError> {
    let event = AuditEvent::new(kind, Outcome::Success)
        .username(&session.user.account_name)
        .user_id(&session.user.user_id)
        .detail(what);
    page.state.auditor.record(&page.meta, event).await.map_err(|e| page.fail(e))
}

pub async fn not_enrolled_csv(page: Page) -> Result<HttpResponse, WebError> {
    let session = guarded!(page, "/admin", Roles::can_report);
    let body = page.state.admin.not_enrolled_csv(page.lang).await.map_err(|e| fail(&page, e))?;
    audit_export(&page, session, Detail::new("export_not_enrolled")).await?;
    Ok(csv("stjarna-not-enrolled.csv", body))
}

pub async fn reminders(page: Page, _form: CsrfForm<super::bankid::CsrfOnly>) -> Result<HttpResponse, WebError> {
    let session = guarded!(page, "/admin", |r: Roles| r.admin);
    let sent = page.state.admin.send_reminders(&session.user, &page.meta).await.map_err(|e| fail(&page, e))?;
    Ok(see_other(&format!("/admin?reminders={sent}")).finish())
}

/// `GET /admin/status`: the portal's parts as they are now (administrators only).
pub async fn status(page: Page) -> Result<HttpResponse, WebError> {
    let session = guarded!(page, "/admin/status", |r: Roles| r.admin);
    let st = page.state.status.read(&page.meta.request_id).await;
    let i = page.i18n();
    let why = |no: crate::admin::status::NoAnswer| [("why", i.t(no.key())), ("reference", st.reference.as_str())];
    let answer = |reach: &crate::admin::status::Reach| match reach {
        Ok(()) => i.t("admin.system.reachable").to_string(),
        Err(no) => i.f("admin.system.unreachable", &why(*no)),
    };
    let dcs = st
        .dcs
        .iter()
        .map(|d| {
            let state = match (d.in_use, d.skipped_for) {
                (true, _) => "admin.system.in_use",
                (false, Some(_)) => "admin.system.skipped",
                (false, None) => "admin.system.standby",
            };
            (d.url.clone(), i.t(state).to_string(), answer(&d.reach))
        })
        .collect();
    let yes_no = |b: bool| i.t(if b { "admin.system.yes" } else { "admin.system.no" }).to_string();
    let days = |d: u64| if d == 0 { i.t("admin.system.never").to_string() } else { d.to_string() };
    let row = |name: String, p: &crate::directory::PasswordPolicy| {
        [
            name,
            p.min_length.to_string(),
            yes_no(p.complexity),
            p.history_length.to_string(),
            p.min_age_days.to_string(),
            days(p.max_age_days),
            if p.lockout_threshold == 0 {
                i.t("admin.system.never").to_string()
            } else {
                p.lockout_threshold.to_string()
            },
            p.lockout_window_minutes.to_string(),
            p.lockout_duration_minutes.to_string(),
        ]
    };
    let mut policies = Vec::new();
    let mut unread = None;
    match &st.domain_policy {
        Ok(p) => policies.push(row(i.t("admin.system.domain").to_string(), p)),
        Err(no) => unread = Some(*no),
    }
    match &st.psos {
        Ok(psos) => policies.extend(psos.iter().map(|p| {
            let name =
                p.source_pso.as_deref().and_then(|dn| dn.split(',').next()).unwrap_or("").trim_start_matches("CN=");
            row(name.to_string(), p)
        })),
        Err(no) => unread = unread.or(Some(*no)),
    }
    let history = match st.history_on_resets {
        Some(true) => i.t("admin.system.history_yes"),
        Some(false) => i.t("admin.history_not_enforced"),
        None => i.t("admin.system.history_unknown"),
    };
    let backend = |key: &'static str, reach: &Option<crate::admin::status::Reach>| {
        (key, reach.as_ref().map(answer).unwrap_or_else(|| i.t("admin.system.not_configured").to_string()))
    };
    let view = AdminStatusView {
        l: layout(&page, "/admin/status"),
        roles: session.user.roles,
        version: st.version,
        dcs,
        policies,
        policy_error: unread.map(|no| i.f("admin.system.policy_error", &why(no))),
        history: history.to_string(),
        backends: vec![
            backend("admin.system.bankid", &st.bankid),
            backend("admin.system.sms", &st.sms),
            backend("admin.system.mail", &st.mail),
        ],
        outbox_queued: st.outbox_queued,
        outbox_oldest: st
            .outbox_oldest_seconds
            .map(|s| i.f("admin.system.oldest", &[("seconds", &s.to_string())]))
            .unwrap_or_default(),
    };
    html(&page, view)
}

/// A user id as a path segment (ids are GUIDs; anything else is escaped).
fn urlencoding_path(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
