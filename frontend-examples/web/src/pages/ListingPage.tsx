import { useMutation, useQuery, useSubscription } from '@apollo/client/react';
import { useEffect, useState, useSyncExternalStore, type FormEvent } from 'react';
import { prependToConnection, setReservationStatus, updateBookedRanges } from '../apollo/cacheUpdates';
import { signInPath, useAuth } from '../auth/AuthProvider';
import { Calendar } from '../components/Calendar';
import { Field, FormError, Money, Spinner, Status } from '../components/ui';
import { mapBookingError, mapErrors, type FormErrors } from '../errors/mapErrors';
import {
  CreateReservationDocument,
  PropertyPageDocument,
  QuoteDocument,
  ReservationStatusChangedDocument,
  type ReservationFieldsFragment,
} from '../gql/graphql';
import { confirmations, showInline } from '../live/store';
import { addDays, addMonths, amenityLabel, firstOfMonth, formatDateTime, formatStay, isDate, newIdempotencyKey, todayUtc } from '../lib/format';
import { settle } from '../lib/mutate';
import { navigate, useLocation } from '../router';

const MONTHS = 3;
export const PAYMENT_METHODS = [
  { value: 'pm_card_visa', label: 'Visa ending 4242 (test card, pays)' },
  { value: 'pm_card_chargeDeclined', label: 'Card that is declined (test card)' },
];
const NO_ERRORS: FormErrors = { form: null, fields: {}, codes: [], retrySameKey: false };

export function ListingPage({ id }: { id: string }) {
  const loc = useLocation();
  const { session } = useAuth();
  const today = todayUtc();
  const from = firstOfMonth(today);
  const to = addMonths(from, MONTHS);

  const [checkIn, setCheckIn] = useState<string | null>(() => (isDate(loc.query.get('checkIn')) ? loc.query.get('checkIn') : null));
  const [checkOut, setCheckOut] = useState<string | null>(() => (isDate(loc.query.get('checkOut')) ? loc.query.get('checkOut') : null));
  const [guests, setGuests] = useState(() => Math.max(1, Number(loc.query.get('guests')) || 1));
  const [paymentMethod, setPaymentMethod] = useState(PAYMENT_METHODS[0].value);

  // The chosen stay stays in the URL, so a reload or a shared link keeps it.
  useEffect(() => {
    const q = new URLSearchParams();
    if (checkIn) q.set('checkIn', checkIn);
    if (checkOut) q.set('checkOut', checkOut);
    q.set('guests', String(guests));
    navigate(`/listing/${encodeURIComponent(id)}?${q}`, { replace: true });
  }, [id, checkIn, checkOut, guests]);

  const page = useQuery(PropertyPageDocument, { variables: { id, from, to } });
  const stayChosen = !!checkIn && !!checkOut && checkIn < checkOut;
  const quote = useQuery(QuoteDocument, {
    variables: { propertyId: id, checkIn: checkIn ?? '', checkOut: checkOut ?? '', guests },
    skip: !stayChosen,
    // A quote says whether the dates are free *now*: show the cached one, ask again.
    fetchPolicy: 'cache-and-network',
  });

  // ---- booking state ---------------------------------------------------------------------------
  const [book, { loading: submitting }] = useMutation(CreateReservationDocument);
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  // The attempt whose outcome is unknown (the network failed): retrying it reuses its key, so the
  // card is never charged twice. Any answer from the server ends the attempt.
  const [pendingAttempt, setPendingAttempt] = useState<{ key: string; request: string } | null>(null);
  const [booking, setBooking] = useState<{ reservation: ReservationFieldsFragment; clickedAt: number } | null>(null);

  const pick = (day: string) => {
    setBooking(null);
    if (!checkIn || (checkIn && checkOut) || day <= checkIn) {
      setCheckIn(day);
      setCheckOut(null);
    } else {
      setCheckOut(day);
    }
  };

  // ---- booking ---------------------------------------------------------------------------------
  // A new idempotency key per attempt; the same key only to retry an attempt whose outcome is unknown.

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!session) {
      navigate(signInPath(loc.path + loc.search));
      return;
    }
    if (!checkIn || !checkOut) return;
    const request = JSON.stringify({ id, checkIn, checkOut, guests, paymentMethod });
    const idempotencyKey = pendingAttempt?.request === request ? pendingAttempt.key : newIdempotencyKey();
    const clickedAt = performance.now();
    setErrors(NO_ERRORS);
    setBooking(null);
    const { data, error } = await settle(() =>
      book({
        variables: { input: { propertyId: id, checkIn, checkOut, guests, paymentMethod, idempotencyKey } },
        update(cache, { data: d }) {
          const r = d?.createReservation;
          if (!r) return;
          const ref = cache.identify(r);
          updateBookedRanges(cache, id, { start: r.checkIn, end: r.checkOut });
          cache.modify({
            id: cache.identify({ __typename: 'Quote', propertyId: id, checkIn: r.checkIn, checkOut: r.checkOut, guests: r.guests }),
            fields: { available: () => false },
          });
          if (session && ref) {
            prependToConnection(cache, { __typename: 'User', id: session.userId }, 'reservations', 'ReservationEdge', { __ref: ref });
          }
        },
      }),
    );
    if (data?.createReservation) {
      setPendingAttempt(null);
      setBooking({ reservation: data.createReservation, clickedAt });
      return;
    }
    const mapped = mapBookingError(error);
    setErrors(mapped);
    setPendingAttempt(mapped.retrySameKey ? { key: idempotencyKey, request } : null);
    if (mapped.codes.includes('BOOKING_CONFLICT')) {
      // Our calendar was stale: fetch the booked ranges and the quote again.
      void page.refetch();
      void quote.refetch();
    }
  };

  const p = page.data?.property;
  if (page.loading && !p) return <Spinner />;
  const pageErrors = mapErrors(page.error, 'listing');
  if (!p) return <FormError message={pageErrors.form ?? 'This listing does not exist or is not published.'} />;

  const q = quote.data?.quote;
  const quoteErrors = mapBookingError(quote.error);
  const fieldError = (f: string) => errors.fields[f] ?? quoteErrors.fields[f];

  return (
    <article className="listing">
      <header>
        <h1 data-testid="listing-title">{p.title}</h1>
        <p className="muted">
          {p.address.line1}, {p.address.city}
          {p.address.region ? `, ${p.address.region}` : ''}, {p.address.country} · hosted by{' '}
          <strong data-testid="listing-host">{p.host.displayName}</strong>
        </p>
      </header>
      <div className="listing-body">
        <div>
          <p className="description">{p.description || 'No description yet.'}</p>
          <p>
            <Money value={p.nightlyRate} /> / night · sleeps {p.maxGuests} · {p.bedrooms} bedroom{p.bedrooms === 1 ? '' : 's'} ·{' '}
            {p.cancellationPolicy.toLowerCase()} cancellation
            {p.status !== 'PUBLISHED' ? (
              <>
                {' '}
                · <Status value={p.status} />
              </>
            ) : null}
          </p>
          <p className="amenity-list">{p.amenities.map(amenityLabel).join(' · ')}</p>
          <h2>Availability</h2>
          <p className="muted">Struck-out nights are booked. Pick a check-in day, then a check-out day.</p>
          <Calendar
            from={from}
            months={MONTHS}
            booked={p.bookedRanges}
            today={today}
            checkIn={checkIn}
            checkOut={checkOut}
            onPick={pick}
          />
        </div>

        <form className="booking" onSubmit={submit} aria-label="Book">
          <h2>Book</h2>
          <Field label="Check-in" name="checkIn" error={fieldError('checkIn')}>
            <input
              id="f-checkIn"
              name="checkIn"
              type="date"
              min={addDays(today, 1)}
              value={checkIn ?? ''}
              onChange={(e) => {
                setBooking(null);
                setCheckIn(e.target.value || null);
              }}
            />
          </Field>
          <Field label="Check-out" name="checkOut" error={fieldError('checkOut')}>
            <input
              id="f-checkOut"
              name="checkOut"
              type="date"
              min={checkIn ? addDays(checkIn, 1) : addDays(today, 2)}
              value={checkOut ?? ''}
              onChange={(e) => {
                setBooking(null);
                setCheckOut(e.target.value || null);
              }}
            />
          </Field>
          <Field label="Guests" name="guests" error={fieldError('guests')}>
            <input
              id="f-guests"
              name="guests"
              type="number"
              min={1}
              max={p.maxGuests}
              value={guests}
              onChange={(e) => setGuests(Math.max(1, Number(e.target.value) || 1))}
            />
          </Field>

          <div className="quote" data-testid="quote" aria-live="polite">
            {!stayChosen ? (
              <p className="muted">Choose your dates to see the price.</p>
            ) : q ? (
              <>
                <p>
                  {q.nights} night{q.nights === 1 ? '' : 's'} × <Money value={q.nightlyRate} /> ={' '}
                  <strong data-testid="quote-total">
                    <Money value={q.total} />
                  </strong>
                </p>
                {booking && booking.reservation.checkIn === checkIn && booking.reservation.checkOut === checkOut ? (
                  <p className="ok">You booked these dates.</p>
                ) : (
                  <p data-testid="quote-available" className={q.available ? 'ok' : 'warn'}>
                    {q.available ? 'These dates are free.' : 'These dates are taken.'}
                  </p>
                )}
              </>
            ) : quote.loading ? (
              <p className="muted">Pricing…</p>
            ) : (
              <FormError message={quoteErrors.form} testId="quote-error" />
            )}
          </div>

          <Field label="Payment method" name="paymentMethod" error={errors.fields.paymentMethod}>
            <select
              id="f-paymentMethod"
              name="paymentMethod"
              value={paymentMethod}
              aria-invalid={errors.fields.paymentMethod ? true : undefined}
              aria-describedby={errors.fields.paymentMethod ? 'f-paymentMethod-error' : undefined}
              onChange={(e) => setPaymentMethod(e.target.value)}
            >
              {PAYMENT_METHODS.map((m) => (
                <option key={m.value} value={m.value}>
                  {m.label}
                </option>
              ))}
            </select>
          </Field>
          <FormError message={errors.form} testId="booking-error" />
          <button type="submit" data-testid="book" disabled={submitting || !stayChosen || (q ? !q.available : false)}>
            {!session ? 'Sign in to book' : submitting ? 'Booking…' : pendingAttempt ? 'Try again' : 'Book'}
          </button>
          {booking ? <BookingOutcome reservation={booking.reservation} clickedAt={booking.clickedAt} /> : null}
        </form>
      </div>
    </article>
  );
}

/**
 * After the mutation returned: the reservation's live status (reservationStatusChanged) and the
 * confirmation, as pushed by bookingConfirmed over the WebSocket (LiveUpdates puts it in the store).
 */
function BookingOutcome({ reservation, clickedAt }: { reservation: ReservationFieldsFragment; clickedAt: number }) {
  const pushed = useSyncExternalStore(confirmations.subscribe, confirmations.get).get(reservation.id);
  useEffect(() => showInline(reservation.id), [reservation.id]);
  useSubscription(ReservationStatusChangedDocument, {
    variables: { reservationId: reservation.id },
    onData: ({ client, data }) => {
      const e = data.data?.reservationStatusChanged;
      if (e) setReservationStatus(client.cache, e.reservationId, e.status);
    },
  });
  return (
    <div className="outcome" data-testid="booking-outcome">
      <p>
        Booked: {formatStay(reservation.checkIn, reservation.checkOut)}, <Money value={reservation.total} />.
      </p>
      {pushed ? (
        <div className="confirmation" role="status" data-testid="push-confirmation" data-reservation-id={pushed.reservationId} data-latency-ms={Math.round(pushed.receivedAt - clickedAt)}>
          <h3>✓ Confirmed</h3>
          <p>
            {pushed.propertyTitle}, {formatStay(pushed.checkIn, pushed.checkOut)}, <Money value={pushed.total} />
          </p>
          <p className="muted">
            Confirmed at {formatDateTime(pushed.confirmedAt)}; a confirmation email is on its way.
          </p>
        </div>
      ) : (
        <p className="muted" data-testid="awaiting-confirmation">
          Waiting for the confirmation…
        </p>
      )}
    </div>
  );
}
