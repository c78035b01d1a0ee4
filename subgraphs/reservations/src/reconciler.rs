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

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use draftr_common::service_client::CallError;

use crate::clients::AuthorizeCall;
use crate::error::Error;
use crate::service::{Reservation, ReservationService};

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
        match reconcile(&service).await {
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
    let timeout = chrono::Duration::milliseconds(service.rules().hold_timeout_ms as i64);
    for r in service.stale_pending(Utc::now() - timeout).await? {
        match settle_stale(service, &r, &request_id).await? {
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
    Ok(pass)
}

enum Settled {
    Finished,
    Released,
    Untouched,
}

async fn settle_stale(
    service: &ReservationService,
    r: &Reservation,
    request_id: &str,
) -> Result<Settled, Error> {
    let payments = service.payments();
    let payment = match payments.status(r.id, request_id).await {
        // Payments never heard of it: no money moved, release.
        Ok(None) => {
            service.fail(r.id, "HOLD_EXPIRED", false).await?;
            return Ok(Settled::Released);
        }
        Ok(Some(p)) if p.status == "PENDING" => {
            // The provider's answer was lost: replay the same authorization to learn it.
            let replayed = payments
                .authorize(
                    AuthorizeCall {
                        reservation_id: r.id,
                        guest_id: r.guest_id,
                        host_id: r.host_id,
                        amount: r.total_amount,
                        currency: &r.currency,
                        payment_method: &r.payment_method,
                    },
                    request_id,
                )
                .await;
            match replayed {
                Ok(p) => p,
                Err(CallError::Refused { code, .. }) => {
                    let code = if code == "PAYMENT_DECLINED" {
                        "PAYMENT_DECLINED"
                    } else {
                        "HOLD_EXPIRED"
                    };
                    service.fail(r.id, code, false).await?;
                    return Ok(Settled::Released);
                }
                Err(CallError::Unavailable { .. }) => {
                    service.fail(r.id, "PAYMENT_UNAVAILABLE", true).await?;
                    return Ok(Settled::Released);
                }
            }
        }
        Ok(Some(p)) => p,
        Err(CallError::Unavailable { .. }) => {
            // Cannot tell: release the dates anyway (a hold must not outlive its timeout) and
            // void whatever exists once payments answers again.
            service.fail(r.id, "PAYMENT_UNAVAILABLE", true).await?;
            return Ok(Settled::Released);
        }
        Err(e @ CallError::Refused { .. }) => {
            tracing::error!(reservation.id = %r.id, error = %e, "payments refused a status query");
            return Ok(Settled::Untouched);
        }
    };
    match payment.status.as_str() {
        "AUTHORIZED" | "CAPTURED" => {
            if service.confirm(r.id, payment.id).await? {
                tracing::info!(reservation.id = %r.id, "interrupted booking finished by the reconciler");
                service.capture(r.id, request_id).await;
                Ok(Settled::Finished)
            } else {
                Ok(Settled::Untouched)
            }
        }
        _ => {
            service.fail(r.id, "HOLD_EXPIRED", true).await?;
            Ok(Settled::Released)
        }
    }
}
