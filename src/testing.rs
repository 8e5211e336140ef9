//! What unit tests of the services share: settings, a throwaway database, a request.

use std::sync::Arc;

use crate::audit::RequestMeta;
use crate::config::Settings;
use crate::storage::Storage;

/// A valid configuration: a directory, both services (3 and 2 stars of 5; 3 for a reset), BankID
/// through the broker, SMS through a webhook.
pub const VALID: &str = r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:8080"

[database]
url = "sqlite::memory:"

[directory]
url = "ldaps://127.0.0.2"
bind_dn = "CN=svc,CN=Users,DC=example,DC=test"
bind_password = "secret"
base_dn = "DC=example,DC=test"
netbios_domain = "EXAMPLE"

[enrolment]
enrolment_stars = 5
reset_stars = 3

[services.bankid]
stars = 3

[services.sms]
stars = 2

[security]
data_key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

[bankid]
backend = "idkollen"
url = "https://broker.example.test"
account_id = "acct"
secret_key = "secret"

[sms]
gateway = "webhook"
url = "https://sms.example.test/hook"
from = "Stjarna"
"#;

/// Valid settings for a portal whose directory is a fake (no delay on logins or changes).
pub fn settings() -> Settings {
    let text = format!("{VALID}\n[login]\nmin_response_ms = 0\n");
    crate::config::from_toml_str(&text).expect("the test settings are valid")
}

/// A migrated SQLite database in a temporary directory (kept while the directory is).
pub async fn store() -> (Arc<dyn Storage>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (crate::storage::open(&url, 2, None).await.unwrap(), dir)
}

pub fn meta() -> RequestMeta {
    RequestMeta {
        source_ip: "192.0.2.7".into(),
        user_agent: "test".into(),
        request_id: "req-1".into(),
        lang: crate::i18n::Lang::Sv,
        actor: None,
    }
}
