// The access-token lifecycle, with no React and no Apollo in it (unit-tested in
// tokenManager.test.ts):
//
// - `accessToken()` gives the token to send, refreshing it first when it expires within a small
//   margin (from `expiresIn`), so most requests never fail for an expired token;
// - `refreshAfter(token)` is called when a request sent with `token` came back UNAUTHENTICATED;
// - however many requests ask at once, ONE refresh is in flight (per tab, and across tabs through
//   a lock: refresh tokens work once, and presenting a spent one revokes the whole session);
// - a refused refresh (the session was revoked, or the refresh token expired) clears the session
//   and reports `refresh-refused`, so the app sends the user to sign in;
// - `authorized()` runs an attempt with the token and, when it fails for authentication, runs it
//   once more with the refreshed token.

import { defer, from, mergeMap, of, switchMap, type Observable } from 'rxjs';
import type { Session, SessionStore } from './session';

/** Thrown by `refresh` when the server refuses the refresh token (UNAUTHENTICATED). */
export class RefreshRefusedError extends Error {
  constructor(message = 'the refresh token was refused') {
    super(message);
    this.name = 'RefreshRefusedError';
  }
}

export type SignedOutReason = 'refresh-refused' | 'signed-out-elsewhere';

export interface TokenManagerOptions {
  store: SessionStore;
  /**
   * Trades a refresh token for a new session. Throws RefreshRefusedError when the server says
   * no; any other error (the network) leaves the session as it is.
   */
  refresh: (refreshToken: string) => Promise<Session>;
  /** The session ended without this tab asking for it. */
  onSignedOut?: (reason: SignedOutReason) => void;
  now?: () => number;
  /**
   * Mutual exclusion across tabs, e.g. `(fn) => navigator.locks.request('draftr-refresh', fn)`.
   * Without it, only this tab's requests are coordinated.
   */
  lock?: <T>(fn: () => Promise<T>) => Promise<T>;
}

export interface TokenManager {
  session(): Session | null;
  /** The token to send now (refreshed first if it expires within the margin), or null. */
  accessToken(): Promise<string | null>;
  /** After a request sent with `rejected` failed as UNAUTHENTICATED: a fresh token, or null. */
  refreshAfter(rejected: string): Promise<string | null>;
  /** Refresh now whatever the expiry (e.g. the role changed and the token should say so). */
  refreshNow(): Promise<string | null>;
  signIn(session: Session): void;
  /** Forget the session in this tab (and every tab sharing the store). */
  signOut(): void;
}

/** Refresh this long before expiry: 10% of the lifetime, at most 30 s. */
export function refreshMargin(lifetimeMs: number): number {
  return Math.min(30_000, Math.max(0, lifetimeMs) * 0.1);
}

export function createTokenManager(options: TokenManagerOptions): TokenManager {
  const { store, refresh, onSignedOut } = options;
  const now = options.now ?? Date.now;
  const lock = options.lock ?? ((fn) => fn());
  let inflight: Promise<string | null> | null = null;
  // The user this tab last saw signed in: when the store empties without this tab signing out,
  // another tab did.
  let seenUser: string | null = store.read()?.userId ?? null;

  const expiringSoon = (s: Session) => s.expiresAt - refreshMargin(s.lifetimeMs) <= now();

  function current(): Session | null {
    const s = store.read();
    if (s) {
      seenUser = s.userId;
    } else if (seenUser !== null) {
      seenUser = null;
      onSignedOut?.('signed-out-elsewhere');
    }
    return s;
  }

  // `stale`: the token the caller found wanting. If the stored one differs and is good, another
  // request (or tab) refreshed already and it is the answer. null: refresh regardless.
  function refreshOnce(stale: string | null): Promise<string | null> {
    if (inflight) return inflight;
    inflight = lock(async () => {
      const before = current();
      if (!before) return null;
      if (stale !== null && before.accessToken !== stale && !expiringSoon(before)) {
        return before.accessToken;
      }
      let next: Session;
      try {
        next = await refresh(before.refreshToken);
      } catch (err) {
        if (err instanceof RefreshRefusedError) {
          // Only if nobody replaced the session meanwhile (a sign-in in another tab).
          if (store.read()?.refreshToken === before.refreshToken) {
            seenUser = null;
            // Told first, so the app can say why before the store's listeners react.
            onSignedOut?.('refresh-refused');
            store.write(null);
          }
          return null;
        }
        throw err;
      }
      const after = store.read();
      if (!after || after.refreshToken !== before.refreshToken) {
        // Signed out (or in as someone else) while the refresh was on its way: that wins.
        return after?.accessToken ?? null;
      }
      store.write(next);
      seenUser = next.userId;
      return next.accessToken;
    }).finally(() => {
      inflight = null;
    });
    return inflight;
  }

  return {
    session: current,
    async accessToken() {
      const s = current();
      if (!s) return null;
      if (!expiringSoon(s)) return s.accessToken;
      try {
        return await refreshOnce(s.accessToken);
      } catch {
        // The network failed: send what we have; if the server refuses it, refreshAfter retries.
        return s.accessToken;
      }
    },
    refreshAfter(rejected) {
      return refreshOnce(rejected);
    },
    refreshNow() {
      return refreshOnce(null);
    },
    signIn(session) {
      seenUser = session.userId;
      store.write(session);
    },
    signOut() {
      seenUser = null;
      store.write(null);
    },
  };
}

/**
 * Runs `attempt` with the current token; when its first result is an authentication failure
 * (`isAuthFailure`) and a token was sent, refreshes (one refresh for all concurrent callers) and
 * runs `attempt` once more with the new token. A refused refresh passes the failure through (the
 * token manager has signed the user out by then).
 */
export function authorized<T>(
  tokens: Pick<TokenManager, 'accessToken' | 'refreshAfter'>,
  attempt: (token: string | null) => Observable<T>,
  isAuthFailure: (result: T) => boolean,
): Observable<T> {
  return defer(() => from(tokens.accessToken())).pipe(
    switchMap((token) =>
      attempt(token).pipe(
        mergeMap((result, index) => {
          if (token === null || index > 0 || !isAuthFailure(result)) return of(result);
          return from(tokens.refreshAfter(token)).pipe(
            switchMap((fresh) => (fresh === null ? of(result) : attempt(fresh))),
          );
        }),
      ),
    ),
  );
}
