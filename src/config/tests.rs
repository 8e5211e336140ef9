use std::io::Write;

use figment::providers::Env;

use super::*;

use crate::testing::VALID;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

/// An environment source that reads nothing from the real environment.
fn no_env() -> Env {
    Env::prefixed("STJARNA_TEST_NOTHING__").split("__")
}

fn problems(text: &str) -> Vec<String> {
    let f = file(text);
    match load_with_env(f.path(), no_env()) {
        Ok(_) => Vec::new(),
        Err(p) => p.into_iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn a_valid_file_loads() {
    assert_eq!(problems(VALID), Vec::<String>::new());
}

#[test]
fn the_example_file_documents_a_valid_configuration() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    // The example points at files under /etc/stjarna/ and /run/credentials/ that exist only on a
    // real server: make them.
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "ad-ca.pem",
        "bind-password",
        "bankid-root-ca.pem",
        "bankid-client.p12",
        "bankid-client.password",
        "sms-password",
        "smtp-password",
    ] {
        std::fs::write(dir.path().join(name), "x").unwrap();
    }
    std::fs::write(dir.path().join("data-key"), "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n").unwrap();
    let text = text.replace("/etc/stjarna/", &format!("{}/", dir.path().display()));
    // Secret files come from the service's credentials (the Debian package's unit hands them over).
    let text = text.replace("/run/credentials/stjarna.service/secret_", &format!("{}/", dir.path().display()));
    assert_eq!(problems(&text), Vec::<String>::new());
    // Nor does it choose what check-config warns about as weak: one service alone resetting.
    let f = file(&text);
    let settings = load_with_env(f.path(), no_env()).unwrap();
    let weak: Vec<String> = crate::config::warnings(&settings)
        .into_iter()
        .filter(|w| w.key.starts_with("services.") || w.key.starts_with("enrolment."))
        .map(|w| w.to_string())
        .collect();
    assert_eq!(weak, Vec::<String>::new());
}

#[test]
fn sms_gateways_need_credentials_and_a_sender() {
    let elks = VALID
        .replace("gateway = \"webhook\"", "gateway = \"46elks\"")
        .replace("from = \"Stjarna\"", "from = \"Stjärna portal!\"");
    let p = problems(&elks);
    assert!(p.iter().any(|p| p.starts_with("sms.username:")), "{p:?}");
    assert!(p.iter().any(|p| p.starts_with("sms.password:")), "{p:?}");
    assert!(p.iter().any(|p| p.starts_with("sms.from:")), "{p:?}");
    let plain = VALID.replace("https://sms.example.test/hook", "http://sms.example.test/hook");
    assert!(problems(&plain).iter().any(|p| p.starts_with("sms.url:")));
    let local = VALID.replace("https://sms.example.test/hook", "http://127.0.0.1:9090/hook");
    assert!(problems(&local).is_empty(), "plain http is fine on loopback (the simulator)");
}

#[test]
fn bankid_needs_its_connection_and_a_data_key() {
    let text = VALID[..VALID.find("[security]").unwrap()].to_string();
    let p = problems(&text);
    assert!(p.iter().any(|p| p.starts_with("security.data_key:")), "{p:?}");
    assert!(p.iter().any(|p| p.starts_with("bankid:")), "{p:?}");
    let rp = VALID.replace("backend = \"idkollen\"", "backend = \"rp\"");
    let p = problems(&rp);
    assert!(p.iter().any(|p| p.starts_with("bankid.ca_file:") && p.contains("pinned")), "{p:?}");
    assert!(p.iter().any(|p| p.starts_with("bankid.client_certificate_file:")), "{p:?}");
    let short_key = VALID.replace("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "c2hvcnQ=");
    assert!(problems(&short_key).iter().any(|p| p.starts_with("security.data_key:") && p.contains("32 random bytes")));
}

#[test]
fn every_unknown_key_is_reported_with_its_path() {
    let text = VALID.replace("[server]", "[server]\nlisten_port = 1\n") + "\n[servicez]\nx = 1\n";
    let p = problems(&text);
    assert!(p.iter().any(|p| p.starts_with("server.listen_port:")), "{p:?}");
    assert!(p.iter().any(|p| p.starts_with("servicez:")), "{p:?}");
}

#[test]
fn a_missing_key_names_the_key() {
    let text = VALID.replace("base_dn = \"DC=example,DC=test\"\n", "");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("base_dn"), "{p:?}");
}

#[test]
fn reset_stars_above_enrolment_stars_are_refused() {
    let p = problems(&VALID.replace("reset_stars = 3", "reset_stars = 6"));
    assert!(p.iter().any(|p| p.starts_with("enrolment.reset_stars:") && p.contains("above")), "{p:?}");
}

#[test]
fn privileged_accounts_need_more_stars_than_others_and_stars_that_can_be_had() {
    let with = |stars: &str| problems(&format!("{VALID}\n[reset]\nprotected = \"stars\"\n{stars}"));
    let p = with("");
    assert!(p.iter().any(|p| p.starts_with("reset.protected_stars: is 0, not above")), "{p:?}");
    let p = with("protected_stars = 99\n");
    assert!(p.iter().any(|p| p.starts_with("reset.protected_stars: is 99, more than")), "{p:?}");
    assert!(with("protected_stars = 5\n").is_empty(), "{:?}", with("protected_stars = 5\n"));
}

#[test]
fn semantic_problems_are_all_listed_at_once() {
    let text = VALID
        .replace("ldaps://127.0.0.2", "ldap://127.0.0.2")
        .replace("listen = \"127.0.0.1:0\"", "listen = \"nowhere\"")
        .replace("stars = 2", "stars = 9");
    let p = problems(&text);
    assert!(p.iter().any(|p| p.starts_with("directory.url:") && p.contains("clear text")), "{p:?}");
    assert!(p.iter().any(|p| p.starts_with("server.listen:")), "{p:?}");
    assert!(p.iter().any(|p| p.starts_with("services.sms.stars:")), "{p:?}");
}

#[test]
fn a_secret_can_be_read_from_a_file() {
    let secret = file("from-a-file\n");
    let text =
        VALID.replace("bind_password = \"secret\"", &format!("bind_password_file = \"{}\"", secret.path().display()));
    let f = file(&text);
    let settings = load_with_env(f.path(), no_env()).unwrap();
    let password = settings.directory.bind_password().unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&password), "from-a-file");
}

#[test]
fn a_missing_secret_file_is_reported() {
    let text = VALID.replace("bind_password = \"secret\"", "bind_password_file = \"/nonexistent/pw\"");
    let p = problems(&text);
    assert!(p.iter().any(|p| p.contains("/nonexistent/pw") && p.contains("cannot be read")), "{p:?}");
}

#[test]
fn environment_overrides_the_file() {
    let f = file(VALID);
    // Unique prefix: tests run in parallel and share the process environment.
    unsafe {
        std::env::set_var("STJARNA_ENVTEST__DIRECTORY__NETBIOS_DOMAIN", "OVERRIDDEN");
        std::env::set_var("STJARNA_ENVTEST__LOGIN__MIN_RESPONSE_MS", "5");
    }
    let settings = load_with_env(f.path(), Env::prefixed("STJARNA_ENVTEST__").split("__")).unwrap();
    assert_eq!(settings.directory.netbios_domain, "OVERRIDDEN");
    assert_eq!(settings.login.min_response_ms, 5);
}

#[test]
fn a_missing_file_is_one_clear_problem() {
    let p = load_with_env(std::path::Path::new("/nonexistent/stjarna.toml"), no_env()).unwrap_err();
    assert_eq!(p.len(), 1);
    assert!(p[0].to_string().contains("does not exist"));
}

#[test]
fn postgresql_needs_the_secrets_every_instance_shares() {
    let base = include_str!("../../config/example.toml");
    let pg = base.replace(
        "url = \"sqlite:///var/lib/stjarna/stjarna.db\"",
        "url = \"postgres://stjarna@db.example.se/stjarna\"",
    );
    assert_ne!(pg, base, "the example's database line");
    let settings = crate::config::from_toml_str(&pg);
    let problems: Vec<String> = match settings {
        Ok(_) => Vec::new(),
        Err(p) => p.iter().map(|p| p.to_string()).collect(),
    };
    assert!(problems.iter().any(|p| p.starts_with("session.secret: is required with PostgreSQL")), "{problems:?}");
}

fn database_warnings(url: &str) -> Vec<String> {
    let f = file(
        &VALID
            .replace("url = \"sqlite::memory:\"", &format!("url = \"{url}\""))
            .replace("[security]\n", "[session]\nsecret = \"shared-by-every-instance-0123456789\"\n\n[security]\n"),
    );
    let settings = load_with_env(f.path(), no_env()).unwrap();
    crate::config::warnings(&settings).into_iter().filter(|w| w.key == "database.url").map(|w| w.to_string()).collect()
}

#[test]
fn postgresql_beyond_loopback_without_a_verified_certificate_is_warned_about() {
    let w = database_warnings("postgres://stjarna@db.example.se/stjarna");
    assert!(w.iter().any(|w| w.contains("not verified")), "{w:?}");
    let w = database_warnings("postgres://stjarna@db.example.se/stjarna?sslmode=require");
    assert!(w.iter().any(|w| w.contains("not verified")), "require does not check the certificate: {w:?}");
    assert!(
        database_warnings("postgres://stjarna@db.example.se/stjarna?sslmode=verify-full&sslrootcert=/ca.pem")
            .is_empty()
    );
    assert!(database_warnings("postgres://stjarna@127.0.0.1:5432/stjarna").is_empty());
}

#[test]
fn a_database_password_belongs_in_a_file_and_is_never_shown() {
    let w = database_warnings("postgres://stjarna:hemligt@127.0.0.1/stjarna");
    assert!(w.iter().any(|w| w.contains("password_file")), "{w:?}");
    assert!(w.iter().all(|w| !w.contains("hemligt")), "{w:?}");
    let secret = file("hemligt\n");
    let database =
        format!("url = \"postgres://stjarna@127.0.0.1/stjarna\"\npassword_file = \"{}\"", secret.path().display());
    let text = VALID
        .replace("url = \"sqlite::memory:\"", &database)
        .replace("[security]\n", "[session]\nsecret = \"shared-by-every-instance-0123456789\"\n\n[security]\n");
    let f = file(&text);
    let settings = load_with_env(f.path(), no_env()).unwrap();
    let password = settings.database.password().unwrap().unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&password), "hemligt");
    let d = DatabaseSettings {
        url: "postgres://u:pw@h/db".into(),
        max_connections: 1,
        retention_days: 1,
        password_file: None,
    };
    assert_eq!(d.display_url(), "postgres://u:***@h/db");
    let typo = DatabaseSettings { url: "postgress://u:pw@h/db".into(), ..d.clone() };
    assert_eq!(typo.display_url(), "postgress://u:***@h/db", "a scheme we do not know");
    let in_query = DatabaseSettings { url: "postgres://u@h/db?sslmode=require&password=pw".into(), ..d.clone() };
    assert_eq!(in_query.display_url(), "postgres://u@h/db?sslmode=require&password=***");
    for url in ["postgres://u:pw@h:port/db", "host=h password=pw"] {
        let unreadable = DatabaseSettings { url: url.into(), ..d.clone() };
        assert!(!unreadable.display_url().contains("pw"), "{}", unreadable.display_url());
    }
    let plain = DatabaseSettings { url: "sqlite:///var/lib/stjarna/stjarna.db".into(), ..d };
    assert_eq!(plain.display_url(), "sqlite:///var/lib/stjarna/stjarna.db", "nothing to hide");
}

#[test]
fn sqlite_has_no_password_file() {
    let text =
        VALID.replace("url = \"sqlite::memory:\"", "url = \"sqlite::memory:\"\npassword_file = \"/etc/hostname\"");
    let p = problems(&text);
    assert!(p.iter().any(|p| p.starts_with("database.password_file: is only for PostgreSQL")), "{p:?}");
}

#[test]
fn logs_and_audit_forwarding_are_configured_or_explained() {
    let f = file(&format!("{VALID}\n[log]\nformat = \"json\"\n\n[audit]\nsyslog = \"tcp://siem.example.se:601\"\n"));
    let settings = load_with_env(f.path(), no_env()).unwrap();
    assert_eq!(settings.log.format, LogFormat::Json);
    assert_eq!(settings.audit.syslog_target(), Some(Ok((SyslogTransport::Tcp, "siem.example.se:601".into()))));
    let p = problems(&format!("{VALID}\n[log]\nformat = \"xml\"\n"));
    assert!(p.iter().any(|p| p.contains("log.format")), "{p:?}");
    for bad in ["siem.example.se:514", "http://siem:514", "udp://siem"] {
        let p = problems(&format!("{VALID}\n[audit]\nsyslog = \"{bad}\"\n"));
        assert!(p.iter().any(|p| p.starts_with("audit.syslog:")), "{bad}: {p:?}");
    }
    let p = problems(&format!("{VALID}\n[audit]\njson_file = \"/nonexistent/dir/audit.jsonl\"\n"));
    assert!(p.iter().any(|p| p.starts_with("audit.json_file:") && p.contains("cannot be written")), "{p:?}");
}

#[test]
fn metrics_listen_on_their_own_address() {
    let ok = format!("{VALID}\n[metrics]\nlisten = \"127.0.0.1:9464\"\n");
    assert!(problems(&ok).is_empty(), "{:?}", problems(&ok));
    let p = problems(&format!("{VALID}\n[metrics]\nlisten = \"127.0.0.1:0\"\n"));
    assert!(p.is_empty(), "port 0 is a port of its own: {p:?}");
    let same = VALID.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:8080\"");
    let p = problems(&format!("{same}\n[metrics]\nlisten = \"127.0.0.1:8080\"\n"));
    assert!(p.iter().any(|p| p.starts_with("metrics.listen: must differ")), "{p:?}");
    let p = problems(&format!("{VALID}\n[metrics]\nlisten = \"everywhere\"\n"));
    assert!(p.iter().any(|p| p.starts_with("metrics.listen:")), "{p:?}");
}

#[test]
fn several_domain_controllers_are_listed_in_urls_and_each_is_checked() {
    let two = VALID.replace("url = \"ldaps://127.0.0.2\"", "urls = [\"ldaps://127.0.0.2\", \"ldaps://127.0.0.5\"]");
    assert_eq!(problems(&two), Vec::<String>::new());
    let f = file(&two);
    let settings = load_with_env(f.path(), no_env()).unwrap();
    assert_eq!(settings.directory.urls(), ["ldaps://127.0.0.2", "ldaps://127.0.0.5"]);

    let clear = two.replace("ldaps://127.0.0.5", "ldap://127.0.0.5");
    let p = problems(&clear);
    assert!(p.iter().any(|p| p.starts_with("directory.urls:") && p.contains("ldap://127.0.0.5")), "{p:?}");
    let both =
        VALID.replace("url = \"ldaps://127.0.0.2\"", "url = \"ldaps://127.0.0.2\"\nurls = [\"ldaps://127.0.0.5\"]");
    assert!(problems(&both).iter().any(|p| p.starts_with("directory.url:") && p.contains("not both")));
    let none = VALID.replace("url = \"ldaps://127.0.0.2\"\n", "");
    assert!(problems(&none).iter().any(|p| p.starts_with("directory.urls:")), "{:?}", problems(&none));
}

#[test]
fn a_plain_http_public_url_is_refused_beyond_loopback() {
    for url in ["http://10.1.2.3:8080", "http://losenord.example.se"] {
        let p = problems(&VALID.replace("public_url = \"http://127.0.0.1:8080\"", &format!("public_url = \"{url}\"")));
        assert!(
            p.iter().any(|p| p.starts_with("server.public_url:") && p.contains("the session cookie is Secure")),
            "{url}: {p:?}"
        );
    }
    for url in ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "https://losenord.example.se"] {
        let p = problems(&VALID.replace("public_url = \"http://127.0.0.1:8080\"", &format!("public_url = \"{url}\"")));
        assert!(p.is_empty(), "{url}: {p:?}");
    }
}

#[test]
fn idkollen_cannot_refuse_by_the_apps_address_and_its_risk_is_not_enforced() {
    // VALID uses the idkollen backend.
    let idkollen = |extra: &str| VALID.replace("[bankid]\n", &format!("[bankid]\n{extra}"));
    let text = idkollen("same_device_ip = \"refuse\"\n");
    assert!(problems(&text).iter().any(|p| p.starts_with("bankid.same_device_ip:")), "{:?}", problems(&text));
    let text = idkollen("");
    let f = file(&text);
    let settings = load_with_env(f.path(), no_env()).unwrap_or_else(|p| panic!("{p:?}"));
    let warned = crate::config::warnings(&settings).into_iter().any(|w| w.key == "bankid.max_risk");
    assert!(warned);
}

#[test]
fn admin_rights_are_read_again_within_an_hour() {
    for (minutes, ok) in [(0, false), (1, true), (60, true), (61, false)] {
        let p = problems(&format!("{VALID}\n[admin]\nreauth_minutes = {minutes}\n"));
        assert_eq!(p.iter().all(|p| !p.starts_with("admin.reauth_minutes:")), ok, "{minutes}: {p:?}");
    }
}

#[test]
fn the_countries_for_mobile_numbers_are_ones_the_portal_names_and_include_the_default() {
    let with = |list: &str| VALID.replace("[sms]\n", &format!("[sms]\ncountries = {list}\n"));
    assert_eq!(problems(&with("[\"SE\", \"NO\"]")), Vec::<String>::new());
    assert_eq!(problems(&with("[\"SE\", \"EE\", \"CH\"]")), Vec::<String>::new(), "any country, by its code");
    let unknown = problems(&with("[\"SE\", \"XX\"]"));
    assert!(unknown.iter().any(|p| p.contains("sms.countries") && p.contains("\"XX\"")), "{unknown:?}");
    let without_default = problems(&with("[\"NO\"]"));
    assert!(without_default.iter().any(|p| p.contains("default country \"SE\"")), "{without_default:?}");
    assert!(problems(&with("[]")).iter().any(|p| p.contains("at least one country")));
}

#[test]
fn the_portals_own_groups_are_privileged_whatever_is_configured() {
    let mut settings = crate::testing::settings();
    settings.directory.base_dn = "DC=example,DC=test".into();
    settings.directory.admin_group = Some("CN=Portal Admins,DC=example,DC=test".into());
    settings.directory.helpdesk_group = Some("CN=Service Desk,DC=example,DC=test".into());
    settings.directory.reporting_group = Some("CN=Reports,DC=example,DC=test".into());
    settings.reset.protected_groups =
        Some(vec!["CN=Tier0,DC=example,DC=test".into(), "cn=reports,dc=example,dc=test".into()]);
    let groups = settings.privileged_groups();
    let dns: Vec<&str> = groups.iter().map(|(_, dn)| dn.as_str()).collect();
    assert_eq!(
        dns,
        [
            "CN=Portal Admins,DC=example,DC=test",
            "CN=Service Desk,DC=example,DC=test",
            "CN=Reports,DC=example,DC=test",
            "CN=Tier0,DC=example,DC=test"
        ],
        "configured instead of the default, each once"
    );
    assert_eq!(groups[0].0.to_string(), "directory.admin_group");
    assert_eq!(groups[3].0.to_string(), "reset.protected_groups");
}

#[test]
fn domain_admins_by_default_are_those_of_the_domain_not_of_the_users_ou() {
    let mut settings = crate::testing::settings();
    settings.directory.admin_group = None;
    settings.directory.helpdesk_group = None;
    settings.directory.reporting_group = None;
    settings.reset.protected_groups = None;
    settings.directory.base_dn = "OU=Anställda, OU=Stockholm,DC=corp, dc=example,DC=se".into();
    assert_eq!(settings.directory.domain_dn(), "DC=corp,dc=example,DC=se");
    let groups = settings.privileged_groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].1, "CN=Domain Admins,CN=Users,DC=corp,dc=example,DC=se");
    assert_eq!(groups[0].0, GroupSource::Default);
}

#[test]
fn an_answer_floor_past_five_seconds_is_refused() {
    let text = format!("{}\n[login]\nmin_response_ms = 60000\n", crate::testing::VALID);
    let problems = crate::config::from_toml_str(&text).unwrap_err();
    assert!(problems.iter().any(|p| p.key == "login.min_response_ms"), "{problems:?}");
}
