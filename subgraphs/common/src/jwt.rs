//! Access tokens: the claims every subgraph reads, Ed25519 keys, and verification.
//!
//! Auth signs with an Ed25519 private key; every other subgraph verifies with the public key
//! only, taken from auth's JWKS endpoint. Verification pins the algorithm to EdDSA (so `alg:
//! none` and HS256-with-the-public-key confusion fail), checks issuer, audience and expiry, and
//! asks the shared revocation list whether the token's session was ended by `logout` or by
//! refresh-token reuse — so a revoked token fails on every subgraph at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::Enum;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::kv::KvStore;

/// What a user may do. Carried in the access token so subgraphs need not ask auth.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Guest,
    Host,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "GUEST",
            Role::Host => "HOST",
            Role::Admin => "ADMIN",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "GUEST" => Some(Role::Guest),
            "HOST" => Some(Role::Host),
            "ADMIN" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Privilege order, used to tell a demotion (which must end sessions) from a promotion.
    pub fn rank(self) -> u8 {
        match self {
            Role::Guest => 0,
            Role::Host => 1,
            Role::Admin => 2,
        }
    }
}

/// The claims of a Draftr access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The session (refresh-token family) this token belongs to; revoking it ends the session.
    pub sid: Uuid,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

impl Claims {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Who is calling, as established from the `Authorization` header.
#[derive(Debug, Clone)]
pub enum Viewer {
    Anonymous,
    User(Claims),
    /// A token was presented and refused. Fields that need a user fail with this reason, and
    /// so do fields that would merely behave differently for a user: a client holding a dead
    /// token must find out and sign in again rather than silently browse anonymously.
    Rejected(TokenRejection),
}

/// Why a token was refused (kept apart from [`ApiError`] so [`Viewer`] stays `Clone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRejection {
    Invalid,
    Expired,
    Revoked,
    /// The revocation list could not be consulted; failing closed.
    Unverifiable,
}

impl TokenRejection {
    fn to_error(&self) -> ApiError {
        match self {
            TokenRejection::Invalid => {
                ApiError::unauthenticated("your access token is not valid; sign in again")
            }
            TokenRejection::Expired => ApiError::unauthenticated(
                "your access token has expired; refresh it or sign in again",
            ),
            TokenRejection::Revoked => {
                ApiError::unauthenticated("this session has ended; sign in again")
            }
            TokenRejection::Unverifiable => {
                ApiError::internal(anyhow::anyhow!("the token revocation list is unreachable"))
            }
        }
    }
}

impl Viewer {
    /// The signed-in user, if any; a refused token is an error.
    pub fn user(&self) -> ApiResult<Option<&Claims>> {
        match self {
            Viewer::Anonymous => Ok(None),
            Viewer::User(c) => Ok(Some(c)),
            Viewer::Rejected(kind) => Err(kind.to_error()),
        }
    }

    pub fn require_user(&self) -> ApiResult<&Claims> {
        self.user()?
            .ok_or_else(|| ApiError::unauthenticated("sign in to do this"))
    }

    pub fn require_admin(&self) -> ApiResult<&Claims> {
        let claims = self.require_user()?;
        if claims.is_admin() {
            Ok(claims)
        } else {
            Err(ApiError::forbidden("only an administrator can do this"))
        }
    }
}

/// An Ed25519 signing key with its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    encoding: EncodingKey,
    pkcs8_pem: String,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn generate() -> Self {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        Self::from_dalek(key).expect("a fresh Ed25519 key always encodes")
    }

    /// Loads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey -algorithm ed25519` writes).
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| anyhow::anyhow!("the signing key is not an Ed25519 PKCS#8 PEM: {e}"))?;
        Self::from_dalek(key)
    }

    fn from_dalek(key: ed25519_dalek::SigningKey) -> anyhow::Result<Self> {
        let der = key.to_pkcs8_der().map_err(|e| anyhow::anyhow!("{e}"))?;
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
        // The key id is derived from the public key, so every replica loading the same key
        // agrees on it without configuration, and a rotated key gets a new id.
        let kid = x[..16].to_owned();
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(kid.clone()),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x,
            }),
        };
        Ok(Self {
            kid,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            pkcs8_pem: pem.to_string(),
            jwk,
        })
    }

    pub fn to_pem(&self) -> &str {
        &self.pkcs8_pem
    }

    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// Where a verifier finds the public keys.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// Keys handed over in process (the embedded default, tests).
    Static(JwkSet),
    /// Auth's `/.well-known/jwks.json`, fetched at start and again when an unknown `kid`
    /// appears (key rotation), at most once per [`JWKS_REFRESH_MIN_INTERVAL`] (once a second
    /// while no key could be loaded yet).
    Url(String),
}

pub const JWKS_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(30);

/// The audience and issuer every Draftr access token carries.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    pub issuer: String,
    pub audience: String,
}

/// Key under which a revoked session is remembered (shared by auth, which writes it, and
/// every verifier, which reads it).
pub fn revoked_session_key(sid: Uuid) -> String {
    format!("revoked-session:{sid}")
}

/// Verifies access tokens with public keys only.
pub struct TokenVerifier {
    source: KeySource,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// When keys were last fetched (or tried). Held while fetching, so a burst of tokens with
    /// an unknown `kid` costs one fetch, and a down auth service is asked at most once a second.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    validation: Validation,
    revocations: Arc<dyn KvStore>,
    http: reqwest::Client,
}

impl TokenVerifier {
    pub async fn new(
        source: KeySource,
        policy: &TokenPolicy,
        revocations: Arc<dyn KvStore>,
    ) -> anyhow::Result<Self> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[&policy.issuer]);
        validation.set_audience(&[&policy.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let verifier = Self {
            source,
            keys: RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(Some(Instant::now())),
            validation,
            revocations,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        };
        if let Err(err) = verifier.refresh_keys().await {
            // Auth may start after us; keys are fetched again on the first token.
            tracing::warn!(error = %err, "could not load the token verification keys yet");
        }
        Ok(verifier)
    }

    async fn refresh_keys(&self) -> anyhow::Result<()> {
        let set = match &self.source {
            KeySource::Static(set) => set.clone(),
            KeySource::Url(url) => {
                self.http
                    .get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .json::<JwkSet>()
                    .await?
            }
        };
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            // Only Ed25519 keys are ever accepted, whatever else a JWKS might list.
            let AlgorithmParameters::OctetKeyPair(p) = &jwk.algorithm else {
                continue;
            };
            if p.curve != EllipticCurve::Ed25519 {
                continue;
            }
            if let Some(kid) = &jwk.common.key_id {
                keys.insert(kid.clone(), DecodingKey::from_ed_components(&p.x)?);
            }
        }
        *self.keys.write().await = keys;
        Ok(())
    }

    async fn key_for(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = self.keys.read().await.get(kid) {
            return Some(key.clone());
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Someone else may have fetched while we waited for the lock.
        let (known, have_keys) = {
            let keys = self.keys.read().await;
            (keys.get(kid).cloned(), !keys.is_empty())
        };
        if known.is_some() {
            return known;
        }
        let min_interval = if have_keys {
            JWKS_REFRESH_MIN_INTERVAL
        } else {
            Duration::from_secs(1)
        };
        if last_fetch.is_some_and(|at| at.elapsed() < min_interval) {
            return None;
        }
        *last_fetch = Some(Instant::now());
        if let Err(err) = self.refresh_keys().await {
            tracing::warn!(error = %err, "could not refresh the token verification keys");
        }
        self.keys.read().await.get(kid).cloned()
    }

    /// Checks a bearer token completely: signature, algorithm, issuer, audience, expiry and
    /// revocation.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenRejection::Invalid);
        }
        let kid = header.kid.ok_or(TokenRejection::Invalid)?;
        let key = self.key_for(&kid).await.ok_or(TokenRejection::Invalid)?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenRejection::Expired,
                _ => TokenRejection::Invalid,
            }
        })?;
        match self
            .revocations
            .has_flag(&revoked_session_key(data.claims.sid))
            .await
        {
            Ok(false) => Ok(data.claims),
            Ok(true) => Err(TokenRejection::Revoked),
            Err(err) => {
                tracing::error!(error = %err, "revocation list unreachable; refusing token");
                Err(TokenRejection::Unverifiable)
            }
        }
    }

    /// Reads `Authorization: Bearer …` into a [`Viewer`].
    pub async fn viewer_from_header(&self, header: Option<&str>) -> Viewer {
        let Some(value) = header else {
            return Viewer::Anonymous;
        };
        let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        else {
            return Viewer::Rejected(TokenRejection::Invalid);
        };
        match self.verify(token.trim()).await {
            Ok(claims) => Viewer::User(claims),
            Err(kind) => Viewer::Rejected(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::InMemoryKv;

    fn policy() -> TokenPolicy {
        TokenPolicy {
            issuer: "draftr-auth".into(),
            audience: "draftr".into(),
        }
    }

    fn claims(exp_in: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            role: Role::Guest,
            iss: "draftr-auth".into(),
            aud: "draftr".into(),
            iat: now,
            exp: now + exp_in,
            jti: Uuid::new_v4(),
        }
    }

    #[tokio::test]
    async fn a_key_survives_a_pem_round_trip_and_verifies_its_tokens() {
        let key = SigningKey::generate();
        let again = SigningKey::from_pem(key.to_pem()).unwrap();
        assert_eq!(key.kid, again.kid);
        let kv = Arc::new(InMemoryKv::default());
        let verifier = TokenVerifier::new(KeySource::Static(key.jwks()), &policy(), kv.clone())
            .await
            .unwrap();
        let c = claims(60);
        let token = again.sign(&c).unwrap();
        assert_eq!(verifier.verify(&token).await.unwrap(), c);

        kv.set_flag(&revoked_session_key(c.sid), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            verifier.verify(&token).await.unwrap_err(),
            TokenRejection::Revoked
        );
    }

    #[test]
    fn roles_parse_and_rank() {
        assert_eq!(Role::parse("ADMIN"), Some(Role::Admin));
        assert_eq!(Role::parse("admin"), None);
        assert!(Role::Admin.rank() > Role::Host.rank() && Role::Host.rank() > Role::Guest.rank());
    }

    #[tokio::test]
    async fn keys_from_a_jwks_url_are_fetched_once_per_burst_and_picked_up_when_they_appear() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let key = SigningKey::generate();
        let served: Arc<std::sync::Mutex<JwkSet>> =
            Arc::new(std::sync::Mutex::new(JwkSet { keys: vec![] }));
        let fetches = Arc::new(AtomicUsize::new(0));
        let app = {
            let (served, fetches) = (served.clone(), fetches.clone());
            axum::Router::new().route(
                "/jwks",
                axum::routing::get(move || {
                    let (served, fetches) = (served.clone(), fetches.clone());
                    async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        let set = served.lock().unwrap().clone();
                        axum::Json(set)
                    }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let verifier = Arc::new(
            TokenVerifier::new(
                KeySource::Url(url),
                &policy(),
                Arc::new(InMemoryKv::default()),
            )
            .await
            .unwrap(),
        );
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "keys are fetched at start"
        );
        let token = key.sign(&claims(60)).unwrap();

        // Auth has not published the key yet: a burst of tokens costs no fetch storm.
        let burst = (0..20).map(|_| {
            let (v, t) = (verifier.clone(), token.clone());
            tokio::spawn(async move { v.verify(&t).await })
        });
        for r in futures::future::join_all(burst).await {
            assert_eq!(r.unwrap().unwrap_err(), TokenRejection::Invalid);
        }
        assert!(
            fetches.load(Ordering::SeqCst) <= 2,
            "fetched {} times",
            fetches.load(Ordering::SeqCst)
        );

        *served.lock().unwrap() = key.jwks();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(
            verifier.verify(&token).await.is_ok(),
            "a newly published key is picked up"
        );
    }
}
