import { NetworkStatus } from '@apollo/client';
import { useMutation, useQuery, useSubscription } from '@apollo/client/react';
import { useState } from 'react';
import { setReservationStatus, updateBookedRanges } from '../apollo/cacheUpdates';
import { FormError, Money, Spinner, Status } from '../components/ui';
import { mapErrors } from '../errors/mapErrors';
import {
  CancelReservationDocument,
  MyTripsDocument,
  ReservationStatusChangedDocument,
  type ReservationFieldsFragment,
} from '../gql/graphql';
import { formatStay, todayUtc } from '../lib/format';
import { settle } from '../lib/mutate';
import { Link } from '../router';

export function TripsPage() {
  const { data, error, loading, fetchMore, networkStatus } = useQuery(MyTripsDocument, {
    variables: { first: 10 },
    notifyOnNetworkStatusChange: true,
  });
  const conn = data?.me?.reservations;
  if (loading && !conn) return <Spinner />;
  return (
    <section>
      <h1>My trips</h1>
      <FormError message={mapErrors(error).form} />
      {conn ? (
        <>
          <p className="total">
            {conn.totalCount} trip{conn.totalCount === 1 ? '' : 's'}
          </p>
          <ul className="rows" data-testid="trips">
            {conn.edges.map(({ node }) => (
              <Trip key={node.id} trip={node} />
            ))}
          </ul>
          {conn.pageInfo.hasNextPage ? (
            <button
              type="button"
              className="secondary"
              disabled={networkStatus === NetworkStatus.fetchMore}
              onClick={() => fetchMore({ variables: { after: conn.pageInfo.endCursor } })}
            >
              Show more
            </button>
          ) : null}
        </>
      ) : null}
    </section>
  );
}

/** Keeps a reservation's status current in the cache while it can still change. */
export function useLiveStatus(reservationId: string, status: string) {
  useSubscription(ReservationStatusChangedDocument, {
    variables: { reservationId },
    skip: status !== 'PENDING' && status !== 'CONFIRMED',
    onData: ({ client, data }) => {
      const e = data.data?.reservationStatusChanged;
      if (e) setReservationStatus(client.cache, e.reservationId, e.status);
    },
  });
}

function Trip({ trip }: { trip: ReservationFieldsFragment }) {
  useLiveStatus(trip.id, trip.status);
  const [confirming, setConfirming] = useState(false);
  const [cancel, { loading }] = useMutation(CancelReservationDocument);
  const [message, setMessage] = useState<string | null>(null);
  const cancellable = trip.status === 'CONFIRMED' && trip.checkIn > todayUtc();

  const doCancel = async () => {
    setMessage(null);
    // The result is the Reservation entity with status and refund: the cache updates this row.
    const { error } = await settle(() =>
      cancel({
        variables: { id: trip.id },
        update: (cache, { data }) => {
          const r = data?.cancelReservation;
          if (r?.status === 'CANCELLED') updateBookedRanges(cache, r.property.id, { start: r.checkIn, end: r.checkOut }, true);
        },
      }),
    );
    setConfirming(false);
    if (error) setMessage(mapErrors(error, 'cancel').form);
  };

  return (
    <li className="row" data-testid="trip" data-reservation-id={trip.id}>
      <div>
        <Link to={`/listing/${trip.property.id}`}>
          <strong>{trip.property.title}</strong>
        </Link>
        <span className="muted">
          {' '}
          · {trip.property.address.city} · {formatStay(trip.checkIn, trip.checkOut)} · {trip.nights} night{trip.nights === 1 ? '' : 's'} · {trip.guests} guest
          {trip.guests === 1 ? '' : 's'}
        </span>
      </div>
      <div className="row-meta">
        <Money value={trip.total} /> <Status value={trip.status} testId="trip-status" />
        {trip.payment ? <span className="muted"> payment {trip.payment.status.toLowerCase().replace('_', ' ')}</span> : null}
        {trip.refund ? (
          <span className="refund" data-testid="trip-refund">
            {' '}
            refund <Money value={trip.refund} /> ({trip.cancellationPolicy.toLowerCase()} policy)
          </span>
        ) : null}
      </div>
      {cancellable ? (
        confirming ? (
          <div className="row-actions">
            <button type="button" className="danger" disabled={loading} data-testid="confirm-cancel" onClick={doCancel}>
              {loading ? 'Cancelling…' : 'Yes, cancel'}
            </button>
            <button type="button" className="secondary" onClick={() => setConfirming(false)}>
              Keep it
            </button>
          </div>
        ) : (
          <div className="row-actions">
            <button type="button" className="secondary" data-testid="cancel" onClick={() => setConfirming(true)}>
              Cancel
            </button>
          </div>
        )
      ) : null}
      <FormError message={message} />
    </li>
  );
}
