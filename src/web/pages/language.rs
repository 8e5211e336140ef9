//! `POST /language`: the language switcher. The choice is remembered in a cookie.

use actix_web::HttpResponse;
use actix_web::cookie::{Cookie, SameSite, time::Duration};
use serde::Deserialize;

use super::see_other;
use crate::i18n::Lang;
use crate::web::Page;
use crate::web::csrf::{CsrfField, CsrfForm};

#[derive(Deserialize)]
pub struct LanguageForm {
    #[serde(default)]
    csrf: String,
    lang: String,
    #[serde(default)]
    back: String,
}

impl CsrfField for LanguageForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

use super::local_path as safe_back;

pub async fn switch(page: Page, form: CsrfForm<LanguageForm>) -> HttpResponse {
    let form = form.0;
    let lang = Lang::from_code(&form.lang).unwrap_or(page.lang);
    let cookie = Cookie::build(page.state.cookies.lang, lang.code())
        .path("/")
        .max_age(Duration::days(365))
        .http_only(true)
        .secure(page.state.secure_cookies)
        .same_site(SameSite::Lax)
        .finish();
    see_other(safe_back(&form.back)).cookie(cookie).finish()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_paths_are_followed_back() {
        assert_eq!(super::safe_back("/login"), "/login");
        assert_eq!(super::safe_back("//evil.example/"), "/");
        assert_eq!(super::safe_back("https://evil.example/"), "/");
        assert_eq!(super::safe_back("/\\evil.example"), "/");
        // Browsers drop tabs and newlines from a Location: these would become //evil.example.
        assert_eq!(super::safe_back("/\t/evil.example"), "/");
        assert_eq!(super::safe_back("/\n/evil.example"), "/");
        assert_eq!(super::safe_back("/ /evil.example"), "/");
        assert_eq!(super::safe_back("/admin/users?q=anna"), "/admin/users?q=anna");
    }
}
