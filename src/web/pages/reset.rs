//! Forgotten password: `/reset`. Verify with enrolled services until the stars are enough, then
//! choose a new password or only unlock the account.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use tokio::time::Instant;

use super::{html, layout, see_other};
use crate::enrolment::ServiceKind;
use crate::identity::bankid::{FlowError, FlowPurpose, FlowUser, Start};
use crate::identity::sms::ChallengeState;
use crate::reset::codes::{self, CodeChecked, CodeSent};
use crate::reset::{Finish, ResetError, ResetOutcome, ResetState, ResetView, Rule};
use crate::web::csrf::{CsrfField, CsrfForm};
use crate::web::pages::bankid::CsrfOnly;
use crate::web::pages::sms::CodeForm;
use crate::web::views::{PasswordView, ResetFlowView, ResetStartView};
use crate::web::{Notice, Page, WebError};

/// Answers before the user has proved anything take at least the configured time.
async fn floor(page: &Page, started: Instant) {
    tokio::time::sleep_until(started + Duration::from_millis(page.state.reset.settings().min_response_ms)).await;
}

fn fail_reset(page: &Page, e: ResetError) -> WebError {
    match e {
        ResetError::Storage(e) => page.fail(e),
        ResetError::Directory(e) => page.fail(e),
    }
}

pub async fn show_start(page: Page) -> Result<HttpResponse, WebError> {
    let notice = page.notice();
    let error = notice.as_ref().map(|n| n.text(&page));
    // The name as typed stays in the field; only a missing one marks the field itself.
    let username = notice.as_ref().and_then(|n| n.get("u")).unwrap_or_default().to_string();
    let invalid = error.is_some() && username.is_empty();
    let view =
        ResetStartView { l: layout(&page, "/reset"), bankid: page.state.bankid.is_some(), error, username, invalid };
    html(&page, view)
}

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
}

impl CsrfField for StartForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn start(page: Page, form: CsrfForm<StartForm>) -> Result<HttpResponse, WebError> {
    let started = Instant::now();
    if form.0.username.trim().is_empty() {
        return Ok(page.redirect_with("/reset", &Notice::error("reset.error.no_username")));
    }
    let typed = form.0.username.trim();
    if let Some(notice) = too_many_starts(&page).await? {
        floor(&page, started).await;
        return Ok(page.redirect_with("/reset", &notice.field("u", typed)));
    }
    let result = page.state.reset.start(&form.0.username, page.binding(), &page.meta).await;
    floor(&page, started).await;
    match result {
        Ok(id) => Ok(see_other(&format!("/reset/{id}")).finish()),
        Err(ResetError::Directory(e)) => {
            tracing::error!(reference = %page.meta.request_id, error = %e, "reset: directory unavailable");
            let notice = Notice::error("login.error.directory_down").reference(&page.meta.request_id);
            Ok(page.redirect_with("/reset", &notice.field("u", typed)))
        }
        Err(e) => Err(fail_reset(&page, e)),
    }
}

/// The message when this address has started too many flows lately (counted here otherwise).
pub async fn too_many_starts(page: &Page) -> Result<Option<Notice>, WebError> {
    let wait = page.state.reset.admit_start(&page.meta).await.map_err(|e| page.fail(e))?;
    Ok(wait.map(|minutes| Notice::error("reset.error.too_many_starts").arg("minutes", minutes)))
}

/// Starting with BankID: no username; the enrolled personal number finds the account.
pub async fn start_bankid(page: Page, _form: CsrfForm<CsrfOnly>) -> Result<HttpResponse, WebError> {
    if let Some(notice) = too_many_starts(&page).await? {
        return Ok(page.redirect_with("/reset", &notice));
    }
    bankid_step(&page, None).await
}

async fn bankid_step(page: &Page, view: Option<&ResetView>) -> Result<HttpResponse, WebError> {
    let Some(flows) = page.state.bankid.as_deref() else {
        return Err(page.not_found());
    };
    let (purpose, user, context) = match view {
        None => (FlowPurpose::Reset, None, None),
        Some(v) => (
            FlowPurpose::ResetStep,
            v.user_id.as_deref().map(|u| FlowUser { user_id: u, account_name: &v.typed_name, password_set: None }),
            Some(v.id.as_str()),
        ),
    };
    // The same text whether or not a name was typed, or matches anyone: a name that matches
    // no account may be a password, and is not sent to BankID or shown on a phone.
    let text = super::bankid::visible_text(page, purpose, None);
    let back = match view {
        Some(v) => format!("/reset/{}", v.id),
        None => "/reset".to_string(),
    };
    match flows.start(Start { purpose, user, required: None, context }, page.binding(), text, &page.meta).await {
        Ok(flow) => Ok(see_other(&format!("/bankid/{}", flow.id)).finish()),
        Err(FlowError::BankId(e)) => {
            tracing::warn!(reference = %page.meta.request_id, error = %e, "reset: BankID order refused");
            let notice = Notice::error(crate::identity::bankid::error_key(&e)).reference(&page.meta.request_id);
            Ok(page.redirect_with(&back, &notice))
        }
        Err(FlowError::TooManyOrders { minutes }) => {
            Ok(page.redirect_with(&back, &Notice::error("bankid.too_many_orders").arg("minutes", minutes)))
        }
        Err(e) => Err(page.fail(e)),
    }
}

/// The flow, if this browser started it; a BankID step that completed is counted here.
async fn load(page: &Page, id: &str) -> Result<ResetView, WebError> {
    let reset = &page.state.reset;
    let not_found = || page.not_found();
    let Some(view) = reset.view(id, page.binding(), &page.meta).await.map_err(|e| page.fail(e))? else {
        if reset.started_elsewhere(id, page.binding()).await.map_err(|e| page.fail(e))? {
            return Err(WebError::other_browser(page.lang, &page.meta.request_id).framed(page.frame()));
        }
        return Err(not_found());
    };
    if view.state.is_open()
        && !view.verified.contains(&ServiceKind::BankId)
        && reset.bankid_step_done(id).await.map_err(|e| page.fail(e))?
    {
        reset.verified(&view, ServiceKind::BankId, &page.meta).await.map_err(|e| page.fail(e))?;
        return reset.view(id, page.binding(), &page.meta).await.map_err(|e| page.fail(e))?.ok_or_else(not_found);
    }
    Ok(view)
}

fn is_open(view: &ResetView) -> bool {
    view.state.is_open()
}

async fn flow_page(
    page: &Page,
    view: &ResetView,
    message: Option<String>,
    class: &'static str,
) -> Result<HttpResponse, WebError> {
    let i = page.i18n();
    let open = view.state.is_open();
    // AD was written (or is being written): the way on is to log in.
    let written = view.state.finished().is_some() || view.state == ResetState::Writing;
    let (message, class) = match view.state {
        _ if message.is_some() => (message, class),
        ResetState::Done(Finish::Unlock) => (Some(i.t("reset.done.unlock").to_string()), "success"),
        ResetState::Done(Finish::Reset) => (Some(i.t("reset.done.reset").to_string()), "success"),
        ResetState::Failed => (Some(i.t("reset.error.failed").to_string()), "error"),
        ResetState::Expired => (Some(i.t("reset.error.expired").to_string()), "error"),
        ResetState::Superseded => (Some(i.t("reset.error.superseded").to_string()), "error"),
        ResetState::Writing => (Some(i.t("reset.writing").to_string()), "notice"),
        ResetState::Identifying | ResetState::Verified => (None, ""),
    };
    let mut sms_open = false;
    if let (Some(challenge), Some(sms)) = (&view.sms_challenge, page.state.sms.as_deref()) {
        let sms_view = sms
            .view(challenge, page.binding(), &page.state.reset.code_key(view), true)
            .await
            .map_err(|e| page.fail(e))?;
        sms_open =
            sms_view.is_some_and(|s| s.state == ChallengeState::Pending) && !view.verified.contains(&ServiceKind::Sms);
    }
    let services = &page.state.services;
    let next = view
        .next
        .iter()
        .filter_map(|k| services.iter().find(|s| s.kind == *k))
        .map(|s| {
            let button = if s.kind == ServiceKind::Sms { "reset.send_code" } else { "reset.use_bankid" };
            (s.kind.id(), format!("service.{}.name", s.kind.id()), s.stars, button)
        })
        .collect();
    let stars_text =
        i.f("home.stars_of", &[("collected", &view.collected.to_string()), ("needed", &view.needed.to_string())]);
    let flow_view = ResetFlowView {
        l: layout(page, "/reset"),
        id: &view.id,
        state: view.state.stored().0,
        message,
        message_class: class,
        open,
        row: (0..view.needed).map(|n| n < view.collected).collect(),
        stars_text,
        enough: view.enough,
        not_enough_enrolled: view.not_enough_enrolled,
        cooling: view.cooling.iter().map(|k| i.t(&format!("service.{}.name", k.id())).to_string()).collect(),
        cooling_hours: page.state.settings.enrolment.cooldown_hours.to_string(),
        changed_since: view
            .changed_since
            .iter()
            .map(|k| i.t(&format!("service.{}.name", k.id())).to_string())
            .collect(),
        protected: view.protected,
        closed: view.closed,
        service_desk: &page.state.settings.portal.service_desk,
        lead_key: if view.verified.is_empty() { "reset.verify_lead" } else { "reset.verify_more" },
        sms_open,
        next,
        next_href: if written { "/login" } else { "/reset" },
        next_key: if written { "reset.to_login" } else { "reset.start_over" },
    };
    html(page, flow_view)
}

/// What a POST in the flow came to, carried to the flow's page it redirects to (post/redirect/
/// get: a reload neither types a code again nor sends another text). Only a message choice: the
/// flow's state is kept server-side.
#[derive(Deserialize, Default)]
pub struct StepOutcome {
    #[serde(default)]
    m: String,
    #[serde(default)]
    n: Option<u32>,
}

impl StepOutcome {
    fn message(&self, page: &Page) -> Option<(String, &'static str)> {
        let i = page.i18n();
        let n = self.n.unwrap_or(0).min(10_000).to_string();
        Some(match self.m.as_str() {
            "sent" => (i.t("reset.sms_sent").to_string(), "notice"),
            // Said to everyone alike: what to do when no text comes (the user's texts may have
            // been used up by a stranger typing their name; a first proof gives them their own).
            "sent-maybe" => {
                let otherwise = if page.state.bankid.is_some() { "reset.sms_none_bankid" } else { "reset.sms_none" };
                (format!("{} {}", i.t("reset.sms_sent_maybe"), i.t(otherwise)), "notice")
            }
            "wait" => (i.f("sms.resend_wait", &[("seconds", &n)]), "error"),
            "limited" => (i.f("sms.error.limited", &[("minutes", &n)]), "error"),
            "gateway" => (i.t("sms.error.gateway").to_string(), "error"),
            "wrong" => (i.f("sms.error.wrong", &[("left", &n)]), "error"),
            "malformed" => (i.t("sms.error.malformed").to_string(), "error"),
            "expired" => (i.t("sms.error.expired").to_string(), "error"),
            "too-many" => (i.t("sms.error.too_many").to_string(), "error"),
            "day" => (i.t("sms.error.day_used_up").to_string(), "error"),
            _ => return None,
        })
    }

    fn at(id: &str, m: &str, n: Option<u32>) -> HttpResponse {
        let to = match n {
            Some(n) => format!("/reset/{id}?m={m}&n={n}"),
            None => format!("/reset/{id}?m={m}"),
        };
        see_other(&to).finish()
    }
}

pub async fn show(page: Page, id: web::Path<String>, q: web::Query<StepOutcome>) -> Result<HttpResponse, WebError> {
    let view = load(&page, &id).await?;
    let step = q.message(&page).filter(|_| is_open(&view));
    match step.or_else(|| page.notice_text()) {
        Some((message, class)) => flow_page(&page, &view, Some(message), class).await,
        None => flow_page(&page, &view, None, "").await,
    }
}

pub async fn use_bankid(
    page: Page,
    id: web::Path<String>,
    _form: CsrfForm<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    let view = load(&page, &id).await?;
    if !is_open(&view) || !view.next.contains(&ServiceKind::BankId) || view.enough {
        return Ok(see_other(&format!("/reset/{id}")).finish());
    }
    bankid_step(&page, Some(&view)).await
}

/// Sends a code to the enrolled number, or (no user, no number) goes through the same motions.
pub async fn send_code(page: Page, id: web::Path<String>, _form: CsrfForm<CsrfOnly>) -> Result<HttpResponse, WebError> {
    let started = Instant::now();
    let view = load(&page, &id).await?;
    let Some(sms) = page.state.sms.as_deref() else {
        return Err(page.not_found());
    };
    if !is_open(&view) || !view.next.contains(&ServiceKind::Sms) || view.enough {
        return Ok(see_other(&format!("/reset/{id}")).finish());
    }
    let minutes = (sms.limits().code_lifetime / 60).max(1).to_string();
    let text = page.i18n().f("sms.reset_text", &[("portal", &page.state.settings.portal.name), ("minutes", &minutes)]);
    let sent = codes::send(&page.state.reset, sms, &view, page.binding(), &text, &page.meta).await;
    let sent = sent.map_err(|e| page.fail(e))?;
    floor(&page, started).await;
    Ok(match sent {
        // Before any verification nobody is told whether a text went anywhere.
        CodeSent::Sent { known } => StepOutcome::at(&view.id, if known { "sent" } else { "sent-maybe" }, None),
        CodeSent::Wait { seconds } => StepOutcome::at(&view.id, "wait", Some(seconds as u32)),
        CodeSent::Limited { minutes } => StepOutcome::at(&view.id, "limited", Some(minutes as u32)),
        CodeSent::Unavailable => StepOutcome::at(&view.id, "gateway", None),
    })
}

pub async fn check_code(page: Page, id: web::Path<String>, form: CsrfForm<CodeForm>) -> Result<HttpResponse, WebError> {
    let started = Instant::now();
    let view = load(&page, &id).await?;
    let (true, Some(sms)) = (is_open(&view), page.state.sms.as_deref()) else {
        return Ok(see_other(&format!("/reset/{id}")).finish());
    };
    let checked = codes::check(&page.state.reset, sms, &view, page.binding(), &form.0.code, &page.meta).await;
    // Before a first proof a real user's code is checked against their enrolled number (a read a
    // decoy's does not need): the answer takes as long either way.
    if view.verified.is_empty() {
        floor(&page, started).await;
    }
    Ok(match checked.map_err(|e| page.fail(e))? {
        None | Some(CodeChecked::Counted) => see_other(&format!("/reset/{id}")).finish(),
        Some(CodeChecked::Wrong { attempts_left }) => StepOutcome::at(&id, "wrong", Some(attempts_left as u32)),
        Some(CodeChecked::Malformed) => StepOutcome::at(&id, "malformed", None),
        Some(CodeChecked::Expired) => StepOutcome::at(&id, "expired", None),
        Some(CodeChecked::TooMany) => StepOutcome::at(&id, "too-many", None),
        Some(CodeChecked::DayUsedUp) => StepOutcome::at(&id, "day", None),
    })
}

pub async fn show_password(page: Page, id: web::Path<String>) -> Result<HttpResponse, WebError> {
    let view = load(&page, &id).await?;
    let Some((rules, _)) = page.state.reset.rules(&view, &page.meta).await.map_err(|e| fail_reset(&page, e))? else {
        return Ok(see_other(&format!("/reset/{}", view.id)).finish());
    };
    // A refused password redirected here with its message and the rules it broke.
    let notice = page.notice();
    let marked = notice.as_ref().and_then(|n| n.get("broken")).unwrap_or_default();
    let broken: Vec<Rule> = rules.rules.iter().filter(|r| marked.split(',').any(|m| m == r.id())).cloned().collect();
    let (listed, json) = super::listed_rules(&page, &rules.rules, &broken);
    let password_view = PasswordView {
        l: layout(&page, "/reset"),
        js: page.state.assets.url("password.js"),
        action: format!("/reset/{}/password", view.id),
        error: notice.map(|n| n.text(&page)),
        rules: listed,
        rules_json: json,
    };
    html(&page, password_view)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
}

impl CsrfField for PasswordForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn set_password(
    page: Page,
    id: web::Path<String>,
    form: CsrfForm<PasswordForm>,
) -> Result<HttpResponse, WebError> {
    let view = load(&page, &id).await?;
    let PasswordForm { password, repeat, .. } = form.0;
    let (password, repeat) = (SecretString::from(password), SecretString::from(repeat));
    let outcome = page.state.reset.set_password(&view, &password, &repeat, &page.meta).await;
    finish(&page, &view, outcome).await
}

pub async fn unlock(page: Page, id: web::Path<String>, _form: CsrfForm<CsrfOnly>) -> Result<HttpResponse, WebError> {
    let view = load(&page, &id).await?;
    let outcome = page.state.reset.unlock(&view, &page.meta).await;
    finish(&page, &view, outcome).await
}

/// Where a password or unlock POST leads (post/redirect/get): the flow's page, which shows how
/// it ended from the flow's state, or the password page again with what was wrong.
async fn finish(
    page: &Page,
    view: &ResetView,
    outcome: Result<ResetOutcome, ResetError>,
) -> Result<HttpResponse, WebError> {
    let flow = format!("/reset/{}", view.id);
    let password = format!("/reset/{}/password", view.id);
    match outcome {
        // Said by the redirect, not only by the flow's stored state: AD has the change even if
        // the flow could not be marked done.
        Ok(ResetOutcome::Done(Finish::Reset)) => Ok(page.redirect_with(&flow, &Notice::success("reset.done.reset"))),
        Ok(ResetOutcome::Done(Finish::Unlock)) => Ok(page.redirect_with(&flow, &Notice::success("reset.done.unlock"))),
        Ok(ResetOutcome::NotAllowed) => Ok(see_other(&flow).finish()),
        Ok(ResetOutcome::Refused(broken)) => {
            let ids: Vec<&str> = broken.iter().map(Rule::id).collect();
            Ok(page.redirect_with(&password, &Notice::error("password.error.rules").field("broken", ids.join(","))))
        }
        Ok(ResetOutcome::AdRefused(refusal)) => {
            Ok(page.redirect_with(&password, &Notice::error(refusal.message_key())))
        }
        Ok(ResetOutcome::DailyLimit) => Ok(page.redirect_with(&flow, &Notice::error("reset.error.daily_limit"))),
        Ok(ResetOutcome::Unconfirmed) => {
            let notice = Notice::error("reset.error.unconfirmed").reference(&page.meta.request_id);
            Ok(page.redirect_with(&password, &notice))
        }
        Ok(ResetOutcome::UnlockUnconfirmed) => {
            let notice = Notice::error("reset.error.unlock_unconfirmed").reference(&page.meta.request_id);
            Ok(page.redirect_with(&flow, &notice))
        }
        Err(ResetError::Directory(e)) => {
            tracing::error!(reference = %page.meta.request_id, error = %e, "reset: directory unavailable");
            let notice = Notice::error("login.error.directory_down").reference(&page.meta.request_id);
            Ok(page.redirect_with(&flow, &notice))
        }
        Err(e) => Err(fail_reset(page, e)),
    }
}
