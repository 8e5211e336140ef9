//! Logging with `tracing`: one line per event (and per request, see `web::RequestLog`), each
//! inside its request's span with the request id; text, or JSON for machines.
//!
//! Lines are written by a thread of their own: a request never waits for a slow journal or disk
//! (when more than 100,000 lines are waiting, further ones are dropped and counted rather than
//! holding requests up; the audit trail is in the database).

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; `RUST_LOG` overrides the default levels. Keep the guard for as
/// long as the process logs: dropping it writes out what is waiting.
pub fn init(format: LogFormat) -> Option<WorkerGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,ldap3=warn"));
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let (writer, guard) = NonBlockingBuilder::default().buffered_lines_limit(100_000).finish(std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(true).with_writer(writer);
    let installed = match format {
        // Colour only for a person at a terminal: a log file or the journal gets plain text.
        LogFormat::Text => builder.with_ansi(terminal).try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
    installed.ok().map(|()| guard)
}
