//! What operations configure: the log format, and where the audit trail is forwarded.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event (colour only on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for machines.
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    pub format: LogFormat,
}

/// Each audit event, as it is written, also goes to these (none by default).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuditSettings {
    /// A syslog collector, RFC 5424: `udp://host:514` or `tcp://host:601` (octet-counted frames).
    pub syslog: Option<String>,
    /// A file that gets one JSON object per event and line (appended to; rotate with copytruncate).
    pub json_file: Option<PathBuf>,
    /// The syslog HOSTNAME field; the machine's name when not given.
    pub hostname: Option<String>,
}

impl AuditSettings {
    /// The collector's transport and address, if `syslog` is a `udp://` or `tcp://` URL.
    pub fn syslog_target(&self) -> Option<Result<(SyslogTransport, String), String>> {
        let text = self.syslog.as_deref()?;
        let url = url::Url::parse(text).ok();
        let transport = match url.as_ref().map(url::Url::scheme) {
            Some("udp") => SyslogTransport::Udp,
            Some("tcp") => SyslogTransport::Tcp,
            _ => return Some(Err(format!("\"{text}\" is not udp://HOST:PORT or tcp://HOST:PORT"))),
        };
        Some(match url.as_ref().and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port()?))) {
            Some(address) => Ok((transport, address)),
            None => Err(format!("\"{text}\" names no HOST:PORT")),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTransport {
    Udp,
    Tcp,
}

/// The Prometheus endpoint: off unless `listen` is given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// Address and port of a listener of its own, e.g. `127.0.0.1:9464`; `GET /metrics` there.
    pub listen: Option<String>,
}

/// Password-expiry reminders: off unless `enabled`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ExpirySettings {
    pub enabled: bool,
    /// Days before the password expires to remind the user, each once (e.g. 14, 7 and 1).
    pub days_before: Vec<u32>,
    /// Also send a text to users who enrolled a mobile code.
    pub sms: bool,
    /// How often the directory is read for expiry times.
    pub check_minutes: u64,
}

impl Default for ExpirySettings {
    fn default() -> Self {
        Self { enabled: false, days_before: vec![14, 7, 1], sms: false, check_minutes: 60 }
    }
}
