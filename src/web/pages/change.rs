//! `/change`: change a password knowing the current one, logged in or not.

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use super::{html, layout};
use crate::audit::{AuditEvent, EventKind, Outcome};
use crate::directory::DirectoryUser;
use crate::login::{ChangeOutcome, LoginError, Refusal};
use crate::mail::Notice as MailNotice;
use crate::reset::{Rule, Rules};
use crate::web::csrf::{CsrfField, CsrfForm};
use crate::web::views::ChangeView;
use crate::web::{Notice, Page, WebError};

/// The rules for the user, or (name not known yet) the domain's.
async fn rules(page: &Page, user: Option<&DirectoryUser>) -> Result<Rules, WebError> {
    let directory_error = |e| page.fail(e);
    match user {
        Some(u) => page.state.reset.password_rules().for_user(u).await.map_err(directory_error),
        None => {
            let policy = page.state.login.domain_policy().await.map_err(directory_error)?;
            let p = &page.state.settings.password;
            let local = crate::reset::LocalRules {
                min_length: p.min_length,
                banned_words: p.banned_words.clone(),
                check_common: p.check_common,
            };
            Ok(Rules::new(&policy, &local, "", ""))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn render(
    page: &Page,
    rules: &Rules,
    broken: &[Rule],
    username: &str,
    notice: Option<String>,
    error: Option<String>,
    done: bool,
) -> Result<HttpResponse, WebError> {
    let (listed, json) = super::listed_rules(page, &rules.rules, broken);
    let view = ChangeView {
        l: layout(page, "/change"),
        js: page.state.assets.url("password.js"),
        ask_username: page.session().is_none(),
        username,
        notice,
        error,
        rules: listed,
        rules_json: json,
        done,
        next: if page.session().is_some() { "/" } else { "/login" },
    };
    html(page, view)
}

#[derive(Deserialize)]
pub struct Query {
    #[serde(default)]
    u: String,
    #[serde(default)]
    why: String,
    /// After a change: the receipt the POST redirected with (see [`CHANGED`]).
    #[serde(default)]
    done: String,
}

/// What a change's receipt stands for, and how long the page shows it.
const CHANGED: &str = "password-changed";
const RECEIPT_SECONDS: i64 = 600;

pub async fn show(page: Page, q: web::Query<Query>) -> Result<HttpResponse, WebError> {
    // A refused change redirected here with its message, the name typed, the rules it broke,
    // and (once the current password was proved) the account whose rules apply.
    let refused = page.notice();
    let field = |name| refused.as_ref().and_then(|n| n.get(name)).unwrap_or_default();
    let user = match (page.session(), field("proved")) {
        (Some(s), _) => page.state.login.user(&s.user.user_id).await.map_err(|e| page.fail(e))?,
        (None, "") => None,
        (None, proved) => page.state.login.user(proved).await.map_err(|e| page.fail(e))?,
    };
    let rules = rules(&page, user.as_ref()).await?;
    let broken: Vec<Rule> =
        rules.rules.iter().filter(|r| field("broken").split(',').any(|b| b == r.id())).cloned().collect();
    let notice = match q.why.as_str() {
        "expired" => Some(page.i18n().t("login.error.password_expired").to_string()),
        "must-change" => Some(page.i18n().t("login.error.must_change").to_string()),
        _ => None,
    };
    let seed = page.binding();
    let done = !q.done.is_empty()
        && !seed.is_empty()
        && page.state.csrf.verify_receipt(seed, CHANGED, &q.done, page.state.clock.now(), RECEIPT_SECONDS);
    let typed = if refused.is_some() { field("u") } else { q.u.as_str() };
    let error = refused.as_ref().map(|n| n.text(&page));
    render(&page, &rules, &broken, typed, notice, error, done)
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
}

impl CsrfField for ChangeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn submit(page: Page, form: CsrfForm<ChangeForm>) -> Result<HttpResponse, WebError> {
    let form = form.0;
    let typed = match page.session() {
        Some(s) => s.user.account_name.clone(),
        None => form.username.trim().to_string(),
    };
    let (current, new, repeat) =
        (SecretString::from(form.current), SecretString::from(form.password), SecretString::from(form.repeat));
    let directory_down = |e: &dyn std::fmt::Display| {
        tracing::error!(reference = %page.meta.request_id, error = %e, "change: directory unavailable");
        Notice::error("login.error.directory_down").reference(&page.meta.request_id)
    };
    // Post/redirect/get: every refusal goes back to the form with its message, so a reload
    // sends no password to AD again.
    let refuse = |notice: Notice| Ok(page.redirect_with("/change", &notice.field("u", &typed)));
    // Nothing about the account (its rules name the user and mark privileged accounts) before the
    // current password is proved: until then every answer is the domain's, throttled and timed
    // like a login.
    let proved = page.state.login.prove_current(&typed, &current, &page.meta).await;
    let (user, user_key, policy) = match proved {
        Ok(Ok(proved)) => (proved.user, proved.user_key, proved.policy),
        Ok(Err(refusal)) => {
            return refuse(match refusal {
                Refusal::InvalidCredentials => Notice::error("change.error.current"),
                Refusal::LastAttempt { minutes } => {
                    Notice::error("change.error.current").also("login.error.last_attempt").arg("minutes", minutes)
                }
                Refusal::Throttled { minutes } => Notice::error("login.error.throttled").arg("minutes", minutes),
                Refusal::Directory(r) => Notice::error(r.message_key()),
            });
        }
        Err(LoginError::Directory(e)) => return refuse(directory_down(&e)),
        Err(LoginError::Storage(e)) => return Err(page.fail(e)),
    };
    let rules =
        page.state.reset.password_rules().for_user_with(&user, policy.as_ref()).await.map_err(|e| page.fail(e))?;
    let broken = page.state.reset.password_rules().broken(&rules, &new, &repeat).await;
    // The current password was proved in this browser: the form may show this account's rules.
    let user_id = user.id.clone();
    let proved = |notice: Notice| if page.session().is_none() { notice.field("proved", &user_id) } else { notice };
    if !broken.is_empty() {
        let ids: Vec<&str> = broken.iter().map(|r| r.id()).collect();
        let event = AuditEvent::new(EventKind::PasswordChange, Outcome::Failure)
            .username(&user.account_name)
            .user_id(&user.id)
            .detail(crate::reset::rules_refused(&broken));
        page.state.auditor.record(&page.meta, event).await.map_err(|e| page.fail(e))?;
        return refuse(proved(Notice::error("password.error.rules").field("broken", ids.join(","))));
    }
    let outcome = page.state.login.change_password(user, &user_key, &current, &new, &page.meta).await;
    let notice = match outcome {
        Ok(ChangeOutcome::Changed(user)) => {
            // Every other session of the user ends; this one (if any) goes on. The password is
            // changed whatever happens next: a failure here is logged, and the page still says so
            // (an error page would invite a reload, which sends the old password to AD again).
            let this = page.session_token.as_deref().filter(|_| page.session().is_some());
            if let Err(e) = page.state.sessions.end_all_for(&user.id, this).await {
                tracing::error!(reference = %page.meta.request_id, error = %e, "change: other sessions not ended");
            }
            if let Some(mail) = &user.mail {
                let notified =
                    page.state.outbox.notify(mail, user.name_to_show(), MailNotice::PasswordChanged, &page.meta).await;
                if let Err(e) = notified {
                    tracing::error!(reference = %page.meta.request_id, error = %e, "change: notice not queued");
                }
            }
            // Post/redirect/get: a reload shows the outcome again instead of sending the old
            // password once more (which AD would count as a failed logon).
            let seed = page.binding();
            let receipt = page.state.csrf.receipt(seed, CHANGED, page.state.clock.now());
            return Ok(super::see_other(&format!("/change?done={receipt}")).finish());
        }
        Ok(ChangeOutcome::Refused(Refusal::InvalidCredentials | Refusal::LastAttempt { .. })) => {
            Notice::error("change.error.current")
        }
        Ok(ChangeOutcome::Refused(Refusal::Throttled { minutes })) => {
            Notice::error("login.error.throttled").arg("minutes", minutes)
        }
        Ok(ChangeOutcome::Refused(Refusal::Directory(r))) => Notice::error(r.message_key()),
        Ok(ChangeOutcome::AdRefused(r)) => proved(Notice::error(r.message_key())),
        Err(LoginError::Directory(e)) => directory_down(&e),
        Err(LoginError::Storage(e)) => return Err(page.fail(e)),
    };
    refuse(notice)
}
