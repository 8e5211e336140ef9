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

/// 200 when the database answers; the directory's state is reported beside it.
pub async fn check(state: web::Data<AppState>) -> HttpResponse {
    let database = match state.store.ping().await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, "health: database unavailable");
            "unavailable"
        }
    };
    let directory = match state.directory.ping().await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, "health: directory unavailable");
            "unavailable"
        }
    };
    let ok = database == "ok";
    let body = Health { status: if ok { "ok" } else { "unavailable" }, database, directory };
    if ok { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}
