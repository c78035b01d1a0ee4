//! The production [`EventBus`]: one Redis Stream per topic, consumer groups, acknowledgement
//! after processing, and reclaiming of what a crashed consumer left pending.
//!
//! - `publish` appends with a Lua script that first sets a per-event marker (`SET … NX EX`):
//!   the marker and the append are one atomic step on the server, so publishing the same event
//!   again (a relay retrying after a crash, two relays racing on one outbox row) never adds it
//!   a second time.
//! - `subscribe` joins a consumer group (created at the start of the stream, so a group that
//!   joins late still sees what was published before), reads new entries with `XREADGROUP`,
//!   and regularly claims entries another consumer (or this one, after a nack) left pending
//!   for longer than `reclaim_idle` with `XAUTOCLAIM`. An entry is acknowledged (`XACK`) only
//!   when the consumer acks its [`Delivery`].
//! - Each subscription reads on its own connection: `XREADGROUP … BLOCK` holds a connection
//!   while it waits, and must not stall publishing or acknowledging.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::*;
use fred::types::streams::XReadResponse;
use fred::types::{ClusterHash, CustomCommand};
use tokio::sync::mpsc;

use crate::events::{Backlog, Delivery, Event, EventBus};

/// Publishes `ARGV[3]` to stream `KEYS[1]` unless marker `KEYS[2]` exists; sets the marker.
const PUBLISH_ONCE: &str = r"
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[3])
end
return false
";

/// How long the once-only marker of a published event is kept (a week: far longer than any
/// relay retry).
const MARKER_TTL_SECS: u64 = 7 * 24 * 3600;
/// Streams are trimmed to about this many entries.
const MAX_LEN: u64 = 1_000_000;

/// The default key namespace; deployments sharing one Redis (or parallel tests) use their own.
pub const DEFAULT_NAMESPACE: &str = "draftr";

#[derive(Clone)]
pub struct RedisStreamBus {
    url: String,
    namespace: String,
    publisher: Client,
    /// This process's name inside every consumer group (unique per replica).
    consumer: String,
    reclaim_idle: Duration,
    block: Duration,
}

async fn client(url: &str) -> anyhow::Result<Client> {
    let config = Config::from_url(url)?;
    let client = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(3);
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .build()?;
    client.init().await?;
    Ok(client)
}

impl RedisStreamBus {
    /// The bus a service of kind `service` uses when Redis is configured (`None` when it is
    /// not: the embedded default hands its in-process bus over instead). Each process is its
    /// own consumer (`<service>-<random>`), so replicas share their groups' work.
    pub async fn from_settings(
        redis: &crate::config::RedisSettings,
        service: &str,
        reclaim_idle: Duration,
    ) -> anyhow::Result<Option<std::sync::Arc<dyn EventBus>>> {
        let Some(url) = &redis.url else {
            return Ok(None);
        };
        let bus = Self::connect(
            secrecy::ExposeSecret::expose_secret(url),
            redis.namespace(),
            &format!("{service}-{}", uuid::Uuid::new_v4().simple()),
            reclaim_idle,
        )
        .await?;
        Ok(Some(std::sync::Arc::new(bus)))
    }

    /// `consumer` names this replica in consumer groups; `reclaim_idle` is how long an entry
    /// may stay unacknowledged before another consumer takes it over.
    pub async fn connect(
        url: &str,
        namespace: &str,
        consumer: &str,
        reclaim_idle: Duration,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            url: url.to_owned(),
            namespace: namespace.to_owned(),
            publisher: client(url).await?,
            consumer: consumer.to_owned(),
            reclaim_idle,
            block: Duration::from_millis(500),
        })
    }

    /// The stream of `topic`.
    pub fn stream_key(&self, topic: &str) -> String {
        format!("{}:events:{topic}", self.namespace)
    }

    fn marker_key(&self, event: &Event) -> String {
        format!("{}:published:{}", self.namespace, event.id)
    }

    /// Exists as long as Redis kept its data (see [`EventBus::generation`]).
    fn generation_key(&self) -> String {
        format!("{}:events:generation", self.namespace)
    }

    /// Entries of `group` delivered but not acknowledged yet (for tests and health checks).
    pub async fn pending(&self, topic: &str, group: &str) -> anyhow::Result<u64> {
        let summary: Value = self
            .publisher
            .xpending(self.stream_key(topic), group, ())
            .await?;
        Ok(match summary {
            Value::Array(parts) => parts.first().and_then(|v| v.as_u64()).unwrap_or(0),
            _ => 0,
        })
    }

    /// Entries in the stream of `topic`.
    pub async fn len(&self, topic: &str) -> anyhow::Result<u64> {
        Ok(self.publisher.xlen(self.stream_key(topic)).await?)
    }
}

#[async_trait]
impl EventBus for RedisStreamBus {
    async fn publish(&self, event: Event) -> anyhow::Result<()> {
        let body = serde_json::to_string(&event)?;
        let args: Vec<Value> = vec![
            PUBLISH_ONCE.into(),
            2.into(),
            self.stream_key(&event.topic).into(),
            self.marker_key(&event).into(),
            (MARKER_TTL_SECS as i64).into(),
            (MAX_LEN as i64).into(),
            body.into(),
        ];
        let added: Value = self
            .publisher
            .custom(
                CustomCommand::new_static("EVAL", ClusterHash::FirstKey, false),
                args,
            )
            .await?;
        if added.is_null() {
            tracing::debug!(event.id = %event.id, "event already published");
        }
        Ok(())
    }

    /// From `XINFO GROUPS`: the group's `lag` (Redis 7) and `pending`.
    async fn backlog(&self, topic: &str, group: &str) -> anyhow::Result<Option<Backlog>> {
        let groups: Value = self.publisher.xinfo_groups(self.stream_key(topic)).await?;
        let Value::Array(groups) = groups else {
            return Ok(None);
        };
        Ok(groups
            .iter()
            .find(|g| {
                info_field(g, "name")
                    .and_then(|v| v.as_str())
                    .is_some_and(|name| name == group)
            })
            .map(|g| Backlog {
                lag: info_field(g, "lag").and_then(|v| v.as_u64()),
                pending: info_field(g, "pending")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0),
            }))
    }

    async fn generation(&self) -> anyhow::Result<Option<String>> {
        // Set once per Redis lifetime: a Redis that restarted empty gets a new one.
        let fresh = uuid::Uuid::new_v4().to_string();
        let _: Value = self
            .publisher
            .set(
                self.generation_key(),
                fresh.as_str(),
                None,
                Some(SetOptions::NX),
                false,
            )
            .await?;
        let current: Option<String> = self.publisher.get(self.generation_key()).await?;
        Ok(current)
    }

    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
    ) -> anyhow::Result<mpsc::Receiver<Delivery>> {
        let reader = client(&self.url).await?;
        let key = self.stream_key(topic);
        ensure_group(&reader, &key, group).await?;
        let (tx, rx) = mpsc::channel::<Delivery>(64);
        let group = group.to_owned();
        let consumer = self.consumer.clone();
        let reclaim_idle = self.reclaim_idle;
        let block = self.block;
        // Acks go on the shared connection: the reader's is held by the blocking read.
        let acks = self.publisher.clone();
        tokio::spawn(async move {
            let mut last_reclaim = tokio::time::Instant::now() - reclaim_idle;
            loop {
                if tx.is_closed() {
                    break;
                }
                let mut batch: Vec<(String, HashMap<String, String>)> = Vec::new();
                if last_reclaim.elapsed() >= reclaim_idle / 2 {
                    last_reclaim = tokio::time::Instant::now();
                    match reader
                        .xautoclaim_values::<String, String, String, _, _, _, _>(
                            &key,
                            &group,
                            &consumer,
                            reclaim_idle.as_millis() as u64,
                            "0-0",
                            Some(64),
                            false,
                        )
                        .await
                    {
                        Ok((_, claimed)) => batch.extend(claimed),
                        Err(e) => {
                            recover(&reader, &key, &group, &e).await;
                            continue;
                        }
                    }
                }
                if batch.is_empty() {
                    // A read that times out with nothing new answers nil, which is not a map:
                    // read the raw value and treat nil as an empty batch.
                    let read: Result<Value, _> = reader
                        .xreadgroup(
                            &group,
                            &consumer,
                            Some(64),
                            Some(block.as_millis() as u64),
                            false,
                            &key,
                            ">",
                        )
                        .await;
                    let parsed = read.and_then(|v| {
                        if v.is_null() {
                            Ok(XReadResponse::default())
                        } else {
                            v.into_xread_response::<String, String, String, String>()
                        }
                    });
                    match parsed {
                        Ok(mut streams) => batch.extend(streams.remove(&key).unwrap_or_default()),
                        Err(e) => {
                            recover(&reader, &key, &group, &e).await;
                            continue;
                        }
                    }
                }
                for (id, fields) in batch {
                    let Some(event) = fields
                        .get("event")
                        .and_then(|body| serde_json::from_str::<Event>(body).ok())
                    else {
                        tracing::error!(stream.id = %id, "unreadable event; acknowledged and skipped");
                        let _: Result<Value, _> = reader.xack(&key, &group, id.as_str()).await;
                        continue;
                    };
                    let acker = acks.clone();
                    let (key, group) = (key.clone(), group.clone());
                    let delivery = Delivery::new(event, move |ok| {
                        // A nack leaves the entry pending; XAUTOCLAIM hands it out again.
                        if ok {
                            tokio::spawn(async move {
                                let acked: Result<Value, _> =
                                    acker.xack(&key, &group, id.as_str()).await;
                                if let Err(e) = acked {
                                    tracing::warn!(error = %e, "XACK failed; the event will be redelivered");
                                }
                            });
                        }
                    });
                    if tx.send(delivery).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// Field `key` of one `XINFO GROUPS` entry: a map (RESP3) or a flat key-value array (RESP2).
fn info_field<'a>(entry: &'a Value, key: &str) -> Option<&'a Value> {
    match entry {
        Value::Map(map) => map
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        Value::Array(items) => items
            .chunks(2)
            .find(|pair| pair[0].as_str().is_some_and(|k| k == key))
            .and_then(|pair| pair.get(1)),
        _ => None,
    }
}

/// Creates the consumer group at the start of the stream (and the stream) if missing.
async fn ensure_group(client: &Client, key: &str, group: &str) -> anyhow::Result<()> {
    let created: Result<Value, Error> = client.xgroup_create(key, group, "0", true).await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.details().contains("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// After a read error: a Redis that restarted without its data lost the group too, so it is
/// made again; anything else waits a moment (the client reconnects by itself).
async fn recover(client: &Client, key: &str, group: &str, err: &Error) {
    if err.details().contains("NOGROUP") {
        tracing::warn!(
            stream = key,
            group,
            "consumer group missing (Redis restarted?); recreating it"
        );
        let _ = ensure_group(client, key, group).await;
    } else {
        tracing::warn!(error = %err, stream = key, "event stream read failed; retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::redis_test_url;

    #[tokio::test]
    async fn new_entries_arrive_by_the_group_read_after_reads_that_found_nothing() {
        let topic = format!("test-{}", uuid::Uuid::new_v4().simple());
        // Reclaiming takes a minute here, so only XREADGROUP can deliver within the test.
        let bus = RedisStreamBus::connect(&redis_test_url(), &topic, "c1", Duration::from_secs(60))
            .await
            .unwrap();
        let mut rx = bus.subscribe(&topic, "g").await.unwrap();
        // A few blocking reads time out with nothing (a nil reply).
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let event = Event::new(&topic, "thing.happened", serde_json::json!({ "n": 2 }));
        bus.publish(event.clone()).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .expect("delivered by the group read")
            .unwrap();
        assert_eq!(got.event, event);
        got.ack();
    }

    #[tokio::test]
    async fn an_event_is_published_once_acked_once_and_a_nack_is_reclaimed() {
        let topic = format!("test-{}", uuid::Uuid::new_v4().simple());
        let bus =
            RedisStreamBus::connect(&redis_test_url(), &topic, "c1", Duration::from_millis(300))
                .await
                .unwrap();
        let mut rx = bus.subscribe(&topic, "g").await.unwrap();
        let event = Event::new(&topic, "thing.happened", serde_json::json!({ "n": 1 }));
        bus.publish(event.clone()).await.unwrap();
        bus.publish(event.clone()).await.unwrap();
        assert_eq!(bus.len(&topic).await.unwrap(), 1, "published once");

        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.event, event);
        first.nack();
        let again = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.event.id, event.id, "a nacked event is reclaimed");
        again.ack();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(bus.pending(&topic, "g").await.unwrap(), 0);

        // A second group, joining late, still sees the history.
        let mut late = bus.subscribe(&topic, "late").await.unwrap();
        let seen = tokio::time::timeout(Duration::from_secs(5), late.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen.event.id, event.id);
        seen.ack();
    }

    #[tokio::test]
    async fn entries_a_crashed_consumer_left_pending_are_taken_over() {
        let topic = format!("test-{}", uuid::Uuid::new_v4().simple());
        let crashed = RedisStreamBus::connect(
            &redis_test_url(),
            &topic,
            "crashed",
            Duration::from_millis(300),
        )
        .await
        .unwrap();
        let mut rx = crashed.subscribe(&topic, "g").await.unwrap();
        crashed
            .publish(Event::new(&topic, "k", serde_json::json!({})))
            .await
            .unwrap();
        let taken = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        // The consumer dies holding it: never acked, its reader gone.
        std::mem::forget(taken);
        drop(rx);

        let survivor = RedisStreamBus::connect(
            &redis_test_url(),
            &topic,
            "survivor",
            Duration::from_millis(300),
        )
        .await
        .unwrap();
        let mut rx2 = survivor.subscribe(&topic, "g").await.unwrap();
        let reclaimed = tokio::time::timeout(Duration::from_secs(5), rx2.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reclaimed.event.kind, "k");
        reclaimed.ack();
    }
}
