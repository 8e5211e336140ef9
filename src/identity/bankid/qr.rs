//! The animated QR code's payload (BankID's secure start), and the autostart launch URL.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `qrAuthCode`: lowercase hex HMAC-SHA256 of `qrTime` keyed with `qrStartSecret`.
pub fn qr_auth_code(qr_start_secret: &str, qr_time: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(qr_start_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(qr_time.to_string().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `bankid.<qrStartToken>.<qrTime>.<qrAuthCode>`
pub fn qr_payload(qr_start_token: &str, qr_start_secret: &str, qr_time: u64) -> String {
    format!("bankid.{qr_start_token}.{qr_time}.{}", qr_auth_code(qr_start_secret, qr_time))
}

/// The URL that starts the BankID app on this device, by browser.
///
/// iOS Safari and Android Chrome need the universal link; desktop browsers the `bankid:` scheme.
/// `template`, when configured (demo mode), replaces both: `{token}` is filled in.
pub fn launch_url(auto_start_token: &str, user_agent: &str, template: Option<&str>) -> String {
    if let Some(t) = template {
        return t.replace("{token}", auto_start_token);
    }
    let ua = user_agent.to_ascii_lowercase();
    let mobile = ua.contains("iphone") || ua.contains("ipad") || ua.contains("android");
    if mobile {
        format!("https://app.bankid.com/?autostarttoken={auto_start_token}&redirect=null")
    } else {
        format!("bankid:///?autostarttoken={auto_start_token}&redirect=null")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "67df3917-fa0d-44e5-b327-edcc928297f8";
    const SECRET: &str = "d28db9a7-4cde-429e-a983-359be676944c";

    #[test]
    fn matches_the_reference_test_vector() {
        assert_eq!(qr_auth_code(SECRET, 0), "dc69358e712458a66a7525beef148ae8526b1c71610eff2c16cdffb4cdac9bf8");
        assert_eq!(qr_auth_code(SECRET, 1), "949d559bf23403952a94d103e67743126381eda00f0b3cbddbf7c96b1adcbce2");
        assert_eq!(qr_auth_code(SECRET, 2), "a9e5ec59cb4eee4ef4117150abc58fad7a85439a6a96ccbecc3668b41795b3f3");
        assert_eq!(
            qr_payload(TOKEN, SECRET, 1),
            format!("bankid.{TOKEN}.1.949d559bf23403952a94d103e67743126381eda00f0b3cbddbf7c96b1adcbce2")
        );
    }

    #[test]
    fn launch_urls_follow_the_browser() {
        let desktop = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0";
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1";
        assert_eq!(launch_url("t", desktop, None), "bankid:///?autostarttoken=t&redirect=null");
        assert!(launch_url("t", iphone, None).starts_with("https://app.bankid.com/?autostarttoken=t"));
        assert_eq!(
            launch_url("t", desktop, Some("http://sim/app?autostarttoken={token}")),
            "http://sim/app?autostarttoken=t"
        );
    }
}
