//! The outbox relay: moves events written in reservations' transactions onto the event bus.
//!
//! An event is in the outbox the moment its state change commits, so nothing is announced that
//! did not happen and nothing that happened goes unannounced. The relay publishes unpublished
//! rows in creation order and marks them published. Publishing is once-only on the bus side
//! (see `draftr_common::stream`), so a relay that dies between publishing and marking, or
//! several replicas relaying at once, never put an event on the stream twice.
//!
//! A Redis without persistence loses its streams when it restarts. The bus reports a
//! generation that changes when that happens; the relay then publishes the recent outbox again
//! (consumers are idempotent by event id), so a restart loses no event.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use draftr_common::events::{Event, EventBus};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::store::outbox;

/// The topic reservation events travel on (the event contract's).
pub use draftr_common::events::reservation::TOPIC;

/// How far back the outbox is published again after the bus lost its data.
const REPLAY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

pub struct Relay {
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
    generation: tokio::sync::Mutex<Option<String>>,
}

impl Relay {
    pub fn new(db: DatabaseConnection, bus: Arc<dyn EventBus>) -> Self {
        Self {
            db,
            bus,
            generation: tokio::sync::Mutex::new(None),
        }
    }

    /// Publishes what is waiting; returns how many events went out.
    pub async fn relay_once(&self) -> anyhow::Result<usize> {
        self.replay_if_bus_lost_data().await?;
        let rows = outbox::Entity::find()
            .filter(outbox::Column::PublishedAt.is_null())
            .order_by_asc(outbox::Column::CreatedAt)
            .limit(200)
            .all(&self.db)
            .await?;
        let n = rows.len();
        for row in rows {
            self.bus.publish(event_of(&row)?).await?;
            outbox::Entity::update_many()
                .col_expr(outbox::Column::PublishedAt, Expr::value(Utc::now()))
                .filter(outbox::Column::Id.eq(row.id))
                .exec(&self.db)
                .await?;
        }
        Ok(n)
    }

    async fn replay_if_bus_lost_data(&self) -> anyhow::Result<()> {
        let Some(now) = self.bus.generation().await? else {
            return Ok(());
        };
        let mut seen = self.generation.lock().await;
        if seen.as_ref().is_some_and(|g| *g != now) {
            let since = Utc::now() - REPLAY_WINDOW;
            let replayed = outbox::Entity::update_many()
                .col_expr(
                    outbox::Column::PublishedAt,
                    Expr::value(Option::<chrono::DateTime<Utc>>::None),
                )
                .filter(outbox::Column::CreatedAt.gt(since))
                .exec(&self.db)
                .await?;
            tracing::warn!(
                events = replayed.rows_affected,
                "the event bus lost its data (Redis restarted?); publishing the recent outbox again"
            );
        }
        *seen = Some(now);
        Ok(())
    }
}

/// The bus envelope of an outbox row. The payload is published as written (a serialized
/// `ReservationEvent`), so rows written by an older build go out unchanged too.
fn event_of(row: &outbox::Model) -> anyhow::Result<Event> {
    Ok(Event {
        id: row.id,
        topic: TOPIC.to_owned(),
        kind: row.kind.clone(),
        payload: serde_json::from_str(&row.payload)?,
        occurred_at: row.created_at,
    })
}

/// What waits in the outbox: how many rows are unpublished, and when the oldest was written.
/// Read at every metrics scrape (`draftr_outbox_unpublished`,
/// `draftr_outbox_oldest_unpublished_age_seconds`), so it shows a backlog even where no relay
/// runs (no event bus configured).
pub async fn backlog(
    db: &DatabaseConnection,
) -> anyhow::Result<(u64, Option<chrono::DateTime<Utc>>)> {
    let unpublished = || outbox::Entity::find().filter(outbox::Column::PublishedAt.is_null());
    let count = unpublished().count(db).await?;
    let oldest = match count {
        0 => None,
        _ => unpublished()
            .order_by_asc(outbox::Column::CreatedAt)
            .one(db)
            .await?
            .map(|row| row.created_at),
    };
    Ok((count, oldest))
}

/// Relays every `interval` until `stop`.
pub async fn run(relay: Arc<Relay>, interval: Duration, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        if let Err(e) = relay.relay_once().await {
            tracing::warn!(error = ?e, "outbox relay pass failed; retrying");
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
