// The Apollo Client: queries and mutations over HTTP to the router, subscriptions over
// graphql-ws to the notifications endpoint (the free router does not serve subscriptions), on one
// split link. The access token is added by the auth link, which refreshes it when it expires.

import { ApolloClient, ApolloLink, HttpLink } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createClient, type Client } from 'graphql-ws';
import { defer, retry, throwError, timer, type Observable } from 'rxjs';
import type { AppConfig } from '../config';
import { RefreshTokenDocument } from '../gql/graphql';
import { localStorageStore, sessionFromPayload, type SessionStore } from '../auth/session';
import {
  RefreshRefusedError,
  authorized,
  createTokenManager,
  type SignedOutReason,
  type TokenManager,
} from '../auth/tokenManager';
import { hasCode } from '../errors/mapErrors';
import { socketState } from '../live/store';
import { createCache } from './cache';

/** Operations that must go without a token: signing in, and the refresh itself. */
const PUBLIC_OPERATIONS = new Set(['Login', 'Register', 'RefreshToken']);

const isUnauthenticated = (result: ApolloLink.Result) =>
  'errors' in result && !!result.errors?.some((e) => e.extensions?.code === 'UNAUTHENTICATED');

function authLink(tokens: TokenManager): ApolloLink {
  return new ApolloLink((operation, forward) => {
    if (operation.operationName && PUBLIC_OPERATIONS.has(operation.operationName)) {
      return forward(operation);
    }
    return authorized(
      tokens,
      (token): Observable<ApolloLink.Result> => {
        operation.setContext(({ headers }) => {
          const next: Record<string, string> = { ...(headers as Record<string, string> | undefined) };
          if (token) next.authorization = `Bearer ${token}`;
          else delete next.authorization;
          return { headers: next };
        });
        return forward(operation);
      },
      isUnauthenticated,
    );
  });
}

/**
 * Close codes that mean "sign in again": 4403 (Forbidden) is what the server sends for a refused
 * connection_init, an expired token and a revoked session; 1002 is what older servers sent.
 */
const REFUSED_CODES = new Set([4403, 1002]);

/**
 * One graphql-ws client per signed-in user: the token is checked once, at connection_init, so
 * a new user (or a sign-out) gets a new connection. Lazy: the socket is open while a
 * subscription is. A token refused at connection_init (the client may think it still good:
 * clocks differ) is refreshed and the subscription resubscribed, a few times at most.
 */
class SessionWsLink extends ApolloLink {
  private current: { userId: string | null; link: GraphQLWsLink; client: Client; refused: () => boolean } | null = null;

  constructor(
    private readonly url: string,
    private readonly tokens: TokenManager,
  ) {
    super();
  }

  private linkFor(userId: string | null) {
    if (this.current && this.current.userId === userId) return this.current;
    void this.current?.client.dispose();
    let sent: string | null = null;
    let refused: string | null = null;
    const client = createClient({
      url: this.url,
      lazy: true,
      retryAttempts: 5,
      shouldRetry: () => true,
      // Asked at every (re)connection: a reconnect sends a fresh token, and a refreshed one if
      // the last was refused.
      connectionParams: async () => {
        let token = await this.tokens.accessToken();
        if (token !== null && token === refused) token = await this.tokens.refreshAfter(token);
        sent = token;
        return token ? { authorization: `Bearer ${token}` } : {};
      },
      on: {
        connecting: () => socketState.set('connecting'),
        connected: () => {
          refused = null;
          socketState.set('connected');
        },
        closed: (event) => {
          const code = (event as { code?: number } | undefined)?.code;
          if (code !== undefined && REFUSED_CODES.has(code)) refused = sent;
          socketState.set('closed');
        },
      },
    });
    this.current = { userId, client, link: new GraphQLWsLink(client), refused: () => refused !== null };
    return this.current;
  }

  override request(operation: ApolloLink.Operation): Observable<ApolloLink.Result> {
    const userId = this.tokens.session()?.userId ?? null;
    return defer(() => this.linkFor(userId).link.request(operation)).pipe(
      retry({
        count: 3,
        delay: (err: unknown, attempt) =>
          err instanceof Error && /^Socket closed with event (4403|1002)\b/.test(err.message) && this.current?.refused()
            ? timer(200 * attempt)
            : throwError(() => err),
      }),
    );
  }
}

export interface DraftrClient {
  client: ApolloClient;
  tokens: TokenManager;
  store: SessionStore;
}

export function createDraftrClient(
  config: AppConfig,
  onSignedOut: (reason: SignedOutReason) => void,
  store: SessionStore = localStorageStore(),
): DraftrClient {
  // The refresh goes through the client too (without a token: PUBLIC_OPERATIONS), so the user
  // in its payload lands in the cache: a role that changed (GUEST → HOST) shows at once.
  let client: ApolloClient | null = null;
  const tokens = createTokenManager({
    store,
    onSignedOut,
    lock:
      typeof navigator !== 'undefined' && navigator.locks
        ? <T,>(fn: () => Promise<T>) =>
            navigator.locks.request('draftr-token-refresh', fn) as unknown as Promise<T>
        : undefined,
    async refresh(refreshToken) {
      try {
        const { data } = await client!.mutate({ mutation: RefreshTokenDocument, variables: { refreshToken } });
        if (!data) throw new Error('refreshToken returned no data');
        return sessionFromPayload(data.refreshToken);
      } catch (err) {
        if (hasCode(err, 'UNAUTHENTICATED')) throw new RefreshRefusedError();
        throw err;
      }
    },
  });

  const http = ApolloLink.from([authLink(tokens), new HttpLink({ uri: config.graphqlUrl })]);
  const ws = new SessionWsLink(config.wsUrl, tokens);
  client = new ApolloClient({
    link: ApolloLink.split((op) => op.operationType === 'subscription', ws, http),
    cache: createCache(),
  });
  return { client, tokens, store };
}
