import { NetworkStatus } from '@apollo/client';
import { useQuery } from '@apollo/client/react';
import { FormError, Spinner, Status } from '../components/ui';
import { mapErrors } from '../errors/mapErrors';
import { MyNotificationsDocument } from '../gql/graphql';
import { formatDateTime } from '../lib/format';

export function NotificationsPage() {
  // Emails are written by the server after the fact (and retried): ask on every visit, and on
  // "Refresh".
  const { data, error, loading, refetch, fetchMore, networkStatus } = useQuery(MyNotificationsDocument, {
    variables: { first: 20 },
    fetchPolicy: 'cache-and-network',
    notifyOnNetworkStatusChange: true,
  });
  const conn = data?.me?.notifications;
  if (loading && !conn) return <Spinner />;
  return (
    <section>
      <h1>Notifications</h1>
      <FormError message={mapErrors(error).form} />
      <button type="button" className="secondary" data-testid="refresh-notifications" disabled={networkStatus === NetworkStatus.refetch} onClick={() => void refetch()}>
        Refresh
      </button>
      {conn ? (
        <>
          <p className="total">
            {conn.totalCount} email{conn.totalCount === 1 ? '' : 's'}
          </p>
          <ul className="rows" data-testid="notifications">
            {conn.edges.map(({ node: n }) => (
              <li key={n.id} className="row" data-testid="notification" data-kind={n.kind}>
                <div>
                  <strong>{n.subject}</strong> <span className="muted">· {n.kind.replace(/_/g, ' ')}</span>
                </div>
                <div className="row-meta">
                  <Status value={n.status} /> <span className="muted">{n.sentAt ? `sent ${formatDateTime(n.sentAt)}` : `${n.attempts} attempt(s)`}</span>
                </div>
              </li>
            ))}
          </ul>
          {conn.pageInfo.hasNextPage ? (
            <button type="button" className="secondary" onClick={() => fetchMore({ variables: { after: conn.pageInfo.endCursor } })}>
              Show more
            </button>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
