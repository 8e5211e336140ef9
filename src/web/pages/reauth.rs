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
use crate::web::{Page, WebError};

#[derive(Deserialize)]
pub struct Back {
    #[serde(default)]
    back: String,
}

use super::local_path as safe_back;

pub async fn show(page: Page, q: web::Query<Back>) -> Result<HttpResponse, WebError> {
    if page.session().is_none() {
        return Ok(see_other("/login").finish());
    }
    html(&page, AdminReauthView { l: layout(&page, "/reauth"), back: safe_back(&q.back), error: None })
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
        return Ok(see_other("/login").finish());
    };
    let form = form.0;
    let password = SecretString::from(form.password);
    let i = page.i18n();
    let error = match page.state.login.reauthenticate(&session.user, &password, &page.meta).await {
        Ok(Reauth::Confirmed(roles)) => {
            page.state.sessions.reauthenticated(token, roles).await.map_err(|e| page.fail(e))?;
            return Ok(see_other(safe_back(&form.back)).finish());
        }
        Ok(Reauth::AccountUnusable) => {
            page.state.sessions.end(token).await.map_err(|e| page.fail(e))?;
            return Ok(see_other("/login").finish());
        }
        Ok(Reauth::Refused(Refusal::Throttled { minutes })) => {
            i.f("login.error.throttled", &[("minutes", &minutes.to_string())])
        }
        Ok(Reauth::Refused(_)) => i.t("login.error.invalid").to_string(),
        Err(LoginError::Directory(e)) => {
            tracing::error!(reference = %page.meta.request_id, error = %e, "re-authentication: directory unavailable");
            format!("{} {} {}", i.t("login.error.directory_down"), i.t("error.reference"), page.meta.request_id)
        }
        Err(LoginError::Storage(e)) => return Err(page.fail(e)),
    };
    let view = AdminReauthView { l: layout(&page, "/reauth"), back: safe_back(&form.back), error: Some(error) };
    html(&page, view)
}
