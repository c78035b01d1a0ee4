// Tiny external stores read with useSyncExternalStore: what the subscriptions pushed, and the
// WebSocket's state.

type Listener = () => void;

export function createStore<T>(initial: T) {
  let value = initial;
  const listeners = new Set<Listener>();
  return {
    get: () => value,
    set(next: T) {
      value = next;
      listeners.forEach((l) => l());
    },
    subscribe(l: Listener) {
      listeners.add(l);
      return () => void listeners.delete(l);
    },
  };
}

export interface PushedConfirmation {
  reservationId: string;
  propertyTitle: string;
  checkIn: string;
  checkOut: string;
  total: { amount: number; currency: string };
  confirmedAt: string;
  /** performance.now() when it arrived. */
  receivedAt: number;
}

export const confirmations = createStore<ReadonlyMap<string, PushedConfirmation>>(new Map());

export function addConfirmation(c: PushedConfirmation) {
  const next = new Map(confirmations.get());
  next.set(c.reservationId, c);
  confirmations.set(next);
}

/** Confirmations a page shows in place (the listing page after booking): no toast for those. */
export const shownInline = createStore<ReadonlySet<string>>(new Set());

export function showInline(reservationId: string) {
  if (!shownInline.get().has(reservationId)) shownInline.set(new Set(shownInline.get()).add(reservationId));
}

export type SocketState = 'idle' | 'connecting' | 'connected' | 'closed';
export const socketState = createStore<SocketState>('idle');
