//! Short-lived shared state with expiry: token revocations and login throttling counters.
//!
//! Production runs replicas, so this state lives in Redis and every replica of every subgraph
//! sees the same revocations. The embedded default runs everything in one process, where an
//! in-memory map gives the same behaviour without a Redis server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;
use fred::prelude::*;
use fred::types::ExpireOptions;

/// Expiring flags and counters, namespaced by the caller.
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// Sets `key` for `ttl` (overwriting an earlier expiry).
    async fn set_flag(&self, key: &str, ttl: Duration) -> anyhow::Result<()>;
    async fn has_flag(&self, key: &str) -> anyhow::Result<bool>;
    /// Adds one to a counter that disappears `window` after its first increment
    /// (a fixed window), and returns the new value.
    async fn incr_in_window(&self, key: &str, window: Duration) -> anyhow::Result<u64>;
    async fn count(&self, key: &str) -> anyhow::Result<u64>;
    /// Takes one back from a counter that still exists (an attempt counted before it was
    /// decided, that turned out not to count); never below zero, never re-creates the key.
    async fn release(&self, key: &str) -> anyhow::Result<()>;
    async fn delete(&self, key: &str) -> anyhow::Result<()>;
}

/// Opens Redis when a URL is configured, else the in-process store.
pub async fn connect(settings: &crate::config::RedisSettings) -> anyhow::Result<Arc<dyn KvStore>> {
    match &settings.url {
        Some(url) => Ok(Arc::new(
            RedisKv::connect(secrecy::ExposeSecret::expose_secret(url)).await?,
        )),
        None => Ok(Arc::new(InMemoryKv::default())),
    }
}

/// For one process (the embedded default and unit tests).
#[derive(Default)]
pub struct InMemoryKv {
    entries: DashMap<String, (u64, Instant)>,
}

impl InMemoryKv {
    fn live(&self, key: &str) -> Option<u64> {
        let now = Instant::now();
        let hit = self.entries.get(key).map(|e| (e.0, e.1 > now));
        match hit {
            Some((v, true)) => Some(v),
            Some((_, false)) => {
                self.entries.remove_if(key, |_, (_, exp)| *exp <= now);
                None
            }
            None => None,
        }
    }
}

#[async_trait]
impl KvStore for InMemoryKv {
    async fn set_flag(&self, key: &str, ttl: Duration) -> anyhow::Result<()> {
        self.entries
            .insert(key.to_owned(), (1, Instant::now() + ttl));
        Ok(())
    }
    async fn has_flag(&self, key: &str) -> anyhow::Result<bool> {
        Ok(self.live(key).is_some())
    }
    async fn incr_in_window(&self, key: &str, window: Duration) -> anyhow::Result<u64> {
        let now = Instant::now();
        let mut entry = self
            .entries
            .entry(key.to_owned())
            .or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        Ok(entry.0)
    }
    async fn count(&self, key: &str) -> anyhow::Result<u64> {
        Ok(self.live(key).unwrap_or(0))
    }
    async fn release(&self, key: &str) -> anyhow::Result<()> {
        let now = Instant::now();
        if let Some(mut entry) = self.entries.get_mut(key)
            && entry.1 > now
        {
            entry.0 = entry.0.saturating_sub(1);
        }
        Ok(())
    }
    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.entries.remove(key);
        Ok(())
    }
}

/// Redis-backed store shared by all replicas. Keys are prefixed `draftr:`.
#[derive(Clone)]
pub struct RedisKv {
    client: Client,
}

impl RedisKv {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let config = Config::from_url(url)?;
        let client = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(3);
            })
            .with_performance_config(|p| {
                p.default_command_timeout = Duration::from_secs(2);
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .build()?;
        client.init().await?;
        Ok(Self { client })
    }

    fn key(key: &str) -> String {
        format!("draftr:{key}")
    }
}

#[async_trait]
impl KvStore for RedisKv {
    async fn set_flag(&self, key: &str, ttl: Duration) -> anyhow::Result<()> {
        let secs = ttl.as_secs().max(1) as i64;
        let _: () = self
            .client
            .set(Self::key(key), 1, Some(Expiration::EX(secs)), None, false)
            .await?;
        Ok(())
    }
    async fn has_flag(&self, key: &str) -> anyhow::Result<bool> {
        let n: i64 = self.client.exists(Self::key(key)).await?;
        Ok(n > 0)
    }
    async fn incr_in_window(&self, key: &str, window: Duration) -> anyhow::Result<u64> {
        let key = Self::key(key);
        let trx = self.client.multi();
        let _: () = trx.incr(&key).await?;
        let _: () = trx
            .expire(
                &key,
                window.as_secs().max(1) as i64,
                Some(ExpireOptions::NX),
            )
            .await?;
        let (n, _): (i64, i64) = trx.exec(true).await?;
        Ok(n.max(0) as u64)
    }
    async fn count(&self, key: &str) -> anyhow::Result<u64> {
        let n: Option<i64> = self.client.get(Self::key(key)).await?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }
    async fn release(&self, key: &str) -> anyhow::Result<()> {
        // One step, so the key (and its window) is never re-created by a late DECR.
        const RELEASE: &str = "if redis.call('GET', KEYS[1]) and tonumber(redis.call('GET', KEYS[1])) > 0 \
             then return redis.call('DECR', KEYS[1]) end return 0";
        let args: Vec<Value> = vec![RELEASE.into(), 1.into(), Self::key(key).into()];
        let _: Value = self
            .client
            .custom(
                fred::types::CustomCommand::new_static(
                    "EVAL",
                    fred::types::ClusterHash::FirstKey,
                    false,
                ),
                args,
            )
            .await?;
        Ok(())
    }
    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let _: i64 = self.client.del(Self::key(key)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exercise(kv: &dyn KvStore, ns: &str) {
        let flag = format!("{ns}:flag");
        assert!(!kv.has_flag(&flag).await.unwrap());
        kv.set_flag(&flag, Duration::from_secs(30)).await.unwrap();
        assert!(kv.has_flag(&flag).await.unwrap());
        kv.delete(&flag).await.unwrap();
        assert!(!kv.has_flag(&flag).await.unwrap());

        let counter = format!("{ns}:count");
        assert_eq!(
            kv.incr_in_window(&counter, Duration::from_secs(30))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            kv.incr_in_window(&counter, Duration::from_secs(30))
                .await
                .unwrap(),
            2
        );
        assert_eq!(kv.count(&counter).await.unwrap(), 2);
        kv.release(&counter).await.unwrap();
        assert_eq!(kv.count(&counter).await.unwrap(), 1);
        kv.release(&counter).await.unwrap();
        kv.release(&counter).await.unwrap();
        assert_eq!(kv.count(&counter).await.unwrap(), 0, "never below zero");
        kv.delete(&counter).await.unwrap();
        assert_eq!(kv.count(&counter).await.unwrap(), 0);
        kv.release(&counter).await.unwrap();
        assert_eq!(
            kv.incr_in_window(&counter, Duration::from_secs(30))
                .await
                .unwrap(),
            1,
            "a release never re-creates a counter"
        );
    }

    #[tokio::test]
    async fn in_memory_store_counts_and_flags() {
        exercise(&InMemoryKv::default(), "mem").await;
    }

    #[tokio::test]
    async fn in_memory_entries_expire() {
        let kv = InMemoryKv::default();
        kv.set_flag("f", Duration::from_millis(20)).await.unwrap();
        kv.incr_in_window("c", Duration::from_millis(20))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(!kv.has_flag("f").await.unwrap());
        assert_eq!(
            kv.incr_in_window("c", Duration::from_secs(5))
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn redis_store_counts_and_flags_with_expiry() {
        let url = crate::testing::redis_test_url();
        let kv = RedisKv::connect(&url)
            .await
            .expect("Redis at 127.0.0.1:6379 (see README)");
        let ns = format!("test:{}", uuid::Uuid::new_v4());
        exercise(&kv, &ns).await;
        kv.set_flag(&format!("{ns}:short"), Duration::from_secs(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert!(!kv.has_flag(&format!("{ns}:short")).await.unwrap());
    }
}
