//! The BankID simulator beside the portal, and driving the simulated app over HTTP.

use std::sync::Arc;

use stjarna::clock::{ManualClock, OsRandom};
use stjarna::simulators::bankid::{BankIdSimulator, Options};
use stjarna::simulators::tls::CLIENT_P12_PASSWORD;

use stjarna::simulators::mail::{Mail, MailSimulator};
use stjarna::simulators::sms::{Credentials, SmsSimulator};

use crate::helpers::{TestApp, TestDc, location, spawn_app_with_clock, with_section};

pub const ANNA: &str = "198112189876";
pub const BERTIL: &str = "197010632391";
pub const BLOCKED: &str = "195001182046";
pub const DATA_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// The portal with its simulators: BankID always, an SMS gateway when asked for.
pub struct SimTest {
    pub app: TestApp,
    pub sim: BankIdSimulator,
    pub sms: Option<SmsSimulator>,
    pub mail: MailSimulator,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Which SMS gateway API the portal uses towards the simulator.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Gateway {
    Elks46,
    Twilio,
    Webhook,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Rp,
    Idkollen,
}

/// The portal with BankID through the simulator (RP API over mutual TLS, PKCS#12 client certificate).
pub async fn spawn_with_bankid(dc: &TestDc, edit: impl FnOnce(String) -> String) -> SimTest {
    spawn_with(dc, Backend::Rp, edit).await
}

pub async fn spawn_with(dc: &TestDc, backend: Backend, edit: impl FnOnce(String) -> String) -> SimTest {
    spawn_world(dc, backend, None, edit).await
}

/// The portal with BankID and an SMS gateway, both simulated.
pub async fn spawn_with_sms(dc: &TestDc, gateway: Gateway, edit: impl FnOnce(String) -> String) -> SimTest {
    spawn_world(dc, Backend::Rp, Some(gateway), edit).await
}

pub async fn spawn_world(
    dc: &TestDc,
    backend: Backend,
    gateway: Option<Gateway>,
    edit: impl FnOnce(String) -> String,
) -> SimTest {
    crate::helpers::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let mut opts = Options::new(dir.path().to_path_buf());
    opts.clock = Arc::new(clock.clone());
    opts.random = Arc::new(OsRandom);
    let sim = BankIdSimulator::start(opts).await.expect("the simulator starts");
    let connection = match backend {
        Backend::Rp => format!(
            "backend = \"rp\"\nurl = \"{}\"\nca_file = \"{}\"\nclient_certificate_file = \"{}\"\nclient_certificate_password = \"{}\"\n",
            sim.api_url,
            sim.certs.ca_pem.display(),
            sim.certs.client_p12.display(),
            CLIENT_P12_PASSWORD
        ),
        Backend::Idkollen => format!(
            "backend = \"idkollen\"\nurl = \"{}\"\nca_file = \"{}\"\naccount_id = \"{}\"\nsecret_key = \"{}\"\n",
            sim.broker_url,
            sim.certs.ca_pem.display(),
            sim.broker.account_id,
            sim.broker.secret_key
        ),
    };
    let bankid = format!("{connection}launch_url = \"{}?autostarttoken={{token}}\"", sim.app_url);
    let sms = match gateway {
        Some(_) => Some(
            SmsSimulator::start("127.0.0.1:0", Credentials::default(), Arc::new(clock.clone()), Arc::new(OsRandom))
                .await
                .expect("the SMS simulator starts"),
        ),
        None => None,
    };
    let sms_section = sms.as_ref().zip(gateway).map(|(s, g)| {
        let c = Credentials::default();
        match g {
            Gateway::Elks46 => format!(
                "gateway = \"46elks\"\nurl = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\nfrom = \"Stjarna\"",
                s.url, c.elks_username, c.elks_password
            ),
            Gateway::Twilio => format!(
                "gateway = \"twilio\"\nurl = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\nfrom = \"+46700000000\"",
                s.url, c.twilio_sid, c.twilio_token
            ),
            Gateway::Webhook => format!(
                "gateway = \"webhook\"\nurl = \"{}/webhook\"\npassword = \"{}\"\nfrom = \"Stjarna\"",
                s.url, c.webhook_token
            ),
        }
    });
    let mail = MailSimulator::start("127.0.0.1:0", "127.0.0.1:0").await.expect("the mail sink starts");
    let mail_section = format!(
        "\n[mail]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"Stjärna <noreply@example.test>\"\n",
        mail.smtp.port()
    );
    let app = spawn_app_with_clock(dc, clock, |c| {
        let c = c + &mail_section;
        let c = with_section(&c, "[security]", &format!("data_key = \"{DATA_KEY}\""));
        let c = with_section(&c, "[bankid]", &bankid);
        let c = match &sms_section {
            Some(body) => with_section(&c, "[sms]", body),
            None => c,
        };
        edit(c)
    })
    .await;
    let http = crate::helpers::client_builder().build().unwrap();
    SimTest { app, sim, sms, mail, http, _dir: dir }
}

/// A new AD user, logged in to a portal that has BankID through the simulator.
pub async fn logged_in(
    dc: &TestDc,
    prefix: &str,
    edit: impl FnOnce(String) -> String,
) -> (crate::helpers::TestUser, SimTest) {
    let user = dc.create_user(prefix).await;
    let t = spawn_with_bankid(dc, edit).await;
    t.app.login(&user.name, &user.password).await;
    (user, t)
}

/// The first `/bankid/{id}` in a response's Location.
pub fn flow_id(res: &reqwest::Response) -> String {
    let loc = location(res);
    loc.strip_prefix("/bankid/").unwrap_or_else(|| panic!("not a BankID flow: {loc}")).to_string()
}

impl SimTest {
    /// POSTs a form of the portal that needs only the CSRF token, taken from `page`.
    pub async fn post_from(&self, page: &str, action: &str) -> reqwest::Response {
        let csrf = crate::helpers::csrf_in(&self.app.get_html(page).await);
        self.app.post(action, &[("csrf", &csrf)]).await
    }

    /// Logs `user` in and starts enrolling BankID; returns the flow id.
    pub async fn start_enrol(&self) -> String {
        let res = self.post_from("/", "/enrol/bankid").await;
        assert_eq!(res.status(), 303, "the order starts");
        flow_id(&res)
    }

    /// The flow page's message, after one poll (the clock moves 2 s so that the portal collects).
    pub async fn poll_message(&self, id: &str) -> String {
        self.app.clock.advance_seconds(2);
        let html = self.app.get_html(&format!("/bankid/{id}")).await;
        crate::helpers::text_of(&html, "bankid-message").unwrap_or_else(|| panic!("no message on {html}"))
    }

    /// The payload in the flow's current QR frame, decoded from the SVG the portal serves.
    pub async fn scan_qr_frame(&self, id: &str) -> String {
        let res = self.app.get(&format!("/bankid/{id}/qr.svg")).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "image/svg+xml");
        decode_svg_qr(&res.text().await.unwrap())
    }

    /// Pastes a QR payload into the simulated app as `identity`. Ok(order_ref) or the app's error.
    pub async fn app_scan(&self, payload: &str, identity: &str) -> Result<String, String> {
        let res = self
            .http
            .post(format!("{}/scan", self.sim.app_url))
            .form(&[("identity", identity), ("payload", payload)])
            .send()
            .await
            .unwrap();
        app_result(res).await
    }

    /// Opens the autostart link in the simulated app as `identity`.
    pub async fn app_autostart(&self, launch: &str, identity: &str) -> Result<String, String> {
        let token = launch.split("autostarttoken=").nth(1).expect("an autostart token").to_string();
        let page = self.http.get(launch).send().await.unwrap().text().await.unwrap();
        assert!(page.contains(&token), "the app page carries the token");
        let res = self
            .http
            .post(format!("{}/autostart", self.sim.app_url))
            .form(&[("identity", identity), ("token", token.as_str())])
            .send()
            .await
            .unwrap();
        app_result(res).await
    }

    pub async fn app_press(&self, order_ref: &str, button: &str) -> String {
        let res = self.http.post(format!("{}/order/{order_ref}/{button}", self.sim.app_url)).send().await.unwrap();
        let html = res.text().await.unwrap();
        crate::helpers::text_of(&html, "order-status").unwrap_or_default()
    }

    /// Enrols the logged-in user's BankID as `identity` through the QR path; returns the flow id.
    pub async fn enrol(&self, identity: &str) -> String {
        let id = self.start_enrol().await;
        let payload = self.scan_qr_frame(&id).await;
        let order = self.app_scan(&payload, identity).await.expect("the app reads the QR code");
        self.app_press(&order, "approve").await;
        assert_eq!(self.poll_message(&id).await, "Du har nu registrerat ditt BankID för återställning av lösenord.");
        id
    }
}

impl SimTest {
    /// The code in the next text to `e164` after the `seen` it already had (reset codes are sent
    /// from a queue, after the page answered): waits up to 5 s.
    pub async fn next_code_to(&self, e164: &str, seen: usize) -> String {
        let phone = &self.sms.as_ref().expect("an SMS simulator").state;
        for _ in 0..100 {
            if phone.messages_to(e164).len() > seen {
                return phone.last_code_to(e164).expect("a code in the text");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no new text reached {e164}");
    }

    pub fn texts_count(&self, e164: &str) -> usize {
        self.sms.as_ref().expect("an SMS simulator").state.messages_to(e164).len()
    }

    /// Waits (up to 10 s) for the portal's mailer to deliver a message with `subject` to `to`.
    pub async fn mail_to(&self, to: &str, subject: &str) -> Mail {
        for _ in 0..100 {
            if let Some(m) = self.mail.state.mails_to(to).into_iter().find(|m| m.subject == subject) {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "no mail \"{subject}\" reached {to}: {:?}",
            self.mail.state.mails_to(to).iter().map(|m| &m.subject).collect::<Vec<_>>()
        );
    }
}

async fn app_result(res: reqwest::Response) -> Result<String, String> {
    let html = res.text().await.unwrap();
    if let Some(error) = crate::helpers::text_of(&html, "app-error") {
        return Err(error);
    }
    let marker = "/app/order/";
    let start = html.find(marker).ok_or_else(|| format!("no order on the app page: {html}"))? + marker.len();
    Ok(html[start..].split('/').next().unwrap().to_string())
}

/// Rasterises a frame as the portal draws it (a `viewBox` in modules, one path of runs
/// `M{x} {y}h{n}v1h-{n}z`) and decodes it with rqrr, as a phone camera would read the screen.
/// rqrr misreads a few valid codes at some sizes (its issue #41, `DataEcc`): as a camera would, it
/// looks again at another size before giving up.
pub fn decode_svg_qr(svg: &str) -> String {
    let mut errors = Vec::new();
    for px in [4, 5, 7, 3] {
        match decode_at(svg, px) {
            Ok(payload) => return payload,
            Err(e) => errors.push(format!("{px} px a module: {e}")),
        }
    }
    panic!("the frame does not decode: {errors:?}")
}

fn decode_at(svg: &str, px: usize) -> Result<String, String> {
    let view_box = svg.split(" viewBox=\"0 0 ").nth(1).expect("a viewBox").split('"').next().unwrap();
    let size: usize = view_box.split(' ').next().unwrap().parse().unwrap();
    let w = size * px;
    let mut dark = vec![false; w * w];
    let d = svg.split(" d=\"").nth(1).expect("a path").split('"').next().unwrap();
    for run in d.split('M').filter(|r| !r.is_empty()) {
        let nums: Vec<usize> =
            run.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
        let (x, y, n) = (nums[0], nums[1], nums[2]);
        for yy in y * px..(y + 1) * px {
            for xx in x * px..(x + n) * px {
                dark[yy * w + xx] = true;
            }
        }
    }
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, w, |x, y| if dark[y * w + x] { 0 } else { 255 });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the frame");
    grids[0].decode().map(|(_, payload)| payload).map_err(|e| format!("{e:?}"))
}
