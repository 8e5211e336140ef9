//! `GET /health`: for load balancers and monitoring.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::web::AppState;

#[derive(Serialize)]
struct Health {
    status: &'static str,
    database: &'static str,
    directory: &'static str,
}

/// 200 when the database answers; the directory's state is reported beside it. Asked at most
/// every couple of seconds (`health::FRESH`), whatever the number of requests.
pub async fn check(state: web::Data<AppState>) -> HttpResponse {
    let report = state.health.report().await;
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body =
        Health { status: word(report.database), database: word(report.database), directory: word(report.directory) };
    if report.database { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}
