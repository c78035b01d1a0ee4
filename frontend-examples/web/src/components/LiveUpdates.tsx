import { useSubscription } from '@apollo/client/react';
import { useEffect, useState, useSyncExternalStore } from 'react';
import { setReservationStatus } from '../apollo/cacheUpdates';
import { BookingConfirmedDocument } from '../gql/graphql';
import { addConfirmation, confirmations, shownInline, type PushedConfirmation } from '../live/store';
import { formatStay } from '../lib/format';
import { Link } from '../router';
import { Money } from './ui';

/**
 * While signed in: bookingConfirmed over graphql-ws (the split link's WebSocket side). Each event
 * goes into the confirmations store (the listing page shows it), sets the reservation's status in
 * the cache, and shows a toast.
 */
export function LiveUpdates() {
  useSubscription(BookingConfirmedDocument, {
    onData: ({ client, data }) => {
      const e = data.data?.bookingConfirmed;
      if (!e) return;
      addConfirmation({ ...e, receivedAt: performance.now() });
      setReservationStatus(client.cache, e.reservationId, 'CONFIRMED');
    },
  });
  return <Toasts />;
}

function Toasts() {
  const all = useSyncExternalStore(confirmations.subscribe, confirmations.get);
  const inline = useSyncExternalStore(shownInline.subscribe, shownInline.get);
  const [dismissed, setDismissed] = useState<ReadonlySet<string>>(new Set());
  const shown = [...all.values()].filter((c) => !dismissed.has(c.reservationId) && !inline.has(c.reservationId)).slice(-3);
  if (!shown.length) return null;
  const dismiss = (id: string) => setDismissed((d) => new Set(d).add(id));
  return (
    <div className="toasts" aria-live="polite">
      {shown.map((c) => (
        <Toast key={c.reservationId} c={c} onDismiss={() => dismiss(c.reservationId)} />
      ))}
    </div>
  );
}

function Toast({ c, onDismiss }: { c: PushedConfirmation; onDismiss: () => void }) {
  useEffect(() => {
    const t = setTimeout(onDismiss, 8000);
    return () => clearTimeout(t);
  }, [onDismiss]);
  return (
    <div className="toast" data-testid="toast-confirmed">
      <strong>Booking confirmed</strong>
      <span>
        {c.propertyTitle}, {formatStay(c.checkIn, c.checkOut)}, <Money value={c.total} />
      </span>
      <Link to="/trips">My trips</Link>
      <button type="button" className="link" aria-label="Dismiss" onClick={onDismiss}>
        ×
      </button>
    </div>
  );
}
