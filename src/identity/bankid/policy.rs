//! What the portal asks of a completed BankID order beyond the identity: BankID's own risk
//! indication (`returnRisk`), and, when the app was started on this device, that the app's address
//! is the browser's (a relayed autostart link opens the app somewhere else).

use super::{CompletedUser, Risk};
use crate::config::SameDeviceIp;

#[derive(Debug, Clone)]
pub struct Policy {
    /// Sent as `web.referringDomain`.
    pub referring_domain: String,
    /// Orders rated above this are refused.
    pub max_risk: Risk,
    pub same_device_ip: SameDeviceIp,
    /// The portal's public address: orders carry a return URL under it (see `back`), when the
    /// backend passes one on.
    pub return_base: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            referring_domain: "localhost".into(),
            max_risk: Risk::Moderate,
            same_device_ip: SameDeviceIp::Log,
            return_base: None,
        }
    }
}

impl Policy {
    /// The reason to refuse an order completed by `user` (None: accept it), and what to audit.
    /// `autostart`: the user opened the app on this device; `browser_ip`: the browser's address.
    pub fn assess(&self, autostart: bool, user: &CompletedUser, browser_ip: &str) -> (Option<&'static str>, Notes) {
        let mut notes = Notes { risk: user.risk.map(Risk::id), elsewhere: None };
        let mut refusal = user.risk.is_some_and(|r| r > self.max_risk).then_some("riskTooHigh");
        let checked = autostart && self.same_device_ip != SameDeviceIp::Off;
        if checked {
            // Compared by the address's /64 for IPv6 (privacy addresses change within it). An
            // answer without the app's address cannot show it was this device.
            let key = crate::throttle::address_key;
            let device_ip = user.device_ip.as_deref().unwrap_or("not given");
            if user.device_ip.as_deref().is_none_or(|ip| key(ip) != key(browser_ip)) {
                notes.elsewhere = Some((device_ip.to_string(), browser_ip.to_string()));
                if self.same_device_ip == SameDeviceIp::Refuse {
                    refusal = refusal.or(Some("otherDevice"));
                }
            }
        }
        (refusal, notes)
    }
}

/// What the audit trail notes about a completed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notes {
    /// BankID's risk indication, if it gave one.
    pub risk: Option<&'static str>,
    /// The app's and the browser's addresses, when they differ on "this device".
    pub elsewhere: Option<(String, String)>,
}

impl Notes {
    /// The audit entry's detail for an order of `purpose`.
    pub fn detail(&self, purpose: &str) -> crate::audit::Detail {
        let risk = format!("audit.risk.{}", self.risk.unwrap_or("none"));
        match &self.elsewhere {
            None => crate::audit::Detail::new("risk").purpose(purpose).arg("risk_key", risk),
            Some((app, browser)) => crate::audit::Detail::new("risk_elsewhere")
                .purpose(purpose)
                .arg("risk_key", risk)
                .arg("app", app)
                .arg("browser", browser),
        }
    }
}

impl std::fmt::Display for Notes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "risk {}", self.risk.unwrap_or("not given"))?;
        if let Some((app, browser)) = &self.elsewhere {
            write!(f, "; app at {app}, browser at {browser}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completed(risk: Option<Risk>, device_ip: &str) -> CompletedUser {
        CompletedUser {
            personal_number: "198112189876".into(),
            name: "Anna Andersson".into(),
            given_name: "Anna".into(),
            surname: "Andersson".into(),
            risk,
            device_ip: Some(device_ip.into()),
        }
    }

    #[test]
    fn risk_above_the_limit_is_refused_and_an_unknown_risk_is_noted() {
        let policy = Policy::default();
        assert_eq!(policy.assess(false, &completed(Some(Risk::Moderate), "1.2.3.4"), "1.2.3.4").0, None);
        assert_eq!(policy.assess(false, &completed(Some(Risk::High), "1.2.3.4"), "1.2.3.4").0, Some("riskTooHigh"));
        let strict = Policy { max_risk: Risk::Low, ..Policy::default() };
        assert_eq!(strict.assess(false, &completed(Some(Risk::Moderate), "1.2.3.4"), "1.2.3.4").0, Some("riskTooHigh"));
        let (refusal, notes) = policy.assess(false, &completed(None, "1.2.3.4"), "1.2.3.4");
        assert_eq!((refusal, notes.to_string().as_str()), (None, "risk not given"));
    }

    #[test]
    fn another_address_on_the_same_device_is_logged_or_refused_as_configured() {
        let user = completed(Some(Risk::Low), "203.0.113.9");
        let log = Policy::default();
        let (refusal, notes) = log.assess(true, &user, "198.51.100.7");
        assert_eq!(refusal, None);
        assert!(notes.to_string().contains("app at 203.0.113.9, browser at 198.51.100.7"), "{notes}");
        let refuse = Policy { same_device_ip: SameDeviceIp::Refuse, ..Policy::default() };
        let v6 = completed(Some(Risk::Low), "2001:db8:1:2::aaaa");
        assert_eq!(refuse.assess(true, &v6, "2001:db8:1:2::bbbb").0, None, "one /64 is one device's network");
        assert_eq!(refuse.assess(true, &user, "198.51.100.7").0, Some("otherDevice"));
        assert_eq!(refuse.assess(false, &user, "198.51.100.7").0, None, "a QR code is scanned on another device");
        let unknown = CompletedUser { device_ip: None, ..user.clone() };
        assert_eq!(refuse.assess(true, &unknown, "198.51.100.7").0, Some("otherDevice"), "no address: not shown");
        assert!(log.assess(true, &unknown, "198.51.100.7").1.to_string().contains("app at not given"));
        let off = Policy { same_device_ip: SameDeviceIp::Off, ..Policy::default() };
        assert_eq!(off.assess(true, &user, "198.51.100.7").1.to_string(), "risk low");
    }
}
