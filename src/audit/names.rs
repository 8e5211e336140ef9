//! Names typed that match no account. People type their password into the name field (then
//! notice, and type it again where it belongs), so such a name is never kept as typed: the
//! audit trail, its log lines and forwarding, and the limits' keys hold a tag instead, `?` and
//! ten hex digits of a keyed hash of the name (trimmed, lower-case). The same name gives the
//! same tag for as long as the key stays (it is derived from `session.secret`; without one, a
//! random key lasts until the portal restarts), so repeated tries of one name still show
//! together, and an administrator who searches the trail for a name finds its tag.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How much of a typed name is hashed (the form's own limit is larger; nothing longer is a name).
const MAX_TYPED: usize = 256;

#[derive(Clone)]
pub struct NameTags {
    key: Arc<[u8; 32]>,
}

impl NameTags {
    /// Tags keyed by a key of their own, derived from the portal's secret.
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
        mac.update(b"stjarna: tags of names that match no account");
        Self { key: Arc::new(mac.finalize().into_bytes().into()) }
    }

    /// The tag of a typed name.
    pub fn tag(&self, typed: &str) -> String {
        let name: String = typed.trim().chars().take(MAX_TYPED).collect::<String>().to_lowercase();
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.as_slice()).expect("HMAC takes a key of any length");
        mac.update(name.as_bytes());
        format!("?{}", hex::encode(&mac.finalize().into_bytes()[..5]))
    }

    /// Whether `text` is a tag (as stored in place of a name).
    pub fn is_tag(text: &str) -> bool {
        text.len() == 11 && text.starts_with('?') && text[1..].bytes().all(|b| b.is_ascii_hexdigit())
    }
}

impl std::fmt::Debug for NameTags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NameTags(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_tagged_the_same_however_it_is_typed_and_never_kept() {
        let tags = NameTags::from_secret(b"the portal's secret, 32 characters or more");
        let tag = tags.tag("Sommar2026!");
        assert!(NameTags::is_tag(&tag), "{tag}");
        assert!(!tag.to_lowercase().contains("sommar"));
        assert_eq!(tags.tag("  sommar2026! "), tag, "trimmed, lower-case");
        assert_ne!(tags.tag("Sommar2027!"), tag);
        let other = NameTags::from_secret(b"another portal's secret, 32 characters or more");
        assert_ne!(other.tag("Sommar2026!"), tag, "keyed: not a plain hash anyone could rebuild");
        assert!(!NameTags::is_tag("jdoe") && !NameTags::is_tag("?jdoe.corp."));
    }
}
