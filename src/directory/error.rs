//! What can go wrong talking to the directory, and AD's bind sub-codes.

/// Why the directory could not answer. Never shown to users as text: the web layer turns it into a
/// friendly page, and logs this chain.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("the directory at {url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the directory at {url} did not answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("the directory's TLS certificate at {url} was refused ({reason}); {}", .problem.hint())]
    UntrustedCertificate { url: String, reason: String, problem: CertProblem },
    #[error("the service account {bind_dn} was refused by the directory: {reason}")]
    ServiceAccountRefused { bind_dn: String, reason: String },
    #[error("the directory's CA file {path} cannot be used: {reason}")]
    CaFile { path: String, reason: String },
    #[error("the directory answered an unexpected error: {0}")]
    Protocol(String),
    /// Every pooled connection to the DC was in use for the whole wait: the portal is busy, the
    /// DC is not known to be down.
    #[error("every connection to the directory at {url} stayed busy for {seconds} s")]
    Busy { url: String, seconds: u64 },
    /// The connection closed after a request went to it and before its answer came.
    #[error("the connection to the directory at {url} closed before its answer came")]
    Dropped { url: String },
    /// A write was sent and no answer came (no answer in time, or the connection dropped): AD
    /// may have made it. Such a write is never sent to another DC.
    #[error("the directory at {url} did not confirm a write, which it may have made: {reason}")]
    Unconfirmed { url: String, reason: String },
}

/// What was wrong with a DC's certificate, for whoever has to mend it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertProblem {
    /// Not from a CA the portal trusts (or TLS failed otherwise).
    Untrusted,
    /// Not for the name (or address) in the URL.
    WrongName,
    /// Expired, or not valid yet.
    NotValidNow,
}

impl CertProblem {
    /// What rustls refused, in these terms.
    pub fn of(e: &rustls::Error) -> Self {
        use rustls::CertificateError as C;
        match e {
            rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
                CertProblem::WrongName
            }
            rustls::Error::InvalidCertificate(
                C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
            ) => CertProblem::NotValidNow,
            _ => CertProblem::Untrusted,
        }
    }

    fn hint(self) -> &'static str {
        match self {
            CertProblem::Untrusted => "it is not trusted: check directory.ca_file",
            CertProblem::WrongName => "it is for another name: the URL must name the DC as its certificate does",
            CertProblem::NotValidNow => "it has expired or is not valid yet: check its dates, and this host's clock",
        }
    }
}

impl DirectoryError {
    /// A short, stable name of the kind of error (a metrics label).
    pub fn kind(&self) -> &'static str {
        match self {
            DirectoryError::Unreachable { .. } => "unreachable",
            DirectoryError::Timeout { .. } => "timeout",
            DirectoryError::UntrustedCertificate { .. } => "untrusted_certificate",
            DirectoryError::ServiceAccountRefused { .. } => "service_account_refused",
            DirectoryError::CaFile { .. } => "ca_file",
            DirectoryError::Protocol(_) => "protocol",
            DirectoryError::Busy { .. } => "busy",
            DirectoryError::Dropped { .. } => "dropped",
            DirectoryError::Unconfirmed { .. } => "unconfirmed",
        }
    }

    /// What a failed write means once it was handed to its connection: no answer (in time, or
    /// at all) leaves it unknown whether AD made it; any other error is AD's answer, or says
    /// that nothing was sent.
    pub(super) fn after_sending_write(self) -> DirectoryError {
        match self {
            DirectoryError::Timeout { url, seconds } => {
                DirectoryError::Unconfirmed { url, reason: format!("no answer within {seconds} s") }
            }
            DirectoryError::Dropped { url } => {
                DirectoryError::Unconfirmed { url, reason: "the connection closed before the answer".into() }
            }
            other => other,
        }
    }
}

/// Why AD refused a user's bind (LDAP result 49), from the `data NNN` sub-code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindRefusal {
    /// 525: no such user.
    NoSuchUser,
    /// 52e: wrong password (or no such user, on some servers).
    InvalidCredentials,
    /// 530: not permitted to log on at this time.
    OutsideLogonHours,
    /// 531: not permitted to log on from this workstation.
    WorkstationNotAllowed,
    /// 532: the password has expired.
    PasswordExpired,
    /// 533: the account is disabled.
    AccountDisabled,
    /// 701: the account has expired.
    AccountExpired,
    /// 773: the user must change the password before logging on.
    MustChangePassword,
    /// 775: the account is locked out.
    AccountLocked,
}

impl BindRefusal {
    /// Reads AD's diagnostic text, e.g. `80090308: LdapErr: ... AcceptSecurityContext error, data 52e, v4563`.
    pub fn from_diagnostic(text: &str) -> BindRefusal {
        let lower = text.to_ascii_lowercase();
        let code = lower
            .split("data ")
            .nth(1)
            .map(|rest| rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect::<String>())
            .unwrap_or_default();
        match code.as_str() {
            "525" => BindRefusal::NoSuchUser,
            "530" => BindRefusal::OutsideLogonHours,
            "531" => BindRefusal::WorkstationNotAllowed,
            "532" => BindRefusal::PasswordExpired,
            "533" => BindRefusal::AccountDisabled,
            "701" => BindRefusal::AccountExpired,
            "773" => BindRefusal::MustChangePassword,
            "775" => BindRefusal::AccountLocked,
            _ => BindRefusal::InvalidCredentials,
        }
    }

    /// The catalogue key of the plain sentence shown to the user.
    pub fn message_key(self) -> &'static str {
        match self {
            // A missing user and a wrong password must read the same.
            BindRefusal::NoSuchUser | BindRefusal::InvalidCredentials => "login.error.invalid",
            BindRefusal::OutsideLogonHours => "login.error.logon_hours",
            BindRefusal::WorkstationNotAllowed => "login.error.workstation",
            BindRefusal::PasswordExpired => "login.error.password_expired",
            BindRefusal::AccountDisabled => "login.error.disabled",
            BindRefusal::AccountExpired => "login.error.account_expired",
            BindRefusal::MustChangePassword => "login.error.must_change",
            BindRefusal::AccountLocked => "login.error.locked",
        }
    }

    /// A short stable name for the audit log.
    pub fn id(self) -> &'static str {
        match self {
            BindRefusal::NoSuchUser => "no-such-user",
            BindRefusal::InvalidCredentials => "invalid-credentials",
            BindRefusal::OutsideLogonHours => "outside-logon-hours",
            BindRefusal::WorkstationNotAllowed => "workstation-not-allowed",
            BindRefusal::PasswordExpired => "password-expired",
            BindRefusal::AccountDisabled => "account-disabled",
            BindRefusal::AccountExpired => "account-expired",
            BindRefusal::MustChangePassword => "must-change-password",
            BindRefusal::AccountLocked => "account-locked",
        }
    }

    /// Whether the refusal means the password itself was wrong (and so counts toward throttling).
    pub fn is_bad_password(self) -> bool {
        matches!(self, BindRefusal::NoSuchUser | BindRefusal::InvalidCredentials)
    }
}

#[cfg(test)]
mod tests {
    use super::BindRefusal::{self, *};

    #[test]
    fn reads_every_ad_sub_code() {
        let cases = [
            ("525", NoSuchUser),
            ("52e", InvalidCredentials),
            ("530", OutsideLogonHours),
            ("531", WorkstationNotAllowed),
            ("532", PasswordExpired),
            ("533", AccountDisabled),
            ("701", AccountExpired),
            ("773", MustChangePassword),
            ("775", AccountLocked),
        ];
        for (code, want) in cases {
            let text =
                format!("80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error, data {code}, v4563");
            assert_eq!(BindRefusal::from_diagnostic(&text), want, "code {code}");
        }
    }

    #[test]
    fn anything_else_is_a_wrong_password() {
        assert_eq!(BindRefusal::from_diagnostic(""), InvalidCredentials);
        assert_eq!(BindRefusal::from_diagnostic("data zzz"), InvalidCredentials);
    }

    #[test]
    fn a_missing_user_reads_like_a_wrong_password() {
        assert_eq!(NoSuchUser.message_key(), InvalidCredentials.message_key());
    }
}

/// Why AD refused a new password (LDAP 19, `0000052D: Constraint violation - ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRefusal {
    TooShort,
    NotComplex,
    InHistory,
    TooYoung,
    /// Refused for a reason AD did not spell out.
    Other,
}

impl PasswordRefusal {
    /// Reads AD's (or Samba's) diagnostic text.
    pub fn from_diagnostic(text: &str) -> PasswordRefusal {
        let t = text.to_ascii_lowercase();
        if t.contains("too short") {
            PasswordRefusal::TooShort
        } else if t.contains("complexity") {
            PasswordRefusal::NotComplex
        } else if t.contains("history") || t.contains("already used") {
            PasswordRefusal::InHistory
        } else if t.contains("too young") || t.contains("minimum password age") {
            PasswordRefusal::TooYoung
        } else {
            PasswordRefusal::Other
        }
    }

    pub fn message_key(self) -> &'static str {
        match self {
            PasswordRefusal::TooShort => "password.ad.too_short",
            PasswordRefusal::NotComplex => "password.ad.not_complex",
            PasswordRefusal::InHistory => "password.ad.in_history",
            PasswordRefusal::TooYoung => "password.ad.too_young",
            PasswordRefusal::Other => "password.ad.other",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordWriteError {
    #[error("the directory refused the new password ({0:?}): {1}")]
    Refused(PasswordRefusal, String),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

#[cfg(test)]
mod password_tests {
    use super::PasswordRefusal::{self, *};

    #[test]
    fn reads_samba_and_windows_refusals() {
        let samba = |s: &str| format!("0000052D: Constraint violation - check_password_restrictions: {s}");
        assert_eq!(
            PasswordRefusal::from_diagnostic(&samba(
                "the password is too short. It should be equal or longer than 8 characters!"
            )),
            TooShort
        );
        assert_eq!(
            PasswordRefusal::from_diagnostic(&samba("the password does not meet the complexity criteria!")),
            NotComplex
        );
        assert_eq!(PasswordRefusal::from_diagnostic(&samba("the password was already used (in history)!")), InHistory);
        assert_eq!(PasswordRefusal::from_diagnostic(&samba("password is too young to change!")), TooYoung);
        assert_eq!(
            PasswordRefusal::from_diagnostic("0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM)"),
            Other
        );
    }
}

#[cfg(test)]
mod write_tests {
    use super::DirectoryError;

    #[test]
    fn a_write_sent_without_an_answer_is_unconfirmed_and_any_answer_stands() {
        let url = || "ldaps://dc1".to_string();
        let timeout = DirectoryError::Timeout { url: url(), seconds: 10 };
        assert!(matches!(timeout.after_sending_write(), DirectoryError::Unconfirmed { .. }));
        let dropped = DirectoryError::Dropped { url: url() };
        assert!(matches!(dropped.after_sending_write(), DirectoryError::Unconfirmed { .. }));
        let not_sent = DirectoryError::Unreachable { url: url(), reason: "the connection had closed".into() };
        assert!(matches!(not_sent.after_sending_write(), DirectoryError::Unreachable { .. }));
        let answered = DirectoryError::Protocol("result 53 unwilling to perform".into());
        assert!(matches!(answered.after_sending_write(), DirectoryError::Protocol(_)));
    }
}
