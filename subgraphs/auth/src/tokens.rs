//! Issuing tokens: short-lived signed access tokens, opaque rotating refresh tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use draftr_common::Role;
use draftr_common::jwt::{Claims, SigningKey, TokenPolicy};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::TokenSettings;

pub struct TokenIssuer {
    key: SigningKey,
    settings: TokenSettings,
    /// The `iss` and `aud` every token carries (the subgraph's shared token policy).
    policy: TokenPolicy,
}

impl TokenIssuer {
    pub fn new(key: SigningKey, settings: TokenSettings, policy: TokenPolicy) -> Self {
        Self {
            key,
            settings,
            policy,
        }
    }

    pub fn access_ttl_secs(&self) -> u64 {
        self.settings.access_ttl_secs
    }

    pub fn refresh_ttl(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.settings.refresh_ttl_secs as i64)
    }

    /// A signed access token for `user` in session `sid`.
    pub fn access_token(&self, user: Uuid, sid: Uuid, role: Role) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user,
            sid,
            role,
            iss: self.policy.issuer.clone(),
            aud: self.policy.audience.clone(),
            iat: now,
            exp: now + self.settings.access_ttl_secs as i64,
            jti: Uuid::new_v4(),
        };
        self.key.sign(&claims)
    }
}

/// A new refresh token (given to the client once) and the hash we keep of it.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// 256 random bits need no slow hash: SHA-256 keeps a leaked table useless.
pub fn hash_refresh_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
