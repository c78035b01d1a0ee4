import { useQuery } from '@apollo/client/react';
import { useAuth } from '../auth/AuthProvider';
import { FormError, Money, Spinner, Status } from '../components/ui';
import { mapErrors } from '../errors/mapErrors';
import { HostBookingsDocument, type HostBookingsQuery } from '../gql/graphql';
import { formatStay } from '../lib/format';
import { Link } from '../router';
import { useLiveStatus } from './TripsPage';

type Booking = HostBookingsQuery['reservations']['edges'][number]['node'];

export function HostBookingsPage() {
  const { session } = useAuth();
  // `reservations` lists what the caller booked or hosts; keep the stays at my listings.
  const { data, error, loading, fetchMore } = useQuery(HostBookingsDocument, {
    variables: { first: 50 },
    fetchPolicy: 'cache-and-network',
  });
  const conn = data?.reservations;
  if (loading && !conn) return <Spinner />;
  const mine = conn?.edges.map((e) => e.node).filter((r) => r.property.host.id === session?.userId) ?? [];
  return (
    <section>
      <h1>Bookings of my listings</h1>
      <FormError message={mapErrors(error).form} />
      {conn ? (
        <>
          <p className="total">
            {mine.length} booking{mine.length === 1 ? '' : 's'}
          </p>
          <ul className="rows" data-testid="host-bookings">
            {mine.map((r) => (
              <HostBooking key={r.id} r={r} />
            ))}
          </ul>
          {conn.pageInfo.hasNextPage ? (
            <button type="button" className="secondary" onClick={() => fetchMore({ variables: { after: conn.pageInfo.endCursor } })}>
              Show more
            </button>
          ) : null}
        </>
      ) : null}
    </section>
  );
}

function HostBooking({ r }: { r: Booking }) {
  useLiveStatus(r.id, r.status);
  return (
    <li className="row" data-testid="host-booking">
      <div>
        <Link to={`/listing/${r.property.id}`}>
          <strong>{r.property.title}</strong>
        </Link>
        <span className="muted">
          {' '}
          · {r.guest.displayName} · {formatStay(r.checkIn, r.checkOut)} · {r.guests} guest{r.guests === 1 ? '' : 's'}
        </span>
      </div>
      <div className="row-meta">
        <Money value={r.total} /> <Status value={r.status} />
        {r.refund ? (
          <span className="muted">
            {' '}
            refunded <Money value={r.refund} />
          </span>
        ) : null}
      </div>
    </li>
  );
}
