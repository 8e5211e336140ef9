//! `/change`: change a password knowing the current one, logged in or not.

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use super::{html, layout};
use crate::change::{ChangeError, ChangeRefusal, ChangeRequest, Changed};
use crate::login::Refusal;
use crate::reset::{Rule, Rules};
use crate::web::csrf::{CsrfField, CsrfForm};
use crate::web::views::ChangeView;
use crate::web::{Notice, Page, WebError};

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
    let user_id = match (page.session(), field("proved")) {
        (Some(s), _) => Some(s.user.user_id.as_str()),
        (None, "") => None,
        (None, proved) => Some(proved),
    };
    let rules = page.state.change.form_rules(user_id).await.map_err(|e| page.fail(e))?;
    let broken: Vec<Rule> =
        rules.rules.iter().filter(|r| field("broken").split(',').any(|b| b == r.id())).cloned().collect();
    // A login that found the password expired or to be changed sent its word (a notice);
    // a refused change, its error.
    let (notice, error) = match &refused {
        Some(n) if n.tone() == crate::web::Tone::Notice => (Some(n.text(&page)), None),
        Some(n) => (None, Some(n.text(&page))),
        None => (None, None),
    };
    let seed = page.binding();
    let done = !q.done.is_empty()
        && !seed.is_empty()
        && page.state.csrf.verify_receipt(seed, CHANGED, &q.done, page.state.clock.now(), RECEIPT_SECONDS);
    render(&page, &rules, &broken, field("u"), notice, error, done)
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
        // The logged-in form (it has no username) posted after its session ended.
        None if form.username.trim().is_empty() && page.session_token.is_some() => {
            return Ok(super::log_in_again(&page));
        }
        None => form.username.trim().to_string(),
    };
    // Nothing to try: said at once, and counted nowhere.
    let missing = if typed.is_empty() {
        Some("login.error.no_username")
    } else if form.current.is_empty() {
        Some("change.error.no_current")
    } else {
        None
    };
    if let Some(key) = missing {
        return Ok(page.redirect_with("/change", &Notice::error(key).field("u", &typed)));
    }
    let (current, new, repeat) =
        (SecretString::from(form.current), SecretString::from(form.password), SecretString::from(form.repeat));
    // Post/redirect/get: every refusal goes back to the form with its message, so a reload
    // sends no password to AD again.
    let refuse = |notice: Notice| Ok(page.redirect_with("/change", &notice.field("u", &typed)));
    let request = ChangeRequest {
        typed: &typed,
        current: &current,
        new: &new,
        repeat: &repeat,
        keep_session: page.session_token.as_deref().filter(|_| page.session().is_some()),
    };
    // The account whose current password was proved in this browser: the form may show its rules.
    let proved = |notice: Notice, id: &str| if page.session().is_none() { notice.field("proved", id) } else { notice };
    let notice = match page.state.change.change(request, &page.meta).await {
        Ok(Ok(Changed { session })) => {
            // Post/redirect/get: a reload shows the outcome again instead of sending the old
            // password once more (which AD would count as a failed logon).
            let receipt = page.state.csrf.receipt(page.binding(), CHANGED, page.state.clock.now());
            let mut res = super::see_other(&format!("/change?done={receipt}"));
            if let Some(token) = session {
                res.cookie(super::login::renewed_session_cookie(&page, token));
            }
            return Ok(res.finish());
        }
        Ok(Err(ChangeRefusal::Current(refusal))) => match refusal {
            Refusal::InvalidCredentials => Notice::error("change.error.current"),
            Refusal::LastAttempt { minutes } => {
                Notice::error("change.error.current").also("login.error.last_attempt").arg("minutes", minutes)
            }
            Refusal::Throttled { minutes } => Notice::error("login.error.throttled").arg("minutes", minutes),
            Refusal::Directory(r) => Notice::error(r.message_key()),
        },
        Ok(Err(ChangeRefusal::Rules { broken, proved: id })) => {
            let ids: Vec<&str> = broken.iter().map(|r| r.id()).collect();
            proved(Notice::error("password.error.rules").field("broken", ids.join(",")), &id)
        }
        Ok(Err(ChangeRefusal::Directory { refusal, proved: id })) => proved(Notice::error(refusal.message_key()), &id),
        Ok(Err(ChangeRefusal::Unconfirmed { session })) => {
            let notice = Notice::error("change.error.unconfirmed").reference(&page.meta.request_id);
            let mut res = page.redirect_with("/change", &notice.field("u", &typed));
            if let Some(token) = session {
                res.add_cookie(&super::login::renewed_session_cookie(&page, token)).map_err(|e| page.fail(e))?;
            }
            return Ok(res);
        }
        Err(ChangeError::Directory(e)) => {
            tracing::error!(reference = %page.meta.request_id, error = %e, "change: directory unavailable");
            Notice::error("login.error.directory_down").reference(&page.meta.request_id)
        }
        Err(ChangeError::Storage(e)) => return Err(page.fail(e)),
    };
    refuse(notice)
}
