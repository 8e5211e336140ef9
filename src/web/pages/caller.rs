//! `/admin/verify`: the service desk verifies that a caller is the employee they claim to be, with
//! the employee's own enrolled services (Specops' "Secure Service Desk").

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::admin::{Guarded, guard};
use super::{html, layout, see_other};
use crate::enrolment::Lift;
use crate::identity::bankid::{FlowError, FlowState, FlowUser};
use crate::identity::sms::{Sender, SmsOutcome, SmsStart};
use crate::session::Roles;
use crate::web::csrf::{CsrfField, CsrfForm};
use crate::web::views::AdminVerifyView;
use crate::web::{Page, WebError};

fn binding(page: &Page) -> &str {
    page.csrf_seed.as_deref().unwrap_or_default()
}

fn view<'a>(page: &'a Page, roles: Roles, message: Option<String>, class: &'static str) -> AdminVerifyView<'a> {
    AdminVerifyView {
        l: layout(page, "/admin/verify"),
        roles,
        message,
        message_class: class,
        code_action: None,
        user_id: String::new(),
        show_form: true,
        refresh: false,
        lift: None,
    }
}

/// "Verified: Anna Andersson (3 stars)" for the result.
fn verified(page: &Page, name: &str, stars: u8) -> String {
    page.i18n().f("admin.verified", &[("name", name), ("stars", &stars.to_string())])
}

fn stars_of(page: &Page, kind: crate::enrolment::ServiceKind) -> u8 {
    page.state.services.iter().find(|s| s.kind == kind).map(|s| s.stars).unwrap_or(0)
}

pub async fn show(page: Page) -> Result<HttpResponse, WebError> {
    let session = match guard(&page, "/admin/verify", Roles::can_view_users) {
        Guarded::Yes(s) => s,
        Guarded::No(res) => return Ok(res),
    };
    html(&page, view(&page, session.user.roles, None, ""))
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
    let session = match guard(&page, "/admin/verify", Roles::can_view_users) {
        Guarded::Yes(s) => s,
        Guarded::No(res) => return Ok(res),
    };
    let roles = session.user.roles;
    let form = form.0;
    let i = page.i18n();
    let user = page.state.login.find(&form.username).await.map_err(|e| page.fail(e))?;
    let Some(user) = user else {
        return html(&page, view(&page, roles, Some(i.t("admin.no_results").to_string()), "error"));
    };
    let target = FlowUser { user_id: &user.id, account_name: &user.account_name };
    if form.method == "bankid" {
        let Some(flows) = page.state.bankid.as_deref() else {
            return Err(WebError::not_found(page.lang, &page.meta.request_id));
        };
        let Some(pn) = flows.enrolled_number(&user.id).await.map_err(|e| page.fail(e))? else {
            return html(&page, view(&page, roles, Some(i.t("admin.not_enrolled_service").to_string()), "error"));
        };
        let account = super::bankid::domain_account(&page, &user.account_name);
        let text = super::bankid::visible_text(&page, crate::identity::bankid::FlowPurpose::Caller, Some(&account));
        return match flows.start_phone(binding(&page), target, &pn, form.we_called == "yes", text, &page.meta).await {
            Ok(flow) => Ok(see_other(&format!("/admin/verify/bankid/{}", flow.id)).finish()),
            Err(FlowError::BankId(e)) => {
                let message = i.t(crate::identity::bankid::error_key(&e)).to_string();
                html(&page, view(&page, roles, Some(message), "error"))
            }
            Err(e) => Err(page.fail(e)),
        };
    }
    let Some(sms) = page.state.sms.as_deref() else {
        return Err(WebError::not_found(page.lang, &page.meta.request_id));
    };
    let minutes = (sms.limits().code_lifetime / 60).max(1).to_string();
    let text = i.f("sms.text", &[("portal", &page.state.settings.portal.name), ("minutes", &minutes)]);
    match sms
        .start_verify(binding(&page), target, &text, &page.meta, Sender::ServiceDesk)
        .await
        .map_err(|e| page.fail(e))?
    {
        SmsStart::Sent { id } => {
            let masked = sms
                .view(&id, binding(&page), &user.id)
                .await
                .map_err(|e| page.fail(e))?
                .map(|v| v.masked)
                .unwrap_or_default();
            let mut v = view(&page, roles, Some(i.f("admin.code_sent", &[("number", &masked)])), "notice");
            v.code_action = Some(format!("/admin/verify/sms/{id}"));
            v.user_id = user.id.clone();
            v.show_form = false;
            html(&page, v)
        }
        SmsStart::NotEnrolled => {
            html(&page, view(&page, roles, Some(i.t("admin.not_enrolled_service").to_string()), "error"))
        }
        SmsStart::Limited { minutes } => html(
            &page,
            view(&page, roles, Some(i.f("sms.error.limited", &[("minutes", &minutes.to_string())])), "error"),
        ),
        _ => html(&page, view(&page, roles, Some(i.t("sms.error.gateway").to_string()), "error")),
    }
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
    let session = match guard(&page, "/admin/verify", Roles::can_view_users) {
        Guarded::Yes(s) => s,
        Guarded::No(res) => return Ok(res),
    };
    let Some(sms) = page.state.sms.as_deref() else {
        return Err(WebError::not_found(page.lang, &page.meta.request_id));
    };
    let form = form.0;
    let user = page.state.login.user(&form.user).await.map_err(|e| page.fail(e))?;
    let Some(user) = user else { return Err(WebError::not_found(page.lang, &page.meta.request_id)) };
    let target = FlowUser { user_id: &user.id, account_name: &user.account_name };
    let outcome = sms.check(&id, binding(&page), target, &form.code, &page.meta).await.map_err(|e| page.fail(e))?;
    let i = page.i18n();
    let (message, class) = match outcome {
        Some(SmsOutcome::Verified) => {
            (verified(&page, user.name_to_show(), stars_of(&page, crate::enrolment::ServiceKind::Sms)), "success")
        }
        Some(SmsOutcome::Wrong { attempts_left }) => {
            (i.f("sms.error.wrong", &[("left", &attempts_left.to_string())]), "error")
        }
        None => return Err(WebError::not_found(page.lang, &page.meta.request_id)),
        _ => (i.t("admin.not_verified").to_string(), "error"),
    };
    let mut v = view(&page, session.user.roles, Some(message), class);
    if outcome == Some(SmsOutcome::Verified) {
        v.lift = Some((user.id.clone(), format!("sms:{id}")));
    }
    if matches!(outcome, Some(SmsOutcome::Wrong { .. })) {
        v.code_action = Some(format!("/admin/verify/sms/{id}"));
        v.user_id = user.id.clone();
        v.show_form = false;
    }
    html(&page, v)
}

pub async fn bankid_status(page: Page, id: web::Path<String>) -> Result<HttpResponse, WebError> {
    let session = match guard(&page, "/admin/verify", Roles::can_view_users) {
        Guarded::Yes(s) => s,
        Guarded::No(res) => return Ok(res),
    };
    let Some(flows) = page.state.bankid.as_deref() else {
        return Err(WebError::not_found(page.lang, &page.meta.request_id));
    };
    let flow = flows.poll(&id, binding(&page), &page.meta).await.map_err(|e| page.fail(e))?;
    let Some(flow) = flow else { return Err(WebError::not_found(page.lang, &page.meta.request_id)) };
    let i = page.i18n();
    let roles = session.user.roles;
    let mut v = match flow.state {
        FlowState::Complete => {
            let user = match &flow.user_id {
                Some(u) => page.state.login.user(u).await.map_err(|e| page.fail(e))?,
                None => None,
            };
            let name = user.as_ref().map(|u| u.name_to_show().to_string()).unwrap_or_default();
            let mut v = view(
                &page,
                roles,
                Some(verified(&page, &name, stars_of(&page, crate::enrolment::ServiceKind::BankId))),
                "success",
            );
            v.lift = user.map(|u| (u.id, format!("bankid:{id}")));
            v
        }
        FlowState::Pending => {
            let mut v = view(&page, roles, Some(i.t(flow.message_key).to_string()), "notice");
            v.show_form = false;
            v.refresh = true;
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
) -> Result<Option<(crate::enrolment::ServiceKind, crate::clock::Timestamp)>, WebError> {
    use crate::enrolment::ServiceKind;
    let verified = match proof.split_once(':') {
        Some(("sms", id)) => match page.state.sms.as_deref() {
            Some(sms) => sms
                .view(id, binding(page), user_id)
                .await
                .map_err(|e| page.fail(e))?
                .filter(|v| v.purpose == crate::identity::sms::SmsPurpose::Verify)
                .filter(|v| v.state == crate::identity::sms::ChallengeState::Verified)
                .and_then(|v| v.finished_at)
                .map(|at| (ServiceKind::Sms, at)),
            None => None,
        },
        Some(("bankid", id)) => match page.state.bankid.as_deref() {
            Some(flows) => flows
                .poll(id, binding(page), &page.meta)
                .await
                .map_err(|e| page.fail(e))?
                .filter(|f| f.purpose == crate::identity::bankid::FlowPurpose::Caller)
                .filter(|f| f.state == FlowState::Complete && f.user_id.as_deref() == Some(user_id))
                .and_then(|f| f.finished_at)
                .map(|at| (ServiceKind::BankId, at)),
            None => None,
        },
        _ => None,
    };
    Ok(verified)
}

/// The service desk lets a verified caller's new services count toward a reset at once: only
/// with a verification made minutes ago, with a service that is not itself cooling off (else an
/// attacker who enrolled their own phone proves themselves with it), and never for oneself.
pub async fn lift_cooldown(page: Page, form: CsrfForm<LiftForm>) -> Result<HttpResponse, WebError> {
    let session = match guard(&page, "/admin/verify", Roles::can_view_users) {
        Guarded::Yes(s) => s,
        Guarded::No(res) => return Ok(res),
    };
    let form = form.0;
    let i = page.i18n();
    let refuse = |key: &str| html(&page, view(&page, session.user.roles, Some(i.t(key).to_string()), "error"));
    let proof = caller_verified(&page, &form.user, &form.proof).await?;
    let actor = crate::enrolment::Owner { user_id: &session.user.user_id, account_name: &session.user.account_name };
    let lift =
        page.state.enrolments.lift_cooldown(actor, &form.user, proof, &page.meta).await.map_err(|e| page.fail(e))?;
    match lift {
        Lift::Lifted(n) => {
            let message = i.f("admin.cooldown_lifted", &[("n", &n.to_string())]);
            html(&page, view(&page, session.user.roles, Some(message), "success"))
        }
        Lift::OwnAccount => refuse("admin.lift_self"),
        Lift::NotVerified => refuse("admin.not_verified"),
        Lift::ProofCooling => refuse("admin.lift_cooling_proof"),
    }
}
