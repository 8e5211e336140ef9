//! One-time codes: 6 digits from a CSPRNG, stored only as argon2 hashes.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

use crate::clock::Random;

/// A fresh code. Never logged, never stored: only its hash is.
pub struct OneTimeCode(String);

impl OneTimeCode {
    /// Six uniformly random digits (rejection sampling: no modulo bias).
    pub fn generate(random: &dyn Random) -> Self {
        loop {
            let mut bytes = [0u8; 4];
            random.fill(&mut bytes);
            let n = u32::from_le_bytes(bytes);
            // The largest multiple of 1,000,000 below 2^32.
            if n < 4_294_000_000 {
                return OneTimeCode(format!("{:06}", n % 1_000_000));
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hashes and checks codes with argon2id, off the async executor and a few at a time.
#[derive(Clone)]
pub struct CodeHasher {
    permits: Arc<Semaphore>,
    random: Arc<dyn Random>,
}

/// A code as typed, if it can be one: six digits, spaces and dashes ignored ("123 456").
pub fn as_typed(typed: &str) -> Option<String> {
    let digits: String = typed.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    (digits.len() == 6 && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

impl CodeHasher {
    pub fn new(random: Arc<dyn Random>, concurrent: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(concurrent.max(1))), random }
    }

    pub async fn hash(&self, code: &OneTimeCode) -> String {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let mut salt = [0u8; 16];
        self.random.fill(&mut salt);
        let code = code.0.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::encode_b64(&salt).expect("16 bytes make a valid salt");
            Argon2::default().hash_password(code.as_bytes(), &salt).expect("argon2 with default parameters").to_string()
        })
        .await
        .expect("the hashing task does not panic")
    }

    /// Whether `typed` is the code behind `stored`. Spaces are ignored; anything but 6 digits fails.
    pub async fn verify(&self, typed: &str, stored: &str) -> bool {
        let Some(typed) = as_typed(typed) else { return false };
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let stored = stored.to_string();
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored)
                .is_ok_and(|hash| Argon2::default().verify_password(typed.as_bytes(), &hash).is_ok())
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OsRandom;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..200 {
            let c = OneTimeCode::generate(&OsRandom);
            assert_eq!(c.as_str().len(), 6);
            assert!(c.as_str().chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[tokio::test]
    async fn only_the_right_code_verifies() {
        let hasher = CodeHasher::new(Arc::new(OsRandom), 2);
        let code = OneTimeCode::generate(&OsRandom);
        let stored = hasher.hash(&code).await;
        assert!(stored.starts_with("$argon2id$"));
        assert!(!stored.contains(code.as_str()));
        assert!(hasher.verify(code.as_str(), &stored).await);
        let spaced = format!("{} {}", &code.as_str()[..3], &code.as_str()[3..]);
        assert!(hasher.verify(&spaced, &stored).await, "spaces are ignored");
        let wrong = format!("{:06}", (code.as_str().parse::<u32>().unwrap() + 1) % 1_000_000);
        assert!(!hasher.verify(&wrong, &stored).await);
        assert!(!hasher.verify("12345", &stored).await);
    }
}
