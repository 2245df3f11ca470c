//! Moderator tokens: 256 random bits shown once, kept only as their SHA-256.
//!
//! A token is as random as a key, so a plain SHA-256 is enough to keep it: there is nothing to
//! guess from the hash that would be faster than guessing the token. Hashes are compared in
//! constant time so the answer's timing says nothing about how close a guess came.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every token starts with, so one pasted into the wrong place is recognisable.
const PREFIX: &str = "pbm_";

/// Random bytes in a token: 256 bits.
const TOKEN_BYTES: usize = 32;

/// A token's SHA-256: what the store keeps and what a request's token is compared with.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not a secret, but nothing a log needs either.
        f.write_str("TokenHash(..)")
    }
}

impl TokenHash {
    pub fn of(token: &str) -> Self {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(TokenHash)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Equal, in time that does not depend on where the two differ.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Hex, for the moderator cookie, which must name the token it came from.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A new token from the operating system's generator, and its hash.
pub fn generate() -> anyhow::Result<(String, TokenHash)> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness from the operating system: {e}"))?;
    let token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = TokenHash::of(&token);
    Ok((token, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_distinct_and_hash_to_what_is_stored() {
        let (a, hash) = generate().unwrap();
        let (b, _) = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX));
        assert_eq!(a.len(), PREFIX.len() + 43, "256 bits in unpadded base64");
        assert!(TokenHash::of(&a).matches(&hash));
        assert!(!TokenHash::of(&b).matches(&hash));
        assert_eq!(hash.hex().len(), 64);
    }
}
