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
    /// A staff page reached by a link from another site: opened only from the portal itself.
    FromElsewhere,
}

#[derive(Debug)]
pub struct WebError {
    kind: ErrorKind,
    lang: Lang,
    reference: String,
    /// The page's header (the user, the language switch), when the request got that far.
    frame: Option<Box<Frame>>,
    /// Where the link onwards goes, when not where the kind says.
    next: Option<String>,
}

/// What an error page's header needs from the request.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub csrf: String,
    pub portal_name: String,
    pub user: Option<String>,
    /// Where the admin link leads (see [`crate::web::pages::staff_home`]).
    pub admin: Option<&'static str>,
}

impl WebError {
    /// Logs the whole chain of `e` under the request id; the user sees only the reference.
    pub fn internal(e: anyhow::Error, lang: Lang, request_id: &str) -> Self {
        tracing::error!(reference = request_id, error = format!("{e:#}"), "request failed");
        Self { kind: ErrorKind::Internal, lang, reference: request_id.to_string(), frame: None, next: None }
    }

    pub fn csrf(lang: Lang, request_id: &str) -> Self {
        Self { kind: ErrorKind::Csrf, lang, reference: request_id.to_string(), frame: None, next: None }
    }

    pub fn bad_form(lang: Lang, request_id: &str) -> Self {
        Self { kind: ErrorKind::BadForm, lang, reference: request_id.to_string(), frame: None, next: None }
    }

    pub fn forbidden(lang: Lang, request_id: &str) -> Self {
        Self { kind: ErrorKind::Forbidden, lang, reference: request_id.to_string(), frame: None, next: None }
    }

    pub fn other_browser(lang: Lang, request_id: &str) -> Self {
        Self { kind: ErrorKind::OtherBrowser, lang, reference: request_id.to_string(), frame: None, next: None }
    }

    /// With the page's header.
    pub fn framed(mut self, frame: Frame) -> Self {
        self.frame = Some(Box::new(frame));
        self
    }

    /// A staff page a link from another site led to (`Sec-Fetch-Site`): the page asks to be
    /// opened from here, so that a link cannot search, read or export in a member of staff's name
    /// (their trail would say they did).
    pub fn from_elsewhere(lang: Lang, page: String) -> Self {
        Self { kind: ErrorKind::FromElsewhere, lang, reference: String::new(), frame: None, next: Some(page) }
    }

    pub fn not_found(lang: Lang, request_id: &str) -> Self {
        Self { kind: ErrorKind::NotFound, lang, reference: request_id.to_string(), frame: None, next: None }
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
            ErrorKind::Forbidden | ErrorKind::FromElsewhere => StatusCode::FORBIDDEN,
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
            ErrorKind::FromElsewhere => ("error.from_elsewhere.title", "error.from_elsewhere.message"),
        };
        // Where to go on: a new reset here, or the start page.
        let next = match (self.kind, &self.next) {
            (ErrorKind::FromElsewhere, Some(page)) => (page.as_str(), "error.from_elsewhere.open"),
            (ErrorKind::OtherBrowser, _) => ("/reset", "error.other_browser.again"),
            _ => ("/", "error.home"),
        };
        let frame = self.frame.as_deref().cloned().unwrap_or_default();
        let l = super::views::Layout {
            i: self.lang.catalogue(),
            lang: self.lang.code(),
            css: super::StaticAssets::new().url("style.css"),
            forms_js: super::StaticAssets::new().url("forms.js"),
            csrf: &frame.csrf,
            portal_name: if frame.portal_name.is_empty() { "Stjärna" } else { &frame.portal_name },
            user: frame.user.as_deref(),
            path: "/".into(),
            admin: frame.admin,
            netbios: "",
            dns_domain: "",
        };
        let view = ErrorView { l, title, message, reference: &self.reference, next };
        let body = view.render().unwrap_or_else(|_| "Error".to_string());
        HttpResponse::build(self.status_code()).content_type("text/html; charset=utf-8").body(body)
    }
}
