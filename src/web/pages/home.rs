//! `GET /`: the enrolment page with the star row.

use actix_web::HttpResponse;

use super::{html, layout, see_other};
use crate::clock::format_utc;
use crate::enrolment::{ServiceKind, assess};
use crate::web::context::Auth;
use crate::web::views::{HomeView, ServiceRow};
use crate::web::{Page, WebError};

pub async fn show(page: Page) -> Result<HttpResponse, WebError> {
    let session = match &page.auth {
        Auth::LoggedIn(s) => s,
        Auth::Expired => return Ok(see_other("/login?m=expired").finish()),
        Auth::Anonymous => return Ok(see_other("/login").finish()),
    };
    let state = &page.state;
    let records = state.store.enrolments(&session.user.user_id).await.map_err(|e| page.fail(e))?;
    let enrolled_kinds: Vec<ServiceKind> = records.iter().filter_map(|r| r.service.parse().ok()).collect();
    let assessment = assess(&state.services, &enrolled_kinds, state.star_rule);

    let (mut available, mut enrolled) = (Vec::new(), Vec::new());
    for service in &state.services {
        let record = records.iter().find(|r| r.service == service.kind.id());
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
            detail: match service.kind {
                ServiceKind::BankId if record.is_some() => state
                    .store
                    .bankid_enrolment(&session.user.user_id)
                    .await
                    .map_err(|e| page.fail(e))?
                    .map(|b| format!("{} ({})", b.name, b.pn_masked)),
                ServiceKind::Sms if record.is_some() => state
                    .store
                    .sms_enrolment(&session.user.user_id)
                    .await
                    .map_err(|e| page.fail(e))?
                    .map(|s| s.number_masked),
                _ => None,
            },
            enrolled_at: record.map(|r| format_utc(r.enrolled_at)),
        };
        if row.enrolled { enrolled.push(row) } else { available.push(row) }
    }
    let i = page.i18n();
    let view = HomeView {
        l: layout(&page, "/"),
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
