//! What every handler needs: the services, and the request's language, session and origin.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::csrf::{CsrfKey, CsrfSeed};
use super::error::Frame;
use super::static_files::StaticAssets;
use super::{CookieNames, WebError};
use crate::audit::{AuditEvent, Auditor, Detail, EventKind, Outcome, RequestMeta};
use crate::clock::Clock;
use crate::config::Settings;
use crate::directory::Directory;
use crate::enrolment::{Service, StarRule};
use crate::i18n::{Catalogue, Lang};
use crate::login::LoginService;
use crate::session::{Lookup, Session, Sessions};
use crate::storage::Storage;

/// The application's services, shared by every worker.
pub struct AppState {
    pub settings: Settings,
    pub store: Arc<dyn Storage>,
    pub directory: Arc<dyn Directory>,
    pub clock: Arc<dyn Clock>,
    pub sessions: Sessions,
    pub login: Arc<LoginService>,
    pub change: crate::change::ChangeService,
    pub auditor: Auditor,
    pub csrf: CsrfKey,
    /// Seals what a POST leaves for the page it redirects to.
    pub notes: super::notice::NoteSeal,
    pub random: Arc<dyn crate::clock::Random>,
    pub assets: StaticAssets,
    pub services: Vec<Service>,
    pub star_rule: StarRule,
    pub trusted_proxies: Vec<IpAddr>,
    pub default_lang: Lang,
    /// Times for people, in the portal's time zone.
    pub time: crate::clock::LocalTime,
    pub secure_cookies: bool,
    pub cookies: CookieNames,
    pub bankid: Option<Arc<crate::identity::bankid::BankIdFlows>>,
    pub sms: Option<Arc<crate::identity::sms::SmsFlows>>,
    pub reset: crate::reset::ResetService,
    pub enrolments: crate::enrolment::EnrolmentService,
    /// The service desk's side: a caller's proof, lifting a cooling-off.
    pub desk: crate::enrolment::Desk,
    pub admin: crate::admin::AdminService,
    pub outbox: crate::mail::Outbox,
    pub status: crate::admin::status::StatusProbe,
    pub health: crate::health::Health,
    /// The domain's DNS name, from the base DN's DC= parts (`example.se`).
    pub dns_domain: String,
    /// The portal's host name, from `server.public_url` (`losenord.example.se`).
    pub site: String,
}

/// The session state of a request.
#[derive(Debug, Clone)]
pub enum Auth {
    LoggedIn(Session),
    /// The browser's session ran out since its last request.
    Expired,
    Anonymous,
}

/// The request as a page sees it.
pub struct Page {
    pub state: web::Data<AppState>,
    pub lang: Lang,
    pub meta: RequestMeta,
    pub csrf_token: String,
    /// This browser's CSRF cookie value: also what binds BankID flows to the browser.
    pub csrf_seed: Option<String>,
    pub auth: Auth,
    pub session_token: Option<String>,
    /// The request's path (a redirect's notice is bound to it, see `web::notice`).
    pub path: String,
    /// The request's query string (where a redirect's notice travels).
    pub query: String,
    /// A GET (or HEAD): the address shows this page, and may be asked for again.
    pub get: bool,
    /// The browser says a link or form on another site led here (`Sec-Fetch-Site`).
    pub from_elsewhere: bool,
}

impl Page {
    pub fn i18n(&self) -> &'static Catalogue {
        self.lang.catalogue()
    }

    pub fn session(&self) -> Option<&Session> {
        match &self.auth {
            Auth::LoggedIn(s) => Some(s),
            _ => None,
        }
    }

    /// Wraps an internal failure in the friendly error page for this request.
    pub fn fail(&self, e: impl Into<anyhow::Error>) -> WebError {
        WebError::internal(e.into(), self.lang, &self.meta.request_id).framed(self.frame())
    }

    /// "Not found", with this request's header.
    pub fn not_found(&self) -> WebError {
        WebError::not_found(self.lang, &self.meta.request_id).framed(self.frame())
    }

    /// The id the store knows this request's session by: a change of what proves the user ends
    /// every other session of theirs, but not this one.
    pub fn stored_session_id(&self) -> Option<String> {
        self.session().and(self.session_token.as_deref()).map(|t| self.state.sessions.stored_id(t))
    }

    /// What binds a flow, a notice or a receipt to this browser: its CSRF cookie.
    pub fn binding(&self) -> &str {
        self.csrf_seed.as_deref().unwrap_or_default()
    }

    /// What an error page's header shows for this request.
    pub fn frame(&self) -> Frame {
        Frame {
            csrf: self.csrf_token.clone(),
            portal_name: self.state.settings.portal.name.clone(),
            user: self.session().map(|s| s.user.display_name.clone()),
            admin: self.session().and_then(|s| super::pages::staff_home(s.user.roles)),
        }
    }
}

/// The language: the remembered choice, else the browser's preference, else the configured default.
pub fn request_lang(req: &HttpRequest, default: Lang) -> Lang {
    req.cookie(CookieNames::of(req).lang)
        .and_then(|c| Lang::from_code(c.value()))
        .or_else(|| {
            req.headers().get("accept-language").and_then(|h| h.to_str().ok()).and_then(Lang::from_accept_language)
        })
        .unwrap_or(default)
}

/// The request id tracing-actix-web assigned.
pub fn request_id(req: &HttpRequest) -> String {
    req.extensions().get::<tracing_actix_web::RequestId>().map(|id| id.to_string()).unwrap_or_default()
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the last address in
/// `X-Forwarded-For` (every header line, in order) that is not a trusted proxy's. Only the proxies'
/// own entries are believed: the walk stops at an entry it cannot read (it falls back to the
/// peer), so a client cannot put its pick to the left of one.
pub fn client_ip(req: &HttpRequest, trusted: &[IpAddr]) -> String {
    // A dual-stack listener sees an IPv4 peer as `::ffff:a.b.c.d`: compared and counted as IPv4.
    let peer = req.peer_addr().map(|a| a.ip().to_canonical());
    let Some(peer) = peer.filter(|p| trusted.contains(p)) else {
        return peer.map(|p| p.to_string()).unwrap_or_default();
    };
    let lines = req.headers().get_all("x-forwarded-for").filter_map(|h| h.to_str().ok());
    let hops: Vec<&str> = lines.flat_map(|line| line.split(',')).collect();
    for hop in hops.iter().rev() {
        match forwarded_ip(hop.trim()) {
            Some(ip) if trusted.contains(&ip) => continue,
            Some(ip) => return ip.to_string(),
            None => break,
        }
    }
    peer.to_string()
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn forwarded_ip(hop: &str) -> Option<IpAddr> {
    let ip = hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()));
    ip.map(|ip| ip.to_canonical())
}

pub fn request_meta(req: &HttpRequest, state: &AppState) -> RequestMeta {
    RequestMeta {
        lang: request_lang(req, state.default_lang),
        source_ip: client_ip(req, &state.trusted_proxies),
        user_agent: req.headers().get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or("").to_string(),
        request_id: request_id(req),
        actor: None,
    }
}

/// An error page's header for a request whose user is not looked up (the language switch works
/// from it).
pub fn anonymous_frame(state: &AppState, req: &HttpRequest) -> Frame {
    Frame {
        csrf: csrf_seed(req).map(|s| state.csrf.token_for(&s)).unwrap_or_default(),
        portal_name: state.settings.portal.name.clone(),
        user: None,
        admin: None,
    }
}

/// An address whose query cannot be read (`?n=x` where a number belongs): the "bad form" page in
/// the user's language, never the extractor's own text.
pub fn bad_query(err: actix_web::error::QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    tracing::info!(error = %err, "unreadable query");
    let state = req.app_data::<web::Data<AppState>>().cloned().expect("AppState is registered in Application::build");
    let lang = request_lang(req, state.default_lang);
    WebError::bad_form(lang, &request_id(req)).framed(anonymous_frame(&state, req)).into()
}

/// The CSRF cookie value of this request: set by the browser, or just made by the middleware.
pub fn csrf_seed(req: &HttpRequest) -> Option<String> {
    req.extensions()
        .get::<CsrfSeed>()
        .map(|s| s.0.clone())
        .or_else(|| req.cookie(CookieNames::of(req).csrf).map(|c| c.value().to_string()))
}

/// A session that ended by itself (ran out, or the directory ended it) is audited, and the page
/// says so.
async fn session_ended(
    state: &AppState,
    meta: &RequestMeta,
    lang: Lang,
    user: &crate::session::SessionUser,
    detail: Option<Detail>,
) -> Result<Auth, WebError> {
    let mut event = AuditEvent::new(EventKind::SessionExpired, Outcome::Success)
        .username(&user.account_name)
        .user_id(&user.user_id);
    if let Some(detail) = detail {
        event = event.detail(detail);
    }
    state.auditor.record(meta, event).await.map_err(|e| WebError::internal(e.into(), lang, &meta.request_id))?;
    Ok(Auth::Expired)
}

impl FromRequest for Page {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state =
                req.app_data::<web::Data<AppState>>().cloned().expect("AppState is registered in Application::build");
            let lang = request_lang(&req, state.default_lang);
            let mut meta = request_meta(&req, &state);
            let seed = csrf_seed(&req);
            let csrf_token = seed.as_deref().map(|seed| state.csrf.token_for(seed)).unwrap_or_default();
            let session_token = req.cookie(state.cookies.session).map(|c| c.value().to_string());
            let auth = match &session_token {
                None => Auth::Anonymous,
                Some(token) => match state.sessions.lookup(token).await {
                    Ok(Lookup::Active(s)) => Auth::LoggedIn(s),
                    Ok(Lookup::Expired(user)) => session_ended(&state, &meta, lang, &user, None).await?,
                    Ok(Lookup::Revoked(user)) => {
                        session_ended(&state, &meta, lang, &user, Some(Detail::new("session_revoked"))).await?
                    }
                    Ok(Lookup::None) => Auth::Anonymous,
                    Err(e) => return Err(WebError::internal(e.into(), lang, &meta.request_id)),
                },
            };
            // Staff (a portal role) acting on other users: their entries say by whom.
            if let Auth::LoggedIn(s) = &auth
                && s.user.roles.any()
            {
                let (user_id, account_name) = (s.user.user_id.clone(), s.user.account_name.clone());
                meta.actor = Some(crate::audit::Actor { user_id, account_name });
            }
            let (path, query) = (req.path().to_string(), req.query_string().to_string());
            let get = matches!(*req.method(), actix_web::http::Method::GET | actix_web::http::Method::HEAD);
            let site = req.headers().get("sec-fetch-site").and_then(|h| h.to_str().ok());
            let from_elsewhere = matches!(site, Some("cross-site" | "same-site"));
            Ok(Page {
                state,
                lang,
                meta,
                csrf_token,
                csrf_seed: seed,
                auth,
                session_token,
                path,
                query,
                get,
                from_elsewhere,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use actix_web::test::TestRequest;
    use std::net::IpAddr;

    fn from_proxy(lines: &[&str]) -> String {
        let trusted: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let mut req = TestRequest::default().peer_addr("10.0.0.1:40000".parse().unwrap());
        for line in lines {
            req = req.append_header(("X-Forwarded-For", *line));
        }
        client_ip(&req.to_http_request(), &trusted)
    }

    #[test]
    fn the_client_is_the_last_address_no_trusted_proxy_gave() {
        assert_eq!(from_proxy(&["198.51.100.7"]), "198.51.100.7");
        assert_eq!(from_proxy(&["198.51.100.7, 10.0.0.2"]), "198.51.100.7", "a trusted proxy's hop is skipped");
        assert_eq!(from_proxy(&[]), "10.0.0.1", "no header: the proxy");
    }

    #[test]
    fn a_forged_entry_is_never_the_client() {
        // The client sends its own header; the proxy appends a line (HAProxy) or an entry.
        assert_eq!(from_proxy(&["203.0.113.66", "198.51.100.7"]), "198.51.100.7", "every line counts, in order");
        assert_eq!(from_proxy(&["203.0.113.66, 198.51.100.7"]), "198.51.100.7");
        // A proxy that appends the port (Azure Application Gateway).
        assert_eq!(from_proxy(&["203.0.113.66, 198.51.100.7:50123"]), "198.51.100.7");
        assert_eq!(from_proxy(&["203.0.113.66, [2001:db8::7]:50123"]), "2001:db8::7");
        // An entry that cannot be read ends the walk: what is left of it is not believed.
        assert_eq!(from_proxy(&["203.0.113.66, unknown"]), "10.0.0.1");
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let req = TestRequest::default()
            .peer_addr("198.51.100.7:40000".parse().unwrap())
            .append_header(("X-Forwarded-For", "203.0.113.66"))
            .to_http_request();
        assert_eq!(client_ip(&req, &["10.0.0.1".parse().unwrap()]), "198.51.100.7");
    }

    #[test]
    fn an_ipv4_proxy_seen_by_a_dual_stack_listener_is_still_trusted() {
        let req = TestRequest::default()
            .peer_addr("[::ffff:10.0.0.1]:4000".parse().unwrap())
            .append_header(("X-Forwarded-For", "198.51.100.7"))
            .to_http_request();
        assert_eq!(client_ip(&req, &["10.0.0.1".parse().unwrap()]), "198.51.100.7");
        let direct = TestRequest::default().peer_addr("[::ffff:198.51.100.9]:4000".parse().unwrap()).to_http_request();
        assert_eq!(client_ip(&direct, &[]), "198.51.100.9", "counted as the IPv4 address it is");
    }
}
