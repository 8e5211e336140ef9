//! What a user types in the username field, parsed.

use std::fmt;

/// A login name as typed: `anna`, `anna@example.test` or `EXAMPLE\anna`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Username {
    /// A sAMAccountName, possibly typed with the domain's NetBIOS name in front.
    Account(String),
    /// A userPrincipalName or mail address.
    Principal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("the username is empty")]
    Empty,
    #[error("the username is too long")]
    TooLong,
    #[error("the username has characters no account name can have")]
    InvalidCharacters,
    #[error("the username names another domain")]
    OtherDomain,
}

/// Characters AD does not allow in a sAMAccountName.
const FORBIDDEN: &[char] = &['"', '/', '\\', '[', ']', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>'];

impl Username {
    /// Parses what was typed. `netbios_domain` is the only domain accepted before a backslash.
    pub fn parse(input: &str, netbios_domain: &str) -> Result<Username, UsernameError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(UsernameError::Empty);
        }
        if input.chars().count() > 256 {
            return Err(UsernameError::TooLong);
        }
        if input.chars().any(char::is_control) {
            return Err(UsernameError::InvalidCharacters);
        }
        let account = match input.split_once('\\') {
            Some((domain, account)) => {
                if !domain.eq_ignore_ascii_case(netbios_domain) {
                    return Err(UsernameError::OtherDomain);
                }
                account
            }
            None if input.contains('@') => {
                let (local, domain) = input.rsplit_once('@').unwrap_or_default();
                if local.is_empty() || domain.is_empty() {
                    return Err(UsernameError::InvalidCharacters);
                }
                return Ok(Username::Principal(input.to_string()));
            }
            None => input,
        };
        if account.is_empty() {
            return Err(UsernameError::Empty);
        }
        if account.chars().count() > 64 {
            return Err(UsernameError::TooLong);
        }
        if account.contains(FORBIDDEN) || account.contains('@') {
            return Err(UsernameError::InvalidCharacters);
        }
        Ok(Username::Account(account.to_string()))
    }

    /// A stable key for throttling and audit: lower case, without the domain prefix.
    pub fn key(&self) -> String {
        match self {
            Username::Account(a) | Username::Principal(a) => a.to_lowercase(),
        }
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Username::Account(a) | Username::Principal(a) => f.write_str(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_forms_of_a_login_name() {
        assert_eq!(Username::parse("anna", "EXAMPLE"), Ok(Username::Account("anna".into())));
        assert_eq!(Username::parse(" EXAMPLE\\anna ", "EXAMPLE"), Ok(Username::Account("anna".into())));
        assert_eq!(Username::parse("example\\anna", "EXAMPLE"), Ok(Username::Account("anna".into())));
        assert_eq!(
            Username::parse("anna@example.test", "EXAMPLE"),
            Ok(Username::Principal("anna@example.test".into()))
        );
    }

    #[test]
    fn refuses_what_cannot_be_an_account() {
        assert_eq!(Username::parse("  ", "EXAMPLE"), Err(UsernameError::Empty));
        assert_eq!(Username::parse("OTHER\\anna", "EXAMPLE"), Err(UsernameError::OtherDomain));
        assert_eq!(Username::parse("EXAMPLE\\", "EXAMPLE"), Err(UsernameError::Empty));
        assert_eq!(Username::parse("an*na", "EXAMPLE"), Err(UsernameError::InvalidCharacters));
        assert_eq!(Username::parse("a\u{0}b", "EXAMPLE"), Err(UsernameError::InvalidCharacters));
        assert_eq!(Username::parse("@example.test", "EXAMPLE"), Err(UsernameError::InvalidCharacters));
        assert_eq!(Username::parse(&"a".repeat(300), "EXAMPLE"), Err(UsernameError::TooLong));
    }

    #[test]
    fn the_key_ignores_case_and_domain() {
        let a = Username::parse("EXAMPLE\\Anna", "EXAMPLE").unwrap();
        let b = Username::parse("anna", "EXAMPLE").unwrap();
        assert_eq!(a.key(), b.key());
    }
}
