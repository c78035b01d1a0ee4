//! Live updates: what subscribers on every replica hear about.
//!
//! The replica that consumed an event publishes it on a Redis pub/sub channel; every replica
//! (itself included) listens on that channel and hands the update to its own subscribers
//! through a broadcast channel, where each subscription filters what its user may see. Without
//! Redis (the embedded default, one process) the broadcast channel is used directly.

use draftr_common::events::reservation::ReservationEvent;
use fred::prelude::*;
use tokio::sync::broadcast;

/// This replica's end of the fan-out. An update is the [`ReservationEvent`] itself, as the
/// consumer read it, so subscriptions work with the contract's types (dates included) rather
/// than a second, hand-kept copy of them.
#[derive(Clone)]
pub struct LiveHub {
    local: broadcast::Sender<ReservationEvent>,
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
                        // Anything else on the channel (during a rolling upgrade, an older
                        // replica's update format) is dropped: subscribers miss it, nothing
                        // else depends on it.
                        let update = message
                            .value
                            .as_string()
                            .and_then(|s| serde_json::from_str::<ReservationEvent>(&s).ok());
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

    /// Tells every replica's subscribers (this one's included) about `update`.
    pub async fn publish(&self, update: &ReservationEvent) -> anyhow::Result<()> {
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

    pub fn subscribe(&self) -> broadcast::Receiver<ReservationEvent> {
        self.local.subscribe()
    }

    /// Subscriptions currently listening on this replica.
    pub fn listeners(&self) -> usize {
        self.local.receiver_count()
    }
}
