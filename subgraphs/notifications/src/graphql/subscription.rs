use async_graphql::{Context, ID, Subscription};
use draftr_common::ApiError;
use draftr_common::events::reservation::{ReservationEvent, ReservationEventKind};
use draftr_common::graphql::viewer;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;
use uuid::Uuid;

use super::types::{BookingConfirmation, ReservationStatusEvent};
use crate::live::LiveHub;

/// Every update this replica hears of from now on. A subscriber too slow to keep up misses
/// the updates it lagged behind on rather than holding up the others.
fn updates(ctx: &Context<'_>) -> impl Stream<Item = ReservationEvent> + use<> {
    BroadcastStream::new(ctx.data_unchecked::<LiveHub>().subscribe())
        .filter_map(|u| async move { u.ok() })
}

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// The signed-in user's bookings, as they are confirmed.
    async fn booking_confirmed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<BoxStream<'static, BookingConfirmation>> {
        let me = viewer(ctx)
            .require_user()
            .map_err(async_graphql::Error::from)?
            .sub;
        Ok(updates(ctx)
            .filter_map(move |u| async move {
                (u.kind == ReservationEventKind::Confirmed && u.guest_id == me)
                    .then(|| BookingConfirmation::from(u))
            })
            .boxed())
    }

    /// Status changes of one reservation, for its guest, its host and admins.
    async fn reservation_status_changed(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
    ) -> async_graphql::Result<BoxStream<'static, ReservationStatusEvent>> {
        let me = viewer(ctx)
            .require_user()
            .map_err(async_graphql::Error::from)?
            .clone();
        let id = Uuid::parse_str(reservation_id.as_str()).map_err(|_| {
            async_graphql::Error::from(ApiError::bad_input(
                "reservationId",
                "reservationId is not a valid id",
            ))
        })?;
        Ok(updates(ctx)
            .filter_map(move |u| {
                let allowed = me.is_admin() || me.sub == u.guest_id || me.sub == u.host_id;
                async move {
                    (u.reservation_id == id && allowed).then(|| ReservationStatusEvent::from(u))
                }
            })
            .boxed())
    }
}
