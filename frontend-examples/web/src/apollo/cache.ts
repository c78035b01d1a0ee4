import { InMemoryCache } from '@apollo/client';
import { relayStylePagination } from '@apollo/client/utilities';

// Entities are normalised by `__typename:id` (User, Property, Reservation, Payment, Category,
// Notification), so a mutation result that returns an entity updates every list and page showing
// it. Connections merge page after page ("Show more") with relayStylePagination.
export function createCache(): InMemoryCache {
  return new InMemoryCache({
    typePolicies: {
      Query: {
        fields: {
          // One cached list per filter and sort; `first`/`after` page through it.
          properties: relayStylePagination(['filter', 'sort']),
          reservations: relayStylePagination(),
          // A listing or reservation already in the cache (from search, trips) is read from it.
          property: {
            read: (existing, { args, toReference }) =>
              existing ?? (args?.id ? toReference({ __typename: 'Property', id: args.id }) : undefined),
          },
          reservation: {
            read: (existing, { args, toReference }) =>
              existing ?? (args?.id ? toReference({ __typename: 'Reservation', id: args.id }) : undefined),
          },
        },
      },
      User: {
        fields: {
          reservations: relayStylePagination(),
          notifications: relayStylePagination(),
          properties: relayStylePagination(),
        },
      },
      // Value objects without ids: merge the fields different queries ask for.
      Address: { merge: true },
      Money: { merge: true },
      // A quote is identified by what was asked.
      Quote: { keyFields: ['propertyId', 'checkIn', 'checkOut', 'guests'] },
      // Pushed events are not entities.
      BookingConfirmation: { keyFields: false },
      ReservationStatusEvent: { keyFields: false },
    },
  });
}
