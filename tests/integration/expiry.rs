//! Password-expiry reminders against Samba, with a controlled clock: a mail (and a text to the
//! enrolled number) at 14, 7 and 1 days before the password expires, each once; the expiry time
//! follows a fine-grained policy; none for passwords that never expire or disabled accounts; one
//! round at a time.

use stjarna::clock::{Clock, LocalTime};

use crate::helpers::{TestUser, csrf_in, location};
use crate::sims::{Gateway, spawn_with_sms};

const DAY: i64 = 86400;
const NUMBER: &str = "+46701234567";

fn expiry_of(filetime: &str) -> i64 {
    filetime.parse::<i64>().unwrap() / 10_000_000 - 11_644_473_600
}

#[tokio::test]
async fn reminders_go_out_before_a_password_expires_once_each_and_never_where_it_does_not() {
    let dc = require_dc!();
    let ou = dc.create_ou("expiry").await;
    let anna = dc.create_user_in("exp", &ou).await;
    let never = dc.create_user_in("expnever", &ou).await;
    dc.modify(&never.dn, "userAccountControl", "66048").await; // NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD
    let disabled = dc.create_user_in("expoff", &ou).await;
    dc.modify(&disabled.dn, "userAccountControl", "514").await;
    // A fine-grained policy whose passwords last ten days: the expiry time follows it.
    let short = dc.create_user_in("expshort", &ou).await;
    let pso = dc.create_pso(&short.dn, 8, 0).await;
    dc.modify(&pso, "msDS-MaximumPasswordAge", "-8640000000000").await;

    let scoped = |c: String| {
        c.replace("base_dn = \"DC=example,DC=test\"", &format!("base_dn = \"{ou}\""))
            + "\n[expiry]\nenabled = true\ndays_before = [14, 7, 1]\nsms = true\ncheck_minutes = 1440\n"
    };
    let t = spawn_with_sms(&dc, Gateway::Elks46, scoped).await;
    enrol_number(&t, &anna).await;
    let job = t.app.expiry.clone().expect("expiry reminders are on");
    let expires = expiry_of(&dc.attr(&anna.dn, "msDS-UserPasswordExpiryTimeComputed").await.unwrap());
    let now = t.app.clock.now();
    // Times in mail are the portal's (Europe/Stockholm by default), with the zone.
    let stockholm = LocalTime::new("Europe/Stockholm").unwrap();
    assert!((expires - now - 42 * DAY).abs() < 120, "the test domain's passwords last 42 days");

    let round = async |at: i64| {
        t.app.clock.advance_seconds(at - t.app.clock.now());
        job.run_once(at).await.unwrap().expect("no other round runs")
    };
    let short_expires = expiry_of(&dc.attr(&short.dn, "msDS-UserPasswordExpiryTimeComputed").await.unwrap());
    assert!((short_expires - now - 10 * DAY).abs() < 120, "the PSO's maximum age applies");
    assert_eq!(round(now).await.mails, 1, "42 days before: nothing for Anna yet; the PSO's user 10 days before");
    let short_subject = format!("Stjärna: ditt lösenord går ut {}", stockholm.format(short_expires));
    t.mail_to(&format!("{}@example.test", short.name), &short_subject).await;

    let subject = format!("Stjärna: ditt lösenord går ut {}", stockholm.format(expires));
    let texts_before = t.texts_count(NUMBER);
    let first = round(expires - 13 * DAY).await;
    assert_eq!((first.mails, first.texts), (1, 1), "13 days before: the 14-day reminder, by mail and text");
    let mail = t.mail_to(&format!("{}@example.test", anna.name), &subject).await;
    assert!(mail.text.contains("http://127.0.0.1/change"), "a link to Byt lösenord: {}", mail.text);
    assert!(mail.text.contains(&anna.name), "names the account");
    let text = t.sms.as_ref().unwrap().state.messages_to(NUMBER);
    assert_eq!(text.len(), texts_before + 1);
    assert!(text.last().unwrap().text.contains("går ut"), "{:?}", text.last());
    assert!(!text.last().unwrap().text.contains("http"), "no link in a text (that is what smishing looks like)");

    assert_eq!(round(expires - 13 * DAY + 3600).await.mails, 0, "once");
    assert_eq!(round(expires - 8 * DAY).await.mails, 0, "nothing between reminders");
    assert_eq!(round(expires - 6 * DAY).await.mails, 1, "the 7-day reminder");
    assert_eq!(round(expires - DAY / 2).await.mails, 1, "the 1-day reminder");
    assert_eq!(round(expires - DAY / 4).await.mails, 0);
    assert_eq!(round(expires + DAY).await.mails, 0, "expired: nothing more");

    let to = |u: &TestUser| format!("{}@example.test", u.name);
    let reminders_sent = || t.mail.state.mails_to(&to(&anna)).iter().filter(|m| m.subject == subject).count();
    for _ in 0..100 {
        if reminders_sent() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(reminders_sent(), 3, "three reminders in all");
    assert!(t.mail.state.mails_to(&to(&never)).is_empty(), "a password that never expires");
    assert!(t.mail.state.mails_to(&to(&disabled)).is_empty(), "a disabled account");
    let audit = t.app.audit().await;
    let reminders: Vec<_> = audit.iter().filter(|a| a.event == "expiry-reminder").collect();
    let of = |u: &TestUser| reminders.iter().filter(|a| a.username.as_deref() == Some(u.name.as_str())).count();
    assert_eq!((of(&anna), of(&short), reminders.len()), (3, 1, 4), "{reminders:?}");
    assert!(reminders.iter().all(|a| a.outcome == "success"));

    // One round at a time: while another instance holds the job, a round here does nothing, and
    // runs once it is given back. (Two rounds started together here would test only how fast the
    // first one is: it gives the job back when it is done. The contract suite claims it in parallel.)
    let (store, at) = (t.app.store().await, expires + 2 * DAY);
    assert!(store.claim_job("expiry-reminders", at, at + 900).await.unwrap(), "held as another instance would");
    assert!(job.run_once(at).await.unwrap().is_none(), "a round while another instance holds the job");
    store.release_job("expiry-reminders", at + 900, at).await.unwrap();
    assert!(job.run_once(at).await.unwrap().is_some(), "a round once it is given back");
}

/// Enrols the mobile number for `user` (logged in with the password, the first service).
async fn enrol_number(t: &crate::sims::SimTest, user: &TestUser) {
    t.app.login(&user.name, &user.password).await;
    let csrf = csrf_in(&t.app.get_html("/enrol/sms").await);
    let res = t.app.post("/enrol/sms", &[("csrf", &csrf), ("country", "SE"), ("number", "0701234567")]).await;
    let page = location(&res);
    let code = t.sms.as_ref().unwrap().state.last_code_to(NUMBER).unwrap();
    let csrf = csrf_in(&t.app.get_html(&page).await);
    let res = t.app.post(&page, &[("csrf", &csrf), ("code", &code)]).await;
    let done = t.app.get_html(&location(&res)).await;
    assert!(crate::helpers::text_of(&done, "sms-done").is_some(), "the number is enrolled: {done}");
}
