import { CombinedGraphQLErrors } from '@apollo/client/errors';
import { describe, expect, it } from 'vitest';
import { MESSAGES, hasCode, mapBookingError, mapErrors } from './mapErrors';

// Errors as the router returns them (seen against `draftr run`).
const err = (code: string, message: string, field?: string) => ({
  message,
  path: ['createReservation'],
  extensions: { code, service: 'reservations', ...(field ? { field } : {}) },
});

describe('booking errors', () => {
  it('BOOKING_CONFLICT: the dates were just taken', () => {
    const m = mapBookingError({
      errors: [err('BOOKING_CONFLICT', 'those dates are already booked; pick other dates')],
    });
    expect(m.form).toBe(MESSAGES.bookingConflict);
    expect(m.form).toMatch(/those dates were just taken/i);
    expect(m.fields).toEqual({});
    expect(m.retrySameKey).toBe(false);
  });

  it("PAYMENT_DECLINED: the provider's words at the payment field", () => {
    const m = mapBookingError({ errors: [err('PAYMENT_DECLINED', 'Your card was declined.')] });
    expect(m.fields).toEqual({ paymentMethod: 'Your card was declined.' });
    expect(m.form).toBeNull();
  });

  it('BAD_USER_INPUT: next to extensions.field', () => {
    const m = mapBookingError({
      errors: [err('BAD_USER_INPUT', 'this property takes at most 2 guests', 'guests')],
    });
    expect(m.fields).toEqual({ guests: 'This property takes at most 2 guests.' });
    expect(m.form).toBeNull();
  });

  it('BAD_USER_INPUT without a field, or on a field the form lacks, goes to the form', () => {
    const coercion = mapBookingError({
      errors: [err('BAD_USER_INPUT', 'Failed to parse "Date": "bad" is not a date (YYYY-MM-DD)')],
    });
    expect(coercion.form).toMatch(/^Failed to parse "Date"/);
    const own = mapBookingError({
      errors: [err('BAD_USER_INPUT', 'you cannot book your own listing', 'propertyId')],
    });
    expect(own.form).toBe('You cannot book your own listing.');
    expect(own.fields).toEqual({});
  });

  it('an idempotency key refused: make a new attempt', () => {
    const m = mapBookingError({
      errors: [err('BAD_USER_INPUT', 'idempotencyKey was used for another booking', 'idempotencyKey')],
    });
    expect(m.form).toBe(MESSAGES.attemptSpent);
  });

  it('PAYMENT_UNAVAILABLE: nothing charged, try again', () => {
    const m = mapBookingError({ errors: [err('PAYMENT_UNAVAILABLE', 'payments are unavailable')] });
    expect(m.form).toBe(MESSAGES.paymentUnavailable);
    expect(m.retrySameKey).toBe(false);
  });

  it('the network: the outcome is unknown, so a retry keeps the idempotency key', () => {
    const m = mapBookingError(new TypeError('Failed to fetch'));
    expect(m.codes).toEqual(['NETWORK']);
    expect(m.form).toBe(MESSAGES.network);
    expect(m.retrySameKey).toBe(true);
  });

  it("reads Apollo Client 4's CombinedGraphQLErrors", () => {
    const e = new CombinedGraphQLErrors({
      data: null,
      errors: [err('BOOKING_CONFLICT', 'those dates are already booked; pick other dates')],
    });
    expect(mapBookingError(e).form).toBe(MESSAGES.bookingConflict);
    expect(hasCode(e, 'BOOKING_CONFLICT')).toBe(true);
    expect(hasCode(e, 'PAYMENT_DECLINED')).toBe(false);
    expect(hasCode(new TypeError('x'), 'BOOKING_CONFLICT')).toBe(false);
  });
});

describe('other forms', () => {
  it('UNAUTHENTICATED reads as wrong credentials at sign-in, as an ended session elsewhere', () => {
    const e = { errors: [err('UNAUTHENTICATED', 'invalid email or password')] };
    expect(mapErrors(e, 'signin').form).toBe(MESSAGES.signinFailed);
    expect(mapErrors(e, 'generic').form).toBe(MESSAGES.sessionEnded);
  });

  it('RATE_LIMITED and FORBIDDEN keep the API sentence', () => {
    const m = mapErrors(
      { errors: [err('RATE_LIMITED', 'too many failed sign-ins; try again in 14 minutes')] },
      'signin',
    );
    expect(m.form).toBe('Too many failed sign-ins; try again in 14 minutes.');
    expect(mapErrors({ errors: [err('FORBIDDEN', 'only its host can change this listing')] }).form).toBe(
      'Only its host can change this listing.',
    );
  });

  it('sign-up: each field its own message; aliases rename API fields to form fields', () => {
    const m = mapErrors(
      {
        errors: [
          err('BAD_USER_INPUT', 'this email is already registered', 'email'),
          err('BAD_USER_INPUT', 'the nightly rate must be more than zero', 'amount'),
          err('BAD_USER_INPUT', 'unknown amenity "sauna"', 'amenities'),
        ],
      },
      'signup',
      { amenities: 'amenityList' },
    );
    expect(m.fields).toEqual({
      email: 'This email is already registered.',
      nightlyRate: 'The nightly rate must be more than zero.',
      amenityList: 'Unknown amenity "sauna".',
    });
    expect(m.codes).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT', 'BAD_USER_INPUT']);
  });

  it('several form-level errors are joined once each; no error maps to nothing', () => {
    const e = { errors: [err('NOT_FOUND', 'no such reservation'), err('NOT_FOUND', 'no such reservation')] };
    expect(mapErrors(e).form).toBe('No such reservation.');
    expect(mapErrors(undefined)).toEqual({ form: null, fields: {}, codes: [], retrySameKey: false });
  });

  it('an error without a code counts as internal', () => {
    expect(mapErrors({ errors: [{ message: '' }] }).form).toBe(MESSAGES.internal);
  });
});
