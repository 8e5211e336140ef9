//! Mobile phone numbers, parsed with a real numbering plan (libphonenumber's metadata) into E.164.

use std::fmt;

use phonenumber::country::Id;
use phonenumber::{Mode, Type};

/// The countries offered in the selector, Sweden first.
pub const COUNTRIES: &[&str] = &["SE", "NO", "DK", "FI", "IS", "DE", "GB", "NL", "FR", "ES", "PL", "US"];

/// A mobile number in E.164 form (`+46701234567`).
///
/// Personal data: `Display` and `Debug` show it masked.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    e164: String,
    international: String,
    /// The number's country (ISO 3166 code, such as `SE`).
    country: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("the number is empty")]
    Empty,
    #[error("the number cannot be read as a phone number")]
    Unreadable,
    #[error("the number does not exist in the numbering plan")]
    Invalid,
    #[error("the number is not a mobile number")]
    NotMobile,
    #[error("unknown country")]
    UnknownCountry,
}

impl PhoneNumber {
    /// An enrolled number as stored (encrypted E.164), read back; None when it cannot be.
    pub fn from_stored(key: &crate::identity::DataKey, encrypted: &str) -> Option<PhoneNumber> {
        key.decrypt(encrypted).ok().and_then(|e164| PhoneNumber::parse(&e164, "SE").ok())
    }

    /// Parses what a user typed. A number starting with `+` or `00` chooses its country itself;
    /// otherwise `country` (ISO 3166 code, such as `SE`) decides.
    pub fn parse(input: &str, country: &str) -> Result<PhoneNumber, PhoneNumberError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(PhoneNumberError::Empty);
        }
        let country: Id = country.parse().map_err(|_| PhoneNumberError::UnknownCountry)?;
        let international = input.starts_with('+') || input.starts_with("00");
        let cleaned: String = if let Some(rest) = input.strip_prefix("00").filter(|_| !input.starts_with('+')) {
            format!("+{rest}")
        } else {
            input.to_string()
        };
        let region = if international { None } else { Some(country) };
        let number = phonenumber::parse(region, &cleaned).map_err(|_| PhoneNumberError::Unreadable)?;
        if !number.is_valid() {
            return Err(PhoneNumberError::Invalid);
        }
        match number.number_type(&phonenumber::metadata::DATABASE) {
            Type::Mobile | Type::FixedLineOrMobile => {}
            _ => return Err(PhoneNumberError::NotMobile),
        }
        Ok(PhoneNumber {
            e164: number.format().mode(Mode::E164).to_string(),
            international: number.format().mode(Mode::International).to_string(),
            country: number.country().id().map(|id| id.as_ref().to_string()).unwrap_or_default(),
        })
    }

    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// The number's country (ISO 3166 code, such as `SE`; empty when the plan does not say).
    pub fn country(&self) -> &str {
        &self.country
    }

    /// `+46 70 *** ** 67`: the country code, the first group and the last two digits.
    pub fn masked(&self) -> String {
        let groups: Vec<&str> = self.international.split([' ', '-']).collect();
        let total: usize = self.international.chars().filter(char::is_ascii_digit).count();
        let mut seen = 0;
        let mut out = Vec::new();
        for (i, group) in groups.iter().enumerate() {
            let masked: String = group
                .chars()
                .map(|c| {
                    if !c.is_ascii_digit() {
                        return c;
                    }
                    seen += 1;
                    if i < 2 || seen > total - 2 { c } else { '*' }
                })
                .collect();
            out.push(masked);
        }
        out.join(" ")
    }

    /// The start of the number, for limits against SMS pumping to one range (`+46701`).
    pub fn prefix(&self) -> &str {
        &self.e164[..self.e164.len().min(6)]
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_swedish_mobile_numbers_however_they_are_typed() {
        for typed in ["070-123 45 67", "0701234567", "+46701234567", "0046 70 123 45 67", "+46 (0)70-123 45 67"] {
            let n = PhoneNumber::parse(typed, "SE").unwrap_or_else(|e| panic!("{typed}: {e}"));
            assert_eq!(n.e164(), "+46701234567", "{typed}");
        }
    }

    #[test]
    fn a_number_knows_its_country() {
        assert_eq!(PhoneNumber::parse("0701234567", "SE").unwrap().country(), "SE");
        assert_eq!(PhoneNumber::parse("+4791234567", "SE").unwrap().country(), "NO");
        assert_eq!(PhoneNumber::parse("+2348031234567", "SE").unwrap().country(), "NG");
        // Places with a country's calling code but ranges (and tariffs) of their own are themselves.
        assert_eq!(PhoneNumber::parse("07911 123456", "GB").unwrap().country(), "GG");
        assert_eq!(PhoneNumber::parse("07400 123456", "GB").unwrap().country(), "GB");
        for caribbean in ["+18762101234", "+14413701234", "+12843001234", "+16492311234"] {
            let n = PhoneNumber::parse(caribbean, "SE").unwrap();
            assert!(!["US", "CA"].contains(&n.country()), "{caribbean}: {}", n.country());
        }
    }

    #[test]
    fn a_leading_plus_or_00_chooses_the_country() {
        let n = PhoneNumber::parse("+47 412 34 567", "SE").unwrap();
        assert_eq!(n.e164(), "+4741234567");
        let n = PhoneNumber::parse("0044 7911 123456", "SE").unwrap();
        assert_eq!(n.e164(), "+447911123456");
        let n = PhoneNumber::parse("07911 123456", "GB").unwrap();
        assert_eq!(n.e164(), "+447911123456");
    }

    #[test]
    fn refuses_landlines_and_nonsense() {
        assert_eq!(PhoneNumber::parse("08-123 456 78", "SE"), Err(PhoneNumberError::NotMobile));
        assert_eq!(PhoneNumber::parse("", "SE"), Err(PhoneNumberError::Empty));
        assert_eq!(PhoneNumber::parse("070-12", "SE"), Err(PhoneNumberError::Invalid));
        assert!(PhoneNumber::parse("hello", "SE").is_err());
        assert_eq!(PhoneNumber::parse("0701234567", "XX"), Err(PhoneNumberError::UnknownCountry));
    }

    #[test]
    fn is_shown_masked() {
        let n = PhoneNumber::parse("070-123 45 67", "SE").unwrap();
        assert_eq!(n.masked(), "+46 70 *** ** 67");
        assert_eq!(format!("{n}"), "+46 70 *** ** 67");
        assert!(!format!("{n:?}").contains("123"));
        assert_eq!(n.prefix(), "+46701");
    }
}
