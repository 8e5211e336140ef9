//! `GET/POST /login` and `POST /logout`.

use actix_web::HttpResponse;
use actix_web::cookie::{Cookie, SameSite};
use secrecy::SecretString;
use serde::Deserialize;

use super::{html, layout, see_other};
use crate::audit::{AuditEvent, EventKind, Outcome};
use crate::login::{LoginError, LoginOutcome, Refusal};
use crate::session::{LoggedInWith, SessionUser};
use crate::web::context::Auth;
use crate::web::csrf::{CsrfField, CsrfForm, csrf_cookie};
use crate::web::views::LoginView;
use crate::web::{Notice, Page, Tone, WebError};

/// To the login page for a session that ran out: it says so (and the cookie goes).
pub fn expired(page: &Page) -> HttpResponse {
    let minutes = page.state.settings.session.idle_timeout_minutes;
    let notice = Notice::info("login.notice.expired").arg("minutes", minutes);
    see_other(&page.with_notice_for("/login", &notice, page.binding())).cookie(clear_session_cookie(page)).finish()
}

pub async fn show(page: Page) -> Result<HttpResponse, WebError> {
    match page.auth {
        Auth::LoggedIn(_) => return Ok(see_other("/").finish()),
        Auth::Expired => return Ok(expired(&page)),
        Auth::Anonymous => {}
    }
    // What a redirect here had to say, signed for this browser: a refused login (or BankID
    // login) with the name typed, or why the session ended.
    let note = page.notice();
    let (error, notice) = match &note {
        Some(n) if n.tone() == Tone::Error => (Some(n.text(&page)), None),
        Some(n) => (None, Some(n.text(&page))),
        None => (None, None),
    };
    let view = LoginView {
        bankid: page.state.bankid.is_some(),
        l: layout(&page, "/login"),
        username: note.as_ref().and_then(|n| n.get("u")).unwrap_or_default(),
        error,
        notice: notice.as_deref(),
    };
    html(&page, view)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

impl CsrfField for LoginForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn submit(page: Page, form: CsrfForm<LoginForm>) -> Result<HttpResponse, WebError> {
    let LoginForm { username, password, .. } = form.0;
    // Nothing to try: said at once, and counted nowhere (an empty password is no failed logon).
    if username.trim().is_empty() {
        return Ok(page.redirect_with("/login", &Notice::error("login.error.no_username")));
    }
    if password.is_empty() {
        return Ok(page.redirect_with("/login", &Notice::error("login.error.no_password").field("u", username.trim())));
    }
    let password = SecretString::from(password);
    let refused = match page.state.login.login(&username, &password, &page.meta).await {
        Ok(LoginOutcome::Success(user)) => return start_session(&page, user, LoggedInWith::Password).await,
        Ok(LoginOutcome::Refused(Refusal::InvalidCredentials)) => Notice::error("login.error.invalid"),
        Ok(LoginOutcome::Refused(Refusal::LastAttempt { minutes })) => {
            Notice::error("login.error.invalid").also("login.error.last_attempt").arg("minutes", minutes)
        }
        Ok(LoginOutcome::Refused(Refusal::Throttled { minutes })) => {
            Notice::error("login.error.throttled").arg("minutes", minutes)
        }
        Ok(LoginOutcome::Refused(Refusal::Directory(refusal))) => {
            use crate::directory::BindRefusal;
            let why = match refusal {
                BindRefusal::MustChangePassword => Some("login.error.must_change"),
                BindRefusal::PasswordExpired => Some("login.error.password_expired"),
                _ => None,
            };
            // Sealed for this browser, like every message after a redirect: a link cannot put
            // "your password has expired" and a name on the change page.
            if let Some(why) = why {
                return Ok(page.redirect_with("/change", &Notice::info(why).field("u", username.trim())));
            }
            Notice::error(refusal.message_key())
        }
        Err(LoginError::Directory(e)) => {
            tracing::error!(reference = %page.meta.request_id, error = %e, "login: directory unavailable");
            Notice::error("login.error.directory_down").reference(&page.meta.request_id)
        }
        Err(LoginError::Storage(e)) => return Err(page.fail(e)),
    };
    // Post/redirect/get: a reload shows the message again and tries no password.
    Ok(page.redirect_with("/login", &refused.field("u", username.trim())))
}

/// Starts a session for a user who has just proved who they are: a new session id and a new CSRF
/// cookie, whatever the browser had before.
pub async fn start_session(page: &Page, user: SessionUser, by: LoggedInWith) -> Result<HttpResponse, WebError> {
    let sessions = &page.state.sessions;
    let token = sessions.start(user, page.session_token.as_deref(), by).await.map_err(|e| page.fail(e))?;
    let secure = page.state.secure_cookies;
    let rotated_csrf =
        csrf_cookie(page.state.cookies.csrf, crate::clock::Random::token(&crate::clock::OsRandom), secure);
    Ok(see_other("/").cookie(session_cookie(page.state.cookies.session, token, secure)).cookie(rotated_csrf).finish())
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

impl CsrfField for LogoutForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn logout(page: Page, _form: CsrfForm<LogoutForm>) -> Result<HttpResponse, WebError> {
    if let (Some(token), Auth::LoggedIn(session)) = (&page.session_token, &page.auth) {
        page.state.sessions.end(token).await.map_err(|e| page.fail(e))?;
        let event = AuditEvent::new(EventKind::Logout, Outcome::Success)
            .username(&session.user.account_name)
            .user_id(&session.user.user_id);
        page.state.auditor.record(&page.meta, event).await.map_err(|e| page.fail(e))?;
    }
    // A new CSRF cookie too: whoever uses this browser next cannot go on with what was bound to
    // it (an order, a flow, a form) while the session lasted.
    let seed = page.state.random.token();
    let rotated_csrf = csrf_cookie(page.state.cookies.csrf, seed.clone(), page.state.secure_cookies);
    let to = page.with_notice_for("/login", &Notice::info("login.notice.logged_out"), &seed);
    Ok(see_other(&to).cookie(clear_session_cookie(&page)).cookie(rotated_csrf).finish())
}

/// The session cookie for a new or renewed session (`page`'s cookie names and security).
pub(super) fn renewed_session_cookie(page: &Page, token: String) -> Cookie<'static> {
    session_cookie(page.state.cookies.session, token, page.state.secure_cookies)
}

fn session_cookie(name: &'static str, token: String, secure: bool) -> Cookie<'static> {
    Cookie::build(name, token).path("/").http_only(true).secure(secure).same_site(SameSite::Lax).finish()
}

fn clear_session_cookie(page: &Page) -> Cookie<'static> {
    let mut c = session_cookie(page.state.cookies.session, String::new(), page.state.secure_cookies);
    c.make_removal();
    c
}
