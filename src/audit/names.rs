//! Names typed that match no account. People type their password into the name field (then
//! notice, and type it again where it belongs), so such a name is never kept as typed: the
//! audit trail, its log lines and forwarding, reset flows and the limits' keys hold a tag
//! instead, `?` and ten hex digits of a keyed hash of the name (trimmed, lower-case). The same
//! name gives the same tag for as long as the key stays (the data key; without one, a key
//! derived from `session.secret`), so repeated tries of one name still show together, and an
//! administrator finds them by searching for the tag.

use std::sync::Arc;

use crate::identity::DataKey;

/// How much of a typed name is hashed (the form's own limit is larger; nothing longer is a name).
const MAX_TYPED: usize = 256;

#[derive(Clone)]
pub struct NameTags {
    key: Arc<DataKey>,
}

impl NameTags {
    pub fn new(key: DataKey) -> Self {
        Self { key: Arc::new(key) }
    }

    /// The tag of a typed name.
    pub fn tag(&self, typed: &str) -> String {
        let name: String = typed.trim().chars().take(MAX_TYPED).collect::<String>().to_lowercase();
        format!("?{}", &self.key.lookup_hash(&format!("name-tag\0{name}"))[..10])
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
        let tags = NameTags::new(DataKey::derived(b"the portal's secret", b"test"));
        let tag = tags.tag("Sommar2026!");
        assert!(tag.len() == 11 && tag.starts_with('?'), "{tag}");
        assert!(tag[1..].bytes().all(|b| b.is_ascii_hexdigit()), "{tag}");
        assert_eq!(tags.tag("  sommar2026! "), tag, "trimmed, lower-case");
        assert_ne!(tags.tag("Sommar2027!"), tag);
        let other = NameTags::new(DataKey::derived(b"another portal's secret", b"test"));
        assert_ne!(other.tag("Sommar2026!"), tag, "keyed: not a plain hash anyone could rebuild");
    }
}
