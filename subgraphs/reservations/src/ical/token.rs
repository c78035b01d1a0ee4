//! Export URL tokens: `base64url(HMAC-SHA256(feed secret, "{property id}/{generation}"))`.
//! Only the generation is stored; comparing is constant-time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Computes and checks tokens with one secret.
#[derive(Clone)]
pub struct FeedTokens {
    secret: Vec<u8>,
}

impl std::fmt::Debug for FeedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FeedTokens(..)")
    }
}

impl FeedTokens {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self, property: Uuid, generation: i64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(format!("{property}/{generation}").as_bytes());
        mac
    }

    /// The token of `property` at `generation`.
    pub fn token(&self, property: Uuid, generation: i64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(property, generation).finalize().into_bytes())
    }

    /// Whether `given` is the token of `property` at `generation` (constant-time).
    pub fn verify(&self, property: Uuid, generation: i64, given: &str) -> bool {
        let expected = self.token(property, generation);
        expected.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_per_secret_property_and_generation() {
        let t = FeedTokens::new(b"secret");
        let p = Uuid::now_v7();
        let token = t.token(p, 0);
        assert_eq!(token.len(), 43, "32 bytes, unpadded base64url");
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert!(t.verify(p, 0, &token));
        assert!(!t.verify(p, 1, &token), "rotated");
        assert!(!t.verify(Uuid::now_v7(), 0, &token), "another property");
        assert!(
            !FeedTokens::new(b"other").verify(p, 0, &token),
            "another secret"
        );
        assert!(!t.verify(p, 0, &token[..42]));
        assert!(!t.verify(p, 0, ""));
    }
}
