//! `GET /`: the enrolment page with the star row.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{html, layout, see_other};
use crate::enrolment::{ServiceKind, assess};
use crate::web::context::Auth;
use crate::web::views::{HomeView, ServiceRow};
use crate::web::{Page, WebError};

#[derive(Deserialize)]
pub struct Query {
    #[serde(default)]
    m: String,
}

/// Whether to thank the user for the password just given (the re-authentication asked for before
/// a first enrolment leads back here so): only when this session was given it within the minute,
/// so that a link someone else made says nothing untrue. Every other notice comes signed (see
/// `web::notice`).
fn password_given(m: &str, session: &crate::session::Session, now: crate::clock::Timestamp) -> bool {
    const JUST_GIVEN: i64 = 60;
    m == "password-given" && session.password_at.is_some_and(|at| now - at < JUST_GIVEN)
}

pub async fn show(page: Page, q: web::Query<Query>) -> Result<HttpResponse, WebError> {
    let session = match &page.auth {
        Auth::LoggedIn(s) => s,
        Auth::Expired => return Ok(super::login::expired(&page)),
        Auth::Anonymous => return Ok(see_other("/login").finish()),
    };
    let state = &page.state;
    let password_set = session.user.password_set.as_deref();
    let records = state.enrolments.enrolled(&session.user.user_id, password_set).await.map_err(|e| page.fail(e))?;
    let enrolled_kinds: Vec<ServiceKind> = records.iter().map(|r| r.kind).collect();
    let assessment = assess(&state.services, &enrolled_kinds, state.star_rule);
    let i = page.i18n();

    let (mut available, mut enrolled) = (Vec::new(), Vec::new());
    for service in &state.services {
        let record = records.iter().find(|r| r.kind == service.kind);
        let row = ServiceRow {
            id: service.kind.id(),
            name_key: format!("service.{}.name", service.kind.id()),
            description_key: format!("service.{}.description", service.kind.id()),
            stars: service.stars,
            required: service.required,
            enrolled: record.is_some(),
            can_enrol: match service.kind {
                ServiceKind::BankId => state.bankid.is_some(),
                ServiceKind::Sms => state.sms.is_some(),
            },
            detail: record.and_then(|r| r.detail.clone()),
            enrolled_at: record.map(|r| page.state.time.format(r.enrolled_at)),
            cooling_until: record.and_then(|r| r.cooling_until).map(|t| {
                let key = if record.is_some_and(|r| r.restarted) { "home.cooling_again" } else { "home.cooling" };
                i.f(key, &[("until", &page.state.time.format(t))])
            }),
        };
        if row.enrolled { enrolled.push(row) } else { available.push(row) }
    }
    let view = HomeView {
        l: layout(&page, "/"),
        notice: password_given(&q.m, session, page.state.clock.now())
            // Given again before a change (a session begun with BankID), not before a first enrolment.
            .then_some(if records.is_empty() {
                "home.notice.password_given"
            } else {
                "home.notice.password_given_change"
            })
            .map(|k| (i.t(k).to_string(), "notice"))
            .or_else(|| page.notice_text()),
        row: (0..assessment.needed).map(|n| n < assessment.filled()).collect(),
        collected: assessment.collected,
        needed: assessment.needed,
        status: assessment.status.id(),
        status_key: format!("home.status.{}", assessment.status.id()),
        available,
        enrolled,
        missing_required: assessment
            .missing_required
            .iter()
            .map(|k| i.t(&format!("service.{}.name", k.id())).to_string())
            .collect(),
    };
    html(&page, view)
}
