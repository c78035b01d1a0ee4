use async_graphql::{ID, Object};
use uuid::Uuid;

use super::types::{Reservation, User};

pub struct Query;

// Both entities are owned elsewhere (users by auth, reservations by reservations) and only
// extended here: this subgraph cannot tell an unknown id from a known one, so any UUID
// resolves to a reference (the owner decides whether it exists), and an id that is not a UUID
// names nothing and resolves to null.
#[Object]
impl Query {
    /// Federation: `User.notifications` for users owned by auth.
    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        Uuid::parse_str(id.as_str()).ok().map(|id| User { id })
    }

    #[graphql(entity)]
    async fn find_reservation_by_id(&self, id: ID) -> Option<Reservation> {
        Uuid::parse_str(id.as_str())
            .ok()
            .map(|id| Reservation { id })
    }
}
