//! Swedish personal numbers (personnummer) and co-ordination numbers (samordningsnummer).

use std::fmt;

use time::{Date, Month};

/// A valid personal or co-ordination number, held as its 12 digits `YYYYMMDDNNNC`.
///
/// Sensitive data: its `Debug` and `Display` show only the masked form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PersonalNumber(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PersonalNumberError {
    #[error("a personal number has 10 or 12 digits")]
    Length,
    #[error("a personal number has only digits and one - or +")]
    Characters,
    #[error("the date in the personal number does not exist")]
    Date,
    #[error("the check digit of the personal number is wrong")]
    CheckDigit,
}

/// Whether `input` looks like a personal number (10 or 12 digits, with or without `-`, `+` or
/// blanks), valid or not: such text is neither searched for nor kept where a name would be.
pub fn looks_like_personal_number(input: &str) -> bool {
    let mut digits = 0;
    for c in input.trim().chars() {
        match c {
            '0'..='9' => digits += 1,
            '-' | '+' | ' ' => {}
            _ => return false,
        }
    }
    digits == 10 || digits == 12
}

impl PersonalNumber {
    /// Parses `YYYYMMDDNNNC`, `YYYYMMDD-NNNC`, `YYMMDDNNNC`, `YYMMDD-NNNC` or `YYMMDD+NNNC`.
    /// `today` decides the century of 10-digit forms (`+` means 100 years or older).
    pub fn parse(input: &str, today: Date) -> Result<PersonalNumber, PersonalNumberError> {
        let input = input.trim();
        let plus = input.contains('+');
        let digits: String = input.chars().filter(|c| !matches!(c, '-' | '+' | ' ')).collect();
        if input.chars().filter(|c| matches!(c, '-' | '+')).count() > 1 {
            return Err(PersonalNumberError::Characters);
        }
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(PersonalNumberError::Characters);
        }
        let full = match digits.len() {
            12 => digits,
            10 => {
                let yy: i32 = digits[0..2].parse().map_err(|_| PersonalNumberError::Characters)?;
                let this_year = today.year();
                let mut year = this_year - (this_year - yy).rem_euclid(100);
                // Born later this century than today's date: last century.
                let candidate = birth_date(year, &digits[2..4], &digits[4..6]);
                if candidate.is_some_and(|d| d > today) {
                    year -= 100;
                }
                if plus {
                    year -= 100;
                }
                format!("{year:04}{}", &digits[2..])
            }
            _ => return Err(PersonalNumberError::Length),
        };
        let year: i32 = full[0..4].parse().map_err(|_| PersonalNumberError::Characters)?;
        if birth_date(year, &full[4..6], &full[6..8]).is_none() {
            return Err(PersonalNumberError::Date);
        }
        if !luhn_ok(&full[2..]) {
            return Err(PersonalNumberError::CheckDigit);
        }
        Ok(PersonalNumber(full))
    }

    /// The 12 digits BankID wants.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// `19850412-****`: the date, never the rest.
    pub fn masked(&self) -> String {
        format!("{}-****", &self.0[..8])
    }

    pub fn is_coordination_number(&self) -> bool {
        self.0[6..8].parse::<u8>().is_ok_and(|d| d > 60)
    }
}

/// The birth date, with the co-ordination number's +60 on the day removed.
fn birth_date(year: i32, month: &str, day: &str) -> Option<Date> {
    let month: u8 = month.parse().ok()?;
    let mut day: u8 = day.parse().ok()?;
    if day > 60 {
        day -= 60;
    }
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// Luhn over the 10 digits YYMMDDNNNC, weights 2,1,2,1... from the left.
fn luhn_ok(ten: &str) -> bool {
    let sum: u32 = ten
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0') * if i % 2 == 0 { 2 } else { 1 };
            d / 10 + d % 10
        })
        .sum();
    sum.is_multiple_of(10)
}

impl fmt::Debug for PersonalNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonalNumber({})", self.masked())
    }
}

impl fmt::Display for PersonalNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    const TODAY: Date = date!(2026 - 11 - 22);

    fn parse(s: &str) -> Result<String, PersonalNumberError> {
        PersonalNumber::parse(s, TODAY).map(|p| p.digits().to_string())
    }

    #[test]
    fn accepts_every_written_form() {
        for form in ["198112189876", "19811218-9876", "8112189876", "811218-9876", " 811218 9876 "] {
            assert_eq!(parse(form), Ok("198112189876".into()), "{form}");
        }
    }

    #[test]
    fn a_plus_means_a_hundred_years_or_older() {
        assert_eq!(parse("121212+1212"), Ok("191212121212".into()));
        assert_eq!(parse("121212-1212"), Ok("201212121212".into()));
    }

    #[test]
    fn a_ten_digit_date_after_today_is_last_century() {
        // 2026-12-24 has not happened yet on 2026-11-22.
        assert_eq!(parse("261224-0008"), Ok("192612240008".into()));
        assert_eq!(parse("261122-0000").map(|d| d[..4].to_string()).ok(), None, "check digit");
    }

    #[test]
    fn accepts_coordination_numbers() {
        let pn = PersonalNumber::parse("701063-2391", TODAY).unwrap();
        assert_eq!(pn.digits(), "197010632391");
        assert!(pn.is_coordination_number());
    }

    #[test]
    fn refuses_what_is_not_a_personal_number() {
        assert_eq!(parse("19811218987"), Err(PersonalNumberError::Length));
        assert_eq!(parse("19811218-987a"), Err(PersonalNumberError::Characters));
        assert_eq!(parse("19811218--9876"), Err(PersonalNumberError::Characters));
        assert_eq!(parse("198112189875"), Err(PersonalNumberError::CheckDigit));
        assert_eq!(parse("19810230-0000"), Err(PersonalNumberError::Date));
        assert_eq!(parse("19811332-0000"), Err(PersonalNumberError::Date));
        assert_eq!(parse("19810291-0000"), Err(PersonalNumberError::Date), "co-ordination 31 Feb");
    }

    #[test]
    fn is_masked_wherever_it_is_printed() {
        let pn = PersonalNumber::parse("198112189876", TODAY).unwrap();
        assert_eq!(pn.masked(), "19811218-****");
        assert_eq!(format!("{pn}"), "19811218-****");
        assert!(!format!("{pn:?}").contains("9876"));
    }
}
