//! The web layer: actix-web handlers, views, cookies, CSRF and security headers.
//!
//! Handlers extract, call a service, and render a view. No domain logic lives here.

mod context;
mod csrf;
mod error;
mod notice;
mod pages;
mod request_log;
mod security;
mod static_files;
mod views;

pub use request_log::RequestLog;

pub use context::{AppState, Page, bad_query};
pub use error::WebError;
pub use notice::{Notice, Tone};

use actix_web::web;

/// The portal's cookie names. Served over https they carry the `__Host-` prefix: browsers then
/// accept them only with Secure, `Path=/` and no Domain, so a sibling sub-domain cannot plant or
/// overwrite them (a planted CSRF cookie would bind a victim's BankID order to the attacker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieNames {
    pub session: &'static str,
    pub csrf: &'static str,
    pub lang: &'static str,
}

impl CookieNames {
    pub const PLAIN: CookieNames =
        CookieNames { session: "stjarna_session", csrf: "stjarna_csrf", lang: "stjarna_lang" };
    pub const HOST: CookieNames =
        CookieNames { session: "__Host-stjarna_session", csrf: "__Host-stjarna_csrf", lang: "__Host-stjarna_lang" };

    pub fn for_public_url(https: bool) -> CookieNames {
        if https { CookieNames::HOST } else { CookieNames::PLAIN }
    }

    /// The names in force for a request's application.
    pub fn of(req: &actix_web::HttpRequest) -> CookieNames {
        req.app_data::<web::Data<AppState>>().map(|s| s.cookies).unwrap_or(CookieNames::PLAIN)
    }
}

/// Every route of the portal.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // Routes are tried in order, each pattern with a path parameter through a regex: the ones a
    // waiting browser asks for every second or two come first.
    cfg.route("/bankid/{id}/status", web::get().to(pages::bankid::status))
        .route("/bankid/{id}/qr.svg", web::get().to(pages::bankid::qr))
        .route("/bankid/{id}/qr-animated.svg", web::get().to(pages::bankid::qr_animated))
        .route("/", web::get().to(pages::home::show))
        .route("/login", web::get().to(pages::login::show))
        .route("/login", web::post().to(pages::login::submit))
        .route("/logout", web::post().to(pages::login::logout))
        .route("/change", web::get().to(pages::change::show))
        .route("/change", web::post().to(pages::change::submit))
        .route("/language", web::post().to(pages::language::switch))
        .route("/enrol/bankid", web::post().to(pages::bankid::start_enrol))
        .route("/enrol/bankid/replace", web::post().to(pages::bankid::start_replace))
        .route("/enrol/{service}/remove", web::post().to(pages::enrol::remove))
        .route("/reauth", web::get().to(pages::reauth::show))
        .route("/reauth", web::post().to(pages::reauth::submit))
        .route("/verify/bankid", web::post().to(pages::bankid::start_verify))
        .route("/enrol/sms", web::get().to(pages::sms::show_number))
        .route("/enrol/sms", web::post().to(pages::sms::send_enrol))
        .route("/verify/sms", web::post().to(pages::sms::send_verify))
        .route("/sms/{id}", web::get().to(pages::sms::show_code))
        .route("/sms/{id}", web::post().to(pages::sms::check_code))
        .route("/sms/{id}/resend", web::post().to(pages::sms::resend))
        .route("/login/bankid", web::post().to(pages::bankid::start_login))
        .route("/reset", web::get().to(pages::reset::show_start))
        .route("/reset", web::post().to(pages::reset::start))
        .route("/reset/bankid", web::post().to(pages::reset::start_bankid))
        .route("/reset/{id}", web::get().to(pages::reset::show))
        .route("/reset/{id}/bankid", web::post().to(pages::reset::use_bankid))
        .route("/reset/{id}/sms", web::post().to(pages::reset::send_code))
        .route("/reset/{id}/sms/check", web::post().to(pages::reset::check_code))
        .route("/reset/{id}/password", web::get().to(pages::reset::show_password))
        .route("/reset/{id}/password", web::post().to(pages::reset::set_password))
        .route("/reset/{id}/unlock", web::post().to(pages::reset::unlock))
        .route("/bankid/{id}", web::get().to(pages::bankid::show))
        .route("/bankid/{id}/open", web::get().to(pages::bankid::open))
        .route("/bankid/{id}/back", web::get().to(pages::bankid::back))
        .route("/bankid/{id}/cancel", web::post().to(pages::bankid::cancel))
        .route("/admin", web::get().to(pages::admin::dashboard))
        .route("/admin/reminders", web::post().to(pages::admin::reminders))
        .route("/admin/users", web::get().to(pages::admin::users))
        .route("/admin/users/{id}", web::get().to(pages::admin::user))
        .route("/admin/users/{id}/revoke", web::post().to(pages::admin::revoke))
        .route("/admin/status", web::get().to(pages::admin::status))
        .route("/admin/audit", web::get().to(pages::audit::audit))
        .route("/admin/audit.csv", web::get().to(pages::audit::audit_csv))
        .route("/admin/reports/not-enrolled.csv", web::get().to(pages::admin::not_enrolled_csv))
        .route("/admin/verify", web::get().to(pages::caller::show))
        .route("/admin/verify", web::post().to(pages::caller::start))
        .route("/admin/verify/sms/{id}", web::get().to(pages::caller::show_code))
        .route("/admin/verify/sms/{id}", web::post().to(pages::caller::check_code))
        .route("/admin/verify/bankid/{id}", web::get().to(pages::caller::bankid_status))
        .route("/admin/verify/bankid/{id}/cancel", web::post().to(pages::caller::cancel_order))
        .route("/admin/verify/lift", web::post().to(pages::caller::lift_cooldown))
        .route("/admin/reauth", web::get().to(pages::reauth::show))
        .route("/admin/reauth", web::post().to(pages::reauth::submit))
        .route("/health", web::get().to(pages::health::check))
        .route("/static/{file}", web::get().to(static_files::serve))
        .route("/favicon.svg", web::get().to(static_files::favicon))
        .route("/favicon.ico", web::get().to(static_files::favicon))
        .default_service(web::to(pages::not_found));
}

pub use csrf::CsrfKey;
pub use csrf::csrf_cookie_middleware;
pub use notice::NoteSeal;
pub use security::security_headers;
pub use static_files::StaticAssets;
