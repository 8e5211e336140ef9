//! One error type for every page: a friendly page with a reference id; the full chain goes to the log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::views::ErrorView;
use crate::i18n::Lang;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Internal,
    Csrf,
    BadForm,
    NotFound,
    Forbidden,
    /// A reset flow opened in another browser than the one that started it.
    OtherBrowser,
}

#[derive(Debug)]
pub struct WebError {
    kind: ErrorKind,
    lang: Lang,
    reference: String,
}

impl WebError {
    /// Logs the whole chain of `e` under the request id; the user sees only the reference.
    pub fn internal(e: anyhow::Error, lang: Lang, request_id: &str) -> Self {
        tracing::error!(reference = request_id, error = format!("{e:#}"), "request failed");
        Self { kind: ErrorKind::Internal, lang, reference: request_id.to_string() }
    }

    pub fn csrf(lang: Lang, request_id: &str) -> Self {
        Self { kind: ErrorKind::Csrf, lang, reference: request_id.to_string() }
    }

    pub fn bad_form(lang: Lang, request_id: &str) -> Self {
        Self { kind: ErrorKind::BadForm, lang, reference: request_id.to_string() }
    }

    pub fn forbidden(lang: Lang, request_id: &str) -> Self {
        Self { kind: ErrorKind::Forbidden, lang, reference: request_id.to_string() }
    }

    pub fn other_browser(lang: Lang, request_id: &str) -> Self {
        Self { kind: ErrorKind::OtherBrowser, lang, reference: request_id.to_string() }
    }

    pub fn not_found(lang: Lang, request_id: &str) -> Self {
        Self { kind: ErrorKind::NotFound, lang, reference: request_id.to_string() }
    }
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} (reference {})", self.kind, self.reference)
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self.kind {
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Csrf => StatusCode::FORBIDDEN,
            ErrorKind::BadForm => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound | ErrorKind::OtherBrowser => StatusCode::NOT_FOUND,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, message) = match self.kind {
            ErrorKind::Internal => ("error.internal.title", "error.internal.message"),
            ErrorKind::Csrf => ("error.csrf.title", "error.csrf.message"),
            ErrorKind::BadForm => ("error.bad_form.title", "error.bad_form.message"),
            ErrorKind::NotFound => ("error.not_found.title", "error.not_found.message"),
            ErrorKind::Forbidden => ("error.forbidden.title", "error.forbidden.message"),
            ErrorKind::OtherBrowser => ("error.other_browser.title", "error.other_browser.message"),
        };
        // Where to go on: a new reset here, or the start page.
        let next = match self.kind {
            ErrorKind::OtherBrowser => ("/reset", "error.other_browser.again"),
            _ => ("/", "error.home"),
        };
        let css = super::StaticAssets::new().url("style.css");
        let view = ErrorView { i: self.lang.catalogue(), css, title, message, reference: &self.reference, next };
        let body = view.render().unwrap_or_else(|_| "Error".to_string());
        HttpResponse::build(self.status_code()).content_type("text/html; charset=utf-8").body(body)
    }
}
