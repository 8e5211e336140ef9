//! Mobile code in the browser: choose a number, receive a code, type it in.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{html, layout, see_other};
use crate::enrolment::{Change, ServiceKind};
use crate::identity::bankid::FlowUser;
use crate::identity::sms::{
    ChallengeState, PhoneNumber, PhoneNumberError, Sender, SmsFlows, SmsOutcome, SmsPurpose, SmsStart, SmsView,
};
use crate::session::Session;
use crate::web::csrf::{CsrfField, CsrfForm};
use crate::web::pages::bankid::CsrfOnly;
use crate::web::views::{SmsCodeView, SmsNumberView};
use crate::web::{Notice, Page, WebError};

fn flows(page: &Page) -> Result<&SmsFlows, WebError> {
    page.state.sms.as_deref().ok_or_else(|| page.not_found())
}

fn settings(page: &Page) -> Option<&crate::config::SmsSettings> {
    page.state.settings.sms.as_ref()
}

fn user(session: &Session) -> FlowUser<'_> {
    FlowUser {
        user_id: &session.user.user_id,
        account_name: &session.user.account_name,
        password_set: session.user.password_set.as_deref(),
    }
}

/// The text message, in the user's language, naming the portal.
fn text(page: &Page, flows: &SmsFlows) -> String {
    let minutes = (flows.limits().code_lifetime / 60).max(1).to_string();
    page.i18n().f("sms.text", &[("portal", &page.state.settings.portal.name), ("minutes", &minutes)])
}

/// AD's `mobile` attribute, read fresh.
async fn ad_mobile(page: &Page, session: &Session) -> Result<Option<String>, WebError> {
    page.state.enrolments.ad_value(&session.user.user_dn, "mobile").await.map_err(|e| page.fail(e))
}

fn number_page(
    page: &Page,
    error: Option<String>,
    country: &str,
    number: &str,
    ad_number: Option<String>,
    replace: bool,
) -> Result<HttpResponse, WebError> {
    let i = page.i18n();
    let offered = settings(page).map(|s| s.countries.as_slice()).unwrap_or_default();
    // Named in the user's language where the catalogue has a name (the usual twelve), else by code.
    let name = |c: &str| {
        let key = format!("country.{c}");
        if i.has(&key) { i.t(&key).to_string() } else { c.to_string() }
    };
    let countries = offered.iter().map(|c| (c.as_str(), name(c))).collect();
    let view = SmsNumberView { l: layout(page, "/enrol/sms"), error, countries, country, number, ad_number, replace };
    html(page, view)
}

#[derive(Deserialize)]
pub struct NumberQuery {
    #[serde(default)]
    replace: Option<String>,
}

/// Adding a first number, or replacing the enrolled one ("Byt").
fn change(replace: bool) -> Change {
    if replace { Change::Replace(ServiceKind::Sms) } else { Change::Add(ServiceKind::Sms) }
}

/// Refuses (with where to go) a change this session has not proved it may make.
async fn authorise(page: &Page, session: &Session, replace: bool) -> Result<Option<HttpResponse>, WebError> {
    let decision = page
        .state
        .enrolments
        .authorise_audited(&session.step_up, super::enrol::owner(session), change(replace), &page.meta)
        .await
        .map_err(|e| page.fail(e))?;
    Ok(decision.err().map(|r| super::enrol::refused(page, &r)))
}

pub async fn show_number(page: Page, q: web::Query<NumberQuery>) -> Result<HttpResponse, WebError> {
    flows(&page)?;
    let replace = q.replace.is_some();
    let Some(session) = page.session() else { return Ok(super::log_in_again(&page)) };
    if let Some(refused) = authorise(&page, session, replace).await? {
        return Ok(refused);
    }
    let s = settings(&page).expect("sms flows imply sms settings");
    let mobile = if s.prefill_from_ad || s.only_ad_number { ad_mobile(&page, session).await? } else { None };
    // A refused number redirected here with its message and the country chosen (not the number:
    // addresses end up in logs and history).
    let refused = page.notice();
    let country = refused
        .as_ref()
        .and_then(|n| n.get("country"))
        .filter(|c| s.countries.iter().any(|o| o == c))
        .unwrap_or(s.default_country.as_str());
    let error = refused.as_ref().map(|n| n.text(&page));
    if s.only_ad_number {
        let masked = mobile.as_deref().and_then(|m| PhoneNumber::parse(m, &s.default_country).ok()).map(|n| n.masked());
        let error = error.or_else(|| masked.is_none().then(|| page.i18n().t("sms.error.no_ad_number").to_string()));
        return number_page(&page, error, &s.default_country, "", Some(masked.unwrap_or_default()), replace);
    }
    let number = if refused.is_some() { "" } else { mobile.as_deref().unwrap_or("") };
    number_page(&page, error, country, number, None, replace)
}

#[derive(Deserialize)]
pub struct NumberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    replace: Option<String>,
}

impl CsrfField for NumberForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn number_error(e: PhoneNumberError) -> &'static str {
    match e {
        PhoneNumberError::Empty => "sms.error.empty",
        PhoneNumberError::Unreadable | PhoneNumberError::Invalid => "sms.error.invalid",
        PhoneNumberError::NotMobile => "sms.error.not_mobile",
        PhoneNumberError::UnknownCountry => "sms.error.country",
    }
}

fn start_error(start: &SmsStart) -> Notice {
    match start {
        SmsStart::Limited { minutes } => Notice::error("sms.error.limited").arg("minutes", minutes),
        SmsStart::Cooldown { seconds } => Notice::error("sms.resend_wait").arg("seconds", seconds),
        SmsStart::NotEnrolled => Notice::error("sms.error.not_enrolled"),
        SmsStart::CountryRefused => Notice::error("sms.error.country_refused"),
        SmsStart::GatewayFailed | SmsStart::Sent { .. } => Notice::error("sms.error.gateway"),
    }
}

/// Post/redirect/get: back to the number page with what was wrong.
fn number_refused(page: &Page, replace: bool, country: &str, notice: Notice) -> HttpResponse {
    let to = if replace { "/enrol/sms?replace=1" } else { "/enrol/sms" };
    page.redirect_with(to, &notice.field("country", country))
}

pub async fn send_enrol(page: Page, form: CsrfForm<NumberForm>) -> Result<HttpResponse, WebError> {
    let form = form.0;
    let replace = form.replace.is_some();
    let flows = flows(&page)?;
    let Some(session) = page.session() else { return Ok(super::log_in_again(&page)) };
    if let Some(refused) = authorise(&page, session, replace).await? {
        return Ok(refused);
    }
    let s = settings(&page).expect("sms flows imply sms settings");
    let country = if s.countries.contains(&form.country) { form.country.as_str() } else { s.default_country.as_str() };
    let ad = if s.only_ad_number { ad_mobile(&page, session).await? } else { None };
    let typed = if s.only_ad_number { ad.as_deref().unwrap_or("") } else { form.number.as_str() };
    let number = match PhoneNumber::parse(typed, country) {
        Ok(n) => n,
        Err(e) => {
            let key = if s.only_ad_number { "sms.error.no_ad_number" } else { number_error(e) };
            return Ok(number_refused(&page, replace, country, Notice::error(key)));
        }
    };
    let binding = page.binding();
    let start = flows
        .start(
            if replace { SmsPurpose::Replace } else { SmsPurpose::Enrol },
            binding,
            user(session),
            &number,
            &text(&page, flows),
            &page.meta,
            Sender::User,
        )
        .await
        .map_err(|e| page.fail(e))?;
    match start {
        SmsStart::Sent { id } => Ok(see_other(&format!("/sms/{id}")).finish()),
        other => Ok(number_refused(&page, replace, country, start_error(&other))),
    }
}

pub async fn send_verify(page: Page, _form: CsrfForm<CsrfOnly>) -> Result<HttpResponse, WebError> {
    let flows = flows(&page)?;
    let Some(session) = page.session() else { return Ok(super::log_in_again(&page)) };
    let binding = page.binding();
    let start = flows
        .start_verify(binding, user(session), &text(&page, flows), &page.meta, Sender::User)
        .await
        .map_err(|e| page.fail(e))?;
    match start {
        SmsStart::Sent { id } => Ok(see_other(&format!("/sms/{id}")).finish()),
        // Verifying starts on the enrolment page: back there with what went wrong.
        other => Ok(page.redirect_with("/", &start_error(&other))),
    }
}

async fn load<'a>(page: &'a Page, id: &str) -> Result<(SmsView, &'a Session), WebError> {
    let flows = flows(page)?;
    let not_found = || page.not_found();
    let session = page.session().ok_or_else(not_found)?;
    let binding = page.binding();
    let view = flows.view(id, binding, &session.user.user_id, false).await.map_err(|e| page.fail(e))?;
    Ok((view.ok_or_else(not_found)?, session))
}

fn code_page(page: &Page, view: &SmsView, error: Option<String>) -> Result<HttpResponse, WebError> {
    let (title_key, done_key) = match view.purpose {
        SmsPurpose::Enrol | SmsPurpose::Replace => ("sms.title.enrol", "sms.enrolled"),
        // A reset's challenges are not loaded here (see `SmsFlows::load`).
        SmsPurpose::Verify | SmsPurpose::Reset => ("sms.title.verify", "sms.verified"),
    };
    let error = error.or_else(|| match view.state {
        ChallengeState::Expired => Some(page.i18n().t("sms.error.expired").to_string()),
        ChallengeState::Failed => Some(page.i18n().t("sms.error.too_many").to_string()),
        ChallengeState::Refused => Some(page.i18n().t("sms.error.conflict").to_string()),
        ChallengeState::Pending | ChallengeState::Verified => None,
    });
    let done = view.state == ChallengeState::Verified && error.is_none();
    let code_view = SmsCodeView {
        l: layout(page, "/"),
        id: &view.id,
        title_key,
        masked: &view.masked,
        error,
        open: view.state == ChallengeState::Pending,
        done,
        done_key,
        resend_in: view.resend_in,
        js: page.state.assets.url("countdown.js"),
    };
    html(page, code_view)
}

/// What a POST on the code page came to, carried to the page it redirects to (post/redirect/get:
/// a reload never types the code again nor asks for another text). Anyone can write these into
/// an address; they only choose a message.
#[derive(Deserialize, Default)]
pub struct CodeOutcome {
    #[serde(default)]
    e: String,
    #[serde(default)]
    n: Option<u32>,
}

impl CodeOutcome {
    fn message(&self, page: &Page) -> Option<String> {
        let i = page.i18n();
        let n = self.n.unwrap_or(0).min(10_000).to_string();
        match self.e.as_str() {
            "wrong" => Some(i.f("sms.error.wrong", &[("left", &n)])),
            "malformed" => Some(i.t("sms.error.malformed").to_string()),
            "conflict" => Some(i.t("sms.error.conflict").to_string()),
            "day" => Some(i.t("sms.error.day_used_up").to_string()),
            "limited" => Some(i.f("sms.error.limited", &[("minutes", &n)])),
            "gateway" => Some(i.t("sms.error.gateway").to_string()),
            "not-enrolled" => Some(i.t("sms.error.not_enrolled").to_string()),
            _ => None,
        }
    }

    /// The code page's address with this outcome.
    fn at(id: &str, e: &str, n: Option<u32>) -> String {
        match n {
            Some(n) => format!("/sms/{id}?e={e}&n={n}"),
            None if e.is_empty() => format!("/sms/{id}"),
            None => format!("/sms/{id}?e={e}"),
        }
    }
}

pub async fn show_code(
    page: Page,
    id: web::Path<String>,
    q: web::Query<CodeOutcome>,
) -> Result<HttpResponse, WebError> {
    if page.session().is_none() {
        return Ok(super::log_in_again(&page));
    }
    let (view, _) = load(&page, &id).await?;
    // A message for a pending challenge only: the state itself tells the rest.
    let message = q.message(&page).filter(|_| view.state == ChallengeState::Pending || q.e == "conflict");
    code_page(&page, &view, message)
}

/// A typed one-time code (also the reset flow's).
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub code: String,
}

impl CsrfField for CodeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// An enrolment or replacement is authorised again at every step that can complete it (the code,
/// a new code): a challenge started earlier, in another session, or before the user's enrolment
/// changed must not complete on its own.
async fn still_allowed(page: &Page, session: &Session, view: &SmsView) -> Result<Option<HttpResponse>, WebError> {
    match view.purpose {
        SmsPurpose::Enrol => authorise(page, session, false).await,
        SmsPurpose::Replace => authorise(page, session, true).await,
        SmsPurpose::Verify | SmsPurpose::Reset => Ok(None),
    }
}

pub async fn check_code(page: Page, id: web::Path<String>, form: CsrfForm<CodeForm>) -> Result<HttpResponse, WebError> {
    let flows = flows(&page)?;
    if page.session().is_none() {
        // A code typed (or a new one asked for) after the session ended: said so, at the login.
        return Ok(super::log_in_again(&page));
    }
    let (view, session) = load(&page, &id).await?;
    if let Some(refused) = still_allowed(&page, session, &view).await? {
        return Ok(refused);
    }
    let binding = page.binding();
    let keep = page.stored_session_id();
    let outcome = flows
        .check(&id, binding, user(session), &form.0.code, keep.as_deref(), Sender::User, &page.meta)
        .await
        .map_err(|e| page.fail(e))?;
    if outcome == Some(SmsOutcome::Verified) {
        let now = page.state.clock.now();
        super::enrol::proved(&page, ServiceKind::Sms, now).await?;
    }
    // Too many attempts, expired and verified show in the challenge's own state.
    let to = match outcome {
        Some(SmsOutcome::Wrong { attempts_left }) => CodeOutcome::at(&id, "wrong", Some(attempts_left as u32)),
        Some(SmsOutcome::Malformed) => CodeOutcome::at(&id, "malformed", None),
        Some(SmsOutcome::Conflict) => CodeOutcome::at(&id, "conflict", None),
        Some(SmsOutcome::DayUsedUp) => CodeOutcome::at(&id, "day", None),
        _ => CodeOutcome::at(&id, "", None),
    };
    Ok(see_other(&to).finish())
}

pub async fn resend(page: Page, id: web::Path<String>, _form: CsrfForm<CsrfOnly>) -> Result<HttpResponse, WebError> {
    let flows = flows(&page)?;
    if page.session().is_none() {
        // A code typed (or a new one asked for) after the session ended: said so, at the login.
        return Ok(super::log_in_again(&page));
    }
    let (view, session) = load(&page, &id).await?;
    if let Some(refused) = still_allowed(&page, session, &view).await? {
        return Ok(refused);
    }
    let binding = page.binding();
    let start =
        flows.resend(&id, binding, user(session), &text(&page, flows), &page.meta).await.map_err(|e| page.fail(e))?;
    // Post/redirect/get; a wait shows as the page's own hint, once.
    let to = match start {
        Some(SmsStart::Sent { id }) => CodeOutcome::at(&id, "", None),
        Some(SmsStart::Cooldown { .. }) => CodeOutcome::at(&view.id, "", None),
        Some(SmsStart::Limited { minutes }) => CodeOutcome::at(&view.id, "limited", Some(minutes as u32)),
        Some(SmsStart::GatewayFailed) => CodeOutcome::at(&view.id, "gateway", None),
        Some(SmsStart::NotEnrolled) => CodeOutcome::at(&view.id, "not-enrolled", None),
        // A resend goes to the number the code was sent to, which passed.
        Some(SmsStart::CountryRefused) => CodeOutcome::at(&view.id, "gateway", None),
        None => return Err(page.not_found()),
    };
    Ok(see_other(&to).finish())
}
