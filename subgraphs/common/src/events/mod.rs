//! The event-bus interface: how facts ("reservation confirmed") travel between subgraphs.
//!
//! Delivery is at least once; consumers are named groups, each group sees every event, and the
//! consumers inside one group share the work. Consumers must be idempotent by [`Event::id`].
//! The production implementation is a Redis Stream with consumer groups; the embedded default
//! uses [`InProcessBus`], which gives the same guarantees inside one process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

pub mod calendar;
pub mod calendar_import;
pub mod reservation;

/// One fact, as published by its owner.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Unique per fact, so redelivery can be recognised.
    pub id: Uuid,
    /// The stream it travels on, e.g. `reservations`.
    pub topic: String,
    /// What happened, e.g. `reservation.confirmed`.
    pub kind: String,
    pub payload: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
}

impl Event {
    pub fn new(
        topic: impl Into<String>,
        kind: impl Into<String>,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            topic: topic.into(),
            kind: kind.into(),
            payload,
            occurred_at: Utc::now(),
        }
    }
}

/// An event handed to a consumer; it is redelivered unless acknowledged.
pub struct Delivery {
    pub event: Event,
    settle: Option<Box<dyn FnOnce(bool) + Send>>,
}

impl Delivery {
    /// `settle(true)` acknowledges, `settle(false)` asks for redelivery.
    pub fn new(event: Event, settle: impl FnOnce(bool) + Send + 'static) -> Self {
        Self {
            event,
            settle: Some(Box::new(settle)),
        }
    }
    /// Processing finished; never deliver this event to the group again.
    pub fn ack(mut self) {
        if let Some(settle) = self.settle.take() {
            settle(true)
        }
    }
    /// Processing failed; deliver it again.
    pub fn nack(mut self) {
        if let Some(settle) = self.settle.take() {
            settle(false)
        }
    }
}

impl Drop for Delivery {
    /// A delivery dropped unanswered (a consumer that panicked or returned early) was not
    /// processed, so it is redelivered: at-least-once, never silently lost.
    fn drop(&mut self) {
        if let Some(settle) = self.settle.take() {
            settle(false)
        }
    }
}

#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    async fn publish(&self, event: Event) -> anyhow::Result<()>;
    /// Joins consumer group `group` on `topic`.
    async fn subscribe(&self, topic: &str, group: &str)
    -> anyhow::Result<mpsc::Receiver<Delivery>>;
    /// Changes when the bus lost what it held (a Redis without persistence restarted), so
    /// publishers can publish recent events again. `None`: the bus never loses data while the
    /// process lives (the in-process bus).
    async fn generation(&self) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    /// How far consumer group `group` is behind on `topic` (for metrics). `None`: this bus
    /// cannot tell (the in-process bus).
    async fn backlog(&self, _topic: &str, _group: &str) -> anyhow::Result<Option<Backlog>> {
        Ok(None)
    }
}

/// A consumer group's backlog on one topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Entries not yet delivered to the group; `None` when the bus cannot count them (Redis
    /// cannot after some trims and deletions).
    pub lag: Option<u64>,
    /// Entries delivered to the group and not acknowledged yet.
    pub pending: u64,
}

/// Joins consumer group `group` on `topic` and hands every event to `handle` until `stop`:
/// acknowledged once handled; otherwise redelivered after a pause, since a failure here means
/// a dependency (database, a service, Redis) is down and retrying at once would only spin.
/// An event in progress when `stop` arrives is finished first.
///
/// `handle` gets its own copy of the event: a plain closure returning a future (rather than an
/// async closure over `&Event`) keeps the loop `Send`, so it can be spawned.
pub async fn consume<E, F, Fut>(
    bus: Arc<dyn EventBus>,
    topic: &str,
    group: &str,
    stop: impl std::future::Future<Output = ()>,
    mut handle: F,
) where
    E: std::fmt::Debug,
    F: FnMut(Event) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    const RETRY: std::time::Duration = std::time::Duration::from_millis(500);
    tokio::pin!(stop);
    let mut deliveries = loop {
        match bus.subscribe(topic, group).await {
            Ok(rx) => break rx,
            Err(e) => {
                tracing::warn!(error = ?e, topic, group, "cannot join the event stream; retrying");
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        }
    };
    loop {
        let delivery = tokio::select! {
            _ = &mut stop => return,
            d = deliveries.recv() => match d { Some(d) => d, None => return },
        };
        match handle(delivery.event.clone()).await {
            Ok(()) => delivery.ack(),
            Err(e) => {
                tracing::warn!(event.id = %delivery.event.id, event.kind = %delivery.event.kind, group, error = ?e, "event not processed; it will be redelivered");
                tokio::time::sleep(RETRY).await;
                delivery.nack();
            }
        }
    }
}

/// One-process bus: a queue per subscription; a nacked or dropped event goes back on its queue.
#[derive(Default, Clone)]
pub struct InProcessBus {
    groups: Arc<Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Event>>>>>,
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: Event) -> anyhow::Result<()> {
        let groups = self
            .groups
            .lock()
            .map_err(|_| anyhow::anyhow!("event bus poisoned"))?;
        if let Some(senders) = groups.get(&event.topic) {
            for tx in senders {
                let _ = tx.send(event.clone());
            }
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
    ) -> anyhow::Result<mpsc::Receiver<Delivery>> {
        let (in_tx, mut in_rx) = mpsc::unbounded_channel::<Event>();
        self.groups
            .lock()
            .map_err(|_| anyhow::anyhow!("event bus poisoned"))?
            .entry(topic.to_owned())
            .or_default()
            .push(in_tx.clone());
        let (out_tx, out_rx) = mpsc::channel::<Delivery>(64);
        let group = group.to_owned();
        tokio::spawn(async move {
            while let Some(event) = in_rx.recv().await {
                let retry = in_tx.clone();
                let again = event.clone();
                let delivery = Delivery::new(event, move |ok| {
                    if !ok {
                        let _ = retry.send(again);
                    }
                });
                if out_tx.send(delivery).await.is_err() {
                    tracing::debug!(group = %group, "event consumer went away");
                    break;
                }
            }
        });
        Ok(out_rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_group_sees_every_event_and_a_nack_redelivers() {
        let bus = InProcessBus::default();
        let mut mail = bus
            .subscribe("reservations", "notifications")
            .await
            .unwrap();
        let mut search = bus.subscribe("reservations", "catalog").await.unwrap();
        let e = Event::new(
            "reservations",
            "reservation.confirmed",
            serde_json::json!({"id": 1}),
        );
        bus.publish(e.clone()).await.unwrap();
        bus.publish(Event::new("payments", "other", serde_json::json!({})))
            .await
            .unwrap();

        let first = mail.recv().await.unwrap();
        assert_eq!(first.event, e);
        first.nack();
        let again = mail.recv().await.unwrap();
        assert_eq!(again.event.id, e.id);
        again.ack();

        let s = search.recv().await.unwrap();
        assert_eq!(s.event.id, e.id);
        drop(s);
        let s = search.recv().await.unwrap();
        assert_eq!(s.event.id, e.id, "a dropped delivery comes back");
        s.ack();
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), mail.recv())
                .await
                .is_err()
        );
    }
}
