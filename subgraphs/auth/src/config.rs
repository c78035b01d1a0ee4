//! Settings of the auth subgraph (`DRAFTR_AUTH__…` environment variables override).

use std::path::PathBuf;

use draftr_common::config::{Subgraph, SubgraphSettings};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
#[derive(Default)]
pub struct AuthSettings {
    /// Listen address, database, Redis, the token policy it signs with (`issuer`, `audience`),
    /// trusted proxies and the service credential.
    #[serde(flatten)]
    pub subgraph: SubgraphSettings<Self>,
    pub tokens: TokenSettings,
    pub throttle: ThrottleSettings,
}

impl Subgraph for AuthSettings {
    const NAME: &'static str = "auth";
    const PORT: u16 = 4001;
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TokenSettings {
    /// Access tokens are short-lived: a stolen one is useful for minutes, not days.
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// The Ed25519 private key (PKCS#8 PEM). Production sets this from a secret store, and
    /// every auth replica gets the same key.
    pub signing_key_pem: Option<SecretString>,
    /// Development only: where to keep a generated key when no PEM is given, so tokens
    /// survive a restart of the embedded default.
    pub signing_key_file: PathBuf,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            signing_key_pem: None,
            signing_key_file: PathBuf::from(".draftr-data/auth-signing-key.pem"),
        }
    }
}

/// Sign-in throttling (see the README's "Sign-in throttling" for the policy in words). Every
/// counter is incremented before the password is checked and the decision is taken on the new
/// value, so concurrent guesses cannot all slip past a check.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ThrottleSettings {
    /// Failed sign-ins per account from one address in `window_secs`; then that pair waits out
    /// the window (even with the right password, so a guesser learns nothing).
    pub max_failures_per_account: u64,
    /// Failed sign-ins from one address across all accounts in `window_secs` (spraying).
    pub max_failures_per_ip: u64,
    pub window_secs: u64,
    /// Failed sign-ins per account from anywhere in `account_window_secs` before the account
    /// is slowed down: then one attempt per `slowdown_secs` from an address it has not signed
    /// in from before. Addresses it signed in from in the last `known_address_days` skip the
    /// slowdown, so a stranger's failures elsewhere never keep the owner out.
    pub max_failures_per_account_anywhere: u64,
    pub account_window_secs: u64,
    pub slowdown_secs: u64,
    pub known_address_days: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_ip: 30,
            window_secs: 15 * 60,
            max_failures_per_account_anywhere: 10,
            account_window_secs: 3600,
            slowdown_secs: 300,
            known_address_days: 30,
        }
    }
}
