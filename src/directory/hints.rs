//! Password history on resets. A reset (`unicodePwd` replaced by the service account) ignores AD's
//! password history and minimum age, unless it carries LDAP_SERVER_POLICY_HINTS: Windows Server
//! 2012 and later (`1.2.840.113556.1.4.2239`; `1.2.840.113556.1.4.2066` on some older DCs) then
//! enforce them as for a change. The control is sent only when the DC lists it in the RootDSE's
//! `supportedControl` (sent critical elsewhere, it fails the reset with unavailableCriticalExtension,
//! as Samba 4.17 answers).

use bytes::BytesMut;
use ldap3::asn1::{ASNTag, Integer, Sequence, Tag, write};
use ldap3::controls::RawControl;

pub const POLICY_HINTS: &str = "1.2.840.113556.1.4.2239";
pub const POLICY_HINTS_DEPRECATED: &str = "1.2.840.113556.1.4.2066";

/// The control's value: the BER of `SEQUENCE { Flags INTEGER }` with the flag 1 (enforce).
pub fn value() -> Vec<u8> {
    let seq = Tag::Sequence(Sequence {
        inner: vec![Tag::Integer(Integer { inner: 1, ..Default::default() })],
        ..Default::default()
    });
    let mut buf = BytesMut::with_capacity(8);
    write::encode_into(&mut buf, seq.into_structure()).expect("a fixed structure encodes");
    buf.to_vec()
}

/// The policy-hints OID to send, from the DC's `supportedControl` values; None when it has neither.
pub fn pick(supported: &[String]) -> Option<&'static str> {
    [POLICY_HINTS, POLICY_HINTS_DEPRECATED].into_iter().find(|oid| supported.iter().any(|s| s == oid))
}

/// The control, critical: a DC that lists it must honour it.
pub fn control(oid: &str) -> RawControl {
    RawControl { ctype: oid.to_string(), crit: true, val: Some(value()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_is_the_ber_of_a_sequence_holding_the_integer_one() {
        assert_eq!(value(), vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    }

    #[test]
    fn the_current_oid_is_preferred_and_none_is_sent_to_a_dc_without_it() {
        let both = vec![POLICY_HINTS_DEPRECATED.to_string(), POLICY_HINTS.to_string()];
        assert_eq!(pick(&both), Some(POLICY_HINTS));
        assert_eq!(pick(&[POLICY_HINTS_DEPRECATED.to_string()]), Some(POLICY_HINTS_DEPRECATED));
        assert_eq!(pick(&["1.2.840.113556.1.4.319".to_string()]), None);
        let c = control(POLICY_HINTS);
        assert!(c.crit);
        assert_eq!(c.ctype, POLICY_HINTS);
    }
}
