//! Reading what the directory answers: entries into users, AD's encodings (unicodePwd,
//! FILETIME), and what a password write's result means.

use ldap3::SearchEntry;

use super::{DirectoryError, DirectoryUser, PasswordRefusal, PasswordWriteError, PolicyRef};

pub(super) const USER_ATTRS: &[&str] = &[
    "objectGUID",
    "sAMAccountName",
    "userPrincipalName",
    "displayName",
    "mail",
    "mobile",
    "userAccountControl",
    "msDS-User-Account-Control-Computed",
    "isCriticalSystemObject",
    "pwdLastSet",
    "accountExpires",
];
/// The PSO in force for a user (constructed by AD; absent when the domain's policy applies).
pub(super) const PSO_ATTR: &str = "msDS-ResultantPSO";
pub(super) const EXPIRY_ATTR: &str = "msDS-UserPasswordExpiryTimeComputed";
pub(super) const UF_ACCOUNTDISABLE: u32 = 0x2;
pub(super) const UF_LOCKOUT: u32 = 0x10;

pub(super) fn first(entry: &SearchEntry, attr: &str) -> Option<String> {
    entry.attrs.get(attr).and_then(|v| v.first()).cloned()
}

/// AD's `unicodePwd`: the password in double quotes, UTF-16LE.
pub(super) fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

pub(super) fn flags(entry: &SearchEntry, attr: &str) -> u32 {
    first(entry, attr).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) as u32
}

pub(super) fn to_user(entry: SearchEntry) -> Option<DirectoryUser> {
    let guid = entry.bin_attrs.get("objectGUID").and_then(|v| v.first())?;
    let id = uuid::Uuid::from_slice_le(guid).ok()?.to_string();
    Some(DirectoryUser {
        id,
        account_name: first(&entry, "sAMAccountName")?,
        principal_name: first(&entry, "userPrincipalName"),
        display_name: first(&entry, "displayName"),
        mail: first(&entry, "mail"),
        mobile: first(&entry, "mobile"),
        disabled: flags(&entry, "userAccountControl") & UF_ACCOUNTDISABLE != 0,
        locked: flags(&entry, "msDS-User-Account-Control-Computed") & UF_LOCKOUT != 0,
        system: first(&entry, "isCriticalSystemObject").is_some_and(|v| v.eq_ignore_ascii_case("TRUE")),
        policy: PolicyRef::NotRead,
        password_set: first(&entry, "pwdLastSet"),
        // 0 and 0x7FFFFFFFFFFFFFFF both mean never.
        expires_at: first(&entry, "accountExpires").as_deref().and_then(expiry_time),
        dn: entry.dn,
    })
}

/// `msDS-UserPasswordExpiryTimeComputed` or `accountExpires` (a FILETIME: 100 ns since 1601) as
/// seconds since the epoch; None for 0x7FFFFFFFFFFFFFFF (never) and for 0 (the password: must
/// change now; the account: never).
pub(super) fn expiry_time(value: &str) -> Option<i64> {
    if value.trim() == i64::MAX.to_string() {
        return None;
    }
    filetime_seconds(value)
}

/// AD's FILETIME (100 ns since 1601, as in `pwdLastSet`) as seconds since the epoch; None for 0
/// (`pwdLastSet`: must change at the next logon) or what is not a FILETIME.
pub fn filetime_seconds(value: &str) -> Option<i64> {
    let filetime: i64 = value.trim().parse().ok()?;
    (filetime > 0).then(|| filetime / 10_000_000 - 11_644_473_600)
}

/// Seconds since the epoch as AD's FILETIME, for a filter on `pwdLastSet`.
pub fn filetime_of(unix: i64) -> i64 {
    (unix + 11_644_473_600) * 10_000_000
}

/// LDAP's GeneralizedTime in UTC, as AD writes `whenChanged`: `20261202143000.0Z`.
const GENERALIZED: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year][month][day][hour][minute][second].0Z");

/// Seconds since the epoch as LDAP's GeneralizedTime, for a filter.
pub fn generalized_time(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(GENERALIZED).unwrap_or_default()
}

/// LDAP's GeneralizedTime (UTC) as seconds since the epoch.
pub fn generalized_seconds(value: &str) -> Option<i64> {
    let at = time::PrimitiveDateTime::parse(value, GENERALIZED).ok()?;
    Some(at.assume_utc().unix_timestamp())
}

/// A change's modify refused because the old value is not the password (Windows:
/// `00000056: AtrErr: ...`; Samba: `00000056: Constraint violation - ... doesn't match!`).
pub(super) fn old_password_wrong(diagnostic: &str) -> bool {
    diagnostic.trim_start().starts_with("00000056")
}

/// What a password write's LDAP result means.
pub(super) fn password_written(what: &str, result: ldap3::LdapResult) -> Result<(), PasswordWriteError> {
    match result.rc {
        0 => Ok(()),
        19 => Err(PasswordWriteError::Refused(PasswordRefusal::from_diagnostic(&result.text), result.text)),
        rc => Err(DirectoryError::Protocol(format!("{what} answered {rc} {}", result.text)).into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn expiry_times_are_read_from_filetime_and_never_is_none() {
        // 2026-12-31 00:00:00 UTC.
        assert_eq!(super::expiry_time("134431488000000000"), Some(1_798_675_200));
        assert_eq!(super::expiry_time("9223372036854775807"), None, "never expires");
        assert_eq!(super::expiry_time("0"), None, "must change at next logon");
        assert_eq!(super::expiry_time("x"), None);
    }

    #[test]
    fn times_are_written_for_filters_as_ad_compares_them() {
        // 2026-12-31 00:00:00 UTC.
        assert_eq!(super::filetime_of(1_798_675_200), 134_431_488_000_000_000);
        assert_eq!(super::filetime_seconds(&super::filetime_of(1_798_675_200).to_string()), Some(1_798_675_200));
        assert_eq!(super::generalized_time(1_798_675_200 + 3_723), "20261231010203.0Z");
        assert_eq!(super::generalized_seconds("20261231010203.0Z"), Some(1_798_675_200 + 3_723));
        assert_eq!(super::generalized_seconds("20261331010203.0Z"), None, "no 13th month");
        assert_eq!(super::generalized_seconds("2026"), None);
    }

    #[test]
    fn an_account_is_closed_when_disabled_or_past_its_expiry() {
        let mut user = crate::directory::fake::FakeDirectory::default().add_user("anna", "x");
        let now = 1_798_675_200;
        assert!(!user.closed_at(now), "accountExpires 0 or never: open");
        user.expires_at = super::expiry_time("134431488000000000");
        assert!(user.closed_at(now), "expires at this very second");
        assert!(!user.closed_at(now - 1));
        user.expires_at = None;
        user.disabled = true;
        assert!(user.closed_at(now));
    }
}
