//! Personal data at rest: AES-256-GCM encryption, and an HMAC for look-ups without decrypting.
//!
//! Both keys are derived with HKDF from the one `security.data_key` of the configuration, so that a
//! copy of the database alone reveals no personal number.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::Random;

#[derive(Debug, thiserror::Error)]
pub enum ProtectError {
    #[error("the data key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("stored personal data cannot be decrypted with this data key")]
    Decrypt,
}

#[derive(Clone)]
pub struct DataKey {
    cipher: Aes256Gcm,
    lookup: Vec<u8>,
}

impl DataKey {
    /// From the configured base64 text of 32 random bytes.
    pub fn from_base64(text: &str) -> Result<Self, ProtectError> {
        let master = B64.decode(text.trim()).map_err(|_| ProtectError::BadKey)?;
        if master.len() != 32 {
            return Err(ProtectError::BadKey);
        }
        Ok(Self::derived(&master, b"stjarna-data-key"))
    }

    /// A key of its own for `purpose`, derived from a secret (of any length).
    pub fn derived(secret: &[u8], purpose: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(purpose), secret);
        let mut enc = [0u8; 32];
        let mut lookup = vec![0u8; 32];
        hk.expand(b"encryption", &mut enc).expect("32 bytes are a valid HKDF length");
        hk.expand(b"lookup", &mut lookup).expect("32 bytes are a valid HKDF length");
        Self { cipher: Aes256Gcm::new(&enc.into()), lookup }
    }

    /// `base64(nonce || ciphertext)`, a fresh random nonce each time.
    pub fn encrypt(&self, plain: &str, random: &dyn Random) -> String {
        B64.encode(self.seal(plain, random))
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, ProtectError> {
        let bytes = B64.decode(stored).map_err(|_| ProtectError::Decrypt)?;
        self.open(&bytes).ok_or(ProtectError::Decrypt)
    }

    /// `nonce || ciphertext`, a fresh random nonce each time.
    pub fn seal(&self, plain: &str, random: &dyn Random) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        random.fill(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .expect("AES-GCM encryption of a short text cannot fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// What [`Self::seal`] sealed with this key; None for anything else.
    pub fn open(&self, bytes: &[u8]) -> Option<String> {
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), sealed).ok()?;
        String::from_utf8(plain).ok()
    }

    /// A keyed hash: equal inputs give equal hashes, and nothing else can be learnt from it.
    pub fn lookup_hash(&self, plain: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.lookup).expect("HMAC takes any key length");
        mac.update(plain.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OsRandom;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn encrypts_and_decrypts() {
        let key = DataKey::from_base64(KEY).unwrap();
        let a = key.encrypt("198112189876", &OsRandom);
        let b = key.encrypt("198112189876", &OsRandom);
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.contains("1981"));
        assert_eq!(key.decrypt(&a).unwrap(), "198112189876");
    }

    #[test]
    fn another_key_cannot_decrypt() {
        let other = DataKey::from_base64(&B64.encode([7u8; 32])).unwrap();
        let sealed = DataKey::from_base64(KEY).unwrap().encrypt("198112189876", &OsRandom);
        assert!(other.decrypt(&sealed).is_err());
    }

    #[test]
    fn lookup_hashes_are_stable_and_keyed() {
        let key = DataKey::from_base64(KEY).unwrap();
        let other = DataKey::from_base64(&B64.encode([7u8; 32])).unwrap();
        assert_eq!(key.lookup_hash("x"), key.lookup_hash("x"));
        assert_ne!(key.lookup_hash("x"), other.lookup_hash("x"));
    }

    #[test]
    fn refuses_short_keys() {
        assert!(DataKey::from_base64("c2hvcnQ=").is_err());
    }
}
