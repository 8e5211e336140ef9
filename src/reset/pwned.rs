//! The k-anonymity range check of Pwned Passwords (or a compatible service at a configured URL):
//! only the first five hex digits of the password's SHA-1 leave the portal.

use std::time::Duration;

use sha1::{Digest, Sha1};

pub struct PwnedRange {
    http: reqwest::Client,
    url: String,
}

impl PwnedRange {
    /// `url` is the range endpoint without the prefix, e.g. `https://api.pwnedpasswords.com/range/`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(timeout).pool_idle_timeout(crate::identity::KEEP_IDLE).build()?;
        Ok(Self { http, url: url.into() })
    }

    /// Whether the password appears in a breach. `None` when the service could not answer: the
    /// caller decides (the portal logs it and goes on, so an outage does not stop every reset).
    pub async fn is_breached(&self, password: &str) -> Option<bool> {
        let hash = hex::encode_upper(Sha1::digest(password.as_bytes()));
        let (prefix, suffix) = hash.split_at(5);
        let res = self.http.get(format!("{}{prefix}", self.url)).header("Add-Padding", "true").send().await;
        let body = match res {
            Ok(r) if r.status().is_success() => r.text().await.ok()?,
            Ok(r) => {
                tracing::warn!(status = r.status().as_u16(), "the breached-password service refused the range query");
                return None;
            }
            Err(e) => {
                let error = crate::identity::transport_text(e);
                tracing::warn!(%error, "the breached-password service cannot be reached");
                return None;
            }
        };
        Some(body.lines().any(|line| {
            let mut parts = line.trim().split(':');
            let (Some(s), Some(count)) = (parts.next(), parts.next()) else { return false };
            s.eq_ignore_ascii_case(suffix) && count.trim().parse::<u64>().is_ok_and(|c| c > 0)
        }))
    }
}

/// The range answer for `prefix` from a list of known-breached passwords (the simulator's side).
pub fn range_answer(prefix: &str, breached: &[&str]) -> String {
    let prefix = prefix.to_ascii_uppercase();
    let mut lines: Vec<String> = breached
        .iter()
        .map(|p| hex::encode_upper(Sha1::digest(p.as_bytes())))
        .filter(|h| h.starts_with(&prefix))
        .map(|h| format!("{}:{}", &h[5..], 1000))
        .collect();
    // Padding, as the real service adds: suffixes that match nothing, count 0.
    lines.push(format!("{}:0", "0".repeat(35)));
    lines.join("\r\n")
}
