//! `/admin/verify`: the service desk verifies that a caller is the employee they claim to be, with
//! the employee's own enrolled services (Specops' "Secure Service Desk").

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::admin::{Guarded, guard};
use super::bankid::CsrfOnly;
use super::{html, layout, see_other};
use crate::clock::Timestamp;
use crate::directory::DirectoryUser;
use crate::enrolment::{Lift, Owner, ProofStanding, ServiceKind};
use crate::identity::bankid::{BankIdFlows, FlowError, FlowPurpose, FlowState, FlowUser};
use crate::identity::sms::{ChallengeState, Sender, SmsOutcome, SmsPurpose, SmsStart};
use crate::session::Roles;
use crate::storage::StorageError;
use crate::web::csrf::{CsrfField, CsrfForm};
use crate::web::views::{AdminVerifyView, LiftChoice};
use crate::web::{Notice, Page, WebError};

fn view<'a>(page: &'a Page, roles: Roles, message: Option<String>, class: &'static str) -> AdminVerifyView<'a> {
    AdminVerifyView {
        l: layout(page, "/admin/verify"),
        roles,
        message,
        message_class: class,
        code_action: None,
        user_id: String::new(),
        show_form: true,
        refresh: None,
        js: page.state.assets.url("follow.js"),
        lift: None,
        cancel: None,
    }
}

/// "Verified at 10:42: Anna Andersson, account EXAMPLE\anna (3 stars)" for the result, with the
/// services still cooling off to choose from for the lift; or, when the service that proved it
/// was still cooling off at that moment (it may be whoever had the password for a moment), a
/// warning and nothing to lift; or, when that service has been removed or replaced since, not
/// verified; or, past the step-up window, that the verification no longer holds (a page reopened
/// from the history is not a verification now).
async fn verdict<'a>(
    page: &'a Page,
    roles: Roles,
    user: &DirectoryUser,
    (kind, proved_at): (ServiceKind, Option<Timestamp>),
    proof: String,
) -> Result<AdminVerifyView<'a>, WebError> {
    let name = user.name_to_show();
    let i = page.i18n();
    let not_verified = || Ok(view(page, roles, Some(i.t("admin.not_verified").to_string()), "error"));
    let Some(at) = proved_at else { return not_verified() };
    let (account, time) = (super::bankid::domain_account(page, &user.account_name), page.state.time.format(at));
    let desk = &page.state.desk;
    if !desk.fresh(at) {
        let text = i.f("admin.verification_expired", &[("name", name), ("account", &account), ("time", &time)]);
        return Ok(view(page, roles, Some(text), "error"));
    }
    let target =
        Owner { user_id: &user.id, account_name: &user.account_name, password_set: user.password_set.as_deref() };
    match desk.proof_standing(target, kind, at).await.map_err(|e| page.fail(e))? {
        ProofStanding::Trusted => {}
        ProofStanding::Gone => return not_verified(),
        ProofStanding::Cooling => {
            let service = i.t(&format!("service.{}.name", kind.id())).to_string();
            let text = i.f("admin.verified_cooling", &[("name", name), ("service", &service)]);
            return Ok(view(page, roles, Some(text), "error"));
        }
    }
    let stars = stars_of(page, kind).to_string();
    let text = i.f("admin.verified", &[("stars", &stars), ("name", name), ("account", &account), ("time", &time)]);
    let mut v = view(page, roles, Some(text), "success");
    let cooling: Vec<(&'static str, String)> = page
        .state
        .enrolments
        .enrolled(&user.id, user.password_set.as_deref())
        .await
        .map_err(|e| page.fail(e))?
        .into_iter()
        // Only what was there when the caller proved themselves: one enrolled since is no part
        // of what they confirmed.
        .filter(|e| e.cooling_until.is_some() && e.enrolled_at <= at)
        .map(|e| {
            let service = i.t(&format!("service.{}.name", e.kind.id())).to_string();
            let detail = e.detail.unwrap_or_default();
            let when = page.state.time.format(e.enrolled_at);
            (e.kind.id(), i.f("admin.lift_service", &[("service", &service), ("detail", &detail), ("when", &when)]))
        })
        .collect();
    if !cooling.is_empty() {
        let not_offered = match page.state.desk.may_lift(roles.admin, &user.id).await {
            Some(true) => None,
            Some(false) => Some("admin.lift_admin_only"),
            None => Some("login.error.directory_down"),
        };
        v.lift = Some(LiftChoice { user_id: user.id.clone(), proof, cooling, not_offered });
    }
    // Back from a lift with nothing chosen: that is said instead, above the same choices.
    if let Some((message, class)) = page.notice_text() {
        (v.message, v.message_class) = (Some(message), class);
    }
    Ok(v)
}

fn stars_of(page: &Page, kind: ServiceKind) -> u8 {
    page.state.services.iter().find(|s| s.kind == kind).map(|s| s.stars).unwrap_or(0)
}

pub async fn show(page: Page) -> Result<HttpResponse, WebError> {
    let session = match guard(&page, "/admin/verify", Roles::can_view_users) {
        Guarded::Yes(s) => s,
        Guarded::No(res) => return Ok(res),
    };
    let notice = page.notice();
    let class = notice.as_ref().map(|n| n.tone().class()).unwrap_or_default();
    html(&page, view(&page, session.user.roles, notice.map(|n| n.text(&page)), class))
}

/// Post/redirect/get: back to the start with what happened.
fn back(page: &Page, notice: Notice) -> Result<HttpResponse, WebError> {
    Ok(page.redirect_with("/admin/verify", &notice))
}

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    we_called: String,
}

impl CsrfField for StartForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn start(page: Page, form: CsrfForm<StartForm>) -> Result<HttpResponse, WebError> {
    if let Guarded::No(res) = guard(&page, "/admin/verify", Roles::can_view_users) {
        return Ok(res);
    }
    let form = form.0;
    let i = page.i18n();
    let user = page.state.login.find(&form.username).await.map_err(|e| page.fail(e))?;
    let Some(user) = user else { return back(&page, Notice::error("admin.no_results")) };
    let target = FlowUser { user_id: &user.id, account_name: &user.account_name, password_set: None };
    if form.method == "bankid" {
        let Some(flows) = page.state.bankid.as_deref() else {
            return Err(page.not_found());
        };
        let Some(pn) = flows.enrolled_number(&user.id).await.map_err(|e| page.fail(e))? else {
            return back(&page, Notice::error("admin.not_enrolled_service"));
        };
        let account = super::bankid::domain_account(&page, &user.account_name);
        let text = super::bankid::visible_text(&page, FlowPurpose::Caller, Some(&account));
        return match flows.start_phone(page.binding(), target, &pn, form.we_called == "yes", text, &page.meta).await {
            Ok(flow) => Ok(see_other(&format!("/admin/verify/bankid/{}", flow.id)).finish()),
            Err(FlowError::BankId(e)) => back(&page, Notice::error(crate::identity::bankid::error_key(&e))),
            Err(FlowError::TooManyOrders { minutes }) => back(
                &page,
                // Minutes first: the plural form follows them.
                Notice::error("admin.too_many_phone_orders")
                    .arg("minutes", minutes)
                    .arg("n", crate::identity::bankid::PHONE_ORDERS_PER_BANKID_PER_HOUR),
            ),
            Err(e) => Err(page.fail(e)),
        };
    }
    let Some(sms) = page.state.sms.as_deref() else {
        return Err(page.not_found());
    };
    let minutes = (sms.limits().code_lifetime / 60).max(1).to_string();
    // The text says who called whom: a person phoned by someone claiming to be the service desk
    // must not read a code out, unless the desk itself called them back.
    let key = if form.we_called == "yes" { "sms.caller_text_we_called" } else { "sms.caller_text" };
    let text = i.f(key, &[("portal", &page.state.settings.portal.name), ("minutes", &minutes)]);
    match sms
        .start_verify(page.binding(), target, &text, &page.meta, Sender::ServiceDesk)
        .await
        .map_err(|e| page.fail(e))?
    {
        SmsStart::Sent { id } => Ok(see_other(&code_page_path(&id, &user.id)).finish()),
        SmsStart::NotEnrolled => back(&page, Notice::error("admin.not_enrolled_service")),
        SmsStart::Limited { minutes } => back(&page, Notice::error("sms.error.limited").arg("minutes", minutes)),
        _ => back(&page, Notice::error("sms.error.gateway")),
    }
}

/// The page of a caller's mobile code (the challenge is bound to this browser and that user).
/// An id that is not one of ours (they are URL-safe) is left out rather than put in a path.
fn code_page_path(id: &str, user_id: &str) -> String {
    let id = if is_flow_id(id) { id } else { "" };
    format!("/admin/verify/sms/{id}?{}", serde_urlencoded::to_string([("user", user_id)]).unwrap_or_default())
}

/// Whether `id` could be a challenge's or an order's id (URL-safe characters only).
fn is_flow_id(id: &str) -> bool {
    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[derive(Deserialize)]
pub struct CodeQuery {
    #[serde(default)]
    user: String,
}

/// The caller's code: the field while it is open, the outcome once it is decided.
pub async fn show_code(page: Page, id: web::Path<String>, q: web::Query<CodeQuery>) -> Result<HttpResponse, WebError> {
    // After re-authentication, back to this code page (its query and message included).
    let session = match guard(&page, &page.path, Roles::can_view_users) {
        Guarded::Yes(s) => s,
        Guarded::No(res) => return Ok(res),
    };
    let not_found = || page.not_found();
    let Some(sms) = page.state.sms.as_deref() else { return Err(not_found()) };
    let user = page.state.login.user(&q.user).await.map_err(|e| page.fail(e))?.ok_or_else(not_found)?;
    let challenge = sms.view(&id, page.binding(), &user.id, false).await.map_err(|e| page.fail(e))?;
    let challenge = challenge.filter(|c| c.purpose == SmsPurpose::Verify).ok_or_else(not_found)?;
    let i = page.i18n();
    let roles = session.user.roles;
    let v = match challenge.state {
        ChallengeState::Pending => {
            let (message, class) = page
                .notice_text()
                .unwrap_or_else(|| (i.f("admin.code_sent", &[("number", &challenge.masked)]), "notice"));
            let mut v = view(&page, roles, Some(message), class);
            v.code_action = Some(format!("/admin/verify/sms/{id}"));
            v.user_id = user.id.clone();
            v.show_form = false;
            v
        }
        ChallengeState::Verified => {
            let proved = (ServiceKind::Sms, challenge.finished_at);
            verdict(&page, roles, &user, proved, format!("sms:{id}")).await?
        }
        _ => view(&page, roles, Some(i.t("admin.not_verified").to_string()), "error"),
    };
    html(&page, v)
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    code: String,
}

impl CsrfField for CodeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn check_code(page: Page, id: web::Path<String>, form: CsrfForm<CodeForm>) -> Result<HttpResponse, WebError> {
    // After re-authentication, back to this code page: the caller's code is still open there.
    if let Guarded::No(res) = guard(&page, &code_page_path(&id, &form.0.user), Roles::can_view_users) {
        return Ok(res);
    }
    let Some(sms) = page.state.sms.as_deref() else {
        return Err(page.not_found());
    };
    let form = form.0;
    let user = page.state.login.user(&form.user).await.map_err(|e| page.fail(e))?;
    let Some(user) = user else { return Err(page.not_found()) };
    // Only a caller's code is checked here: not one of the agent's own enrolment, which its own
    // page checks (with the proof it needs then).
    let view = sms.view(&id, page.binding(), &user.id, false).await.map_err(|e| page.fail(e))?;
    if view.is_none_or(|v| v.purpose != SmsPurpose::Verify) {
        return Err(page.not_found());
    }
    let target = FlowUser { user_id: &user.id, account_name: &user.account_name, password_set: None };
    let outcome = sms
        .check(&id, page.binding(), target, &form.code, None, Sender::ServiceDesk, &page.meta)
        .await
        .map_err(|e| page.fail(e))?;
    let to = code_page_path(&id, &user.id);
    match outcome {
        None => Err(page.not_found()),
        // Post/redirect/get: the code page shows how it ended from the challenge's state.
        Some(SmsOutcome::Wrong { attempts_left }) => {
            Ok(page.redirect_with(&to, &Notice::error("sms.error.wrong").arg("left", attempts_left)))
        }
        Some(SmsOutcome::Malformed) => Ok(page.redirect_with(&to, &Notice::error("sms.error.malformed"))),
        Some(SmsOutcome::DayUsedUp) => Ok(page.redirect_with(&to, &Notice::error("sms.error.day_used_up"))),
        Some(_) => Ok(see_other(&to).finish()),
    }
}

pub async fn bankid_status(page: Page, id: web::Path<String>) -> Result<HttpResponse, WebError> {
    // After re-authentication, back to this order (a new one would prompt the phone again).
    let session = match guard(&page, &page.path, Roles::can_view_users) {
        Guarded::Yes(s) => s,
        Guarded::No(res) => return Ok(res),
    };
    let Some(flows) = page.state.bankid.as_deref() else {
        return Err(page.not_found());
    };
    // Only a caller's order is collected here: not one of the agent's own (an enrolment, say).
    if !is_caller_order(flows, &id, page.binding()).await.map_err(|e| page.fail(e))? {
        return Err(page.not_found());
    }
    let flow = flows.poll(&id, page.binding(), None, &page.meta).await.map_err(|e| page.fail(e))?;
    let Some(flow) = flow else { return Err(page.not_found()) };
    let i = page.i18n();
    let roles = session.user.roles;
    let mut v = match flow.state {
        FlowState::Complete => {
            let user = match &flow.user_id {
                Some(u) => page.state.login.user(u).await.map_err(|e| page.fail(e))?,
                None => None,
            };
            match user {
                Some(user) => {
                    let proved = (ServiceKind::BankId, flow.finished_at);
                    verdict(&page, roles, &user, proved, format!("bankid:{id}")).await?
                }
                // The account is gone since the order started.
                None => view(&page, roles, Some(i.t("admin.not_verified").to_string()), "error"),
            }
        }
        FlowState::Pending => {
            let mut v = view(&page, roles, Some(i.t(flow.message_key).to_string()), "notice");
            v.show_form = false;
            v.refresh = Some(format!("/admin/verify/bankid/{}", flow.id));
            v.cancel = Some(format!("/admin/verify/bankid/{}/cancel", flow.id));
            v
        }
        _ => view(&page, roles, Some(format!("{} {}", i.t("admin.not_verified"), i.t(flow.message_key))), "error"),
    };
    if flow.state != FlowState::Pending {
        v.show_form = true;
    }
    html(&page, v)
}

#[derive(Deserialize)]
pub struct LiftForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    proof: String,
    /// The services the caller confirmed as theirs ("1" when ticked).
    #[serde(default)]
    bankid: Option<String>,
    #[serde(default)]
    sms: Option<String>,
}

impl CsrfField for LiftForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The service and the time of a caller verification of `user_id` that this browser finished:
/// `proof` is `sms:{challenge}` or `bankid:{order}`.
async fn caller_verified(
    page: &Page,
    user_id: &str,
    proof: &str,
) -> Result<Option<(ServiceKind, Timestamp)>, WebError> {
    let verified = match proof.split_once(':') {
        Some(("sms", id)) => match page.state.sms.as_deref() {
            Some(sms) => sms
                .view(id, page.binding(), user_id, false)
                .await
                .map_err(|e| page.fail(e))?
                .filter(|v| v.purpose == crate::identity::sms::SmsPurpose::Verify)
                .filter(|v| v.state == crate::identity::sms::ChallengeState::Verified)
                .and_then(|v| v.finished_at)
                .map(|at| (ServiceKind::Sms, at)),
            None => None,
        },
        Some(("bankid", id)) => match page.state.bankid.as_deref() {
            Some(flows) if is_caller_order(flows, id, page.binding()).await.map_err(|e| page.fail(e))? => flows
                .poll(id, page.binding(), None, &page.meta)
                .await
                .map_err(|e| page.fail(e))?
                .filter(|f| f.purpose == FlowPurpose::Caller)
                .filter(|f| f.state == FlowState::Complete && f.user_id.as_deref() == Some(user_id))
                .and_then(|f| f.finished_at)
                .map(|at| (ServiceKind::BankId, at)),
            _ => None,
        },
        _ => None,
    };
    Ok(verified)
}

/// The service desk lets a verified caller's new services count toward a reset at once: only the
/// ones the caller confirmed as theirs (a password thief's phone may be among them), only with a
/// verification made minutes ago, with a service that is not itself cooling off (else an attacker
/// who enrolled their own phone proves themselves with it), and never for oneself.
pub async fn lift_cooldown(page: Page, form: CsrfForm<LiftForm>) -> Result<HttpResponse, WebError> {
    let session = match guard(&page, "/admin/verify", Roles::can_view_users) {
        Guarded::Yes(s) => s,
        Guarded::No(res) => return Ok(res),
    };
    let form = form.0;
    let proof = caller_verified(&page, &form.user, &form.proof).await?;
    let actor = super::enrol::owner(session);
    // The account's name for the audit entry (none for an id that names no account), and when its
    // password was set (a service cooling off again since then proves nothing).
    let user = page.state.login.user(&form.user).await.map_err(|e| page.fail(e))?;
    let name = user.as_ref().map(|u| u.account_name.as_str()).unwrap_or_default();
    let password_set = user.as_ref().and_then(|u| u.password_set.as_deref());
    let target = Owner { user_id: &form.user, account_name: name, password_set };
    let chosen: Vec<ServiceKind> = [(ServiceKind::BankId, &form.bankid), (ServiceKind::Sms, &form.sms)]
        .into_iter()
        .filter_map(|(kind, ticked)| ticked.is_some().then_some(kind))
        .collect();
    let lift = page
        .state
        .desk
        .lift_cooldown(actor, session.user.roles.admin, target, proof, &chosen, &page.meta)
        .await
        .map_err(|e| page.fail(e))?;
    // Nothing chosen: back to the verdict and its choices (a new verification would spend the
    // caller's codes or phone orders).
    let verdict_page = match form.proof.split_once(':') {
        Some(("sms", id)) => Some(code_page_path(id, &form.user)),
        Some(("bankid", id)) if is_flow_id(id) => Some(format!("/admin/verify/bankid/{id}")),
        _ => None,
    };
    if let (Lift::NothingChosen, Some(to)) = (&lift, &verdict_page) {
        return Ok(page.redirect_with(to, &Notice::error("admin.lift_none_chosen")));
    }
    back(
        &page,
        match lift {
            Lift::Lifted(n) => Notice::success("admin.cooldown_lifted").arg("n", n),
            Lift::OwnAccount => Notice::error("admin.lift_self"),
            Lift::CannotTell => Notice::error("admin.lift_cannot_tell"),
            Lift::DirectoryDown => Notice::error("login.error.directory_down"),
            Lift::Privileged => Notice::error("admin.lift_privileged"),
            Lift::NotVerified => Notice::error("admin.not_verified"),
            Lift::ProofCooling => Notice::error("admin.lift_cooling_proof"),
            Lift::NothingChosen => Notice::error("admin.lift_none_chosen"),
            Lift::NothingLifted => Notice::error("admin.nothing_lifted"),
        },
    )
}

/// The agent cancels a caller's order still waiting (the caller sounds wrong, or hung up): BankID
/// stops asking the phone at once instead of for the order's remaining minutes.
pub async fn cancel_order(
    page: Page,
    id: web::Path<String>,
    _form: CsrfForm<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    // Only the role, not a fresh password: a cancel only takes a prompt off a phone, and the
    // password asked first would leave it asking meanwhile.
    if !page.session().is_some_and(|s| s.user.roles.can_view_users()) {
        return Err(page.not_found());
    }
    let Some(flows) = page.state.bankid.as_deref() else {
        return Err(page.not_found());
    };
    if !is_caller_order(flows, &id, page.binding()).await.map_err(|e| page.fail(e))? {
        return Err(page.not_found());
    }
    if flows.cancel(&id, page.binding(), &page.meta).await.map_err(|e| page.fail(e))? {
        return back(&page, Notice::success("admin.order_cancelled"));
    }
    // It ended before the cancel (the caller confirmed a moment before): its page says how.
    Ok(see_other(&format!("/admin/verify/bankid/{id}")).finish())
}

/// Whether this browser's order `id` is a caller's (only those are collected from these pages).
async fn is_caller_order(flows: &BankIdFlows, id: &str, binding: &str) -> Result<bool, StorageError> {
    Ok(flows.about(id, binding).await?.is_some_and(|(purpose, _, _)| purpose == FlowPurpose::Caller))
}
