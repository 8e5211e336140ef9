//! Logging with `tracing`: one line per event, request ids from tracing-actix-web.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `RUST_LOG` overrides the default levels.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,ldap3=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(true).try_init();
}
