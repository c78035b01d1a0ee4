//! Password hashing: argon2id at OWASP's recommended parameters.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// OWASP (2024): argon2id, m = 19 MiB, t = 2, p = 1.
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every hashing slot stayed busy for the whole wait: the caller is told to come back
    /// (`RATE_LIMITED`) instead of queueing behind a flood of sign-ins.
    #[error("the server is busy checking passwords; try again in a moment")]
    Busy,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
    /// Verified against when the email is unknown, so an unknown email costs the same time as
    /// a wrong password and timing does not reveal who has an account.
    dummy_hash: String,
    /// At most this many hashes run at once (about one per core): each takes 19 MiB and tens
    /// of milliseconds of CPU, so unbounded they would let a flood of sign-ups or sign-ins use
    /// all memory and starve every other request.
    slots: Arc<Semaphore>,
    /// How long a hash may wait for a slot before the caller is told to come back.
    wait: Duration,
}

impl Passwords {
    /// One hashing slot per core, each waited for at most 2 s.
    pub fn new() -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::bounded(cores, Duration::from_secs(2))
    }

    /// At most `slots` hashes at once; a hash that waits longer than `wait` for one is `Busy`.
    pub fn bounded(slots: usize, wait: Duration) -> anyhow::Result<Self> {
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon
            .hash_password(b"not a real password; equalises timing", &salt)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .to_string();
        Ok(Self {
            argon,
            dummy_hash,
            slots: Arc::new(Semaphore::new(slots.max(1))),
            wait,
        })
    }

    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, PasswordError> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(anyhow::anyhow!("password slots closed").into()),
            Err(_) => {
                tracing::warn!(
                    wait_ms = self.wait.as_millis() as u64,
                    "every password slot busy; refusing"
                );
                Err(PasswordError::Busy)
            }
        }
    }

    /// Hashes on the blocking pool: argon2 takes tens of milliseconds of CPU by design.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let permit = self.slot().await?;
        let argon = self.argon.clone();
        let password = password.to_owned();
        let hashed = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let salt = SaltString::generate(&mut OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .await
        .map_err(anyhow::Error::from)??;
        Ok(hashed)
    }

    /// `stored` is `None` for an unknown account: the work is done anyway and the answer is no.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let permit = self.slot().await?;
        let argon = self.argon.clone();
        let password = password.to_owned();
        let known = stored.is_some();
        let hash = stored.unwrap_or(&self.dummy_hash).to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
            Ok::<_, anyhow::Error>(argon.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(anyhow::Error::from)??;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_at_owasp_parameters_and_verify() {
        let p = Passwords::new().unwrap();
        let h = p.hash("correct horse battery").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(p.verify("correct horse battery", Some(&h)).await.unwrap());
        assert!(!p.verify("wrong horse battery", Some(&h)).await.unwrap());
        assert!(
            !p.verify("not a real password; equalises timing", None)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_hash_that_finds_every_slot_busy_is_refused_not_queued() {
        let p = Passwords::bounded(1, Duration::from_millis(50)).unwrap();
        let held = p.slots.clone().acquire_owned().await.unwrap();
        assert!(matches!(
            p.hash("correct horse battery").await,
            Err(PasswordError::Busy)
        ));
        assert!(matches!(
            p.verify("correct horse battery", None).await,
            Err(PasswordError::Busy)
        ));
        drop(held);
        let h = p.hash("correct horse battery").await.unwrap();
        assert!(p.verify("correct horse battery", Some(&h)).await.unwrap());
        assert_eq!(p.slots.available_permits(), 1, "slots are given back");
    }
}
