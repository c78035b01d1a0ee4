//! Polls imported feeds: on every tick, the imports whose `next_poll_at` has come are claimed
//! (a conditional UPDATE moving it a poll interval ahead, so of several replicas one takes
//! each) and synced. Runs beside the reconciler and the relay until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::service::ReservationService;

pub async fn run(
    service: Arc<ReservationService>,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        tokio::select! {
            _ = &mut stop => return,
            r = service.poll_due_imports() => match r {
                Ok(0) => {}
                Ok(n) => tracing::debug!(synced = n, "calendar imports polled"),
                Err(e) => tracing::warn!(error = %e, "polling calendar imports failed"),
            },
        }
    }
}
