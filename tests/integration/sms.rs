//! Mobile code through the SMS gateway simulator, over real HTTP (46elks, Twilio, webhook).

use stjarna::simulators::sms::SmsFault;

use crate::helpers::{TestUser, csrf_in, location, new_client, text_of};
use crate::sims::{ANNA, Gateway, SimTest, spawn_with_sms};

const SMS_LIMITS: &str =
    "per_user_per_hour = 5\nper_ip_per_hour = 20\nper_number_per_hour = 5\nper_prefix_per_hour = 50";

async fn logged_in(
    dc: &crate::helpers::TestDc,
    prefix: &str,
    gateway: Gateway,
    edit: impl FnOnce(String) -> String,
) -> (TestUser, SimTest) {
    let user = dc.create_user(prefix).await;
    let t = spawn_with_sms(dc, gateway, edit).await;
    t.app.login(&user.name, &user.password).await;
    (user, t)
}

impl SimTest {
    fn phone(&self) -> &stjarna::simulators::sms::SmsSimulator {
        self.sms.as_ref().expect("an SMS simulator")
    }

    /// Submits a number on the enrolment form: Ok(challenge id) or the error on the page.
    async fn send_code(&self, country: &str, number: &str) -> Result<String, String> {
        let csrf = csrf_in(&self.app.get_html("/enrol/sms").await);
        let res = self.app.post("/enrol/sms", &[("csrf", &csrf), ("country", country), ("number", number)]).await;
        let to = location(&res);
        if to.starts_with("/sms/") {
            return Ok(to.trim_start_matches("/sms/").to_string());
        }
        // Post/redirect/get: the number page again, with the error.
        assert!(to.starts_with("/enrol/sms?note="), "{to}");
        Err(self.app.error_after(res, "sms-error").await)
    }

    /// Types a code: the success or error text on the page.
    async fn type_code(&self, id: &str, code: &str) -> String {
        let page = self.app.get_html(&format!("/sms/{id}")).await;
        let res = self.app.post(&format!("/sms/{id}"), &[("csrf", &csrf_in(&page)), ("code", code)]).await;
        // Post/redirect/get: the outcome is on the page the POST redirects to.
        assert_eq!(res.status(), 303, "a typed code redirects");
        let html = self.app.get_html(&location(&res)).await;
        text_of(&html, "sms-done")
            .or_else(|| text_of(&html, "sms-error"))
            .unwrap_or_else(|| panic!("no outcome: {html}"))
    }

    async fn resend(&self, id: &str) -> reqwest::Response {
        let page = self.app.get_html(&format!("/sms/{id}")).await;
        self.app.post(&format!("/sms/{id}/resend"), &[("csrf", &csrf_in(&page))]).await
    }

    fn code_for(&self, e164: &str) -> String {
        self.phone().state.last_code_to(e164).expect("a code reached the phone")
    }
}

fn wrong(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

#[tokio::test]
async fn enrols_numbers_however_they_are_typed() {
    let dc = require_dc!();
    for (country, typed, e164, masked) in [
        ("SE", "070-123 45 67", "+46701234567", "+46 70 *** ** 67"),
        ("SE", "+46701234567", "+46701234567", "+46 70 *** ** 67"),
        ("SE", "0046 70 123 45 67", "+46701234567", "+46 70 *** ** 67"),
        ("SE", "+47 412 34 567", "+4741234567", "+47 41 ** ** 67"),
    ] {
        let (_, t) = logged_in(&dc, "sms", Gateway::Elks46, |c| c).await;
        let id = t.send_code(country, typed).await.unwrap_or_else(|e| panic!("{typed}: {e}"));
        let page = t.app.get_html(&format!("/sms/{id}")).await;
        assert_eq!(
            text_of(&page, "sms-sent").unwrap(),
            format!("Koden skickades till {masked}. Kolla dina sms och skriv in koden nedan.")
        );
        let sent = t.phone().state.messages_to(e164);
        assert_eq!(sent.len(), 1, "{typed}");
        assert_eq!((sent[0].api.as_str(), sent[0].from.as_str()), ("46elks", "Stjarna"));
        let code = t.code_for(e164);
        assert_eq!(
            sent[0].text,
            format!("{code} är din kod till Stjärna. Den gäller i 5 minuter. Dela den aldrig med någon.")
        );
        assert_eq!(
            t.type_code(&id, &code).await,
            "Du har nu registrerat ditt mobiltelefonnummer för återställning av lösenord!"
        );
        let home = t.app.get_html("/").await;
        assert!(home.contains(masked), "{typed}: the number is shown masked");
        assert!(!home.contains(&e164[3..]), "never in full");
    }
}

#[tokio::test]
async fn a_landline_is_refused_clearly_and_nothing_is_sent() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "landline", Gateway::Elks46, |c| c).await;
    let err = t.send_code("SE", "08-123 456 78").await.unwrap_err();
    assert_eq!(err, "Numret är inte ett mobilnummer. Ange ett mobilnummer som kan ta emot sms.");
    assert_eq!(
        t.send_code("SE", "12").await.unwrap_err(),
        "Numret går inte att tolka som ett telefonnummer. Kontrollera numret och landet och försök igen."
    );
    assert_eq!(t.send_code("SE", "").await.unwrap_err(), "Skriv in ditt mobilnummer.");
    assert!(t.phone().state.messages().is_empty());
}

#[tokio::test]
async fn wrong_expired_and_too_many_codes_are_refused() {
    let dc = require_dc!();
    let (user, t) = logged_in(&dc, "codes", Gateway::Elks46, |c| c).await;
    let id = t.send_code("SE", "0701234567").await.unwrap();
    let code = t.code_for("+46701234567");
    // A slip of the keyboard (not six digits) is said as such, and uses no try.
    for typo in ["12345", " ", "12a456", &format!("{code}1")] {
        assert_eq!(t.type_code(&id, typo).await, "En kod är sex siffror. Skriv de sex siffrorna från sms:et.");
    }
    assert_eq!(t.type_code(&id, &wrong(&code)).await, "Fel kod. Du har 2 försök kvar.");
    assert_eq!(t.type_code(&id, &wrong(&code)).await, "Fel kod. Du har 1 försök kvar.");
    assert_eq!(t.type_code(&id, &wrong(&code)).await, "För många felaktiga försök. Begär en ny kod.");
    assert_eq!(t.type_code(&id, &code).await, "För många felaktiga försök. Begär en ny kod.", "the code is dead");

    let id = t.send_code("SE", "0701234567").await.unwrap();
    let code = t.code_for("+46701234567");
    t.app.clock.advance_seconds(301);
    assert_eq!(t.type_code(&id, &code).await, "Koden har gått ut. Begär en ny kod.");

    let user_id = t.app.sessions().await[0].user_id.clone();
    assert!(t.app.store().await.sms_enrolment(&user_id).await.unwrap().is_none(), "nothing enrolled");
    let audit = t.app.audit().await;
    assert!(audit.iter().any(|a| a.event == "sms-check" && a.detail.as_deref() == Some("enrol: too many wrong codes")));
    assert!(audit.iter().any(|a| a.event == "sms-check" && a.detail.as_deref() == Some("enrol: code expired")));
    assert!(audit.iter().any(|a| a.event == "sms-send" && a.username.as_deref() == Some(user.name.as_str())));
    // The codes are stored only as argon2 hashes.
    let hashes: Vec<(String,)> = t.app.store().await.fetch_all("SELECT code_hash FROM sms_challenges").await;
    assert!(hashes.iter().all(|(h,)| h.starts_with("$argon2id$") && !h.contains(&code)));
}

#[tokio::test]
async fn a_new_code_waits_for_the_cooldown_and_replaces_the_old_one() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "resend", Gateway::Elks46, |c| c).await;
    let id = t.send_code("SE", "0701234567").await.unwrap();
    let first = t.code_for("+46701234567");
    let res = t.resend(&id).await;
    assert_eq!(location(&res), format!("/sms/{id}"), "post/redirect/get");
    let html = t.app.get_html(&location(&res)).await;
    // The wait is said once, beside the button, and the code can still be typed.
    assert_eq!(html.matches("Du kan få en ny kod om 60 sekunder.").count(), 1, "{html}");
    assert!(text_of(&html, "sms-error").is_none());
    assert!(html.contains("id=\"code\""), "the code field is there");
    assert_eq!(t.phone().state.messages().len(), 1, "no second text within the cooldown");
    t.app.clock.advance_seconds(60);
    assert_eq!(location(&t.resend(&id).await), format!("/sms/{id}"));
    let second = t.code_for("+46701234567");
    assert_eq!(t.phone().state.messages().len(), 2);
    if first != second {
        assert_eq!(t.type_code(&id, &first).await, "Fel kod. Du har 2 försök kvar.", "one live code per challenge");
    }
    assert_eq!(
        t.type_code(&id, &second).await,
        "Du har nu registrerat ditt mobiltelefonnummer för återställning av lösenord!"
    );
}

#[tokio::test]
async fn a_gateway_failure_is_explained_and_nothing_is_enrolled() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "gwfail", Gateway::Elks46, |c| {
        c.replace("from = \"Stjarna\"", "from = \"Stjarna\"\ntimeout_seconds = 1")
    })
    .await;
    // One server error is retried, and the text arrives once.
    t.phone().state.inject(SmsFault::ServerError, 1);
    assert!(t.send_code("SE", "0701234567").await.is_ok());
    assert_eq!(t.phone().state.messages().len(), 1);
    // Three in a row: the user is told, and nothing is stored.
    t.phone().state.inject(SmsFault::ServerError, 3);
    let err = t.send_code("SE", "0709876543").await.unwrap_err();
    assert_eq!(err, "Det gick inte att skicka sms just nu. Inget har registrerats. Försök igen om en stund.");
    // A gateway that does not answer in time: the same.
    t.phone().state.inject(SmsFault::Slow(std::time::Duration::from_millis(1500)), 1);
    assert_eq!(t.send_code("SE", "0709876543").await.unwrap_err(), err);
    let user_id = t.app.sessions().await[0].user_id.clone();
    assert!(t.app.store().await.enrolments(&user_id).await.unwrap().is_empty());
    let audit = t.app.audit().await;
    assert!(audit.iter().any(|a| a.event == "sms-send" && a.outcome == "failure"));
    // The gateway's error body quoted the number: none of it is kept.
    assert!(audit.iter().all(|a| !a.detail.as_deref().unwrap_or("").contains("recipient")), "{audit:?}");
}

#[tokio::test]
async fn every_rate_limit_stops_sending() {
    let dc = require_dc!();
    let message = |body: &str| body.starts_with("För många sms har skickats. Försök igen om");

    // Per user.
    let (_, t) = logged_in(&dc, "peruser", Gateway::Elks46, |c| {
        c + "\n[sms.limits]\n" + &SMS_LIMITS.replace("per_user_per_hour = 5", "per_user_per_hour = 2")
    })
    .await;
    t.send_code("SE", "0701111111").await.unwrap();
    t.send_code("SE", "0702222222").await.unwrap();
    assert!(message(&t.send_code("SE", "0703333333").await.unwrap_err()));
    assert!(t.app.audit().await.iter().any(|a| a.event == "sms-send" && a.outcome == "blocked"));

    // Per destination number, across users.
    let t = spawn_with_sms(&dc, Gateway::Elks46, |c| {
        c + "\n[sms.limits]\n" + &SMS_LIMITS.replace("per_number_per_hour = 5", "per_number_per_hour = 1")
    })
    .await;
    let mut t = t;
    let a = dc.create_user("pernum").await;
    t.app.login(&a.name, &a.password).await;
    t.send_code("SE", "0704444444").await.unwrap();
    let b = dc.create_user("pernum").await;
    t.app.client = new_client();
    t.app.login(&b.name, &b.password).await;
    assert!(message(&t.send_code("SE", "070-444 44 44").await.unwrap_err()));
    t.send_code("SE", "0705555555").await.expect("another number is fine");

    // Per address, across users.
    let mut t = spawn_with_sms(&dc, Gateway::Elks46, |c| {
        c + "\n[sms.limits]\n" + &SMS_LIMITS.replace("per_ip_per_hour = 20", "per_ip_per_hour = 2")
    })
    .await;
    for (i, number) in ["0706000001", "0706000002"].iter().enumerate() {
        let u = dc.create_user(&format!("perip{i}")).await;
        t.app.client = new_client();
        t.app.login(&u.name, &u.password).await;
        t.send_code("SE", number).await.unwrap();
    }
    assert!(message(&t.send_code("SE", "0706000003").await.unwrap_err()));

    // Per number range (against SMS pumping to one block of numbers).
    let mut t = spawn_with_sms(&dc, Gateway::Elks46, |c| {
        c + "\n[sms.limits]\n" + &SMS_LIMITS.replace("per_prefix_per_hour = 50", "per_prefix_per_hour = 2")
    })
    .await;
    for (i, number) in ["0737000001", "0737000002"].iter().enumerate() {
        let u = dc.create_user(&format!("prefix{i}")).await;
        t.app.client = new_client();
        t.app.login(&u.name, &u.password).await;
        t.send_code("SE", number).await.unwrap();
    }
    assert!(message(&t.send_code("SE", "0737000003").await.unwrap_err()), "same +46737 range");
    t.send_code("SE", "0708000003").await.expect("another range is fine");
    // An hour later the limits have passed (and the idle session with them: log in again).
    t.app.clock.advance_seconds(3601);
    let u = dc.create_user("later").await;
    t.app.client = new_client();
    t.app.login(&u.name, &u.password).await;
    t.send_code("SE", "0737000003").await.unwrap();
}

#[tokio::test]
async fn a_code_asked_for_in_one_session_cannot_be_used_in_another() {
    let dc = require_dc!();
    let (user, mut t) = logged_in(&dc, "bound", Gateway::Elks46, |c| c).await;
    let id = t.send_code("SE", "0701234567").await.unwrap();
    let code = t.code_for("+46701234567");
    let first = std::mem::replace(&mut t.app.client, new_client());
    t.app.login(&user.name, &user.password).await;
    assert_eq!(t.app.get(&format!("/sms/{id}")).await.status(), 404);
    let csrf = csrf_in(&t.app.get_html("/").await);
    assert_eq!(t.app.post(&format!("/sms/{id}"), &[("csrf", &csrf), ("code", &code)]).await.status(), 404);
    assert_eq!(t.app.post(&format!("/sms/{id}/resend"), &[("csrf", &csrf)]).await.status(), 404);
    t.app.client = first;
    assert_eq!(
        t.type_code(&id, &code).await,
        "Du har nu registrerat ditt mobiltelefonnummer för återställning av lösenord!"
    );
}

#[tokio::test]
async fn twilio_and_a_webhook_work_too() {
    let dc = require_dc!();
    for gateway in [Gateway::Twilio, Gateway::Webhook] {
        let (_, t) = logged_in(&dc, "gw", gateway, |c| c).await;
        let id = t.send_code("GB", "07400 123456").await.unwrap();
        let sent = t.phone().state.messages_to("+447400123456");
        assert_eq!(sent.len(), 1, "{gateway:?}");
        assert_eq!(sent[0].api, if gateway == Gateway::Twilio { "twilio" } else { "webhook" });
        assert!(t.type_code(&id, &t.code_for("+447400123456")).await.starts_with("Du har nu registrerat"));
    }
}

#[tokio::test]
async fn bankid_and_a_mobile_code_fill_the_star_row_and_can_be_verified() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "both", Gateway::Elks46, |c| c).await;
    t.enrol(ANNA).await;
    let id = t.send_code("SE", "0701234567").await.unwrap();
    t.type_code(&id, &t.code_for("+46701234567")).await;
    let home = t.app.get_html("/").await;
    assert_eq!(text_of(&home, "enrolment-status").unwrap(), "Du är registrerad. Stjärnraden är full.");
    let doc = scraper::Html::parse_document(&home);
    assert_eq!(doc.select(&scraper::Selector::parse("#star-row .star.filled").unwrap()).count(), 5);

    // Verification later sends a code to the enrolled number.
    let res = t.post_from("/", "/verify/sms").await;
    let id = location(&res).trim_start_matches("/sms/").to_string();
    assert_eq!(t.phone().state.messages_to("+46701234567").len(), 2);
    assert_eq!(t.type_code(&id, &t.code_for("+46701234567")).await, "Ditt mobilnummer är bekräftat.");
}

#[tokio::test]
async fn the_number_can_come_from_ad() {
    let dc = require_dc!();
    let user = dc.create_user("admobile").await;
    dc.modify(&user.dn, "mobile", "070-765 43 21").await;
    let t = spawn_with_sms(&dc, Gateway::Elks46, |c| c).await;
    t.app.login(&user.name, &user.password).await;
    let form = t.app.get_html("/enrol/sms").await;
    assert!(form.contains("value=\"070-765 43 21\""), "prefilled from AD");

    // Accept only the AD number: whatever is typed, the code goes there.
    let t = spawn_with_sms(&dc, Gateway::Elks46, |c| {
        c.replace("from = \"Stjarna\"", "from = \"Stjarna\"\nonly_ad_number = true")
    })
    .await;
    t.app.login(&user.name, &user.password).await;
    let form = t.app.get_html("/enrol/sms").await;
    assert_eq!(text_of(&form, "ad-number").unwrap(), "+46 70 *** ** 21");
    assert!(!form.contains("name=\"number\""), "no number field");
    let id = t.send_code("SE", "0701234567").await.unwrap();
    assert!(t.phone().state.messages_to("+46701234567").is_empty());
    assert!(t.type_code(&id, &t.code_for("+46707654321")).await.starts_with("Du har nu registrerat"));

    let other = dc.create_user("noadmobile").await;
    let t = spawn_with_sms(&dc, Gateway::Elks46, |c| {
        c.replace("from = \"Stjarna\"", "from = \"Stjarna\"\nonly_ad_number = true")
    })
    .await;
    t.app.login(&other.name, &other.password).await;
    assert_eq!(
        t.send_code("SE", "0701234567").await.unwrap_err(),
        "Ditt konto saknar ett giltigt mobilnummer i katalogen. Kontakta servicedesken."
    );
}

#[tokio::test]
async fn reloading_after_a_wrong_code_spends_no_try() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "smsprg", Gateway::Elks46, |c| c).await;
    let id = t.send_code("SE", "0701234567").await.unwrap();
    let code = t.code_for("+46701234567");
    let page = t.app.get_html(&format!("/sms/{id}")).await;
    let res = t.app.post(&format!("/sms/{id}"), &[("csrf", &csrf_in(&page)), ("code", &wrong(&code))]).await;
    assert_eq!(res.status(), 303);
    let after = location(&res);
    for _ in 0..3 {
        // A reload is a GET of the outcome: the same message, no try spent.
        let html = t.app.get_html(&after).await;
        assert_eq!(text_of(&html, "sms-error").unwrap(), "Fel kod. Du har 2 försök kvar.");
    }
    assert_eq!(
        t.type_code(&id, &code).await,
        "Du har nu registrerat ditt mobiltelefonnummer för återställning av lösenord!",
        "the right code still works"
    );
}

#[tokio::test]
async fn a_code_typed_after_the_session_ended_leads_to_the_login_page_that_says_so() {
    let dc = require_dc!();
    let (_, t) = logged_in(&dc, "codeend", Gateway::Elks46, |c| c).await;
    let id = t.send_code("SE", "0701234567").await.unwrap();
    let code = t.code_for("+46701234567");
    let page = t.app.get_html(&format!("/sms/{id}")).await;
    t.app.clock.advance_seconds(24 * 3600);
    let res = t.app.post(&format!("/sms/{id}"), &[("csrf", &csrf_in(&page)), ("code", &code)]).await;
    assert!(t.app.told(&res).await.starts_with("/login Din session har avslutats"), "not 'page not found'");
}

/// A password thief who asks for step-up codes again and again gets ten wrong guesses a day in
/// all, not three a text: past them no code is checked, the right one neither, and the page says so.
#[tokio::test]
async fn wrong_step_up_codes_are_counted_for_the_day_across_new_codes() {
    let dc = require_dc!();
    // Five texts in all: the default limit per user and hour.
    let (user, mut t) = logged_in(&dc, "guesses", Gateway::Elks46, |c| c).await;
    let id = t.send_code("SE", "0701234567").await.unwrap();
    t.type_code(&id, &t.code_for("+46701234567")).await;
    let verify = || async {
        let res = t.post_from("/", "/verify/sms").await;
        let id = location(&res).trim_start_matches("/sms/").to_string();
        (t.code_for("+46701234567"), id)
    };
    for _ in 0..3 {
        let (code, id) = verify().await;
        for _ in 0..3 {
            t.type_code(&id, &wrong(&code)).await;
        }
    }
    let (code, id) = verify().await;
    assert_eq!(t.type_code(&id, &wrong(&code)).await, "Fel kod. Du har 2 försök kvar.", "the tenth");
    assert_eq!(
        t.type_code(&id, &code).await,
        "Fel kod har skrivits för många gånger det senaste dygnet, så koden kontrollerades inte. Bekräfta med en annan tjänst, eller försök igen senare."
    );
    let audit = t.app.audit().await;
    assert!(audit.iter().any(|a| a.event == "sms-check" && a.outcome == "blocked"), "{audit:#?}");

    // The owner changes the password: whoever used up the day's codes with the old one has not
    // used up the owner's, which are counted per password. (An hour later: the texts to one
    // number in an hour are counted whoever asks.)
    t.app.clock.advance_seconds(3601);
    let new_password = "Ägarens-nya-lösen-77";
    dc.set_password(&user.dn, new_password).await;
    t.app.client = crate::helpers::new_client();
    assert_eq!(t.app.login(&user.name, new_password).await.status(), 303);
    let res = t.post_from("/", "/verify/sms").await;
    let id = location(&res).trim_start_matches("/sms/").to_string();
    assert!(!id.is_empty() && !id.contains('?'), "a code was sent: {id}");
    let code = t.code_for("+46701234567");
    assert_eq!(t.type_code(&id, &code).await, "Ditt mobilnummer är bekräftat.");
}

/// Numbers abroad beyond the countries offered are not enrolled, and no text goes there (premium
/// ranges abroad are what SMS pumping lives on), however the number is typed.
#[tokio::test]
async fn a_number_of_a_country_not_offered_is_refused_and_nothing_is_sent() {
    let dc = require_dc!();
    let (_, t) =
        logged_in(&dc, "abroad", Gateway::Elks46, |c| c.replace("[sms]\n", "[sms]\ncountries = [\"SE\", \"NO\"]\n"))
            .await;
    for typed in ["+2348031234567", "002348031234567", "+4915112345678"] {
        let refused = t.send_code("SE", typed).await.unwrap_err();
        assert_eq!(
            refused,
            "Mobilnummer från det landet tas inte emot här. Använd ett nummer från något av länderna i listan, eller fråga servicedesken."
        );
    }
    assert!(t.phone().state.messages().is_empty(), "nothing sent");
    let page = t.app.get_html("/enrol/sms").await;
    assert!(page.contains("value=\"NO\"") && !page.contains("value=\"DE\""), "the selector offers the configured ones");
    assert!(t.send_code("NO", "912 34 567").await.is_ok(), "a Norwegian number is");
}
