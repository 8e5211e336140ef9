//! The directory layer alone, against the real DC.

use secrecy::SecretString;
use stjarna::directory::{BindRefusal, ChangeResult, Directory, LdapDirectory, PasswordCheck, PolicyRef, Username};

use crate::helpers::TestDc;

fn directory(dc: &TestDc) -> LdapDirectory {
    let settings = stjarna::config::from_toml_str(&dc.config(std::path::Path::new("/unused.db"))).unwrap();
    LdapDirectory::new(&settings.directory).unwrap()
}

#[tokio::test]
async fn reads_the_domain_password_and_lockout_policy() {
    let dc = require_dc!();
    let policy = directory(&dc).password_policy(None).await.unwrap();
    // As scripts/lib.sh provisions the domain.
    assert_eq!(policy.min_length, 8);
    assert!(policy.complexity);
    assert_eq!(policy.history_length, 5);
    assert_eq!(policy.lockout_threshold, 5);
    assert_eq!(policy.lockout_duration_minutes, 30);
    assert_eq!(policy.source_pso, None);
}

#[tokio::test]
async fn a_fine_grained_policy_overrides_the_domain_policy_for_its_users() {
    let dc = require_dc!();
    let user = dc.create_user("pso").await;
    let other = dc.create_user("nopso").await;
    let pso = dc.create_pso(&user.dn, 14, 7).await;
    let dir = directory(&dc);
    let policy = dir.password_policy(Some(&user.dn)).await.unwrap();
    assert_eq!(policy.source_pso.as_deref().map(str::to_lowercase), Some(pso.to_lowercase()));
    assert_eq!((policy.min_length, policy.history_length, policy.lockout_threshold), (14, 2, 7));
    assert_eq!((policy.lockout_duration_minutes, policy.max_age_days), (60, 1));
    let domain = dir.password_policy(Some(&other.dn)).await.unwrap();
    assert_eq!((domain.min_length, domain.source_pso), (8, None));

    // A user's look-up reads which policy applies in the same search; the policy follows from it.
    let found = dir.find_user(&Username::Account(user.name.clone())).await.unwrap().unwrap();
    match &found.policy {
        PolicyRef::Pso(dn) => assert_eq!(dn.to_lowercase(), pso.to_lowercase()),
        other => panic!("the PSO was not read with the user: {other:?}"),
    }
    assert_eq!(dir.policy_of(&found).await.unwrap().min_length, 14);
    let found_other = dir.find_user(&Username::Account(other.name.clone())).await.unwrap().unwrap();
    assert_eq!(found_other.policy, PolicyRef::Domain);
    assert_eq!(dir.policy_of(&found_other).await.unwrap().min_length, 8);
    // A listing does not read it: the policy is asked for.
    let listed = dir.all_users().await.unwrap().into_iter().find(|u| u.id == found.id).unwrap();
    assert_eq!(listed.policy, PolicyRef::NotRead);
    assert_eq!(dir.policy_of(&listed).await.unwrap().min_length, 14);
}

#[tokio::test]
async fn what_a_policy_says_is_kept_for_a_while_but_which_policy_applies_is_asked_every_time() {
    let dc = require_dc!();
    let user = dc.create_user("psocache").await;
    let cached = directory(&dc);
    let mut settings = stjarna::config::from_toml_str(&dc.config(std::path::Path::new("/unused.db"))).unwrap();
    settings.directory.policy_cache_seconds = 0;
    let uncached = LdapDirectory::new(&settings.directory).unwrap();
    assert_eq!(cached.password_policy(Some(&user.dn)).await.unwrap().source_pso, None);
    let pso = dc.create_pso(&user.dn, 14, 7).await;
    assert_eq!(cached.password_policy(Some(&user.dn)).await.unwrap().min_length, 14, "a new PSO applies at once");
    dc.modify(&pso, "msDS-MinimumPasswordLength", "16").await;
    assert_eq!(cached.password_policy(Some(&user.dn)).await.unwrap().min_length, 14, "what it says is kept");
    assert_eq!(uncached.password_policy(Some(&user.dn)).await.unwrap().min_length, 16);
}

/// A service account that may not read fine-grained policies (in AD only admins may, unless
/// granted) still learns which PSO applies, but not what it says (Samba answers the PSO without
/// its attributes; AD may answer "no such object"): the domain's rules, and the most cautious
/// lockout threshold, 1, so that the portal never locks the account.
#[tokio::test]
async fn a_policy_the_service_account_may_not_read_counts_as_the_most_cautious() {
    let dc = require_dc!();
    let plain = dc.create_user("plainsvc").await;
    let user = dc.create_user("psohidden").await;
    let pso = dc.create_pso(&user.dn, 14, 7).await;
    let text = dc.config(std::path::Path::new("/unused.db"));
    let svc_dn = format!("bind_dn = \"CN=svc-stjarna,CN=Users,{}\"", dc.base);
    let svc_password = format!("bind_password = \"{}\"", dc.svc_password);
    assert!(text.contains(&svc_dn) && text.contains(&svc_password));
    let text = text
        .replace(&svc_dn, &format!("bind_dn = \"{}\"", plain.dn))
        .replace(&svc_password, &format!("bind_password = \"{}\"", plain.password));
    let dir = LdapDirectory::new(&stjarna::config::from_toml_str(&text).unwrap().directory).unwrap();
    let found = dir.find_user(&Username::Account(user.name.clone())).await.unwrap().unwrap();
    assert!(matches!(&found.policy, PolicyRef::Pso(dn) if dn.eq_ignore_ascii_case(&pso)), "{:?}", found.policy);
    for _ in 0..2 {
        // The second from what was kept (not observable here but in the logs: one warning).
        let policy = dir.policy_of(&found).await.unwrap();
        assert_eq!((policy.min_length, policy.lockout_threshold), (8, 1), "{policy:?}");
    }
    // The service account that may read it reads what it says.
    let readable = directory(&dc).policy_of(&found).await.unwrap();
    assert_eq!((readable.min_length, readable.lockout_threshold), (14, 7));
}

#[tokio::test]
async fn finds_users_and_their_attributes() {
    let dc = require_dc!();
    let user = dc.create_user("find").await;
    dc.modify(&user.dn, "mobile", "+46701234567").await;
    let dir = directory(&dc);
    let found = dir.find_user(&Username::Account(user.name.clone())).await.unwrap().unwrap();
    assert_eq!(found.dn.to_lowercase(), user.dn.to_lowercase());
    assert_eq!(found.display_name.as_deref(), Some(user.display_name.as_str()));
    assert_eq!(found.mobile.as_deref(), Some("+46701234567"));
    assert_eq!(found.id.len(), 36, "objectGUID as a UUID");
    let by_mail = dir.find_user(&Username::Principal(format!("{}@example.test", user.name))).await.unwrap().unwrap();
    assert_eq!(by_mail.id, found.id);
    assert!(dir.find_user(&Username::Account("nobody-at-all".into())).await.unwrap().is_none());
}

/// The accounts whose password was set since a time, or must be changed at the next logon: one
/// search, with AD's comparison on `pwdLastSet` (what the cooling-off restarts' watch reads).
#[tokio::test]
async fn finds_the_passwords_set_since_a_time_or_to_be_changed() {
    let dc = require_dc!();
    let (old, new, forced) =
        (dc.create_user("set-old").await, dc.create_user("set-new").await, dc.create_user("set-forced").await);
    let dir = directory(&dc);
    let id = async |name: &str| dir.find_user(&Username::Account(name.into())).await.unwrap().unwrap().id;
    let (old_id, new_id, forced_id) = (id(&old.name).await, id(&new.name).await, id(&forced.name).await);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    dc.modify(&forced.dn, "pwdLastSet", "0").await;
    let found = |sets: Vec<stjarna::directory::PasswordSet>| sets.into_iter().map(|s| s.user.id).collect::<Vec<_>>();
    let later = found(dir.password_sets_since(now + 3600).await.unwrap());
    assert!(![&old_id, &new_id, &forced_id].iter().any(|id| later.contains(id)), "all before the time");
    let since_now = found(dir.password_sets_since(now - 60).await.unwrap());
    assert!(since_now.contains(&forced_id), "must change since: found by when the entry changed");
    // When the entry changed: when the "must change" was set, at the latest.
    let forced_set = dir.password_sets_since(now - 60).await.unwrap().into_iter().find(|s| s.user.id == forced_id);
    let changed_at = forced_set.and_then(|s| s.changed_at).expect("whenChanged read");
    assert!((now - 60..=now + 60).contains(&changed_at), "{changed_at} against {now}");
    let since_yesterday = found(dir.password_sets_since(now - 86_400).await.unwrap());
    assert!(
        since_yesterday.contains(&old_id) && since_yesterday.contains(&new_id) && since_yesterday.contains(&forced_id)
    );
}

#[tokio::test]
async fn checks_passwords_and_reads_the_refusals() {
    let dc = require_dc!();
    let user = dc.create_user("bind").await;
    let dir = directory(&dc);
    let pw = |s: &str| SecretString::from(s.to_string());
    assert_eq!(dir.check_password(&user.dn, &pw(&user.password)).await.unwrap(), PasswordCheck::Accepted);
    assert_eq!(
        dir.check_password(&user.dn, &pw("wrong")).await.unwrap(),
        PasswordCheck::Refused(BindRefusal::InvalidCredentials)
    );
    // An empty password would be an anonymous bind: refused without asking.
    assert_eq!(
        dir.check_password(&user.dn, &pw("")).await.unwrap(),
        PasswordCheck::Refused(BindRefusal::InvalidCredentials)
    );
}

#[tokio::test]
async fn connections_are_pooled_reused_and_dropped_after_a_failure() {
    let dc = require_dc!();
    let (alice, bob) = (dc.create_user("poola").await, dc.create_user("poolb").await);
    let dir = directory(&dc);
    let pw = |s: &str| SecretString::from(s.to_string());
    for _ in 0..5 {
        assert!(dir.find_user(&Username::Account(alice.name.clone())).await.unwrap().is_some());
        dir.password_policy(Some(&alice.dn)).await.unwrap();
    }
    // One user-bind connection serves binds as different users, right or wrong, one after another.
    assert_eq!(dir.check_password(&alice.dn, &pw(&alice.password)).await.unwrap(), PasswordCheck::Accepted);
    assert_eq!(
        dir.check_password(&bob.dn, &pw("wrong")).await.unwrap(),
        PasswordCheck::Refused(BindRefusal::InvalidCredentials)
    );
    assert_eq!(dir.check_password(&bob.dn, &pw(&bob.password)).await.unwrap(), PasswordCheck::Accepted);
    let status = dir.pool_status();
    assert_eq!((status.service_open, status.user_open), (1, 1), "{status:?}");

    // Many at once open no more than the pool's size (8 by default), and all answer.
    let name = Username::Account(alice.name.clone());
    let found = futures_util::future::join_all((0..40).map(|_| dir.find_user(&name))).await;
    assert!(found.iter().all(|f| matches!(f, Ok(Some(_)))));
    let status = dir.pool_status();
    assert!(status.service_open <= 8 && status.service_open == status.service_idle, "{status:?}");

    // A failed operation closes its connection instead of returning it to the pool.
    let before = dir.pool_status().service_open;
    assert!(dir.attribute("this is not a DN", "cn").await.is_err());
    assert_eq!(dir.pool_status().service_open, before - 1);
    assert!(dir.find_user(&name).await.unwrap().is_some());
}

#[tokio::test]
async fn lists_nested_groups() {
    let dc = require_dc!();
    let user = dc.create_user("groups").await;
    let inner = dc.create_group("inner").await;
    let outer = dc.create_group("outer").await;
    dc.add_member(&outer, &inner).await;
    dc.add_member(&inner, &user.dn).await;
    let groups: Vec<String> =
        directory(&dc).groups_of(&user.dn).await.unwrap().iter().map(|g| g.to_lowercase()).collect();
    assert!(groups.contains(&inner.to_lowercase()) && groups.contains(&outer.to_lowercase()), "{groups:?}");
}

#[tokio::test]
async fn a_wrong_ca_is_one_clear_error() {
    let dc = require_dc!();
    let other_ca = tempfile::NamedTempFile::new().unwrap();
    // A CA that did not sign the DC's certificate: the test CA of another directory.
    std::fs::write(other_ca.path(), OTHER_CA).unwrap();
    let mut settings = stjarna::config::from_toml_str(&dc.config(std::path::Path::new("/unused.db"))).unwrap();
    settings.directory.ca_file = Some(other_ca.path().to_path_buf());
    let err = LdapDirectory::new(&settings.directory).unwrap().ping().await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not trusted") && text.contains("ca_file"), "{text}");
}

/// A self-signed CA certificate that signed nothing the test DC has.
const OTHER_CA: &str = include_str!("other-ca.pem");

#[tokio::test]
async fn without_policy_hints_a_reset_goes_through_and_says_history_is_not_enforced() {
    let dc = require_dc!();
    let dir = directory(&dc);
    // Samba 4.17 does not list LDAP_SERVER_POLICY_HINTS in its RootDSE...
    assert!(!dir.reset_enforces_history().await.unwrap());
    // ...and refuses it when it is sent anyway (critical): hence the RootDSE check first.
    let user = dc.create_user("hints").await;
    let mut ldap = dc.admin().await;
    let control = ldap3::controls::RawControl {
        ctype: "1.2.840.113556.1.4.2239".into(),
        crit: true,
        val: Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
    };
    let pwd: Vec<u8> = "\"Nytt-lösen-1234!\"".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let mods = vec![ldap3::Mod::Replace(&b"unicodePwd"[..], std::collections::HashSet::from([pwd.as_slice()]))];
    let refused = ldap.with_controls(control).modify(&user.dn, mods).await.unwrap();
    assert_eq!(refused.rc, 12, "unavailableCriticalExtension: {}", refused.text);
    // The portal's reset (no control on this DC) works.
    let new = SecretString::from("Nytt-lösen-5678!");
    dir.reset_password(&user.dn, &new, true, false).await.unwrap();
    assert_eq!(dc.bind(&user.dn, "Nytt-lösen-5678!").await.0, 0);
}

/// A change is made on the service account's connection, with no bind as the user: AD itself must
/// check the old value in the modify (a wrong one changes nothing and counts as a failed logon).
#[tokio::test]
async fn a_change_checks_the_old_password_in_the_modify_itself() {
    let dc = require_dc!();
    let user = dc.create_user("chgold").await;
    let dir = directory(&dc);
    let new = SecretString::from("Nytt-Losen-2026!x");
    let wrong = dir.change_password(&user.dn, &SecretString::from("Fel-Losen-2026!"), &new).await.unwrap();
    assert_eq!(wrong, ChangeResult::CurrentRefused(BindRefusal::InvalidCredentials));
    assert_eq!(dc.attr(&user.dn, "badPwdCount").await.as_deref(), Some("1"), "AD counted the wrong old value");
    let check = dir.check_password(&user.dn, &SecretString::from(user.password.clone())).await.unwrap();
    assert_eq!(check, PasswordCheck::Accepted, "the password did not change");

    let right = dir.change_password(&user.dn, &SecretString::from(user.password.clone()), &new).await.unwrap();
    assert_eq!(right, ChangeResult::Changed);
    assert_eq!(dir.check_password(&user.dn, &new).await.unwrap(), PasswordCheck::Accepted);
}
