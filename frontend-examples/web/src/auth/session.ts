// Where the signed-in session lives. localStorage is shared by every tab of the origin, so two
// tabs share one session: a refresh in one is seen by the other, and so is a sign-out (through
// the `storage` event). No React, no Apollo: the token manager and the tests use it as is.

export interface Session {
  accessToken: string;
  /** Works once: every refresh returns a new one. */
  refreshToken: string;
  /** When the access token expires (ms since the epoch), from the payload's `expiresIn`. */
  expiresAt: number;
  /** The access token's lifetime in ms (`expiresIn` × 1000), to refresh a little before expiry. */
  lifetimeMs: number;
  userId: string;
}

export interface SessionStore {
  read(): Session | null;
  write(session: Session | null): void;
  /** Called on every change, from this tab or (for localStorage) another one. */
  subscribe(listener: () => void): () => void;
}

/** What the API returns from register, login and refreshToken. */
export interface AuthPayloadLike {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  user: { id: string };
}

export function sessionFromPayload(payload: AuthPayloadLike, now: number = Date.now()): Session {
  return {
    accessToken: payload.accessToken,
    refreshToken: payload.refreshToken,
    expiresAt: now + payload.expiresIn * 1000,
    lifetimeMs: payload.expiresIn * 1000,
    userId: payload.user.id,
  };
}

function parse(raw: string | null): Session | null {
  if (!raw) return null;
  try {
    const s = JSON.parse(raw) as Partial<Session>;
    if (
      typeof s.accessToken === 'string' &&
      typeof s.refreshToken === 'string' &&
      typeof s.expiresAt === 'number' &&
      typeof s.userId === 'string'
    ) {
      return { lifetimeMs: 0, ...s } as Session;
    }
  } catch {
    // fall through: a corrupt entry counts as signed out
  }
  return null;
}

export const SESSION_KEY = 'draftr.session';

/**
 * A store over `window.localStorage`. `read()` returns the same object until the stored text
 * changes, so it can back React's useSyncExternalStore.
 */
export function localStorageStore(
  storage: Storage = window.localStorage,
  key: string = SESSION_KEY,
  target: Pick<Window, 'addEventListener' | 'removeEventListener'> = window,
): SessionStore {
  const listeners = new Set<() => void>();
  let lastRaw: string | null | undefined;
  let last: Session | null = null;
  const notify = () => listeners.forEach((l) => l());
  const onStorage = (e: StorageEvent) => {
    if (e.key === key || e.key === null) notify();
  };
  return {
    read() {
      const raw = storage.getItem(key);
      if (raw !== lastRaw) {
        lastRaw = raw;
        last = parse(raw);
      }
      return last;
    },
    write(session) {
      if (session) storage.setItem(key, JSON.stringify(session));
      else storage.removeItem(key);
      notify();
    },
    subscribe(listener) {
      if (listeners.size === 0) target.addEventListener('storage', onStorage);
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) target.removeEventListener('storage', onStorage);
      };
    },
  };
}

/** An in-memory store (tests, or an app that wants one session per tab). */
export function memoryStore(initial: Session | null = null): SessionStore {
  let current = initial;
  const listeners = new Set<() => void>();
  return {
    read: () => current,
    write(session) {
      current = session;
      listeners.forEach((l) => l());
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
