import { firstValueFrom, lastValueFrom, of, toArray, type Observable } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import { memoryStore, type Session } from './session';
import {
  RefreshRefusedError,
  authorized,
  createTokenManager,
  refreshMargin,
  type TokenManagerOptions,
} from './tokenManager';

const NOW = 1_000_000;

function session(n: number, overrides: Partial<Session> = {}): Session {
  return {
    accessToken: `access-${n}`,
    refreshToken: `refresh-${n}`,
    expiresAt: NOW + 900_000,
    lifetimeMs: 900_000,
    userId: 'user-1',
    ...overrides,
  };
}

/** A refresh that answers when `release()` is called, counting its calls. */
function controlledRefresh() {
  const calls: string[] = [];
  let release!: (s: Session) => void;
  let refuse!: () => void;
  const refresh = vi.fn((refreshToken: string) => {
    calls.push(refreshToken);
    return new Promise<Session>((resolve, reject) => {
      release = resolve;
      refuse = () => reject(new RefreshRefusedError());
    });
  });
  return { refresh, calls, release: (s: Session) => release(s), refuse: () => refuse() };
}

function manager(initial: Session | null, overrides: Partial<TokenManagerOptions> = {}) {
  const store = memoryStore(initial);
  const onSignedOut = vi.fn();
  const tm = createTokenManager({
    store,
    refresh: async () => session(99),
    onSignedOut,
    now: () => NOW,
    ...overrides,
  });
  return { tm, store, onSignedOut };
}

// What the Apollo link does: a request is an observable of one result, which may carry an
// UNAUTHENTICATED error when the token it was sent with is no longer accepted.
type Result = { data: string | null; errors?: { extensions: { code: string } }[] };
const unauthenticated: Result = { data: null, errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] };
const isAuthFailure = (r: Result) => !!r.errors?.some((e) => e.extensions.code === 'UNAUTHENTICATED');

/** A fake server that accepts exactly one access token. */
function server(valid: () => string) {
  const seen: (string | null)[] = [];
  const attempt = (token: string | null): Observable<Result> => {
    seen.push(token);
    return of(token === valid() ? { data: `hello ${token}` } : unauthenticated);
  };
  return { attempt, seen };
}

describe('token manager', () => {
  it('runs one refresh for N concurrent failures and gives every caller the new token', async () => {
    const r = controlledRefresh();
    const { tm, store } = manager(session(1), { refresh: r.refresh });

    const waiting = Array.from({ length: 10 }, () => tm.refreshAfter('access-1'));
    await Promise.resolve();
    expect(r.refresh).toHaveBeenCalledTimes(1);
    expect(r.calls).toEqual(['refresh-1']);

    r.release(session(2));
    expect(await Promise.all(waiting)).toEqual(Array(10).fill('access-2'));
    expect(r.refresh).toHaveBeenCalledTimes(1);
    expect(store.read()?.refreshToken).toBe('refresh-2');

    // A request that failed with the old token after the refresh landed does not refresh again.
    expect(await tm.refreshAfter('access-1')).toBe('access-2');
    expect(r.refresh).toHaveBeenCalledTimes(1);
  });

  it('N concurrent requests that all fail UNAUTHENTICATED: one refresh, each request retried once', async () => {
    const r = controlledRefresh();
    const { tm, store } = manager(session(1), { refresh: r.refresh });
    const api = server(() => 'access-2'); // the server has stopped accepting access-1

    const results = Array.from({ length: 5 }, () =>
      firstValueFrom(authorized(tm, api.attempt, isAuthFailure)),
    );
    await vi.waitFor(() => expect(r.refresh).toHaveBeenCalledTimes(1));
    r.release(session(2));

    expect(await Promise.all(results)).toEqual(Array(5).fill({ data: 'hello access-2' }));
    expect(r.refresh).toHaveBeenCalledTimes(1);
    expect(api.seen.filter((t) => t === 'access-1')).toHaveLength(5);
    expect(api.seen.filter((t) => t === 'access-2')).toHaveLength(5);
    expect(store.read()?.accessToken).toBe('access-2');
  });

  it('a refused refresh signs out once, and the failures pass through', async () => {
    const r = controlledRefresh();
    const { tm, store, onSignedOut } = manager(session(1), { refresh: r.refresh });
    const api = server(() => 'never');

    const results = Array.from({ length: 3 }, () =>
      firstValueFrom(authorized(tm, api.attempt, isAuthFailure)),
    );
    await vi.waitFor(() => expect(r.refresh).toHaveBeenCalledTimes(1));
    r.refuse();

    expect(await Promise.all(results)).toEqual(Array(3).fill(unauthenticated));
    expect(store.read()).toBeNull();
    expect(onSignedOut).toHaveBeenCalledTimes(1);
    expect(onSignedOut).toHaveBeenCalledWith('refresh-refused');
    expect(api.seen).toEqual(['access-1', 'access-1', 'access-1']); // not retried
    expect(await tm.accessToken()).toBeNull();
  });

  it('success retries the original operation with the new token', async () => {
    const { tm } = manager(session(1), { refresh: async () => session(2) });
    const api = server(() => 'access-2');
    const all = await lastValueFrom(authorized(tm, api.attempt, isAuthFailure).pipe(toArray()));
    expect(all).toEqual([{ data: 'hello access-2' }]);
    expect(api.seen).toEqual(['access-1', 'access-2']);
  });

  it('retries at most once', async () => {
    const refresh = vi.fn(async () => session(2));
    const { tm } = manager(session(1), { refresh });
    const api = server(() => 'never');
    expect(await firstValueFrom(authorized(tm, api.attempt, isAuthFailure))).toEqual(unauthenticated);
    expect(api.seen).toEqual(['access-1', 'access-2']);
    expect(refresh).toHaveBeenCalledTimes(1);
  });

  it('does not refresh for a signed-out request', async () => {
    const refresh = vi.fn(async () => session(2));
    const { tm } = manager(null, { refresh });
    const api = server(() => 'x');
    expect(await firstValueFrom(authorized(tm, api.attempt, isAuthFailure))).toEqual(unauthenticated);
    expect(api.seen).toEqual([null]);
    expect(refresh).not.toHaveBeenCalled();
  });

  it('refreshes before expiry, from expiresIn', async () => {
    let now = NOW;
    const refresh = vi.fn(async () => session(2, { expiresAt: now + 3000, lifetimeMs: 3000 }));
    const { tm } = manager(session(1, { expiresAt: NOW + 3000, lifetimeMs: 3000 }), {
      refresh,
      now: () => now,
    });
    expect(refreshMargin(3000)).toBe(300);
    expect(refreshMargin(900_000)).toBe(30_000);

    expect(await tm.accessToken()).toBe('access-1');
    now = NOW + 2700; // within the margin
    const [a, b] = await Promise.all([tm.accessToken(), tm.accessToken()]);
    expect([a, b]).toEqual(['access-2', 'access-2']);
    expect(refresh).toHaveBeenCalledTimes(1);
  });

  it('keeps the session when the refresh fails for the network', async () => {
    const refresh = vi.fn(async () => {
      throw new TypeError('Failed to fetch');
    });
    const { tm, store, onSignedOut } = manager(session(1, { expiresAt: NOW - 1 }), { refresh });
    expect(await tm.accessToken()).toBe('access-1'); // sent as is; the server decides
    await expect(tm.refreshAfter('access-1')).rejects.toThrow('Failed to fetch');
    expect(store.read()?.refreshToken).toBe('refresh-1');
    expect(onSignedOut).not.toHaveBeenCalled();
  });

  it('uses the pair another tab already rotated instead of spending the old refresh token', async () => {
    const refresh = vi.fn(async () => session(3));
    const { tm, store } = manager(session(1), { refresh });
    store.write(session(2)); // the other tab refreshed (same localStorage)
    expect(await tm.refreshAfter('access-1')).toBe('access-2');
    expect(refresh).not.toHaveBeenCalled();
  });

  it('runs refreshes under the cross-tab lock', async () => {
    const order: string[] = [];
    const lock = async <T,>(fn: () => Promise<T>) => {
      order.push('lock');
      try {
        return await fn();
      } finally {
        order.push('unlock');
      }
    };
    const { tm } = manager(session(1), {
      lock,
      refresh: async () => {
        order.push('refresh');
        return session(2);
      },
    });
    await tm.refreshAfter('access-1');
    expect(order).toEqual(['lock', 'refresh', 'unlock']);
  });

  it('reports a sign-out made in another tab at the next request', async () => {
    const { tm, store, onSignedOut } = manager(session(1));
    expect(await tm.accessToken()).toBe('access-1');
    store.write(null); // the other tab signed out
    expect(await tm.accessToken()).toBeNull();
    expect(onSignedOut).toHaveBeenCalledWith('signed-out-elsewhere');
    tm.signIn(session(5));
    tm.signOut(); // this tab's own sign-out is not reported
    await tm.accessToken();
    expect(onSignedOut).toHaveBeenCalledTimes(1);
  });

  it('a sign-out while the refresh is on its way wins', async () => {
    const r = controlledRefresh();
    const { tm, store } = manager(session(1), { refresh: r.refresh });
    const pending = tm.refreshAfter('access-1');
    await Promise.resolve();
    tm.signOut();
    r.release(session(2));
    expect(await pending).toBeNull();
    expect(store.read()).toBeNull();
  });
});
