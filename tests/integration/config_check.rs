//! `stjarna check-config` and start-up errors: one clear sentence each, never a panic.

use std::process::Command;

use crate::helpers::TestDc;

fn check(config: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stjarna.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stjarna"))
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .args(extra)
        .env_remove("STJARNA_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), text)
}

fn config(dc: &TestDc) -> String {
    dc.config(std::path::Path::new("/tmp/unused.db"))
}

#[test]
fn a_good_config_and_a_reachable_directory_pass() {
    let dc = require_dc!();
    let (code, text) = check(&config(&dc), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("no problems found; the directory answered"), "{text}");
    assert!(text.contains("warning: the directory does not support password history on resets"), "{text}");
    // The privileged groups in effect are listed, Domain Admins of the domain by default.
    assert!(text.contains(&format!("  - CN=Stjarna Admins,CN=Users,{} (directory.admin_group)", dc.base)), "{text}");
    assert!(
        text.contains(&format!("  - CN=Domain Admins,CN=Users,{} (reset.protected_groups (unset", dc.base)),
        "{text}"
    );
}

#[test]
fn a_group_the_directory_does_not_have_fails_the_check() {
    let dc = require_dc!();
    // Users searched for in an OU: Domain Admins are still those of the domain, which exist.
    let in_ou =
        config(&dc).replace(&format!("base_dn = \"{}\"", dc.base), &format!("base_dn = \"CN=Users,{}\"", dc.base));
    let (code, text) = check(&in_ou, &[]);
    assert_eq!(code, 0, "{text}");
    // A misspelt protected group would protect nobody, and nothing else would show it.
    let typo = format!("{in_ou}\n[reset]\nprotected_groups = [\"CN=Domain Admns,CN=Users,{}\"]\n", dc.base);
    let (code, text) = check(&typo, &[]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains(&format!(
            "reset.protected_groups: CN=Domain Admns,CN=Users,{} is not in the directory: its members would not be treated as privileged",
            dc.base
        )),
        "{text}"
    );
    // Nor a base that is not there (every user would be "unknown").
    let base =
        config(&dc).replace(&format!("base_dn = \"{}\"", dc.base), &format!("base_dn = \"OU=Nobody,{}\"", dc.base));
    let (code, text) = check(&base, &[]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("directory.base_dn: OU=Nobody,"), "{text}");
}

#[test]
fn every_problem_is_listed_in_plain_words() {
    let dc = require_dc!();
    let bad = config(&dc)
        .replace("reset_stars = 3", "reset_stars = 9")
        .replace("[login]", "[login]\nmax_failurs_per_user = 3")
        .replace("ldaps://", "ldap://");
    let (code, text) = check(&bad, &["--offline"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("3 problem(s)"), "{text}");
    assert!(text.contains("login.max_failurs_per_user: is not a setting Stjärna knows"), "{text}");
    assert!(text.contains("enrolment.reset_stars: is 9, above enrolment_stars (5)"), "{text}");
    assert!(text.contains("directory.url: \"ldap://"), "{text}");
    assert!(text.contains("ldap:// without starttls would send passwords in clear text"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn an_unreachable_directory_is_one_sentence() {
    let dc = require_dc!();
    let (code, text) = check(&config(&dc).replace(&dc.url, "ldaps://127.0.0.1:1"), &[]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("the directory at ldaps://127.0.0.1:1 cannot be reached"), "{text}");
    assert_eq!(text.lines().count(), 2, "a heading and one sentence: {text}");
}

#[test]
fn a_wrong_ca_is_one_sentence() {
    let dc = require_dc!();
    let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/other-ca.pem");
    let (code, text) = check(&config(&dc).replace(&dc.ca.display().to_string(), &ca.display().to_string()), &[]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("TLS certificate") && text.contains("is not trusted") && text.contains("directory.ca_file"),
        "{text}"
    );
}

#[test]
fn serve_with_a_bad_config_exits_with_the_problems_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[server]\nlisten = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stjarna")).args(["serve", "--config"]).arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("problem(s)") && !text.contains("panicked"), "{text}");
}

#[test]
fn migrate_creates_the_database() {
    let dc = require_dc!();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sub/stjarna.db");
    let path = dir.path().join("stjarna.toml");
    std::fs::write(&path, dc.config(&db)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stjarna")).args(["migrate", "--config"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db.exists());
}

#[test]
fn weak_choices_are_warned_about_but_do_not_stop_the_portal() {
    let dc = require_dc!();
    let weak = config(&dc);
    let (code, text) = check(&weak, &["--offline"]);
    assert_eq!(code, 0, "{text}");
    // The test config: BankID (3 stars) alone reaches reset_stars (3), no personal-number binding,
    // any mobile number, and no cooling-off.
    for key in
        ["bankid.personal_number_attribute", "services.bankid.stars", "sms.only_ad_number", "enrolment.cooldown_hours"]
    {
        assert!(text.lines().any(|l| l.starts_with("warning: ") && l.contains(key)), "no warning for {key}: {text}");
    }
    assert!(!text.contains("services.sms.stars"), "SMS (2 stars) alone does not reach 3: {text}");
    let strong = config(&dc).replace("cooldown_hours = 0", "cooldown_hours = 24");
    let (_, text) = check(&strong, &["--offline"]);
    assert!(!text.contains("enrolment.cooldown_hours"), "{text}");
}
