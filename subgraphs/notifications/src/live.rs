//! Live updates: what subscribers on every replica hear about.
//!
//! The replica that consumed an event publishes it on a Redis pub/sub channel; every replica
//! (itself included) listens on that channel and hands the update to its own subscribers
//! through a broadcast channel, where each subscription filters what its user may see. Without
//! Redis (the embedded default, one process) the broadcast channel is used directly.

use chrono::{DateTime, Utc};
use fred::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

/// A change to a reservation, as subscribers are told about it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdate {
    pub event_id: Uuid,
    pub kind: String,
    pub reservation_id: Uuid,
    pub guest_id: Uuid,
    pub host_id: Uuid,
    pub status: String,
    pub property_title: String,
    pub check_in: String,
    pub check_out: String,
    pub total_amount: i64,
    pub currency: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct LiveHub {
    local: broadcast::Sender<LiveUpdate>,
    redis: Option<(Client, String)>,
}

impl LiveHub {
    /// One process only.
    pub fn local() -> Self {
        let (local, _) = broadcast::channel(4096);
        Self { local, redis: None }
    }

    /// Fans out through Redis channel `<namespace>:live`; starts the listener that feeds this
    /// replica's subscribers.
    pub async fn redis(url: &str, namespace: &str) -> anyhow::Result<Self> {
        let (local, _) = broadcast::channel(4096);
        let channel = format!("{namespace}:live");
        let publisher = Builder::from_config(Config::from_url(url)?).build()?;
        publisher.init().await?;
        let listener = Builder::from_config(Config::from_url(url)?)
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .build()?;
        listener.init().await?;
        listener.subscribe(channel.clone()).await?;
        // A reconnect (Redis restarted) loses the subscription: make it again.
        let mut reconnects = listener.reconnect_rx();
        let again = listener.clone();
        let again_channel = channel.clone();
        tokio::spawn(async move {
            while reconnects.recv().await.is_ok() {
                if let Err(e) = again.subscribe(again_channel.clone()).await {
                    tracing::warn!(error = %e, "cannot resubscribe to live updates");
                }
            }
        });
        let mut messages = listener.message_rx();
        let forward = local.clone();
        tokio::spawn(async move {
            let _keep = listener;
            loop {
                match messages.recv().await {
                    Ok(message) => {
                        let update = message
                            .value
                            .as_string()
                            .and_then(|s| serde_json::from_str::<LiveUpdate>(&s).ok());
                        if let Some(update) = update {
                            let _ = forward.send(update);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "live listener lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Self {
            local,
            redis: Some((publisher, channel)),
        })
    }

    pub async fn publish(&self, update: &LiveUpdate) -> anyhow::Result<()> {
        match &self.redis {
            Some((client, channel)) => {
                let _: i64 = client
                    .publish(channel.as_str(), serde_json::to_string(update)?)
                    .await?;
            }
            None => {
                let _ = self.local.send(update.clone());
            }
        }
        Ok(())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveUpdate> {
        self.local.subscribe()
    }

    /// Subscriptions currently listening on this replica.
    pub fn listeners(&self) -> usize {
        self.local.receiver_count()
    }
}
