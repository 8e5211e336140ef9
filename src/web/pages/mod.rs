//! Page handlers.

pub mod admin;
pub mod audit;
pub mod bankid;
pub mod caller;
pub mod change;
pub mod enrol;
pub mod health;
pub mod home;
pub mod language;
pub mod login;
pub mod reauth;
pub mod reset;
pub mod sms;

use super::WebError;
use crate::reset::Rule;
use crate::web::Page;

pub async fn not_found(page: Page) -> Result<actix_web::HttpResponse, WebError> {
    Err(page.not_found())
}

/// The page's query as the page's own forms carry it on (the language switch's way back, the
/// password prompt's), without a personal number typed into a search: it is neither searched for
/// nor kept anywhere. Any value of 10 or 12 digits (and `-`, `+`, blanks) goes, so no page may
/// carry such a value (a phone number, a timestamp) in its query and need it back.
pub(super) fn without_personal_numbers(query: &str) -> String {
    let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(query) else { return String::new() };
    let kept: Vec<_> =
        pairs.into_iter().filter(|(_, v)| !crate::identity::personnummer::looks_like_personal_number(v)).collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// Where the staff pages begin for `roles`: the dashboard, or for the service desk (which may not
/// see it) the user search; None without a role. The header's admin link leads there.
pub fn staff_home(roles: crate::session::Roles) -> Option<&'static str> {
    if roles.can_report() {
        Some("/admin")
    } else if roles.can_view_users() {
        Some("/admin/users")
    } else {
        None
    }
}

/// The frame of a page for this request. `path`: the page's own address when it answers a POST.
pub fn layout<'a>(page: &'a super::Page, path: &'a str) -> super::views::Layout<'a> {
    // A notice that is not this page's own (moved here, or changed) is not carried on.
    let own_query = !page.query.is_empty() && (!page.query.contains("note=") || page.notice().is_some());
    let path = match (page.get, own_query) {
        (true, false) => page.path.as_str().into(),
        (true, true) => match without_personal_numbers(&page.query) {
            query if query.is_empty() => page.path.as_str().into(),
            query => format!("{}?{query}", page.path).into(),
        },
        (false, _) => path.into(),
    };
    super::views::Layout {
        i: page.i18n(),
        lang: page.lang.code(),
        css: page.state.assets.url("style.css"),
        forms_js: page.state.assets.url("forms.js"),
        csrf: &page.csrf_token,
        portal_name: &page.state.settings.portal.name,
        user: page.session().map(|s| s.user.display_name.as_str()),
        path,
        admin: page.session().and_then(|s| staff_home(s.user.roles)),
        netbios: &page.state.settings.directory.netbios_domain,
        dns_domain: &page.state.dns_domain,
    }
}

/// Renders a template into an HTML response.
pub fn html(page: &super::Page, view: impl askama::Template) -> Result<actix_web::HttpResponse, WebError> {
    let body = view.render().map_err(|e| page.fail(e))?;
    Ok(actix_web::HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body))
}

/// `back` when it is a path on this site, else `/`. Never `//host`, `/\\host`, a scheme, or
/// anything with a control character or blank (browsers drop tabs and newlines from URLs, so
/// `/\t/evil.example` would become `//evil.example`).
pub fn local_path(back: &str) -> &str {
    let clean = back.chars().all(|c| !c.is_control() && !c.is_whitespace());
    let local = back.starts_with('/') && !back.starts_with("//") && !back.contains('\\') && !back.contains("://");
    if clean && local { back } else { "/" }
}

/// To the login page, for a page that needs a session the request does not have: told that the
/// session ended when the browser still sent one (it ran out, or was ended meanwhile), so that
/// a form posted then does not just vanish.
pub fn log_in_again(page: &super::Page) -> actix_web::HttpResponse {
    match page.session_token {
        Some(_) => page.redirect_with("/login", &super::Notice::info("login.notice.ended")),
        None => see_other("/login").finish(),
    }
}

/// A 303 redirect (after a POST, or to the login page).
pub fn see_other(to: &str) -> actix_web::HttpResponseBuilder {
    let mut b = actix_web::HttpResponse::SeeOther();
    b.insert_header(("Location", to));
    b
}

/// The rules as the page lists them, and as JSON for the live checks.
pub fn listed_rules(
    page: &Page,
    rules: &[Rule],
    broken: &[Rule],
) -> (Vec<(&'static str, String, &'static str)>, String) {
    let i = page.i18n();
    let listed = rules
        .iter()
        .map(|r| {
            let text = match r {
                Rule::MinLength { n } => i.f(r.message_key(), &[("n", &n.to_string())]),
                _ => i.t(r.message_key()).to_string(),
            };
            (r.id(), text, if broken.contains(r) { "bad" } else { "unknown" })
        })
        .collect();
    (listed, serde_json::to_string(rules).unwrap_or_default())
}
