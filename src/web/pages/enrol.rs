//! Changing enrolled services: the answers to a refused change, removing a service, and what a
//! finished proof does to the session.

use actix_web::{HttpResponse, web};

use super::see_other;
use crate::clock::Timestamp;
use crate::enrolment::{ChangeRefusal, Owner, ServiceKind};
use crate::session::Session;
use crate::web::csrf::CsrfForm;
use crate::web::notice::Notice;
use crate::web::pages::bankid::CsrfOnly;
use crate::web::{Page, WebError};

pub fn owner(session: &Session) -> Owner<'_> {
    Owner {
        user_id: &session.user.user_id,
        account_name: &session.user.account_name,
        password_set: session.user.password_set.as_deref(),
    }
}

/// Where a refused change leads: the enrolment page says what to do first (a notice signed for
/// this browser: a link someone else made shows none).
pub fn refused(page: &Page, refusal: &ChangeRefusal) -> HttpResponse {
    let key = match refusal {
        ChangeRefusal::VerifyFirst(_) => "home.notice.verify_first",
        ChangeRefusal::ProofCooling(_) => "home.notice.proof_cooling",
        // The page after the password says only what is so once it is given (see `home`).
        ChangeRefusal::PasswordFirst => return see_other("/reauth?back=%2F%3Fm%3Dpassword-given").finish(),
        ChangeRefusal::AlreadyEnrolled => "home.notice.already_enrolled",
        ChangeRefusal::NotEnrolled => "home.notice.not_enrolled",
    };
    page.redirect_with("/", &Notice::info(key))
}

/// The session proved `service` at `at`: remember it as a step-up. (When the proof was a change,
/// an enrolment or a replacement, the user's other sessions ended with it.)
pub async fn proved(page: &Page, service: ServiceKind, at: Timestamp) -> Result<(), WebError> {
    let (Some(_), Some(token)) = (page.session(), page.session_token.as_deref()) else { return Ok(()) };
    page.state.sessions.verified(token, service, at).await.map_err(|e| page.fail(e))
}

/// "Ta bort": removes an enrolled service, after a verification with an enrolled one.
pub async fn remove(
    page: Page,
    service: web::Path<String>,
    _form: CsrfForm<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    let Some(session) = page.session() else { return Ok(super::log_in_again(&page)) };
    let Ok(kind) = service.parse::<ServiceKind>() else {
        return Err(page.not_found());
    };
    let keep = page.stored_session_id();
    let done = page
        .state
        .enrolments
        .remove(&session.step_up, owner(session), kind, keep.as_deref(), &page.meta)
        .await
        .map_err(|e| page.fail(e))?;
    match done {
        Ok(()) => Ok(page.redirect_with("/", &Notice::info("home.notice.removed"))),
        Err(refusal) => Ok(refused(&page, &refusal)),
    }
}
