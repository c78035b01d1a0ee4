// From what the API answered to what a form shows, by `extensions.code` (docs/api.md, "Error
// codes"). No React, no Apollo imports: it reads any error that carries GraphQL errors in
// `errors` (Apollo Client 4's CombinedGraphQLErrors does) and treats anything else as the
// network. Unit-tested in mapErrors.test.ts.

export interface ApiErrorLike {
  message: string;
  extensions?: { code?: unknown; field?: unknown; [key: string]: unknown } | null;
}

export type ErrorContext = 'booking' | 'signin' | 'signup' | 'search' | 'listing' | 'cancel' | 'generic';

export interface FormErrors {
  /** Shown above the form (or next to the button). */
  form: string | null;
  /** Shown next to a field, keyed by the form's field name. */
  fields: Record<string, string>;
  /** Every code seen, in order (for tests and telemetry). */
  codes: string[];
  /**
   * For bookings: the outcome is unknown (the request may or may not have reached the server),
   * so a retry must reuse the same idempotency key. Otherwise every attempt gets a new key.
   */
  retrySameKey: boolean;
}

export const MESSAGES = {
  bookingConflict: 'Those dates were just taken. Pick other dates.',
  paymentUnavailable:
    'Payments are unavailable right now. Nothing was charged and the dates were released; please try again.',
  network: "Can't reach Draftr. Check your connection and try again.",
  signinFailed: 'Wrong email or password.',
  sessionEnded: 'Your session has ended. Please sign in again.',
  attemptSpent: 'This booking attempt cannot be repeated. Press Book again to make a new one.',
  internal: 'Something went wrong on our side. Please try again.',
} as const;

/** The GraphQL errors inside an error, or null when it is not a GraphQL answer (network). */
export function graphQLErrorsOf(error: unknown): readonly ApiErrorLike[] | null {
  if (error && typeof error === 'object') {
    const errors = (error as { errors?: unknown }).errors;
    if (Array.isArray(errors)) return errors as ApiErrorLike[];
    const graphQLErrors = (error as { graphQLErrors?: unknown }).graphQLErrors;
    if (Array.isArray(graphQLErrors) && graphQLErrors.length > 0) return graphQLErrors as ApiErrorLike[];
  }
  if (Array.isArray(error)) return error as ApiErrorLike[];
  return null;
}

export function codeOf(e: ApiErrorLike): string {
  const code = e.extensions?.code;
  return typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR';
}

/** Whether an error (or a list of GraphQL errors) contains `code`. */
export function hasCode(error: unknown, code: string): boolean {
  return graphQLErrorsOf(error)?.some((e) => codeOf(e) === code) ?? false;
}

// The API names the input field at fault (`extensions.field`, e.g. "checkIn", "amount"); a form
// may call it something else.
const DEFAULT_ALIASES: Record<string, string> = {
  amount: 'nightlyRate',
};

function sentence(message: string): string {
  const m = message.trim();
  if (!m) return m;
  const s = m[0].toUpperCase() + m.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/**
 * Maps an error from a query or mutation to form messages.
 *
 * - `BOOKING_CONFLICT`: "Those dates were just taken." at the form.
 * - `PAYMENT_DECLINED`: the provider's words at the `paymentMethod` field.
 * - `PAYMENT_UNAVAILABLE`: nothing was charged; try again (with a new key).
 * - `BAD_USER_INPUT`: the message next to `extensions.field` (through `aliases`), or at the form
 *   when no field is named; `idempotencyKey` means "make a new attempt".
 * - `UNAUTHENTICATED`: wrong credentials when signing in, "sign in again" elsewhere.
 * - other codes: the API's message (its messages are sentences a user can act on), except
 *   internal errors, which get a neutral sentence.
 * - not a GraphQL answer at all: the network; a booking retried after it keeps its key.
 */
export function mapErrors(
  error: unknown,
  context: ErrorContext = 'generic',
  aliases: Record<string, string> = {},
  knownFields?: readonly string[],
): FormErrors {
  const out: FormErrors = { form: null, fields: {}, codes: [], retrySameKey: false };
  if (!error) return out;
  const errors = graphQLErrorsOf(error);
  if (errors === null) {
    out.codes.push('NETWORK');
    out.form = MESSAGES.network;
    out.retrySameKey = context === 'booking';
    return out;
  }
  const forms: string[] = [];
  const addForm = (m: string) => {
    if (!forms.includes(m)) forms.push(m);
  };
  const names = { ...DEFAULT_ALIASES, ...aliases };
  for (const e of errors) {
    const code = codeOf(e);
    out.codes.push(code);
    switch (code) {
      case 'BOOKING_CONFLICT':
        addForm(MESSAGES.bookingConflict);
        break;
      case 'PAYMENT_DECLINED':
        out.fields.paymentMethod = sentence(e.message || 'The card was declined');
        break;
      case 'PAYMENT_UNAVAILABLE':
        addForm(MESSAGES.paymentUnavailable);
        break;
      case 'BAD_USER_INPUT': {
        const raw = typeof e.extensions?.field === 'string' ? e.extensions.field : null;
        if (raw === 'idempotencyKey') {
          addForm(MESSAGES.attemptSpent);
          break;
        }
        const field = raw ? (names[raw] ?? raw) : null;
        if (field && (!knownFields || knownFields.includes(field))) {
          out.fields[field] ??= sentence(e.message);
        } else {
          addForm(sentence(e.message));
        }
        break;
      }
      case 'UNAUTHENTICATED':
        addForm(context === 'signin' ? MESSAGES.signinFailed : MESSAGES.sessionEnded);
        break;
      case 'INTERNAL_SERVER_ERROR':
        addForm(e.message ? sentence(e.message) : MESSAGES.internal);
        break;
      default:
        // RATE_LIMITED, FORBIDDEN, NOT_FOUND, …: the API's sentence says what to do.
        addForm(sentence(e.message || MESSAGES.internal));
    }
  }
  out.form = forms.length ? forms.join(' ') : null;
  return out;
}

/**
 * `mapErrors` for `createReservation` and `quote`, with the booking form's fields; anything else
 * (`propertyId`: your own or an unpublished listing) is shown at the form.
 */
export function mapBookingError(error: unknown): FormErrors {
  return mapErrors(error, 'booking', {}, [
    'checkIn',
    'checkOut',
    'guests',
    'paymentMethod',
  ]);
}
