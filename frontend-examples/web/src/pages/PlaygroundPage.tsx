// GraphiQL, bundled (no CDN), loaded only when this page is opened. Queries and mutations go to
// the router, subscriptions to notifications' graphql-ws endpoint, with the signed-in user's
// token in the headers and the connection_init payload.
import { createGraphiQLFetcher, type Fetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import { useMemo } from 'react';
import { useAuth } from '../auth/AuthProvider';
import type { AppConfig } from '../config';

const DEFAULT_QUERY = `# Queries and mutations go to the router; subscriptions to notifications' /ws.
# Signed in, your access token is sent with each of them.

query Search {
  properties(first: 3, sort: PRICE_ASC) {
    totalCount
    edges { node { id title address { city } nightlyRate { amount currency } host { displayName } } }
  }
  me { id displayName role }
}

subscription Confirmations {
  bookingConfirmed { reservationId propertyTitle checkIn checkOut total { amount currency } confirmedAt }
}
`;

export default function PlaygroundPage({ config }: { config: AppConfig }) {
  const { tokens } = useAuth();
  const fetcher = useMemo<Fetcher>(() => {
    // One fetcher (and graphql-ws client) per token; a refreshed token gets a new one.
    let last: { token: string | null; fetcher: Fetcher } | null = null;
    return async (params, opts) => {
      const token = await tokens.accessToken();
      if (!last || last.token !== token) {
        const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
        last = {
          token,
          fetcher: createGraphiQLFetcher({
            url: config.graphqlUrl,
            subscriptionUrl: config.wsUrl,
            headers: auth,
            wsConnectionParams: auth,
          }),
        };
      }
      return last.fetcher(params, opts);
    };
  }, [config, tokens]);
  return (
    <div className="playground" data-testid="playground">
      <GraphiQL fetcher={fetcher} defaultQuery={DEFAULT_QUERY} />
    </div>
  );
}
