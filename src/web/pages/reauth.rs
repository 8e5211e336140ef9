//! `/reauth`: a logged-in user gives the password again (admin pages after a while; a first
//! enrolment when the login is old). Throttled and timed like a login; the roles and the account's
//! state are read again, and a disabled or locked account loses the session.

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use super::{html, layout, see_other};
use crate::login::{LoginError, Reauth, Refusal};
use crate::web::csrf::{CsrfField, CsrfForm};
use crate::web::views::AdminReauthView;
use crate::web::{Notice, Page, WebError};

#[derive(Deserialize)]
pub struct Back {
    #[serde(default)]
    back: String,
}

use super::local_path as safe_back;

pub async fn show(page: Page, q: web::Query<Back>) -> Result<HttpResponse, WebError> {
    if page.session().is_none() {
        return Ok(super::log_in_again(&page));
    }
    let error = page.notice().map(|n| n.text(&page));
    // A link from another site does not choose where the password leads (a staff page it would
    // then open in the user's name, past the page that asks to open it from here).
    let back = if page.from_elsewhere { "/" } else { safe_back(&q.back) };
    let admin = back.starts_with("/admin");
    html(&page, AdminReauthView { l: layout(&page, "/reauth"), back, admin, error })
}

#[derive(Deserialize)]
pub struct ReauthForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    back: String,
    #[serde(default)]
    password: String,
}

impl CsrfField for ReauthForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn submit(page: Page, form: CsrfForm<ReauthForm>) -> Result<HttpResponse, WebError> {
    let (Some(session), Some(token)) = (page.session(), page.session_token.as_deref()) else {
        return Ok(super::log_in_again(&page));
    };
    let form = form.0;
    let back = serde_urlencoded::to_string([("back", safe_back(&form.back))]).unwrap_or_default();
    // Nothing to try: asked for, and no try counted (as at the login).
    if form.password.is_empty() {
        return Ok(page.redirect_with(&format!("/reauth?{back}"), &Notice::error("login.error.no_password")));
    }
    let password = SecretString::from(form.password);
    let notice = match page.state.login.reauthenticate(&session.user, &password, &page.meta).await {
        Ok(Reauth::Confirmed { roles, password_set }) => {
            let sessions = &page.state.sessions;
            let renewed =
                sessions.reauthenticated(token, roles, password_set.as_deref()).await.map_err(|e| page.fail(e))?;
            // The session goes on under a new cookie value, as after a login.
            let Some(renewed) = renewed else { return Ok(super::log_in_again(&page)) };
            let cookie = super::login::renewed_session_cookie(&page, renewed);
            return Ok(see_other(safe_back(&form.back)).cookie(cookie).finish());
        }
        Ok(Reauth::AccountUnusable) => {
            page.state.sessions.end(token).await.map_err(|e| page.fail(e))?;
            return Ok(see_other("/login").finish());
        }
        Ok(Reauth::Refused(Refusal::Throttled { minutes })) => {
            Notice::error("login.error.throttled").arg("minutes", minutes)
        }
        Ok(Reauth::Refused(_)) => Notice::error("login.error.invalid"),
        Err(LoginError::Directory(e)) => {
            tracing::error!(reference = %page.meta.request_id, error = %e, "re-authentication: directory unavailable");
            Notice::error("login.error.directory_down").reference(&page.meta.request_id)
        }
        Err(LoginError::Storage(e)) => return Err(page.fail(e)),
    };
    // Post/redirect/get: a reload shows the message and tries no password.
    Ok(page.redirect_with(&format!("/reauth?{back}"), &notice))
}
