//! Swedish and English: Accept-Language and the remembered switcher.

use crate::helpers::{csrf_in, location, spawn_app, text_of};

#[tokio::test]
async fn the_browser_language_is_used_when_nothing_is_chosen() {
    let dc = require_dc!();
    let app = spawn_app(&dc).await;
    let get = |lang: &'static str| app.client.get(app.url("/login")).header("accept-language", lang).send();
    let en = get("en-GB,en;q=0.9").await.unwrap().text().await.unwrap();
    assert!(en.contains("Log in with your password") && en.contains("<html lang=\"en\">"));
    let sv = get("sv-SE,sv;q=0.9,en;q=0.8").await.unwrap().text().await.unwrap();
    assert!(sv.contains("Logga in med ditt lösenord") && sv.contains("<html lang=\"sv\">"));
    // Neither: the configured default, Swedish.
    let de = get("de-DE").await.unwrap().text().await.unwrap();
    assert!(de.contains("Logga in med ditt lösenord"));
}

#[tokio::test]
async fn the_switcher_changes_and_remembers_the_language() {
    let dc = require_dc!();
    let user = dc.create_user("lang").await;
    let app = spawn_app(&dc).await;
    let page = app.get_html("/login").await;
    let res = app.post("/language", &[("csrf", &csrf_in(&page)), ("lang", "en"), ("back", "/login")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login");
    // Remembered over the browser's own preference.
    let res = app.client.get(app.url("/login")).header("accept-language", "sv").send().await.unwrap();
    assert!(res.text().await.unwrap().contains("Log in with your password"));
    // And used for messages and the logged-in pages.
    assert_eq!(app.login_error(&user.name, "wrong").await, "Wrong username or password.");
    app.login(&user.name, &user.password).await;
    let home = app.get_html("/").await;
    assert!(home.contains("Enrol identity services") && home.contains("Mobile code") && home.contains("0 of 5 stars"));
    // Back to Swedish; an outside "back" address is not followed.
    let res =
        app.post("/language", &[("csrf", &csrf_in(&home)), ("lang", "sv"), ("back", "https://evil.example/")]).await;
    assert_eq!(location(&res), "/");
    assert!(app.get_html("/").await.contains("Registrera identitetstjänster"));
}

/// The `back` value the page's language switcher posts.
fn switcher_back(html: &str) -> String {
    let at = html.find("name=\"back\" value=\"").expect("a language switcher") + "name=\"back\" value=\"".len();
    // As askama escapes an attribute; a browser posts it unescaped.
    html[at..].split('"').next().unwrap().replace("&#38;", "&").replace("&amp;", "&")
}

#[tokio::test]
async fn switching_language_keeps_the_page_and_its_message() {
    let dc = require_dc!();
    let user = dc.create_user("langmsg").await;
    let app = spawn_app(&dc).await;
    // A refused change: the form comes back with its message (post/redirect/get).
    let csrf = csrf_in(&app.get_html("/change").await);
    let form =
        [("csrf", csrf.as_str()), ("username", &user.name), ("current", "wrong"), ("password", "x"), ("repeat", "x")];
    let refused = location(&app.post("/change", &form).await);
    assert!(refused.starts_with("/change?"), "{refused}");
    let page = app.get_html(&refused).await;
    assert_eq!(text_of(&page, "password-error").unwrap(), "Fel användarnamn eller nuvarande lösenord.");
    let back = switcher_back(&page);
    assert_eq!(back, refused, "the switcher comes back to this very page");
    let res = app.post("/language", &[("csrf", &csrf_in(&page)), ("lang", "en"), ("back", &back)]).await;
    assert_eq!(location(&res), refused);
    let page = app.get_html(&refused).await;
    assert_eq!(text_of(&page, "password-error").unwrap(), "Wrong username or current password.");

    // A reset in progress stays where it is (it went back to the start page).
    let csrf = csrf_in(&app.get_html("/reset").await);
    let flow = location(&app.post("/reset", &[("csrf", csrf.as_str()), ("username", &user.name)]).await);
    assert!(flow.starts_with("/reset/"), "{flow}");
    assert_eq!(switcher_back(&app.get_html(&flow).await), flow);
}
