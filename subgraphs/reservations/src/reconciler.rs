//! Finishes or compensates what a crash (or an outage) left half done.
//!
//! Each pass looks at three kinds of rows, each step idempotent, so any number of replicas
//! may run passes at once:
//! - PENDING holds older than the hold timeout: the saga that made them is gone. If payments
//!   authorized (or learns, by replaying the same idempotency key, that the provider did), the
//!   saga is finished: confirmed with its event, then captured. Otherwise the hold is released
//!   (FAILED) and any payment that may exist is voided.
//! - CONFIRMED but not captured: captured.
//! - FAILED or CANCELLED with compensation pending: voided, or refunded per the policy.
//! - Changes of stays: PENDING ones older than the hold timeout are ended (never applied
//!   late) and any charge for the difference voided; applied ones have their difference
//!   captured or their refund made.
//!
//! What to do with each row is decided in `crate::service` (settlement), by the functions the
//! saga itself uses; this module only finds the rows and counts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::service::{ReservationService, Settled};

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub finished: u32,
    pub released: u32,
    pub captured: u32,
    pub compensated: u32,
}

/// Runs a pass now, then every `interval`, until `stop` resolves.
pub async fn run(
    service: Arc<ReservationService>,
    interval: Duration,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let result = reconcile(&service).await;
        let metrics = service.metrics();
        match &result {
            Ok(pass) => {
                metrics.reconciled("finished", pass.finished);
                metrics.reconciled("released", pass.released);
                metrics.reconciled("captured", pass.captured);
                metrics.reconciled("compensated", pass.compensated);
            }
            Err(_) => metrics.reconciler_failed_passes.inc(),
        }
        match result {
            Ok(pass) if pass != Pass::default() => {
                tracing::info!(
                    finished = pass.finished,
                    released = pass.released,
                    captured = pass.captured,
                    compensated = pass.compensated,
                    "reconciler pass"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "reconciler pass failed"),
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// One pass over everything that needs attention.
pub async fn reconcile(service: &ReservationService) -> Result<Pass, Error> {
    let mut pass = Pass::default();
    let request_id = format!("reconciler-{}", uuid::Uuid::new_v4());
    for r in service.stale_holds().await? {
        match service.settle_stale(&r, &request_id).await? {
            Settled::Finished => pass.finished += 1,
            Settled::Released => pass.released += 1,
            Settled::Untouched => {}
        }
    }
    for r in service.uncaptured().await? {
        if service.capture(r.id, &request_id).await {
            pass.captured += 1;
        }
    }
    for r in service.awaiting_compensation().await? {
        if service.compensate(r.id, &request_id).await {
            pass.compensated += 1;
        }
    }
    pass.released += service.end_stale_changes(&request_id).await?;
    for c in service.unsettled_changes().await? {
        if service.settle_change(c.id, &request_id).await {
            pass.compensated += 1;
        }
    }
    Ok(pass)
}
