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

/// The notice a redirect asked for (only known keys are shown).
fn notice_key(m: &str) -> Option<&'static str> {
    Some(match m {
        "verify-first" => "home.notice.verify_first",
        "proof-cooling" => "home.notice.proof_cooling",
        "password-given" => "home.notice.password_given",
        "already-enrolled" => "home.notice.already_enrolled",
        "not-enrolled" => "home.notice.not_enrolled",
        "removed" => "home.notice.removed",
        _ => return None,
    })
}

pub async fn show(page: Page, q: web::Query<Query>) -> Result<HttpResponse, WebError> {
    let session = match &page.auth {
        Auth::LoggedIn(s) => s,
        Auth::Expired => return Ok(see_other("/login?m=expired").finish()),
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
        notice: notice_key(&q.m)
            // Given again before a change (a session begun with BankID), not before a first enrolment.
            .map(|k| {
                if k == "home.notice.password_given" && !records.is_empty() {
                    "home.notice.password_given_change"
                } else {
                    k
                }
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
