//! The views: askama templates and the data each one shows.

use askama::Template;
use askama_web::WebTemplate;

use crate::i18n::Catalogue;

/// What every page's frame shows: header, language switcher, footer.
pub struct Layout<'a> {
    pub i: &'static Catalogue,
    pub lang: &'static str,
    pub css: String,
    /// The script every page has (double submits).
    pub forms_js: String,
    pub csrf: &'a str,
    pub portal_name: &'a str,
    /// The logged-in user's name, if any.
    pub user: Option<&'a str>,
    /// Where the language switcher comes back to: this page's address (with its query, so a
    /// message shown stays), or for a page answering a POST, the page the form is on.
    pub path: std::borrow::Cow<'a, str>,
    /// Where the admin link leads, for a user with a portal role: the dashboard, or for the
    /// service desk (which may not see it) the user search.
    pub admin: Option<&'static str>,
    /// The domain as users type it: `EXAMPLE` (NetBIOS) and `example.se` (from the base DN).
    pub netbios: &'a str,
    pub dns_domain: &'a str,
}

impl Layout<'_> {
    /// "For example anna, anna@example.se or EXAMPLE\anna", with this domain's names.
    pub fn username_hint(&self) -> String {
        self.i.f("login.username_hint", &[("upn", self.dns_domain), ("domain", self.netbios)])
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginView<'a> {
    pub l: Layout<'a>,
    pub bankid: bool,
    pub username: &'a str,
    pub error: Option<String>,
    pub notice: Option<&'a str>,
}

/// One identity service in the list.
pub struct ServiceRow {
    pub id: &'static str,
    pub name_key: String,
    pub description_key: String,
    pub stars: u8,
    pub required: bool,
    pub enrolled: bool,
    pub can_enrol: bool,
    pub enrolled_at: Option<String>,
    /// What was enrolled, masked (the BankID holder and personal number).
    pub detail: Option<String>,
    /// "Counts toward a reset from …", while the cooling-off lasts.
    pub cooling_until: Option<String>,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomeView<'a> {
    pub l: Layout<'a>,
    /// What the last action came to, or what to do first.
    pub notice: Option<(String, &'static str)>,
    /// One flag per star in the row: filled or not.
    pub row: Vec<bool>,
    pub collected: u8,
    pub needed: u8,
    pub status: &'static str,
    pub status_key: String,
    pub available: Vec<ServiceRow>,
    pub enrolled: Vec<ServiceRow>,
    pub missing_required: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorView<'a> {
    pub l: Layout<'a>,
    pub title: &'a str,
    pub message: &'a str,
    pub reference: &'a str,
    /// (path, label key) of the link onwards.
    pub next: (&'a str, &'a str),
}

#[derive(Template)]
#[template(path = "bankid.html")]
pub struct BankIdView<'a> {
    pub l: Layout<'a>,
    pub js: String,
    pub id: &'a str,
    pub title_key: &'static str,
    pub message_key: &'static str,
    /// `pending`, `complete`, `failed` or `cancelled`.
    pub state: &'static str,
    pub pending: bool,
    /// "Open BankID on this device" is offered (not once the app is done).
    pub open_here: bool,
    pub qr: bool,
    pub qr_time: u64,
    pub new_tab: bool,
    pub next: &'a str,
    pub next_key: &'static str,
    pub reference: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "sms_number.html")]
pub struct SmsNumberView<'a> {
    pub l: Layout<'a>,
    pub error: Option<String>,
    /// (ISO code, label) for the country selector.
    pub countries: Vec<(&'a str, String)>,
    pub country: &'a str,
    pub number: &'a str,
    /// With `only_ad_number`: the masked number from AD, instead of the field.
    pub ad_number: Option<String>,
    /// The new number replaces the enrolled one.
    pub replace: bool,
}

#[derive(Template)]
#[template(path = "sms_code.html")]
pub struct SmsCodeView<'a> {
    pub l: Layout<'a>,
    pub id: &'a str,
    pub title_key: &'static str,
    pub masked: &'a str,
    pub error: Option<String>,
    /// The code can still be typed.
    pub open: bool,
    pub done: bool,
    pub done_key: &'static str,
    pub resend_in: i64,
    /// The countdown to the next code.
    pub js: String,
}

#[derive(Template)]
#[template(path = "reset_start.html")]
pub struct ResetStartView<'a> {
    pub l: Layout<'a>,
    pub bankid: bool,
    pub error: Option<String>,
    /// The name as typed, after a refusal that was not about it.
    pub username: String,
    /// The refusal was about the field (no name typed).
    pub invalid: bool,
}

#[derive(Template)]
#[template(path = "reset_flow.html")]
pub struct ResetFlowView<'a> {
    pub l: Layout<'a>,
    pub id: &'a str,
    pub state: &'a str,
    pub message: Option<String>,
    pub message_class: &'static str,
    pub open: bool,
    pub row: Vec<bool>,
    pub stars_text: String,
    pub enough: bool,
    pub not_enough_enrolled: bool,
    /// Names of enrolled services that do not count yet (cooling-off), after a first proof.
    pub cooling: Vec<String>,
    pub cooling_hours: String,
    /// Names of proved services enrolled or replaced since the flow began.
    pub changed_since: Vec<String>,
    /// A privileged account: the service desk resets it.
    pub protected: bool,
    pub closed: bool,
    pub service_desk: &'a str,
    pub lead_key: &'static str,
    pub sms_open: bool,
    /// (service id, name key, stars, button key)
    pub next: Vec<(&'static str, String, u8, &'static str)>,
    pub next_href: &'static str,
    pub next_key: &'static str,
}

#[derive(Template)]
#[template(path = "reset_password.html")]
pub struct PasswordView<'a> {
    pub l: Layout<'a>,
    pub js: String,
    pub action: String,
    pub error: Option<String>,
    /// (rule id, sentence, css class)
    pub rules: Vec<(&'static str, String, &'static str)>,
    pub rules_json: String,
}

/// A row of (up to six) cells in an admin table.
pub type Row = (String, String, String, String, String, String);

#[derive(Template)]
#[template(path = "admin_dashboard.html")]
pub struct AdminDashboardView<'a> {
    pub l: Layout<'a>,
    pub roles: crate::session::Roles,
    pub d: &'a crate::admin::Dashboard,
    /// (service id, name key, count)
    pub per_service: Vec<(&'static str, String, usize)>,
    pub chart: String,
    /// What the counts counted, and what they left out.
    pub counted: String,
    pub failures: Vec<Row>,
    pub blocked: Vec<Row>,
    pub reminders: Option<String>,
    pub can_remind: bool,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
pub struct AdminUsersView<'a> {
    pub l: Layout<'a>,
    pub roles: crate::session::Roles,
    pub q: &'a str,
    pub searched: bool,
    /// Why the list is empty or cut short (too short a text, too many matches).
    pub hint: Option<String>,
    /// (id, name, account, mail)
    pub users: Vec<(String, String, String, String)>,
}

#[derive(Template)]
#[template(path = "admin_user.html")]
pub struct AdminUserView<'a> {
    pub l: Layout<'a>,
    pub roles: crate::session::Roles,
    pub id: &'a str,
    pub name: String,
    pub account: String,
    pub mail: String,
    pub mobile: String,
    pub locked_key: &'static str,
    pub pwd_last_set: String,
    pub groups: String,
    pub status_key: String,
    pub collected: u8,
    pub needed: u8,
    /// (service id, name key, stars, enrolled at, last used)
    pub enrolments: Vec<(&'static str, String, u8, String, String)>,
    pub can_revoke: bool,
    /// A message after a revocation, and whether it is an error.
    pub audit: Vec<Row>,
    pub message: Option<(String, bool)>,
}

/// The audit filter as the form shows it.
#[derive(Default)]
pub struct AuditForm {
    pub user: String,
    pub event: String,
    pub outcome: String,
    pub ip: String,
    pub from: String,
    pub to: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
pub struct AdminAuditView<'a> {
    pub l: Layout<'a>,
    pub roles: crate::session::Roles,
    pub f: AuditForm,
    pub query: String,
    /// The filter's field that cannot be read (a date field that is not a date, or one a personal
    /// number was typed into), or "".
    pub bad_field: &'static str,
    pub error: Option<String>,
    pub rows: Vec<Row>,
    pub total: i64,
    pub page: i64,
    pub more: bool,
    /// The event kinds and outcomes to filter by: (id, name).
    pub events: Vec<(&'static str, String)>,
    pub outcomes: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "admin_reauth.html")]
pub struct AdminReauthView<'a> {
    pub l: Layout<'a>,
    pub back: &'a str,
    /// Asked for the administration pages (else: before a change of enrolled services).
    pub admin: bool,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_verify.html")]
pub struct AdminVerifyView<'a> {
    pub l: Layout<'a>,
    pub roles: crate::session::Roles,
    pub message: Option<String>,
    pub message_class: &'static str,
    pub code_action: Option<String>,
    pub user_id: String,
    pub show_form: bool,
    /// While BankID waits for the caller: this page's address, to follow it (follow.js) and,
    /// without JavaScript, to refresh it every five seconds or now.
    pub refresh: Option<String>,
    pub js: String,
    /// After a verified caller: what "lift the cooling-off" needs and offers.
    pub lift: Option<LiftChoice>,
    /// While BankID waits for the caller: where to cancel the order (the agent doubts the caller).
    pub cancel: Option<String>,
}

#[derive(Template)]
#[template(path = "change_password.html")]
pub struct ChangeView<'a> {
    pub l: Layout<'a>,
    pub js: String,
    pub ask_username: bool,
    pub username: &'a str,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub rules: Vec<(&'static str, String, &'static str)>,
    pub rules_json: String,
    pub done: bool,
    pub next: &'static str,
}

/// One password policy as a row of the status page: name and each setting, as shown.
pub type PolicyRow = [String; 9];

#[derive(Template)]
#[template(path = "admin_status.html")]
pub struct AdminStatusView<'a> {
    pub l: Layout<'a>,
    pub roles: crate::session::Roles,
    pub version: &'static str,
    /// (url, state key, answer)
    pub dcs: Vec<(String, String, String)>,
    pub policies: Vec<PolicyRow>,
    /// Why a policy could not be read, if it could not.
    pub policy_error: Option<String>,
    pub history: String,
    /// (name key, answer)
    pub backends: Vec<(&'static str, String)>,
    pub outbox_queued: i64,
    pub outbox_oldest: String,
}

/// The services of a verified caller that are cooling off, for the agent to choose which ones the
/// caller confirms as theirs.
pub struct LiftChoice {
    pub user_id: String,
    /// `sms:{challenge}` or `bankid:{order}`.
    pub proof: String,
    /// (service id, what it is: "Mobile code: +46 70 *** ** 67, enrolled 2026-12-02 10:41").
    pub cooling: Vec<(&'static str, String)>,
    /// Why the services are listed but not offered (the message's key): a privileged account and
    /// the agent no administrator, or AD not telling whether the account is privileged.
    pub not_offered: Option<&'static str>,
}
