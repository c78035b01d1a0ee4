// Cache updates from mutation results and pushed events, so nothing is refetched: a booking adds
// itself to the trips list and to the listing's calendar, a cancellation frees the dates, a
// pushed status change rewrites one field of one entity.

import type { ApolloCache, Reference } from '@apollo/client';

interface Range {
  start: string;
  end: string;
}

const overlaps = (a: Range, b: Range) => a.start < b.end && b.start < a.end;

/** `bookedRanges({"from":"…","to":"…"})` → its arguments. */
function argsOf(storeFieldName: string, fieldName: string): Record<string, unknown> | null {
  const raw = storeFieldName.slice(fieldName.length);
  const inner = raw.startsWith('(') && raw.endsWith(')') ? raw.slice(1, -1) : raw.startsWith(':') ? raw.slice(1) : '';
  try {
    return inner ? (JSON.parse(inner) as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function bookedRangesWindow(storeFieldName: string, fieldName: string): Range | null {
  const args = argsOf(storeFieldName, fieldName);
  return args && typeof args.from === 'string' && typeof args.to === 'string'
    ? { start: args.from, end: args.to }
    : null;
}

/** Adds (or with `remove`, removes) a stay in every cached `bookedRanges(from, to)` of a listing. */
export function updateBookedRanges(cache: ApolloCache, propertyId: string, stay: Range, remove = false) {
  cache.modify({
    id: cache.identify({ __typename: 'Property', id: propertyId }),
    fields: {
      bookedRanges(value, { storeFieldName, fieldName }) {
        const existing = (value ?? []) as readonly Range[];
        const window = bookedRangesWindow(storeFieldName, fieldName);
        if (!window || !overlaps(window, stay)) return existing;
        const same = (r: Range) => r.start === stay.start && r.end === stay.end;
        if (remove) return existing.filter((r) => !same(r));
        if (existing.some(same)) return existing;
        return [...existing, { __typename: 'DateRange', start: stay.start, end: stay.end }];
      },
    },
  });
}

interface StoredConnection {
  edges?: readonly { node: Reference; cursor?: string }[];
  totalCount?: number;
  [key: string]: unknown;
}

/** Puts an entity first in a connection field (User.reservations, User.properties) if cached. */
export function prependToConnection(
  cache: ApolloCache,
  owner: { __typename: string; id: string },
  field: string,
  edgeTypename: string,
  node: Reference,
) {
  cache.modify({
    id: cache.identify(owner),
    fields: {
      [field](value, { readField }) {
        const existing = value as StoredConnection | undefined;
        if (!existing?.edges) return existing;
        const id = readField('id', node);
        if (existing.edges.some((e) => readField('id', e.node) === id)) return existing;
        return {
          ...existing,
          edges: [{ __typename: edgeTypename, cursor: '', node }, ...existing.edges],
          ...(typeof existing.totalCount === 'number' ? { totalCount: existing.totalCount + 1 } : {}),
        };
      },
    },
  });
}

/** A reservation's status, as pushed by reservationStatusChanged or bookingConfirmed. */
export function setReservationStatus(cache: ApolloCache, reservationId: string, status: string) {
  cache.modify({
    id: cache.identify({ __typename: 'Reservation', id: reservationId }),
    fields: { status: () => status },
  });
}
