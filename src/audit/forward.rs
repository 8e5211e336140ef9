//! The audit trail, forwarded as each event is written: to a syslog collector (RFC 5424 over UDP,
//! or TCP with octet-counted frames, RFC 6587) and/or a JSON-lines file. Forwarding is best effort
//! and never holds up the request: the database is the record, a collector that is down gets a
//! warning in the log (once a minute at most) and the events it missed are in the database.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use syslog_fmt::v5424::{Config, Formatter, Timestamp};
use syslog_fmt::{Facility, Severity};
use tokio::io::AsyncWriteExt;

use crate::config::{AuditSettings, SyslogTransport};
use crate::storage::AuditRecord;

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("audit.syslog: {0}")]
    Syslog(String),
    #[error("audit.json_file {path}: {source}")]
    File { path: String, source: std::io::Error },
}

/// Where events go besides the database.
pub struct Forwarder {
    syslog: Option<Syslog>,
    file: Option<Mutex<std::fs::File>>,
    warned_at: Mutex<Option<Instant>>,
}

struct Syslog {
    transport: SyslogTransport,
    address: String,
    formatter: Formatter,
    /// The TCP connection, kept between events and made again when it breaks.
    stream: tokio::sync::Mutex<Option<tokio::net::TcpStream>>,
}

/// One event as forwarded: what the audit page shows, in UTC.
#[derive(Serialize)]
struct Event<'a> {
    at: String,
    event: &'a str,
    outcome: &'a str,
    username: Option<&'a str>,
    user_id: Option<&'a str>,
    source_ip: Option<&'a str>,
    request_id: Option<&'a str>,
    /// In English, for whoever reads the SIEM.
    detail: Option<String>,
    /// The member of staff who did it, when the entry is about someone else.
    actor: Option<&'a str>,
}

impl<'a> Event<'a> {
    fn of(r: &'a AuditRecord) -> Self {
        Event {
            at: crate::clock::format_rfc3339(r.at),
            event: &r.event,
            outcome: &r.outcome,
            username: r.username.as_deref(),
            user_id: r.user_id.as_deref(),
            source_ip: r.source_ip.as_deref(),
            request_id: r.request_id.as_deref(),
            detail: Some(super::describe(r, crate::i18n::Lang::En.catalogue())).filter(|d| !d.is_empty()),
            actor: r.actor.as_deref(),
        }
    }
}

impl Forwarder {
    /// None when nothing is configured.
    pub fn new(settings: &AuditSettings) -> Result<Option<Self>, ForwardError> {
        let syslog = match settings.syslog_target() {
            None => None,
            Some(Err(e)) => return Err(ForwardError::Syslog(e)),
            Some(Ok((transport, address))) => {
                let hostname = settings.hostname.clone().unwrap_or_else(machine_name);
                let pid = std::process::id().to_string();
                let formatter = Config {
                    facility: Facility::Authpriv,
                    hostname: Some(&hostname),
                    app_name: Some("stjarna"),
                    proc_id: Some(&pid),
                }
                .into_formatter();
                Some(Syslog { transport, address, formatter, stream: Default::default() })
            }
        };
        let file = match &settings.json_file {
            None => None,
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| ForwardError::File { path: path.display().to_string(), source })?,
            )),
        };
        if syslog.is_none() && file.is_none() {
            return Ok(None);
        }
        Ok(Some(Self { syslog, file, warned_at: Mutex::new(None) }))
    }

    pub async fn forward(&self, record: &AuditRecord) {
        let event = Event::of(record);
        if let Some(file) = &self.file {
            let mut line = serde_json::to_vec(&event).unwrap_or_default();
            line.push(b'\n');
            let written = file.lock().unwrap_or_else(|e| e.into_inner()).write_all(&line);
            if let Err(e) = written {
                self.warn(&format!("the audit file cannot be written: {e}"));
            }
        }
        if let Some(syslog) = &self.syslog
            && let Err(e) = syslog.send(&event).await
        {
            self.warn(&format!("the audit event did not reach the syslog collector: {e}"));
        }
    }

    fn warn(&self, what: &str) {
        let mut at = self.warned_at.lock().unwrap_or_else(|e| e.into_inner());
        if at.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            *at = Some(Instant::now());
            tracing::warn!("{what} (the database keeps every event)");
        }
    }
}

impl Syslog {
    fn message(&self, e: &Event<'_>) -> Vec<u8> {
        let severity = if e.outcome == "success" { Severity::Notice } else { Severity::Warning };
        let params = [
            ("event", e.event),
            ("outcome", e.outcome),
            ("user", e.username.unwrap_or("")),
            ("userId", e.user_id.unwrap_or("")),
            ("ip", e.source_ip.unwrap_or("")),
            ("requestId", e.request_id.unwrap_or("")),
            ("actor", e.actor.unwrap_or("")),
        ];
        let text =
            format!("{} {} {} {}", e.event, e.outcome, e.username.unwrap_or("-"), e.detail.as_deref().unwrap_or(""));
        let mut out = Vec::with_capacity(256);
        let written = self.formatter.write_with_data(
            &mut out,
            severity,
            Timestamp::PreformattedString(e.at.clone()),
            text.trim_end(),
            Some(e.event),
            [("audit@32473", params)],
        );
        if written.is_err() {
            out.clear();
        }
        out
    }

    async fn send(&self, e: &Event<'_>) -> std::io::Result<()> {
        let message = self.message(e);
        match self.transport {
            SyslogTransport::Udp => {
                let socket =
                    tokio::net::UdpSocket::bind(if self.address.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" })
                        .await?;
                socket.send_to(&message, &self.address).await.map(drop)
            }
            SyslogTransport::Tcp => {
                let mut frame = format!("{} ", message.len()).into_bytes();
                frame.extend_from_slice(&message);
                let mut stream = self.stream.lock().await;
                for _ in 0..2 {
                    if stream.is_none() {
                        *stream = Some(tokio::net::TcpStream::connect(&self.address).await?);
                    }
                    let Some(s) = stream.as_mut() else { continue };
                    match s.write_all(&frame).await {
                        Ok(()) => return Ok(()),
                        // A collector that restarted: connect again, once.
                        Err(_) => *stream = None,
                    }
                }
                Err(std::io::Error::other("the collector closed the connection"))
            }
        }
    }
}

fn machine_name() -> String {
    hostname::get().ok().and_then(|h| h.into_string().ok()).filter(|h| !h.is_empty()).unwrap_or_else(|| "-".into())
}
