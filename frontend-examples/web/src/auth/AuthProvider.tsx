import { useApolloClient } from '@apollo/client/react';
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useSyncExternalStore, type ReactNode } from 'react';
import { LogoutDocument, MeDocument, type AuthPayloadFieldsFragment } from '../gql/graphql';
import { navigate, useLocation } from '../router';
import { sessionFromPayload, type Session, type SessionStore } from './session';
import type { TokenManager } from './tokenManager';

interface Auth {
  session: Session | null;
  tokens: TokenManager;
  /** After register/login: keep the pair, put the user in the cache as `me`. */
  signIn(payload: AuthPayloadFieldsFragment): void;
  /** Ends the session on the server (logout), here and in every tab. */
  signOut(): Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);

export function AuthProvider({ store, tokens, children }: { store: SessionStore; tokens: TokenManager; children: ReactNode }) {
  const client = useApolloClient();
  const session = useSyncExternalStore(store.subscribe, store.read);

  // Another user's data must not survive a change of user (a sign-out or sign-in in another
  // tab arrives through the storage event): drop the cache without refetching.
  const lastUser = useRef(session?.userId ?? null);
  useEffect(() => {
    const user = session?.userId ?? null;
    if (lastUser.current !== null && lastUser.current !== user) void client.clearStore();
    lastUser.current = user;
  }, [session?.userId, client]);

  const signIn = useCallback(
    (payload: AuthPayloadFieldsFragment) => {
      tokens.signIn(sessionFromPayload(payload));
      lastUser.current = payload.user.id;
      client.writeQuery({ query: MeDocument, data: { me: payload.user } });
    },
    [client, tokens],
  );

  const signOut = useCallback(async () => {
    try {
      await client.mutate({ mutation: LogoutDocument });
    } catch {
      // Signed out here whatever the server said; the token expires by itself.
    }
    tokens.signOut();
    await client.clearStore();
    navigate('/signin?reason=signed-out');
  }, [client, tokens]);

  const value = useMemo(() => ({ session, tokens, signIn, signOut }), [session, tokens, signIn, signOut]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error('useAuth outside AuthProvider');
  return auth;
}

export function signInPath(next: string, reason?: string): string {
  const q = new URLSearchParams({ next });
  if (reason) q.set('reason', reason);
  return `/signin?${q}`;
}

/** Renders its children for a signed-in user; sends anyone else to sign in (and back after). */
export function RequireAuth({ children }: { children: ReactNode }) {
  const { session } = useAuth();
  const loc = useLocation();
  useEffect(() => {
    if (!session) navigate(signInPath(loc.path + loc.search), { replace: true });
  }, [session, loc.path, loc.search]);
  return session ? <>{children}</> : null;
}
