// Money is integer minor units with an ISO 4217 currency; dates are YYYY-MM-DD (UTC).

const minorDigits = (currency: string) =>
  new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;

export function formatMoney(m: { amount: number; currency: string } | null | undefined): string {
  if (!m) return '';
  const digits = minorDigits(m.currency);
  return new Intl.NumberFormat('en', { style: 'currency', currency: m.currency }).format(m.amount / 10 ** digits);
}

/** Whole currency units as typed in a form → minor units. */
export function toMinor(major: number, currency = 'EUR'): number {
  return Math.round(major * 10 ** minorDigits(currency));
}

export function isoDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}

export function todayUtc(): string {
  return isoDate(new Date());
}

export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return isoDate(d);
}

export function addMonths(date: string, months: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() + months, 1);
  return isoDate(d);
}

export function firstOfMonth(date: string): string {
  return `${date.slice(0, 7)}-01`;
}

export function isDate(s: string | null | undefined): s is string {
  return !!s && /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`));
}

export function formatDate(date: string): string {
  return new Intl.DateTimeFormat('en', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' }).format(
    new Date(`${date}T00:00:00Z`),
  );
}

export function formatStay(checkIn: string, checkOut: string): string {
  return `${formatDate(checkIn)} → ${formatDate(checkOut)}`;
}

export function formatDateTime(dt: string | null | undefined): string {
  if (!dt) return '';
  return new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(dt));
}

/** A UUID for an idempotency key (crypto.randomUUID needs a secure context; this does not). */
export function newIdempotencyKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const AMENITIES = [
  'wifi', 'kitchen', 'parking', 'pool', 'air_conditioning', 'heating', 'washer', 'dryer', 'tv',
  'workspace', 'pets_allowed', 'ev_charger', 'hot_tub', 'gym', 'breakfast', 'balcony', 'garden',
  'fireplace', 'crib', 'wheelchair_accessible',
] as const;

export const amenityLabel = (a: string) => a.replace(/_/g, ' ');
